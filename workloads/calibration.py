"""Machine calibration: budgets are seconds on the reference machine, scaled by how much slower
(or faster) this machine runs each workload's fixed reference step.

``algobench calibrate`` times the reference step (forward, backward and an AdamW update on one
default-sized batch, model and data at the CPU scale) with the torch threads a trial gets
(``--threads``, default that of ``algobench submit``) and writes one factor per workload,
``this machine's step time / the reference machine's``, to ``calibration.json`` in the cache
directory. Every trial records the factor it ran under, so scoring can refuse to compare
results whose machines were not put on the same footing. A factor holds only for the thread
count it was measured with: one thread and two threads on a 2-core machine are different
machines, so trials with another count are refused until the machine is calibrated for it.

Uncalibrated machines get a factor of 1.0: budgets then mean seconds on *this* machine, and
results from two uncalibrated machines must not be compared.

Reading factors is torch-free (``algobench workloads`` shows budgets with them); timing imports
torch when it runs.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from algobench import spec
from algobench.errors import AlgobenchError
from algobench.executors.base import available_cores
from algobench.trial_spec import TrialSpec
from algobench.workloads.data_cache import cache_dir
from algobench.workloads.registry import get_workload, workload_info

CALIBRATION_FILE = "calibration.json"
REFERENCE_FILE = Path(__file__).parent / "targets" / "reference_steps.json"
WARMUP_STEPS = 3
TIMED_STEPS = 15
DEFAULT_THREADS = TrialSpec.threads  # what a trial gets unless told otherwise


def calibration_path() -> Path:
    return cache_dir() / CALIBRATION_FILE


def _reference_stepper(workload_name: str, device: str) -> Callable[[], float]:
    """A function that runs one reference training step of ``workload_name`` and returns its
    wall time (the batch is drawn before the clock starts)."""
    import torch

    workload = get_workload(workload_name, device=device)
    torch.manual_seed(0)
    model, state = workload.init_model_fn(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    queue = workload._build_input_queue(0, "train", None, workload.default_batch_size)
    sync = torch.cuda.synchronize if workload.device.type == "cuda" else (lambda: None)

    def step() -> float:
        nonlocal state
        batch = next(queue)
        start = time.perf_counter()
        logits, state = workload.model_fn(model, batch, state, spec.ForwardPassMode.TRAIN, None, True)
        out = workload.loss_fn(batch["targets"], logits, batch.get("weights"))
        optimizer.zero_grad(set_to_none=True)
        (out["summed"] / out["n_valid_examples"]).backward()
        optimizer.step()
        sync()
        return time.perf_counter() - start

    return step


def reference_step_seconds(workload_name: str, steps: int = TIMED_STEPS, device: str = "cpu") -> float:
    """Median wall time of one reference training step of ``workload_name`` (after warm-up)."""
    step = _reference_stepper(workload_name, device)
    times = [step() for _ in range(WARMUP_STEPS + steps)]
    return statistics.median(times[WARMUP_STEPS:])


def step_time_ratio(workload_name: str, other_name: str, steps: int = 2 * TIMED_STEPS, device: str = "cpu") -> float:
    """How much dearer a reference step of ``workload_name`` is than one of ``other_name``.
    The two step in turn, so that a change in the machine's speed hits both alike."""
    first, second = _reference_stepper(workload_name, device), _reference_stepper(other_name, device)
    pairs = [(first(), second()) for _ in range(WARMUP_STEPS + steps)][WARMUP_STEPS:]
    return statistics.median(a for a, _ in pairs) / statistics.median(b for _, b in pairs)


def machine_info() -> dict[str, Any]:
    import torch

    return {
        "host": platform.node(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "platform": platform.platform(),
    }


def reference_steps() -> dict[str, Any]:
    """The reference machine's step times (shipped with the package)."""
    if not REFERENCE_FILE.exists():
        return {"machine": None, "step_seconds": {}}
    return json.loads(REFERENCE_FILE.read_text())


def calibrate(
    names: Iterable[str],
    device: str = "cpu",
    write_reference: bool = False,
    threads: Iterable[int] | None = None,
) -> dict[str, Any]:
    """Time the reference step of each base workload with each count of torch ``threads``
    (default: one, and every core, the defaults of ``tune`` and ``submit``) and write the
    factors, per thread count; or, with ``write_reference``, make this machine the reference (at
    one count). Variants use their base's factor: their steps differ from the base's by design,
    not by machine."""
    counts = sorted(set(threads or (DEFAULT_THREADS, available_cores())))
    if counts[0] < 1:
        raise AlgobenchError(f"--threads must be at least 1, got {counts[0]}")
    bases = sorted({workload_info(n).base_name for n in names})
    measured = {count: _measure(bases, device, count) for count in counts}
    now = datetime.now(UTC).isoformat(timespec="seconds")
    if write_reference:
        if len(counts) != 1:
            raise AlgobenchError("--write-reference measures one thread count; pass a single --threads")
        kept = reference_steps()["step_seconds"]
        record = {
            "machine": machine_info(),
            "date": now,
            "device": device,
            "threads": counts[0],
            "step_seconds": {**kept, **measured[counts[0]]},
        }
        _write_json(REFERENCE_FILE, record)
        return record
    reference = reference_steps()["step_seconds"]
    previous = _read_calibration() or {}
    same_machine = previous.get("machine", {}).get("host") == platform.node()
    by_threads = dict(previous.get("by_threads", {})) if same_machine else {}
    for count, seconds in measured.items():
        kept = by_threads.get(str(count), {})
        by_threads[str(count)] = {
            "date": now,
            "step_seconds": {**kept.get("step_seconds", {}), **seconds},
            "factors": {**kept.get("factors", {}), **{n: seconds[n] / reference[n] for n in bases if n in reference}},
        }
    record = {
        "machine": machine_info(),
        "device": device,
        "reference_machine": reference_steps().get("machine"),
        "by_threads": by_threads,
        "uncalibrated": [n for n in bases if n not in reference],
    }
    _write_json(calibration_path(), record)
    return record


def _measure(bases: list[str], device: str, threads: int) -> dict[str, float]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return {name: reference_step_seconds(name, device=device) for name in bases}
    finally:
        torch.set_num_threads(before)


def calibration_factor(workload_name: str, threads: int = DEFAULT_THREADS) -> float:
    """This machine's budget factor for ``workload_name`` run with ``threads`` torch threads: 1.0
    when the machine is uncalibrated (then budgets are seconds of this machine, and results are
    comparable only within it). A calibrated machine without a factor for that thread count is
    refused: one thread and every core are different machines."""
    record = _read_calibration()
    if not record:
        return 1.0
    measured = record.get("by_threads", {})
    if str(threads) not in measured:
        counts = ", ".join(sorted(measured, key=int)) or "none"
        raise AlgobenchError(
            f"{calibration_path()} holds factors for {counts} torch thread(s) per trial, not {threads}: "
            f"run `algobench calibrate --threads {threads}`"
        )
    base = workload_info(workload_name).base_name
    return float(measured[str(threads)]["factors"].get(base, 1.0))


def _read_calibration() -> dict[str, Any] | None:
    try:
        return json.loads(calibration_path().read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        json.dump(payload, handle, indent=2)
        handle.write("\n")
    os.replace(tmp, path)
