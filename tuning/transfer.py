"""The transfer protocol (``--ruleset transfer``, version ``transfer-v1``): a submission's own
search space, with its learning rates moved to this suite's scale before the studies run.

Why: AlgoPerf's external tuning runs each submission's own points. Points tuned for AlgoPerf's
models, thousands of times larger, do not transfer to this suite's, so external tuning here ranks
whose points happen to transfer rather than which algorithm trains faster. Under this protocol
every submission gets the same extra budget, spent by the same fixed tuner, to find one factor per
workload for its learning rates. Its algorithm and every other hyperparameter are untouched.

The procedure, per workload (fixed, so that every submission gets the same):

1. The reference point: the first point of a list search space; the centre of a range one
   (geometric centre of a log range, midpoint of a linear one, middle feasible point of a choice).
2. Rescale trials: the reference point with each learning rate (a hyperparameter named
   ``learning_rate`` or ``lr``, or ending in ``_learning_rate`` or ``_lr``) times 10**f, all on one
   seed so that the factors are compared on the same data order and initialisation: first f in
   (-1, 0, 1), then f - 0.5 and f + 0.5 around the best of those. Five trials; f stays in ±1.5.
3. The factor is 10**f of the rescale trial with the lowest time-to-target surrogate
   (``tuning/objective.py``); ties go to the f nearest 0. A trial without a result (failed, timed
   out) ranks last; when none has one, the factor is 1.
4. The studies run as under external tuning, each point's learning rates times that factor.

Warm-up and decay lengths get no factor: AlgoPerf's submissions give them as fractions of
``step_hint``, which algobench defines as AlgoPerf does (the reference steps in the budget).

The rescale trials are ordinary trials in
``<experiment>/tuning/<workload>/transfer-v1/<submission>/study_0/<workload>_pytorch/trial_<j>``,
``j`` the position of f on the grid -1.5, -1, ..., 1.5 (scoring skips ``tuning`` folders, so
they are tuning cost, not scored trials), beside ``factor.json``: the factor and every candidate.
They are resumable like every trial: a rerun reuses finished ones and so finds the same factor.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from algobench import layout
from algobench.errors import AlgobenchError
from algobench.results import write_json
from algobench.seeds import derive_seed
from algobench.trial_spec import TrialSpec
from algobench.tuning.base import Summary
from algobench.tuning.objective import trial_value
from algobench.tuning.search_space import Choice, Range, SearchSpace

PROTOCOL = "transfer-v1"
GRID = (-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5)  # log10 factors; trial j runs GRID[j - 1]
FIRST_ROUND = (-1.0, 0.0, 1.0)
SECOND_ROUND_STEP = 0.5
RESCALE_TRIALS = len(FIRST_ROUND) + 2  # the second round: one step either side of the first's best
RESCALE_STREAM = 0x7A5F  # the rescale trials' seed stream, apart from every study's
FACTOR_FILE = "factor.json"
LEARNING_RATE_NAMES = ("learning_rate", "lr")
LEARNING_RATE_SUFFIXES = ("_learning_rate", "_lr")

RunTrials = Callable[[list[TrialSpec]], Sequence[tuple[TrialSpec, Summary | None]]]


@dataclass(frozen=True)
class FactorChoice:
    """What the rescale search of one workload found."""

    workload: str
    log10_factor: float
    candidates: dict[float, float | None]  # log10 factor -> surrogate (None: no result)

    @property
    def factor(self) -> float:
        return 10.0**self.log10_factor


def learning_rate_keys(point: Mapping[str, Any]) -> list[str]:
    """The hyperparameters of ``point`` that the protocol rescales."""
    return sorted(
        name
        for name, value in point.items()
        if (name in LEARNING_RATE_NAMES or name.endswith(LEARNING_RATE_SUFFIXES)) and _is_number(value)
    )


def rescaled(point: Mapping[str, Any], factor: float) -> dict[str, Any]:
    """``point`` with each learning rate times ``factor``; everything else as it was."""
    keys = set(learning_rate_keys(point))
    return {name: (value * factor if name in keys else value) for name, value in point.items()}


def reference_point(space: SearchSpace) -> dict[str, Any]:
    """The point the rescale trials move (see the module docstring); errors name the file."""
    if space.fixed_points is not None:
        point = dict(space.fixed_points[0])
    else:
        point = {dim.name: _centre(dim) for dim in space.dimensions}
    if not learning_rate_keys(point):
        raise AlgobenchError(
            f"--ruleset transfer: {space.source} has no learning rate to rescale (a numeric hyperparameter "
            f"named {' or '.join(LEARNING_RATE_NAMES)}, or ending in {' or '.join(LEARNING_RATE_SUFFIXES)})"
        )
    return point


def second_round(first: Mapping[float, float | None]) -> tuple[float, float]:
    """The two factors tried after the first round: half a decade either side of its best."""
    best = best_log10_factor(first)
    return (best - SECOND_ROUND_STEP, best + SECOND_ROUND_STEP)


def best_log10_factor(values: Mapping[float, float | None]) -> float:
    """The candidate with the lowest surrogate; ties (and no result at all) go to the one nearest 0."""
    ranked = sorted(values, key=lambda f: (math.inf if values[f] is None else values[f], abs(f), f))
    return ranked[0] if ranked and values[ranked[0]] is not None else 0.0


def rescale_dir(experiment_dir: str | Path, workload: str) -> Path:
    """The experiment directory of one workload's rescale trials."""
    return Path(experiment_dir) / layout.TUNING_DIR / workload / PROTOCOL


