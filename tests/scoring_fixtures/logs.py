"""Write small experiment directories, in algobench's and AlgoPerf's layouts, for the scoring tests.

Each helper writes exactly what the real writers write (AlgoPerf's column names, a newline after
every row, ``summary.json`` fields of algobench's runner), so the tests read logs the way users'
logs will be read.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from algobench.scoring import Protocol, TrialSet

HEADER = (
    "global_step,preemption_count,score,total_duration,accumulated_submission_time,"
    "accumulated_eval_time,accumulated_logging_time,examples_seen,process_cpu_time,{metric}"
)


def _cell(value: float) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else repr(float(value))


def eval_csv(evals: Sequence[tuple[float, float]], metric: str = "validation/accuracy") -> str:
    """An eval_measurements.csv: one row per (submission time, metric value), each ending in a newline."""
    lines = [HEADER.format(metric=metric)]
    for step, (time, value) in enumerate(evals, start=1):
        clocks = f"{_cell(time)},{_cell(time + 1)},{_cell(time)},1.0,0.0"
        lines.append(f"{step * 10},0,{clocks},{step * 80},{_cell(time)},{_cell(value)}")
    return "\n".join(lines) + "\n"


def write_trial(
    root: Path,
    submission: str,
    workload: str,
    study: int,
    trial: int,
    evals: Sequence[tuple[float, float]],
    *,
    metric: str = "accuracy",
    direction: str = "max",
    target: float = 0.9,
    budget: float = 100.0,
    base: str | None = None,
    ruleset: str = "external",
    calibration: float = 1.0,
    summary: bool = True,
    summary_extra: dict[str, Any] | None = None,
    csv_text: str | None = None,
    framework: str = "pytorch",
) -> Path:
    """One algobench trial directory with eval_measurements.csv, hparams.json and summary.json."""
    path = root / submission / f"study_{study}" / f"{workload}_{framework}" / f"trial_{trial}"
    path.mkdir(parents=True, exist_ok=True)
    text = csv_text if csv_text is not None else eval_csv(evals, f"validation/{metric}")
    (path / "eval_measurements.csv").write_text(text)
    (path / "hparams.json").write_text(json.dumps({"learning_rate": 0.001 * trial}))
    if summary:
        reached = [t for t, v in evals if v is not None and not math.isnan(v) and t <= budget
                   and (v >= target if direction == "max" else v <= target)]  # fmt: skip
        record = {
            "status": "target_reached" if reached else "out_of_time",
            "error": None,
            "time_to_target": reached[0] if reached else None,
            "steps": 10 * len(evals),
            "workload": workload,
            "base_workload": base or workload,
            "variant": None if base in (None, workload) else workload[len(base) + 1 :],
            "target_metric_name": metric,
            "metric_direction": direction,
            "validation_target_value": target,
            "test_target_value": target,
            "max_allowed_runtime_sec": budget,
            "calibration_factor": calibration,
            "machine": "testhost (x86_64, 2 cpus)",
            "ruleset": ruleset,
            **(summary_extra or {}),
        }
        (path / "summary.json").write_text(json.dumps(record))
    return path


def write_algoperf_trial(
    root: Path,
    submission: str,
    workload: str,
    study: int,
    trial: int,
    evals: Sequence[tuple[float, float]],
    metric: str,
    framework: str = "jax",
    ruleset: str | None = None,
) -> Path:
    """One AlgoPerf trial directory: eval_measurements.csv, hparams.json (and flags_0.json)."""
    path = root / submission / f"study_{study}" / f"{workload}_{framework}" / f"trial_{trial}"
    path.mkdir(parents=True, exist_ok=True)
    (path / "eval_measurements.csv").write_text(eval_csv(evals, f"validation/{metric}"))
    (path / "hparams.json").write_text(json.dumps({"learning_rate": 0.01}))
    if ruleset is not None:
        (path / "flags_0.json").write_text(json.dumps({"tuning_ruleset": ruleset, "framework": framework}))
    return path


def trial_set_from_first_hits(rows: pd.DataFrame, protocol: Protocol) -> TrialSet:
    """Minimal logs that first reach the target at ``reached_eval_index`` / ``time_to_target``.

    ``rows``: one row per trial with submission, study, workload, trial, ruleset, has_eval_log,
    reached_eval_index (-1: never) and time_to_target. Earlier evaluations come at earlier times
    and miss the target (value 0 against a target of 1), so the first hit is exactly as given.
    """
    rows = rows.reset_index(drop=True)
    specs = protocol.workloads
    trials = pd.DataFrame(
        {
            "submission": rows["submission"],
            "study": rows["study"],
            "workload": rows["workload"],
            "base_workload": [specs[w].base if w in specs else w for w in rows["workload"]],
            "is_variant": [specs[w].is_variant if w in specs else False for w in rows["workload"]],
            "trial": rows["trial"],
            "framework": "jax",
            "path": [f"/logs/{r.submission}/{r.study}/{r.workload}/{r.trial}" for r in rows.itertuples()],
            "ruleset": rows["ruleset"],
            "metric": "validation/x",
            "direction": "max",
            "target": 1.0,
            "budget_sec": [
                specs[w].budget_sec * protocol.budget_multiplier(r) if w in specs else math.inf
                for w, r in zip(rows["workload"], rows["ruleset"], strict=True)
            ],
            "calibration_factor": 1.0,
            "machine": "",
            "status": "",
            "summary_time_to_target": math.nan,
            "has_eval_log": rows["has_eval_log"].astype(bool),
            "num_evals": 0,
            "hparams": "",
        }
    )
    if protocol.rules.missing_eval_log == "drop_trial":
        trials = trials.loc[trials["has_eval_log"]].reset_index(drop=True)
        rows = rows.loc[rows["has_eval_log"].astype(bool)].reset_index(drop=True)
    trials.index.name = "trial_id"
    # trial i reaching at index k gets k + 1 evaluations at times t/(k+1), 2t/(k+1), ..., t
    k = rows["reached_eval_index"].to_numpy(dtype=np.int64)
    t = rows["time_to_target"].to_numpy(dtype=float)
    counts = np.where(k >= 0, k + 1, 0)
    ids = np.repeat(np.arange(len(rows)), counts)
    index = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    evals = pd.DataFrame(
        {
            "trial_id": ids,
            "eval_index": index,
            "time": t[ids] * (index + 1) / counts[ids],
            "value": (index == k[ids]).astype(float),
            "global_step": index.astype(float),
        }
    )
    return TrialSet(trials=trials, evals=evals)
