"""An experiment: submission × workloads × studies × trials, planned, then run by an executor.

Planning is pure (the same arguments give the same trials, hyperparameters and seeds), so a
rerun of the same command finds the same trial directories and skips the finished ones.
"""

from __future__ import annotations

import math
import multiprocessing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from algobench.errors import AlgobenchError, SearchSpaceError
from algobench.results import SUMMARY_FILE, is_finished, read_summary, write_json
from algobench.submission import load_submission
from algobench.trial import TrialSpec, run_trial
from algobench.tuning.halton import sample
from algobench.tuning.rulesets import get_ruleset
from algobench.tuning.search_space import load_search_space
from algobench.workloads import workload_class
from algobench.workloads.calibration import calibration_factor

SEARCH_SPACE_FILE = "tuning_search_space.json"
EXECUTORS = ("inprocess", "subprocess")


def derive_seed(*parts: int) -> int:
    """A 31-bit seed from integers, stable across platforms and Python versions."""
    return int(np.random.SeedSequence(list(parts)).generate_state(1)[0] & 0x7FFFFFFF)


def plan_trials(
    submission_path: str | Path,
    *,
    workloads: Sequence[str],
    ruleset: str = "external",
    num_trials: int = 5,
    num_studies: int = 3,
    experiment_dir: str | Path = "experiments",
    seed: int = 0,
    device: str = "cpu",
    search_space_path: str | Path | None = None,
    stop_on_target: bool = True,
    data_dir: str | Path | None = None,
    scale: str = "cpu",
) -> list[TrialSpec]:
    """The trials ``algobench submit`` runs, in order; bad input raises ``AlgobenchError``.

    Study k draws its hyperparameters from the Halton sequence seeded by (seed, k), so studies
    are independent repetitions of the tuning procedure, as the rules intend. Budgets are
    scaled by this machine's calibration factor per workload (1.0 when uncalibrated).
    """
    submission_path = Path(submission_path).resolve()
    submission = load_submission(submission_path, device=device)  # fail fast on a bad file
    for name in workloads:
        workload_class(name)  # fail fast on an unknown name
    rules = get_ruleset(ruleset)
    if num_studies < 1 or num_trials < 1:
        raise AlgobenchError("--studies and --trials must be at least 1")
    if rules.uses_search_space:
        space_path = Path(search_space_path or submission_path.parent / SEARCH_SPACE_FILE)
        if not space_path.exists():
            raise SearchSpaceError(
                f"external tuning needs a search space: {space_path} not found "
                f"(pass --search-space, or use --ruleset self)"
            )
        space = load_search_space(space_path)
        points_per_study = [sample(space, num_trials, derive_seed(seed, study)) for study in range(num_studies)]
    else:
        points_per_study = [[None] for _ in range(num_studies)]  # self-tuning: one trial per study
    experiment_dir = Path(experiment_dir).resolve()
    return [
        TrialSpec(
            submission_path=str(submission_path),
            submission_name=submission.name,
            workload_name=name,
            study=study,
            trial=index + 1,
            hyperparameters=point,
            seed=derive_seed(seed, study, index + 1),
            experiment_dir=str(experiment_dir),
            ruleset=ruleset,
            device=device,
            stop_on_target=stop_on_target,
            calibration_factor=calibration_factor(name),
            data_dir=None if data_dir is None else str(Path(data_dir).resolve()),
            scale=scale,
        )
        for name in workloads
        for study, points in enumerate(points_per_study)
        for index, point in enumerate(points)
    ]


