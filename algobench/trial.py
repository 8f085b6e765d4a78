"""One trial, from a picklable spec to a trial directory (DESIGN.md contract 4).

``run_trial`` is the single entry point every executor calls (in-process, child process,
submitit/SLURM, Ray): it skips a finished trial, resumes from a checkpoint, and leaves a
``summary.json`` behind whatever the submission does. What the submission does wrong is that
trial's recorded failure; what goes wrong in algobench itself raises ``InfrastructureError``
after writing ``error.txt`` and no summary, so that a rerun retries the trial.
"""

from __future__ import annotations

import contextlib
import os
import platform
import socket
import subprocess
import sys
import traceback
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

import algobench
from algobench.algoperf_compat import import_root, single_process_group
from algobench.clock import check_clock
from algobench.errors import AlgobenchError, SubmissionError
from algobench.executors.base import InfrastructureError
from algobench.fork import FORK_FILE, complete_fork_copy, pending_fork
from algobench.hyperparameters import ChangePoint, Hyperparameters
from algobench.layout import ERROR_FILE, HPARAMS_FILE, META_FILE, SUMMARY_FILE, TrialStatus
from algobench.results import read_summary, write_json
from algobench.runner import Progress, RunConfig, TrialRunner, Verdict
from algobench.submission import load_submission, one_line
from algobench.trial_spec import TrialSpec
from algobench.workload import Workload

HYPERPARAMETER_TYPES = (int, float, str, bool, type(None))


def run_config(spec: TrialSpec, workload: Workload) -> RunConfig:
    """The budget is the workload's, scaled by the machine's calibration, the ruleset and the
    procedure's own share (``budget_scale``)."""
    budget = workload.max_allowed_runtime_sec * spec.calibration_factor * spec.budget_multiplier * spec.budget_scale
    return RunConfig(
        budget_sec=budget,
        eval_period_sec=workload.eval_period_time_sec * spec.calibration_factor,
        seed=spec.seed,
        eval_every_steps=spec.eval_every_steps,
        max_steps=spec.max_steps,
        stop_on_target=spec.stop_on_target,
        schedule=tuple(spec.schedule),
        clock=check_clock(spec.clock, "trial spec clock"),
    )


def make_workload(spec: TrialSpec) -> Workload:
    if spec.make_workload is None:
        raise InfrastructureError(f"trial spec for {spec.trial_dir()} has no workload factory (make_workload)")
    workload = spec.make_workload(spec.workload_name, device=spec.device, data_dir=spec.data_dir, scale=spec.scale)
    if spec.step_hint is not None:
        workload.step_hint = spec.step_hint  # this trial's alone: the class keeps its own
    if spec.tuning_split:
        if not hasattr(workload, "hold_out_tuning_split"):
            raise AlgobenchError(
                f"workload {spec.workload_name} cannot hold out a tuning split (its data is not in memory as tensors)"
            )
        workload.hold_out_tuning_split(spec.tuning_split)
    return workload


def run_trial(
    spec: TrialSpec,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    on_eval: Callable[[dict[str, Any]], None] | None = None,
    on_config: Callable[[RunConfig], None] | None = None,
    on_start: Callable[[float], None] | None = None,
    phase: Any = None,
) -> dict[str, Any]:
    """Run (or resume, or skip) one trial and return its summary. Every outcome the submission
    causes ends in a written summary; a failure of algobench's own raises ``InfrastructureError``.

    With ``spec.until_step`` the trial stops there, checkpointed, and the returned summary has
    status None (``unfinished``): nothing final is written. ``spec.import_root`` is first on
    ``sys.path`` for the whole trial; an AlgoPerf-form submission runs inside a one-process
    ``torch.distributed`` group, as under AlgoPerf's PyTorch runner.
    """
    with import_root(spec.import_root), contextlib.ExitStack() as trial_scope:
        return _run_trial(
            spec, trial_scope, on_progress=on_progress, on_eval=on_eval, on_config=on_config,
            on_start=on_start, phase=phase,
        )  # fmt: skip


