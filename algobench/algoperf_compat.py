"""The ``algoperf`` / ``algorithmic_efficiency`` modules an AlgoPerf submission imports.

They are built per load and put into ``sys.modules`` only while the submission file is being
imported, then taken out again, so that nothing named ``algoperf`` is installed or left behind.
"""

from __future__ import annotations

import contextlib
import sys
import types
from collections.abc import Iterator
from typing import Any

import torch

from algobench import spec

PACKAGE_NAMES = ("algoperf", "algorithmic_efficiency")


def _pytorch_utils(device: torch.device) -> types.ModuleType:
    module = types.ModuleType("pytorch_utils", "algobench's stand-in for algoperf.pytorch_utils")

    def pytorch_setup() -> tuple[bool, int, torch.device, int]:
        """(use_pytorch_ddp, rank, device, n_gpus): algobench runs one process per trial."""
        n_gpus = torch.cuda.device_count() if device.type == "cuda" else 0
        return False, 0, device, n_gpus

    def pytorch_init(use_pytorch_ddp: bool, rank: int, profiler: Any = None) -> None:
        return None

    def sync_ddp_time(time: float, device: torch.device) -> float:
        return time

    module.pytorch_setup = pytorch_setup
    module.pytorch_init = pytorch_init
    module.sync_ddp_time = sync_ddp_time
    return module


def _param_utils() -> types.ModuleType:
    module = types.ModuleType("param_utils", "algobench's stand-in for algoperf.param_utils")

    def pytorch_param_shapes(model: torch.nn.Module) -> dict[str, spec.ShapeTuple]:
        return {k: spec.ShapeTuple(v.shape) for k, v in model.named_parameters()}

    module.pytorch_param_shapes = pytorch_param_shapes
    return module


def compat_modules(device: torch.device) -> dict[str, types.ModuleType]:
    """The module objects to expose, by dotted name, for both package spellings."""
    modules: dict[str, types.ModuleType] = {}
    for package_name in PACKAGE_NAMES:
        package = types.ModuleType(package_name, "provided by algobench while a submission loads")
        package.__path__ = []  # a package, so that `import algoperf.spec` works
        package.spec = spec
        package.pytorch_utils = _pytorch_utils(device)
        package.param_utils = _param_utils()
        modules[package_name] = package
        for sub in ("spec", "pytorch_utils", "param_utils"):
            modules[f"{package_name}.{sub}"] = getattr(package, sub)
    return modules


@contextlib.contextmanager
def algoperf_modules(device: torch.device) -> Iterator[None]:
    """Expose the compat modules in ``sys.modules`` for the duration of the block only."""
    added = {name: mod for name, mod in compat_modules(device).items() if name not in sys.modules}
    sys.modules.update(added)
    try:
        yield
    finally:
        for name in added:
            sys.modules.pop(name, None)


@contextlib.contextmanager
def import_root(directory: str | None) -> Iterator[None]:
    """Put ``directory`` first on ``sys.path`` for the block: the home of a file that imports
    itself by its path in another repository (``submissions.submissions_algorithms_v0_5.…``).

    It stays for the whole trial, since such a file may import lazily inside ``update_params``,
    and is taken out afterwards so that an in-process executor's next trial does not see it.
    """
    if directory is None:
        yield
        return
    sys.path.insert(0, directory)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(directory)


@contextlib.contextmanager
def single_process_group() -> Iterator[bool]:
    """A one-process ``torch.distributed`` group (gloo, which runs on CPU) for the block, as
    AlgoPerf's PyTorch runner provides one; yields whether this call made it.

    Submissions written for AlgoPerf may require ``torch.distributed.is_initialized()`` (Distributed
    Shampoo's DDP distributor does). The group's store is in memory, so nothing listens on a port.
    A group someone else initialised is used as it is and left alone.
    """
    import torch.distributed as dist

    if not dist.is_available() or dist.is_initialized():
        yield False
        return
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        yield True
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
