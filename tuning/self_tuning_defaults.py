"""The baselines' self-tuning defaults, derived from the target-setting records.

AlgoPerf's self-tuning baseline runs one fixed configuration, chosen as the one that did best
across workloads in the external-tuning search. Target setting here searched the same Halton
points of each baseline's search space on every workload (``target_setting.SEARCH_SEED``), and
each workload's targets file records the best validation metric of every point
(``provenance.optimizers.<baseline>.search``). So the choice needs no new training:

- on each suite workload, rank the points by their best validation metric (direction-aware;
  rank 1 is best, a diverged point ranks last);
- the default is the point with the best mean rank over the suite (ties: the lower index);
- its hyperparameters are the Halton point of that index, drawn again from the search space
  with the procedure's seed.

``python -m algobench.tuning.self_tuning_defaults`` prints each baseline's derived point and the
ranks behind it; ``tests/test_self_tuning_defaults.py`` checks that every baseline's shipped
``DEFAULTS`` equal it, so a new target-setting run that changes the choice fails a test until the
baselines are updated.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from algobench.errors import AlgobenchError
from algobench.layout import Direction

BASELINES = ("adamw", "nadamw", "sgd_momentum", "nesterov")  # the optimizers target setting searched


@dataclass(frozen=True)
class Derived:
    baseline: str
    index: int  # the Halton point chosen
    mean_rank: float
    ranks: dict[str, int]  # workload -> the chosen point's rank there
    hyperparameters: dict[str, Any]


def mean_ranks(searches: Mapping[str, Sequence[float]], directions: Mapping[str, Direction]) -> list[float]:
    """Each point's mean rank over the workloads of ``searches`` (workload -> best metric per
    point, every workload searching the same points)."""
    lengths = {len(values) for values in searches.values()}
    if len(lengths) != 1:
        raise AlgobenchError(f"the searches do not hold the same number of points: {sorted(lengths)}")
    (count,) = lengths
    totals = [0.0] * count
    for workload, values in searches.items():
        for point, rank in enumerate(_ranks(values, directions[workload])):
            totals[point] += rank
    return [total / len(searches) for total in totals]


def _ranks(values: Sequence[float], direction: Direction) -> list[int]:
    """1 for the best value; a non-finite value (a diverged run) ranks after every finite one."""

    def key(point: int) -> tuple[bool, float]:
        value = values[point]
        finite = isinstance(value, int | float) and math.isfinite(value)
        return (not finite, -direction.sign() * value if finite else 0.0)

    order = sorted(range(len(values)), key=key)
    ranks = [0] * len(values)
    for rank, point in enumerate(order, start=1):
        ranks[point] = rank
    return ranks


def derive(
    baseline: str,
    workloads: Sequence[str],
    load_targets: Callable[[str], Any],
    direction: Callable[[str], Direction],
    points: Callable[[str, int], list[dict[str, Any]]],
) -> Derived:
    """The self-tuning default of ``baseline`` from the targets of ``workloads``."""
    searches = {}
    for workload in workloads:
        provenance = load_targets(workload).provenance
        record = provenance.get("optimizers", {}).get(baseline)
        if provenance.get("method") != "target_setting" or not record or not record.get("search"):
            raise AlgobenchError(
                f"workload {workload!r}: its targets file records no target-setting search of {baseline!r}"
            )
        searches[workload] = record["search"]
    directions = {w: direction(w) for w in workloads}
    ranks = mean_ranks(searches, directions)
    best = min(range(len(ranks)), key=lambda point: (ranks[point], point))
    per_workload = {w: _ranks(searches[w], directions[w])[best] for w in workloads}
    hyperparameters = points(baseline, len(ranks))[best]
    return Derived(baseline, best, ranks[best], per_workload, hyperparameters)


def derive_suite(baseline: str) -> Derived:
    """``derive`` on the suite's targets files and the baseline's own search space."""
    from algobench.tuning import halton
    from algobench.tuning.search_space import load_search_space
    from algobench.tuning.target_setting import SEARCH_SEED, baseline_file
    from algobench.workloads.registry import SUITE, load_targets, workload_info

    def points(name: str, count: int) -> list[dict[str, Any]]:
        with baseline_file(name, "tuning_search_space.json") as path:
            return halton.sample(load_search_space(path), count, seed=SEARCH_SEED)

    return derive(baseline, SUITE, load_targets, lambda w: Direction(workload_info(w).metric_direction), points)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m algobench.tuning.self_tuning_defaults", description=__doc__)
    parser.add_argument("baselines", nargs="*", default=list(BASELINES))
    args = parser.parse_args(argv)
    for baseline in args.baselines:
        derived = derive_suite(baseline)
        ranks = ", ".join(f"{w} {r}" for w, r in derived.ranks.items())
        print(f"{baseline}: point {derived.index} (mean rank {derived.mean_rank:.2f}; {ranks})")
        print(f"  DEFAULTS = {derived.hyperparameters!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