def run_trials(
    specs: Sequence[TrialSpec],
    *,
    executor: str = "inprocess",
    trial_timeout_sec: float | None = None,
    retry_failed: bool = False,
    show_progress: bool = False,
    on_summary: Callable[[TrialSpec, dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Run every unfinished trial, one at a time; a failing trial never stops the others."""
    if executor not in EXECUTORS:
        raise AlgobenchError(f"unknown executor {executor!r}; choose one of {', '.join(EXECUTORS)}")
    summaries = []
    for spec in specs:
        if is_finished(spec.trial_dir(), retry_failed=retry_failed):
            summary = read_summary(spec.trial_dir())
        else:
            if retry_failed:
                (spec.trial_dir() / SUMMARY_FILE).unlink(missing_ok=True)
            if executor == "inprocess":
                summary = run_trial(spec, show_progress=show_progress)
            else:
                summary = run_trial_in_subprocess(spec, trial_timeout_sec, show_progress)
        summaries.append(summary)
        if on_summary:
            on_summary(spec, summary)
    return summaries


def run_trial_in_subprocess(spec: TrialSpec, timeout_sec: float | None, show_progress: bool = False) -> dict[str, Any]:
    """Run a trial in its own process, so a crash or a hang is that trial's failure alone."""
    context = multiprocessing.get_context("spawn")
    process = context.Process(target=run_trial, args=(spec,), kwargs={"show_progress": show_progress})
    process.start()
    process.join(timeout_sec)
    if process.is_alive():
        process.kill()
        process.join()
        return record_failure(spec, "timeout", f"trial process still running after {timeout_sec} s; killed")
    summary = read_summary(spec.trial_dir())
    if summary is None:
        return record_failure(
            spec, "failed", f"trial process exited with code {process.exitcode} before writing a summary"
        )
    return summary


def record_failure(spec: TrialSpec, status: str, error: str) -> dict[str, Any]:
    """A summary for a trial whose process died before writing one (crash, kill, hang)."""
    summary = {
        "submission": spec.submission_name,
        "workload": spec.workload_name,
        "study": spec.study,
        "trial": spec.trial,
        "status": status,
        "error": error,
        "time_to_target": None,
        "steps": None,
    }
    write_json(spec.trial_dir() / SUMMARY_FILE, summary)
    return summary


@dataclass(frozen=True)
class WorkloadResult:
    """A workload's line in the end-of-run table (contract 5's per-workload aggregation)."""

    workload: str
    time_to_target: float  # median over studies of the min over trials; inf if not reached
    best_metric: float | None
    target: float
    direction: str
    steps: int | None
    trials: int
    failed: int


def summarize_workloads(summaries: Sequence[dict[str, Any]]) -> list[WorkloadResult]:
    """Per workload: min over trials within a study, median over studies (inf takes part)."""
    by_workload: dict[str, list[dict[str, Any]]] = {}
    for summary in summaries:
        by_workload.setdefault(summary["workload"], []).append(summary)
    results = []
    for name, rows in by_workload.items():
        per_study: dict[int, float] = {}
        for row in rows:
            ttt = row.get("time_to_target")
            per_study[row["study"]] = min(per_study.get(row["study"], math.inf), math.inf if ttt is None else ttt)
        direction = next((r["metric_direction"] for r in rows if "metric_direction" in r), "max")
        metrics = [r["best_validation_metric"] for r in rows if r.get("best_validation_metric") is not None]
        reached = [r for r in rows if r.get("time_to_target") is not None]
        results.append(
            WorkloadResult(
                workload=name,
                time_to_target=float(np.median(list(per_study.values()))),
                best_metric=(max if direction == "max" else min)(metrics) if metrics else None,
                target=next((r["validation_target_value"] for r in rows if "validation_target_value" in r), math.nan),
                direction=direction,
                steps=min((r["steps"] for r in reached), default=None),
                trials=len(rows),
                failed=sum(r["status"] in ("failed", "timeout") for r in rows),
            )
        )
    return results


def format_table(results: Sequence[WorkloadResult], experiment_dir: str | Path) -> str:
    """The table ``algobench submit`` prints at the end."""
    header = f"{'workload':<24} {'time to target':<38} {'steps':>7} {'trials':>7} {'failed':>7}"
    lines = [header, "-" * len(header)]
    for r in results:
        if math.isfinite(r.time_to_target):
            ttt = f"{r.time_to_target:.1f} s"
        else:
            best = "none" if r.best_metric is None else f"{r.best_metric:.4f}"
            ttt = f"not reached (best {best}, target {r.target:.4f})"
        steps = "-" if r.steps is None else str(r.steps)
        lines.append(f"{r.workload:<24} {ttt:<38} {steps:>7} {r.trials:>7} {r.failed:>7}")
    lines.append(f"results: {Path(experiment_dir).resolve()}")
    return "\n".join(lines)
