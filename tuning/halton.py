"""Quasi-random search: a scrambled Halton sequence from a seed.

AlgoPerf shuffles its Halton points with an unseeded global RNG, so its trials cannot be
reproduced; here the scrambling is seeded, and the same (space, n, seed) gives the same points.

``HaltonTuner`` is the same search behind the tuner interface (``algobench tune --tuner
halton``): study k's trials are ``algobench submit``'s trials of study k, point for point and
seed for seed. Its state is the trial directories: a rerun skips the trials that have a
``summary.json``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from algobench.errors import AlgobenchError, SearchSpaceError
from algobench.results import read_summary
from algobench.tuning.base import Summary, TrialRequest, Tuner
from algobench.tuning.search_space import SearchSpace
from algobench.tuning.tuners import Settings, TuningTask, setting


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
    from scipy.stats import qmc  # here, not at import: `algobench --help` lists the tuners without scipy

    unit = qmc.Halton(d=len(space.dimensions), scramble=True, seed=seed).random(n)
    return [
        {dim.name: _plain(dim.value_at(float(u))) for dim, u in zip(space.dimensions, row, strict=True)} for row in unit
    ]


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


# --- quasi-random search as a tuner -------------------------------------------------------------


@dataclass(frozen=True)
class HaltonSettings(Settings):
    trials: int = setting(5, "int", "trials per study (AlgoPerf's external tuning: 5)")

    def check(self, task: TuningTask, where: Callable[..., str]) -> None:
        super().check(task, where)
        if self.trials < 1:
            raise AlgobenchError(f"{where('trials')}: trials must be at least 1, got {self.trials}")
        points = task.search_space.fixed_points
        if points is not None and self.trials > len(points):
            listed = f"{task.search_space.source} lists only {len(points)} points"
            raise AlgobenchError(f"{where('trials')}: trials {self.trials} but {listed}")


class HaltonTuner(Tuner):
    """Quasi-random search: N trials at scrambled Halton points of the search space (AlgoPerf's external tuning)."""

    name = "halton"
    Settings = HaltonSettings

    def __init__(self, task: TuningTask, settings: HaltonSettings) -> None:
        self.task = task
        self.settings = settings
        points = sample(task.search_space, settings.trials, task.study_seed())
        self.results: dict[int, Summary] = {}
        self._pending: list[TrialRequest] = []
        for index, point in enumerate(points, start=1):
            summary = read_summary(task.member_dir(index))
            if summary is not None:  # the trial directories are the state: a rerun skips these
                self.results[index] = summary
            else:
                self._pending.append(TrialRequest(trial=index, hyperparameters=point))

    @property
    def eval_every_steps(self) -> int | None:
        return self.settings.eval_every_steps

    @property
    def max_steps(self) -> int | None:
        return self.settings.max_steps

    def ask(self) -> TrialRequest | None:
        return self._pending.pop(0) if self._pending else None

    def tell(self, request: TrialRequest, summary: Summary) -> None:
        self.results[request.trial] = summary

    @property
    def finished(self) -> bool:
        return not self._pending
