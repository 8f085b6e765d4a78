"""Batch runs of algobench trials on SLURM (or locally) through submitit."""