def _run_trial(
    spec: TrialSpec,
    trial_scope: contextlib.ExitStack,
    *,
    on_progress: Callable[[Progress], None] | None,
    on_eval: Callable[[dict[str, Any]], None] | None,
    on_config: Callable[[RunConfig], None] | None,
    on_start: Callable[[float], None] | None,
    phase: Any,
) -> dict[str, Any]:
    trial_dir = spec.trial_dir()
    finished = read_summary(trial_dir)
    if finished is not None:
        return finished
    try:
        trial_dir.mkdir(parents=True, exist_ok=True)
        if spec.threads and torch.get_num_threads() != spec.threads:
            torch.set_num_threads(spec.threads)
        workload = make_workload(spec)
        verdict = Verdict(workload)  # before any of the submission's code runs, its import included
        config = run_config(spec, workload)
        if on_config is not None:
            on_config(config)
        write_json(trial_dir / META_FILE, meta_data(spec))
    except Exception as error:
        raise _infrastructure(spec, "preparing the trial", error) from None
    bad = {
        k: type(v).__name__ for k, v in (spec.hyperparameters or {}).items() if not isinstance(v, HYPERPARAMETER_TYPES)
    }
    if bad:
        return _finish(
            spec, failed_summary(spec, verdict, workload, config, f"hyperparameters of the wrong type: {bad}")
        )
    try:
        with _submission_phase(phase):
            submission = load_submission(spec.submission_path, device=spec.device)
    except SubmissionError as error:  # the file itself is broken: the user's to fix, not a result
        _write_error(spec, error)
        raise
    if submission.form == "algoperf":
        try:
            trial_scope.enter_context(single_process_group())
        except Exception as error:
            raise _infrastructure(spec, "starting its one-process torch.distributed group", error) from None
    try:
        runner = TrialRunner(
            workload, submission, Hyperparameters(spec.hyperparameters), config, trial_dir,
            on_progress=on_progress, on_eval=on_eval, phase=phase, verdict=verdict,
        )  # fmt: skip
    except Exception as error:  # get_batch_size, init_optimizer_state, the model: the submission's
        where = traceback.extract_tb(error.__traceback__)
        line = next((f"{f.filename}:{f.lineno}" for f in reversed(where) if f.filename == str(submission.path)), None)
        cause = one_line(error) + (f" ({line})" if line else "")
        _write_error(spec, error)
        return _finish(spec, failed_summary(spec, verdict, workload, config, f"setting up the trial raised {cause}"))
    try:
        complete_fork_copy(trial_dir)
        runner.resume()
        fork = pending_fork(trial_dir)
    except Exception as error:
        raise _infrastructure(spec, "resuming the trial", error) from None
    if fork is not None:
        if runner.state.global_step != fork["donor_step"]:
            raise _infrastructure(
                spec, "applying its fork",
                RuntimeError(f"the copied checkpoint is at step {runner.state.global_step}, the fork was decided at "
                             f"step {fork['donor_step']} of {fork['donor']}"),
            )  # fmt: skip
        runner.state.status, runner.state.error = None, None
        try:
            reseed = None if fork["reseed"] is None else int(fork["reseed"])
            runner.set_hyperparameters(dict(fork["changes"]), reseed=reseed)
        except SubmissionError as error:
            return _finish(spec, failed_summary(spec, verdict, workload, config, str(error), phase="fork"))
        runner.checkpoint()
        write_schedule(trial_dir, runner.state.schedule)
        (trial_dir / FORK_FILE).unlink()
    try:
        write_schedule(trial_dir, runner.state.schedule)
        if on_start is not None:
            on_start(runner.state.clocks.wall)  # the watcher's reference for the trial's own clock
        runner.run(until_step=spec.until_step)
        write_schedule(trial_dir, runner.state.schedule)
    except Exception as error:
        raise _infrastructure(spec, "running the trial", error) from None
    summary = summarize(spec, workload, config, runner)
    if runner.state.status is None:
        return summary  # a segment ended (until_step): the trial goes on later
    if runner.state.error:
        (trial_dir / ERROR_FILE).write_text(runner.error_traceback or runner.state.error + "\n")
    return _finish(spec, summary)


def _finish(spec: TrialSpec, summary: dict[str, Any]) -> dict[str, Any]:
    write_json(spec.trial_dir() / SUMMARY_FILE, summary)
    return summary


class _submission_phase:
    """Marks loading the submission file (its top-level code) as the submission's own."""

    def __init__(self, phase: Any) -> None:
        self.phase = phase

    def __enter__(self) -> None:
        if self.phase is not None:
            self.phase.value = 1

    def __exit__(self, *exc_info: object) -> None:
        if self.phase is not None:
            self.phase.value = 0


def _infrastructure(spec: TrialSpec, doing: str, error: BaseException) -> InfrastructureError:
    """algobench's own failure: error.txt, no summary (a rerun retries), one line for the user."""
    _write_error(spec, error)
    return InfrastructureError(f"{spec.trial_dir()}: {doing} failed in algobench: {type(error).__name__}: {error}")


def _write_error(spec: TrialSpec, error: BaseException) -> None:
    with contextlib.suppress(OSError):  # the directory itself may have failed; the error still reaches the user
        (spec.trial_dir() / ERROR_FILE).write_text("".join(traceback.format_exception(error)))


