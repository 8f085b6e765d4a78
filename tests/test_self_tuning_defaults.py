"""The baselines' self-tuning defaults are the suite's best point of target setting's search."""

from __future__ import annotations

import ast
import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from algobench.errors import AlgobenchError
from algobench.layout import Direction
from algobench.tuning import self_tuning_defaults as defaults

SUBMISSIONS = Path(__file__).resolve().parent.parent / "submissions"


def _shipped_defaults(baseline: str) -> dict:
    """The ``DEFAULTS`` literal of a baseline's submission file, read without importing it."""
    tree = ast.parse((SUBMISSIONS / baseline / "submission.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "DEFAULTS" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{baseline}: no DEFAULTS")


@pytest.mark.parametrize("baseline", defaults.BASELINES)
def test_shipped_defaults_are_the_derived_point(baseline: str) -> None:
    derived = defaults.derive_suite(baseline)
    shipped = _shipped_defaults(baseline)
    for name, value in derived.hyperparameters.items():
        assert shipped[name] == pytest.approx(value, rel=1e-12), (baseline, name)


def test_ranks_are_direction_aware_and_a_diverged_point_ranks_last() -> None:
    searches = {"acc": [0.5, 0.9, math.nan, 0.7], "loss": [2.0, 1.0, 0.5, math.inf]}
    directions = {"acc": Direction.MAX, "loss": Direction.MIN}
    # acc ranks 3 1 4 2; loss ranks 3 2 1 4
    assert defaults.mean_ranks(searches, directions) == [3.0, 1.5, 2.5, 3.0]


def _derive(searches: dict[str, list[float]], method: str = "target_setting") -> defaults.Derived:
    def load(workload: str) -> SimpleNamespace:
        record = {"search": searches[workload]} if workload in searches else None
        return SimpleNamespace(provenance={"method": method, "optimizers": {"adamw": record}})

    points = lambda name, count: [{"learning_rate": 10.0**-i} for i in range(count)]
    return defaults.derive("adamw", ["a", "b"], load, lambda w: Direction.MAX, points)


def test_the_best_mean_rank_wins_and_a_tie_goes_to_the_first_point() -> None:
    derived = _derive({"a": [0.1, 0.9, 0.8], "b": [0.2, 0.3, 0.9]})  # ranks: 3/3, 1/2, 2/1 -> tie 1.5
    assert derived.index == 1 and derived.mean_rank == 1.5
    assert derived.ranks == {"a": 1, "b": 2} and derived.hyperparameters == {"learning_rate": 0.1}


def test_a_workload_without_a_search_record_is_named() -> None:
    with pytest.raises(AlgobenchError, match="workload 'b': its targets file records no target-setting search"):
        _derive({"a": [0.1, 0.9]})
    with pytest.raises(AlgobenchError, match="workload 'a'"):
        _derive({"a": [0.1], "b": [0.2]}, method="provisional")


def test_searches_of_different_lengths_are_refused() -> None:
    with pytest.raises(AlgobenchError, match="same number of points"):
        _derive({"a": [0.1, 0.9], "b": [0.2]})
