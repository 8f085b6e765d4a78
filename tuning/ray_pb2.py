"""PB2, Population Based Bandits (Parker-Holder et al. 2020, arXiv:2002.02518), on Ray Tune.

PB2 is PBT whose explore step is a GP bandit (GP-UCB over the explored ranges, fitted to how
much each member's fitness changed per interval) instead of random perturbation. It runs only
on Ray Tune's ``PB2`` scheduler (``tuning/ray_tune.py``); its population, starting points,
interval, quantile and fitness are native PBT's, and so are its files. Only continuous ranges
are explored (log-scaled ones in log space); choices keep their starting values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

from algobench.errors import AlgobenchError
from algobench.tuning.base import TrialRequest
from algobench.tuning.pbt import PBT, PBTSettings
from algobench.tuning.search_space import Range
from algobench.tuning.tuners import TuningTask

# How native PBT explores; PB2's own GP bandit replaces all of them.
PBT_ONLY = (
    "selection", "resample_probability", "perturbation_factors", "explorer", "acquisition", "ratio", "beta", "arms",
)  # fmt: skip


@dataclass(frozen=True)
class PB2Settings(PBTSettings):
    def check(self, task: TuningTask, where: Callable[..., str]) -> None:
        super().check(task, where)
        defaults = {f.name: f.default for f in fields(PBTSettings)}
        for name in PBT_ONLY:
            if name in defaults and getattr(self, name) != defaults[name]:
                raise AlgobenchError(
                    f"{where(name)}: {name} is a setting of pbt; pb2 picks new values with its GP bandit (drop it)"
                )


class PB2(PBT):
    """PB2 (Population Based Bandits) on Ray Tune: a GP bandit picks the explored ranges' new values."""

    name = "pb2"
    Settings = PB2Settings
    ray_only = True

    def __init__(self, task: TuningTask, settings: PB2Settings) -> None:
        super().__init__(task, settings)
        ranges = tuple(n for n in self.explored if isinstance(self.dimensions[n], Range))
        self.kept_fixed = tuple(sorted({*self.kept_fixed, *(n for n in self.explored if n not in ranges)}))
        self.explored = ranges

    def ask(self) -> TrialRequest | None:
        raise AlgobenchError("pb2 runs on Ray Tune only (algobench tune --tuner pb2 starts or joins a Ray)")