def write_schedule(trial_dir: Path, schedule: list[ChangePoint]) -> None:
    """``hparams.json``: the schedule actually used, plus the flat first point for AlgoPerf's readers."""
    first = dict(schedule[0].hyperparameters) if schedule else {}
    write_json(trial_dir / HPARAMS_FILE, {**first, "schedule": [point.to_json() for point in schedule]})


def read_schedule(trial_dir: Path) -> list[ChangePoint]:
    from algobench.results import read_json

    raw = read_json(trial_dir / HPARAMS_FILE) or {}
    return [ChangePoint.from_json(entry) for entry in raw.get("schedule", [])]


def _base_summary(spec: TrialSpec, verdict: Verdict, workload: Workload, config: RunConfig) -> dict[str, Any]:
    return {
        "submission": spec.submission_name,
        "workload": workload.name,
        "base_workload": workload.base_name,
        "variant": workload.variant,
        "study": spec.study,
        "trial": spec.trial,
        "seed": spec.seed,
        "ruleset": spec.ruleset,
        "target_metric_name": verdict.metric_name,
        "metric_direction": str(verdict.direction),
        "validation_target_value": verdict.target,
        "test_target_value": verdict.test_target,
        "max_allowed_runtime_sec": config.budget_sec,
        "clock": config.clock,
        "calibration_factor": spec.calibration_factor,
        "threads": spec.threads,
        "machine": machine_name(),
        "trial_dir": str(spec.trial_dir()),
    }


def summarize(spec: TrialSpec, workload: Workload, config: RunConfig, runner: TrialRunner) -> dict[str, Any]:
    state, verdict = runner.state, runner.verdict
    return {
        **_base_summary(spec, verdict, workload, config),
        "status": state.status,
        "error": state.error,
        "time_to_target": state.time_to_target,
        "steps": state.global_step,
        "examples_seen": state.examples_seen,
        "submission_time": state.clocks.submission,
        "eval_time": state.clocks.eval,
        "logging_time": state.clocks.logging,
        "process_cpu_time": state.clocks.process_cpu,
        "total_duration": state.clocks.wall,
        "preemption_count": state.preemption_count,
        "num_evals": len(state.eval_history),
        "best_validation_metric": verdict.direction.best(row.get(verdict.metric_key) for row in state.eval_history),
        "batch_size": runner.batch_size,
        "schedule_changes": len(state.schedule) - 1,
        "notes": list(state.notes),
    }


def failed_summary(
    spec: TrialSpec, verdict: Verdict, workload: Workload, config: RunConfig, error: str, phase: str = "setup"
) -> dict[str, Any]:
    """A trial that never got going (bad submission file, optimizer that would not build)."""
    return {
        **_base_summary(spec, verdict, workload, config),
        "status": str(TrialStatus.FAILED),
        "error": error,
        "error_phase": phase,
        "time_to_target": None,
        "steps": 0,
        "best_validation_metric": None,
    }


def record_failure(spec: TrialSpec, status: TrialStatus | str, error: str) -> dict[str, Any]:
    """A summary for a trial whose process died before writing one (crash, kill, hang), written
    by whoever watched it (the parent process, a SLURM watcher), with the cause also in error.txt."""
    summary = {
        "submission": spec.submission_name,
        "workload": spec.workload_name,
        "study": spec.study,
        "trial": spec.trial,
        "seed": spec.seed,
        "ruleset": spec.ruleset,
        "clock": spec.clock,
        "threads": spec.threads,
        "status": str(TrialStatus(status)),
        "error": error,
        "time_to_target": None,
        "steps": None,
        "best_validation_metric": None,
        "trial_dir": str(spec.trial_dir()),
    }
    spec.trial_dir().mkdir(parents=True, exist_ok=True)
    error_file = spec.trial_dir() / ERROR_FILE
    if not error_file.exists():
        error_file.write_text(error + "\n")
    return _finish(spec, summary)


def machine_name() -> str:
    return f"{socket.gethostname()} ({platform.processor() or platform.machine()}, {os.cpu_count()} cpus)"


def meta_data(spec: TrialSpec) -> dict[str, Any]:
    """Versions, hardware, seeds, command line and git revision: what made this trial."""
    fields = asdict(spec)
    fields["make_workload"] = getattr(spec.make_workload, "__qualname__", None)
    fields["schedule"] = [point.to_json() for point in spec.schedule]
    return {
        "algobench_version": algobench.__version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "machine": machine_name(),
        "device": spec.device,
        "cuda_device": torch.cuda.get_device_name() if spec.device.startswith("cuda") else None,
        "torch_threads": torch.get_num_threads(),
        "clock": spec.clock,
        "import_root": spec.import_root,
        "cpus_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "command_line": sys.argv,
        "git_revision": _git_revision(Path(spec.submission_path).parent),
        "spec": fields,
    }


def _git_revision(where: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None
