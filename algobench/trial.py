"""One trial, from a picklable spec to a finished trial directory.

``run_trial`` is the single entry point every executor calls (in-process, subprocess,
submitit/SLURM, Ray): it skips a finished trial, resumes from a checkpoint, and always leaves
a ``summary.json`` behind, whatever the submission does.
"""

from __future__ import annotations

import math
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

import algobench
from algobench.errors import AlgobenchError
from algobench.hyperparameters import Hyperparameters
from algobench.results import HPARAMS_FILE, META_FILE, SUMMARY_FILE, read_summary, write_json
from algobench.runner import Progress, RunConfig, TrialRunner
from algobench.submission import load_submission
from algobench.tuning.rulesets import get_ruleset
from algobench.workloads import Workload, get_workload

FRAMEWORK = "pytorch"


@dataclass(frozen=True)
class TrialSpec:
    """Everything one trial needs; it pickles, so SLURM and Ray can carry it."""

    submission_path: str
    submission_name: str
    workload_name: str
    study: int
    trial: int
    hyperparameters: dict[str, Any] | None
    seed: int
    experiment_dir: str
    ruleset: str = "external"
    device: str = "cpu"
    stop_on_target: bool = True
    calibration_factor: float = 1.0
    max_steps: int | None = None
    eval_every_steps: int | None = None
    data_dir: str | None = None  # for workloads that read a dataset from disk
    scale: str = "cpu"  # problem size: "cpu" (targets are set here) or "gpu"

    def trial_dir(self) -> Path:
        return (
            Path(self.experiment_dir)
            / self.submission_name
            / f"study_{self.study}"
            / f"{self.workload_name}_{FRAMEWORK}"
            / f"trial_{self.trial}"
        )


def run_config(spec: TrialSpec, workload: Workload) -> RunConfig:
    """The budget is the workload's, scaled by the machine's calibration and the ruleset."""
    budget = workload.max_allowed_runtime_sec * spec.calibration_factor * get_ruleset(spec.ruleset).budget_multiplier
    return RunConfig(
        budget_sec=budget,
        eval_period_sec=workload.eval_period_time_sec * spec.calibration_factor,
        seed=spec.seed,
        eval_every_steps=spec.eval_every_steps,
        max_steps=spec.max_steps,
        stop_on_target=spec.stop_on_target,
    )


def run_trial(
    spec: TrialSpec,
    *,
    show_progress: bool = False,
    on_progress: Callable[[Progress], None] | None = None,
) -> dict[str, Any]:
    """Run (or resume, or skip) one trial and return its summary (as written to summary.json)."""
    trial_dir = spec.trial_dir()
    finished = read_summary(trial_dir)
    if finished is not None:
        return finished
    trial_dir.mkdir(parents=True, exist_ok=True)
    workload = get_workload(spec.workload_name, device=spec.device, data_dir=spec.data_dir, scale=spec.scale)
    config = run_config(spec, workload)
    hyperparameters = Hyperparameters(spec.hyperparameters)
    write_json(trial_dir / HPARAMS_FILE, dict(hyperparameters))
    write_json(trial_dir / META_FILE, meta_data(spec))
    bar = TrialProgressBar(spec) if show_progress else None
    try:
        submission = load_submission(spec.submission_path, device=spec.device)
        runner = TrialRunner(
            workload, submission, hyperparameters, config, trial_dir,
            on_progress=bar.update if bar else on_progress,
        )  # fmt: skip
        runner.resume()
        runner.run()
        summary = summarize(spec, workload, config, runner)
    except AlgobenchError as error:
        summary = failed_summary(spec, workload, config, str(error))
    except Exception as error:
        summary = failed_summary(spec, workload, config, f"{type(error).__name__}: {error}")
    finally:
        if bar:
            bar.close()
    write_json(trial_dir / SUMMARY_FILE, summary)
    return summary


def _base_summary(spec: TrialSpec, workload: Workload, config: RunConfig) -> dict[str, Any]:
    return {
        "submission": spec.submission_name,
        "workload": workload.name,
        "base_workload": workload.base_name,
        "variant": workload.variant,
        "study": spec.study,
        "trial": spec.trial,
        "seed": spec.seed,
        "ruleset": spec.ruleset,
        "target_metric_name": workload.target_metric_name,
        "metric_direction": workload.metric_direction,
        "validation_target_value": workload.validation_target_value,
        "test_target_value": workload.test_target_value,
        "max_allowed_runtime_sec": config.budget_sec,
        "calibration_factor": spec.calibration_factor,
        "machine": machine_name(),
        "trial_dir": str(spec.trial_dir()),
    }


def summarize(spec: TrialSpec, workload: Workload, config: RunConfig, runner: TrialRunner) -> dict[str, Any]:
    state = runner.state
    metric_key = f"validation/{workload.target_metric_name}"
    values = [row[metric_key] for row in state.eval_history if math.isfinite(row.get(metric_key, math.nan))]
    pick = max if workload.metric_direction == "max" else min
    return {
        **_base_summary(spec, workload, config),
        "status": state.status,
        "error": state.error,
        "time_to_target": state.time_to_target,
        "steps": state.global_step,
        "examples_seen": state.examples_seen,
        "submission_time": state.clocks.submission,
        "eval_time": state.clocks.eval,
        "process_cpu_time": state.clocks.process_cpu,
        "total_duration": state.clocks.wall,
        "preemption_count": state.preemption_count,
        "num_evals": len(state.eval_history),
        "best_validation_metric": pick(values) if values else None,
        "batch_size": runner.batch_size,
    }


def failed_summary(spec: TrialSpec, workload: Workload, config: RunConfig, error: str) -> dict[str, Any]:
    """A trial that never got going (bad submission file, optimizer that would not build)."""
    return {
        **_base_summary(spec, workload, config),
        "status": "failed",
        "error": error,
        "time_to_target": None,
        "steps": 0,
        "best_validation_metric": None,
    }


def machine_name() -> str:
    return f"{socket.gethostname()} ({platform.processor() or platform.machine()}, {os.cpu_count()} cpus)"


def meta_data(spec: TrialSpec) -> dict[str, Any]:
    """Versions, hardware, seeds, command line and git revision: what made this trial."""
    return {
        "algobench_version": algobench.__version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "machine": machine_name(),
        "device": spec.device,
        "cuda_device": torch.cuda.get_device_name() if spec.device.startswith("cuda") else None,
        "torch_threads": torch.get_num_threads(),
        "command_line": sys.argv,
        "git_revision": _git_revision(Path(spec.submission_path).parent),
        "spec": asdict(spec),
    }


def _git_revision(where: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


class TrialProgressBar:
    """A tqdm bar per trial: step, submission time against the budget, last metric vs target."""

    def __init__(self, spec: TrialSpec) -> None:
        from tqdm import tqdm

        self.bar = tqdm(
            total=None, unit="step", leave=False, dynamic_ncols=True,
            desc=f"{spec.workload_name} s{spec.study} t{spec.trial}",
        )  # fmt: skip

    def update(self, progress: Progress) -> None:
        metric = "-" if progress.last_metric is None else f"{progress.last_metric:.4f}"
        self.bar.n = progress.global_step
        self.bar.set_postfix_str(
            f"{progress.submission_time:.1f}/{progress.budget_sec:.0f}s "
            f"{progress.metric_name} {metric} (target {progress.target:.4f})"
        )

    def close(self) -> None:
        self.bar.close()
