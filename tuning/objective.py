"""The number a model-based tuner minimises: a finite surrogate of a trial's time-to-target.

Time-to-target is infinite for a trial that never reaches the target, which a sampler cannot
learn from (every miss looks alike). The surrogate keeps the order of reached times and ranks the
misses by how close they came:

    y = ln(t)                          if the validation target was reached at submission time t
    y = ln(B) + ln(1 + min(g, G))      otherwise,

with B the trial's budget in submission seconds, g the relative gap of the best validation metric
seen so far to the target, (target - best) / |target| for a metric that rises (accuracy) and
(best - target) / |target| for one that falls (loss, error rate), as the workload's direction says,
and G = ``GAP_CAP`` (also the gap of a trial with no finite metric: diverged, or failed before its
first evaluation). Every reached time is below ln(B) (the runner stops at the budget) and every
miss is at or above it, so a reach always ranks before a miss. Lower is better.

The same formula over the evaluations so far is a trial's intermediate value at each evaluation's
``global_step`` (what Optuna's pruners compare); it never rises as a trial goes on.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from algobench.layout import Direction

GAP_CAP = 100.0  # a gap of 100x the target's size counts as "no usable metric"
MIN_SECONDS = 1e-6  # ln(0) guard: a target reached at the first evaluation of a trivially fast run


def surrogate(
    best_metric: float | None, target: float, direction: Direction, budget_sec: float, time_to_target: float | None
) -> float:
    """The surrogate of one trial (see the module docstring): finite for every input."""
    if time_to_target is not None and math.isfinite(time_to_target):
        return math.log(max(float(time_to_target), MIN_SECONDS))
    return math.log(max(float(budget_sec), MIN_SECONDS)) + math.log1p(relative_gap(best_metric, target, direction))


def relative_gap(best_metric: float | None, target: float, direction: Direction) -> float:
    """How far ``best_metric`` is from ``target``, as a share of |target|, in [0, GAP_CAP]."""
    if best_metric is None or not math.isfinite(best_metric):
        return GAP_CAP
    short = (target - best_metric) if direction is Direction.MAX else (best_metric - target)
    scale = abs(target) if target != 0 else 1.0
    return min(max(short / scale, 0.0), GAP_CAP)


def running_values(
    rows: Iterable[Mapping[str, float]], metric_key: str, target: float, direction: Direction, budget_sec: float
) -> list[tuple[int, float]]:
    """(global_step, surrogate so far) at each evaluation of ``rows`` (``eval_measurements.csv``):
    the best metric up to that step, and the submission time of the first evaluation that reached
    the target, if one did."""
    values: list[tuple[int, float]] = []
    best: float | None = None
    reached_at: float | None = None
    for row in rows:
        value = row.get(metric_key, math.nan)
        if value is not None and math.isfinite(value):
            best = value if best is None else (value if direction.better(value, best) else best)
            if reached_at is None and direction.reached(value, target):
                reached_at = float(row["score"])
        values.append((int(row["global_step"]), surrogate(best, target, direction, budget_sec, reached_at)))
    return values


def trial_value(summary: Mapping[str, Any]) -> float | None:
    """The surrogate of a finished trial from its ``summary.json``; None when the summary cannot
    say (a process that died before the runner wrote its target and budget: a crash, a timeout),
    or when its results cannot be trusted (``invalid``)."""
    if summary.get("status") == "invalid" or summary.get("validation_target_value") is None:
        return None
    if summary.get("max_allowed_runtime_sec") is None:
        return None
    direction = Direction(summary.get("metric_direction") or "max")
    target = float(summary["validation_target_value"])
    budget = float(summary["max_allowed_runtime_sec"])
    return surrogate(summary.get("best_validation_metric"), target, direction, budget, summary.get("time_to_target"))
