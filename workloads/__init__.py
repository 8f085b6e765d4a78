"""algobench's workloads (DESIGN.md contract 1) and their registry."""

from algobench.workloads.base import ArrayWorkload, Splits, Targets, Workload
from algobench.workloads.registry import get_workload, workload_class, workload_names

__all__ = [
    "ArrayWorkload",
    "Splits",
    "Targets",
    "Workload",
    "get_workload",
    "workload_class",
    "workload_names",
]
