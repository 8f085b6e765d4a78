"""Which workloads exist: one line per workload, resolved lazily so listing imports nothing heavy."""

from __future__ import annotations

import difflib
import importlib
from types import MappingProxyType

import torch
from algobench.workloads.base import Workload

from algobench.errors import UnknownWorkloadError

WORKLOADS: MappingProxyType[str, str] = MappingProxyType(
    {
        "digits_mlp": "algobench.workloads.digits_mlp:DigitsMLP",
        "mnist1d": "algobench.workloads.mnist1d:Mnist1DCNN",
    }
)


def workload_names() -> list[str]:
    return list(WORKLOADS)


def workload_class(name: str) -> type[Workload]:
    """The class registered as ``name``; an unknown name gets the closest suggestions."""
    try:
        target = WORKLOADS[name]
    except KeyError:
        close = difflib.get_close_matches(name, WORKLOADS, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownWorkloadError(
            f"unknown workload {name!r}.{hint} Known workloads: {', '.join(WORKLOADS)}"
        ) from None
    module_name, class_name = target.split(":")
    return getattr(importlib.import_module(module_name), class_name)


def get_workload(
    name: str, device: str | torch.device = "cpu", data_dir: str | None = None
) -> Workload:
    return workload_class(name)(device=device, data_dir=data_dir)