def rescale_spec(study_spec: TrialSpec, reference: Mapping[str, Any], log10_factor: float, seed: int) -> TrialSpec:
    """The rescale trial at ``log10_factor`` for the workload of ``study_spec`` (one of its studies'
    trials, whose options it keeps)."""
    return dataclasses.replace(
        study_spec,
        experiment_dir=str(rescale_dir(study_spec.experiment_dir, study_spec.workload_name)),
        study=0,
        trial=GRID.index(log10_factor) + 1,
        hyperparameters=rescaled(reference, 10.0**log10_factor),
        seed=derive_seed(seed, RESCALE_STREAM),
    )


def rescale_label(spec: TrialSpec) -> str | None:
    """``rescale trial x0.316`` for a rescale trial (progress lines), None for any other trial."""
    where = Path(spec.experiment_dir)
    if where.name != PROTOCOL or where.parent.parent.name != layout.TUNING_DIR or spec.trial > len(GRID):
        return None
    return f"rescale trial x{10.0 ** GRID[spec.trial - 1]:.3g}"


def search_factors(
    study_specs: Sequence[TrialSpec], reference: Mapping[str, Any], seed: int, run: RunTrials
) -> dict[str, FactorChoice]:
    """Run (or reuse) the rescale trials of every workload in ``study_specs``, both rounds, each
    round across all workloads at once; write each workload's ``factor.json``."""
    first_spec = {spec.workload_name: spec for spec in reversed(study_specs)}  # study 0, trial 1 of each
    values: dict[str, dict[float, float | None]] = {name: {} for name in first_spec}

    def run_round(factors_of: Mapping[str, Sequence[float]]) -> None:
        specs = [rescale_spec(first_spec[name], reference, f, seed) for name, fs in factors_of.items() for f in fs]
        for spec, summary in run(specs):
            values[spec.workload_name][GRID[spec.trial - 1]] = None if summary is None else trial_value(summary)

    run_round({name: FIRST_ROUND for name in first_spec})
    run_round({name: second_round(values[name]) for name in first_spec})
    choices = {
        name: FactorChoice(name, best_log10_factor(candidates), dict(sorted(candidates.items())))
        for name, candidates in values.items()
    }
    for name, choice in choices.items():
        write_choice(first_spec[name], reference, choice)
    return choices


def apply_factors(study_specs: Sequence[TrialSpec], choices: Mapping[str, FactorChoice]) -> list[TrialSpec]:
    """The studies' trials with each point's learning rates times its workload's factor."""
    rescaled_specs = []
    for spec in study_specs:
        factor = choices[spec.workload_name].factor
        rescaled_specs.append(dataclasses.replace(spec, hyperparameters=rescaled(spec.hyperparameters or {}, factor)))
    return rescaled_specs


def write_choice(study_spec: TrialSpec, reference: Mapping[str, Any], choice: FactorChoice) -> Path:
    """``factor.json`` beside the workload's rescale trials (written atomically, as every results file)."""
    path = rescale_dir(study_spec.experiment_dir, choice.workload) / study_spec.submission_name / FACTOR_FILE
    record = {
        "protocol": PROTOCOL,
        "workload": choice.workload,
        "factor": choice.factor,
        "log10_factor": choice.log10_factor,
        "reference_point": dict(reference),
        "rescaled": learning_rate_keys(reference),
        "candidates": [
            {"log10_factor": f, "trial": GRID.index(f) + 1, "surrogate": value}
            for f, value in choice.candidates.items()
        ],
    }
    write_json(path, record)
    return path


def _centre(dim: Range | Choice) -> Any:
    if isinstance(dim, Choice):
        return dim.feasible_points[(len(dim.feasible_points) - 1) // 2]
    return dim.value_at(0.5)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
