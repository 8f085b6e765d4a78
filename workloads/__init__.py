"""algobench's workloads (DESIGN.md contract 1) and their registry.

Importing the package imports neither torch nor any workload: the registry is torch-free, and
the classes are re-exported lazily, so that ``algobench workloads`` lists the suite at once.
"""

from __future__ import annotations

import importlib
from typing import Any

from algobench.workloads.registry import get_workload, workload_class, workload_info, workload_names

_LAZY = {
    "ArrayWorkload": "algobench.workloads.base",
    "RegisteredWorkload": "algobench.workloads.base",
    "Splits": "algobench.workloads.base",
    "Workload": "algobench.workload",
    "Targets": "algobench.spec",
}

__all__ = [
    "ArrayWorkload",
    "RegisteredWorkload",
    "Splits",
    "Targets",
    "Workload",
    "get_workload",
    "workload_class",
    "workload_info",
    "workload_names",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
