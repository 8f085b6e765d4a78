"""Executors: one interface (``base.Executor``) behind every way a trial runs."""

from algobench.executors.base import Executor, InfrastructureError

__all__ = ["Executor", "InfrastructureError"]
