"""Quasi-random search: a scrambled Halton sequence from a seed.

AlgoPerf shuffles its Halton points with an unseeded global RNG, so its trials cannot be
reproduced; here the scrambling is seeded, and the same (space, n, seed) gives the same points.
"""

from __future__ import annotations

from typing import Any

from scipy.stats import qmc

from algobench.errors import SearchSpaceError
from algobench.tuning.search_space import SearchSpace


def sample(space: SearchSpace, n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` hyperparameter points from ``space``."""
    if n < 1:
        raise SearchSpaceError(f"number of trials must be at least 1, got {n}")
    if space.fixed_points is not None:
        if n > len(space.fixed_points):
            raise SearchSpaceError(
                f"{space.source}: {n} trials asked for but the list holds only {len(space.fixed_points)} points"
            )
        return [dict(p) for p in space.fixed_points[:n]]
    unit = qmc.Halton(d=len(space.dimensions), scramble=True, seed=seed).random(n)
    return [
        {dim.name: _plain(dim.value_at(float(u))) for dim, u in zip(space.dimensions, row, strict=True)} for row in unit
    ]


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
