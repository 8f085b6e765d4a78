"""The end-of-run table of ``algobench submit``: contract 5's aggregation, computed by scoring."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any

from algobench.scoring.closing_table import WorkloadResult, format_table, summarize_workloads


def summary(
    workload: str,
    study: int,
    trial: int,
    status: str,
    time_to_target: float | None,
    best: float | None,
    steps: int | None,
    target: float,
    direction: str = "max",
) -> dict[str, Any]:
    """A summary.json record with the fields the table reads."""
    return {
        "workload": workload, "study": study, "trial": trial, "status": status,
        "time_to_target": time_to_target, "best_validation_metric": best, "validation_target_value": target,
        "metric_direction": direction, "steps": steps,
    }  # fmt: skip


def failure(workload: str, study: int, trial: int, status: str) -> dict[str, Any]:
    """What the parent process writes for a trial whose process died (no metrics, no target)."""
    return {"workload": workload, "study": study, "trial": trial, "status": status, "error": "killed",
            "time_to_target": None, "steps": None}  # fmt: skip


SUMMARIES = [
    # digits: studies 9.0 (the failed trial's 3.0 does not count), 20.0, inf -> median 20.0
    summary("digits", 0, 1, "target_reached", 12.5, 0.93, 120, 0.9),
    summary("digits", 0, 2, "target_reached", 9.0, 0.95, 200, 0.9),
    summary("digits", 0, 3, "failed", 3.0, 0.99, 10, 0.9),
    summary("digits", 1, 1, "target_reached", 20.0, 0.91, 150, 0.9),
    summary("digits", 1, 2, "out_of_time", None, 0.85, 300, 0.9),
    summary("digits", 1, 3, "target_reached", 31.0, 0.92, 90, 0.9),
    summary("digits", 2, 1, "out_of_time", None, 0.88, 300, 0.9),
    summary("digits", 2, 2, "out_of_time", None, 0.87, 300, 0.9),
    failure("digits", 2, 3, "timeout"),
    # mnist1d: studies 40.0 and inf -> inf; best 0.81 (the failed trial's 0.85 does not count)
    summary("mnist1d", 0, 1, "target_reached", 40.0, 0.81, 400, 0.8),
    summary("mnist1d", 0, 2, "out_of_time", None, 0.7, 500, 0.8),
    summary("mnist1d", 0, 3, "out_of_time", None, 0.6, 500, 0.8),
    summary("mnist1d", 1, 1, "ok", None, 0.79, 500, 0.8),
    summary("mnist1d", 1, 2, "diverged", None, None, 20, 0.8),
    summary("mnist1d", 1, 3, "failed", 2.0, 0.85, 5, 0.8),
    # lm (a loss): studies 3.0 and 4.0 (the invalid trial's 1.0 does not count) -> median 3.5
    summary("lm", 0, 1, "target_reached", 3.0, 3.4, 30, 3.5, "min"),
    summary("lm", 0, 2, "target_reached", 5.0, 3.45, 50, 3.5, "min"),
    summary("lm", 1, 1, "target_reached", 4.0, 3.3, 40, 3.5, "min"),
    summary("lm", 1, 2, "invalid", 1.0, 2.0, 10, 3.5, "min"),
]


def test_aggregation_is_contract_5() -> None:
    assert summarize_workloads(SUMMARIES) == [
        WorkloadResult("digits", 20.0, 0.95, 0.9, "max", 90, trials=9, failed=2, studies=3, studies_reached=2),
        WorkloadResult("mnist1d", math.inf, 0.81, 0.8, "max", 400, trials=6, failed=1, studies=2, studies_reached=1),
        WorkloadResult("lm", 3.5, 3.3, 3.5, "min", 30, trials=4, failed=1, invalid=1, studies=2, studies_reached=2),
    ]


def test_text_format(tmp_path: Path) -> None:
    text = format_table(summarize_workloads(SUMMARIES), tmp_path)
    assert text.split("\n") == [
        "workload                 time to target                           steps  trials  failed",
        "---------------------------------------------------------------------------------------",
        "digits                   20.0 s                                      90       9       2",
        "mnist1d                  median not reached (1 of 2 studies did)     400       6       1",
        "lm                       3.5 s                                       30       4       1",
        "failed includes invalid trials (clock or results not trusted; never scored): lm 1",
        f"results: {tmp_path.resolve()}",
    ]


def test_only_failures_and_an_even_number_of_studies() -> None:
    rows = [failure("w", 0, 1, "failed"), failure("w", 1, 1, "timeout")]
    (result,) = summarize_workloads(rows)
    assert (result.time_to_target, result.best_metric, result.steps, result.trials, result.failed) == (
        math.inf,
        None,
        None,
        2,
        2,
    )
    assert (result.studies, result.studies_reached) == (2, 0)
    assert math.isnan(result.target)  # a failure record carries no target
    assert format_table([result], "/x").split("\n")[2] == (
        "w                        not reached (best none, target nan)          -       2       2"
    )
    # two studies, both reached: numpy's median averages the middle two
    even = [
        summary("v", 0, 1, "target_reached", 10.0, 0.9, 1, 0.9),
        summary("v", 1, 1, "target_reached", 15.0, 0.9, 2, 0.9),
    ]
    assert summarize_workloads(even)[0].time_to_target == 12.5


def test_does_not_import_torch() -> None:
    code = "import algobench.scoring.closing_table, sys; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
