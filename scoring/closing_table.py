"""The table ``algobench submit`` prints when its trials are done: one line per workload.

Its time-to-target is contract 5's aggregation (min over a study's trials, median over studies,
infinity included), computed by the same functions as ``algobench score`` (``study_times`` and
``submission_times`` under the written rules), from the trials' ``summary.json`` records rather
than their logs: so the formula is written once. A failed, timed-out or invalid trial never
counts as reaching its target (``integrity.UNSCORED_STATUSES``), whatever its summary says.

Torch-free: the CLI prints this table after its trials have run in other processes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from algobench.layout import Direction, TrialStatus
from algobench.scoring.integrity import is_unscored
from algobench.scoring.protocols import RULES
from algobench.scoring.time_to_target import study_times, submission_times

_RULES = RULES["docs"]  # AlgoPerf's written rule: a study's time is its fastest trial's


@dataclass(frozen=True)
class WorkloadResult:
    """A workload's line in the end-of-run table (contract 5's per-workload aggregation)."""

    workload: str
    time_to_target: float  # median over studies of the min over trials; inf if not reached
    best_metric: float | None  # best validation metric among the trials that count
    target: float
    direction: str
    steps: int | None  # fewest steps among the trials that reached the target
    trials: int
    failed: int  # failed, timed out or invalid: never counted
    invalid: int = 0  # of which invalid (the runner could not trust the trial's clock or results)
    studies: int = 1
    studies_reached: int = 0  # studies with a counted trial that reached the target


def _time(summary: dict[str, Any]) -> float:
    ttt = summary.get("time_to_target")
    return math.inf if ttt is None or is_unscored(summary.get("status")) else float(ttt)


def _direction(rows: Sequence[dict[str, Any]]) -> Direction:
    value = next((r["metric_direction"] for r in rows if "metric_direction" in r), "max")
    return Direction(value) if value in {d.value for d in Direction} else Direction.MAX


def workload_times(summaries: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Per workload, the median over studies of the best trial's time (scoring's own functions)."""
    table = pd.DataFrame(
        {
            "submission": "",  # the trials of one ``algobench submit``: one submission
            "workload": [s["workload"] for s in summaries],
            "study": [s["study"] for s in summaries],
            "trial": [s.get("trial", 0) for s in summaries],
            "path": "",
            "time_to_target": [_time(s) for s in summaries],
        }
    )
    table["reached_eval_index"] = table["time_to_target"].map(lambda t: 0 if math.isfinite(t) else -1)
    times = submission_times(study_times(table, _RULES))
    return {str(w): float(t) for w, t in times.iloc[0].items()} if not times.empty else {}


def summarize_workloads(summaries: Sequence[dict[str, Any]]) -> list[WorkloadResult]:
    """One ``WorkloadResult`` per workload, in the order the workloads first appear."""
    by_workload: dict[str, list[dict[str, Any]]] = {}
    for summary in summaries:
        by_workload.setdefault(summary["workload"], []).append(summary)
    times = workload_times(summaries)
    results = []
    for name, rows in by_workload.items():
        direction = _direction(rows)
        counted = [r for r in rows if not is_unscored(r.get("status"))]
        reached = [r for r in counted if r.get("time_to_target") is not None and r.get("steps") is not None]
        results.append(
            WorkloadResult(
                workload=name,
                time_to_target=times[name],
                best_metric=direction.best(r.get("best_validation_metric") for r in counted),
                target=next((r["validation_target_value"] for r in rows if "validation_target_value" in r), math.nan),
                direction=direction.value,
                steps=min((r["steps"] for r in reached), default=None),
                trials=len(rows),
                failed=len(rows) - len(counted),
                invalid=sum(TrialStatus.parse(r.get("status")) is TrialStatus.INVALID for r in rows),
                studies=len({r["study"] for r in rows}),
                studies_reached=len({r["study"] for r in reached}),
            )
        )
    return results


def format_table(results: Sequence[WorkloadResult], experiment_dir: str | Path) -> str:
    """The table ``algobench submit`` prints at the end (a note under it when trials were invalid)."""
    header = f"{'workload':<24} {'time to target':<38} {'steps':>7} {'trials':>7} {'failed':>7}"
    lines = [header, "-" * len(header)]
    for r in results:
        if math.isfinite(r.time_to_target):
            ttt = f"{r.time_to_target:.1f} s"
        elif r.studies_reached:  # the best metric is past the target: say why it does not count
            ttt = f"median not reached ({r.studies_reached} of {r.studies} studies did)"
        else:
            best = "none" if r.best_metric is None else f"{r.best_metric:.4f}"
            ttt = f"not reached (best {best}, target {r.target:.4f})"
        steps = "-" if r.steps is None else str(r.steps)
        lines.append(f"{r.workload:<24} {ttt:<38} {steps:>7} {r.trials:>7} {r.failed:>7}")
    invalid = [f"{r.workload} {r.invalid}" for r in results if r.invalid]
    if invalid:
        lines.append(
            f"failed includes invalid trials (clock or results not trusted; never scored): {', '.join(invalid)}"
        )
    lines.append(f"results: {Path(experiment_dir).resolve()}")
    return "\n".join(lines)
