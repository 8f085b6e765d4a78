"""What Ray Tune sees of a population: its config keys, PBT's mutations or PB2's bounds, the scheduler.

A member's hyperparameters go to Ray as a flat config, one key per hyperparameter, with its
values in the search space's own scale for PBT (Ray's perturbation multiplies a value by a
factor, which for a log-scaled range is the same move in log space), and with log-scaled ranges
in log space for PB2 (key ``log:<name>``), whose GP-UCB chooses within linear bounds: a learning
rate's bounds [1e-6, 1e-2] become [ln 1e-6, ln 1e-2], so its model sees the scale that matters.
Ray's PBT does not clip a perturbed value to the search space; ``clip`` does, as native PBT does.

Only the explored names (the native tuner's ``explored``: what the runner can change mid-run)
are mutated; the other hyperparameters travel in the config unchanged, and a clone takes its
donor's values of them, as in native PBT.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from algobench.tuning.search_space import Choice, Dimension, Range

LOG_PREFIX = "log:"
MEMBER_KEY = "member"  # the grid variable that makes trial k member k (its name is fixed when created)


@dataclass(frozen=True)
class RaySpace:
    """The explored dimensions and how each is written into Ray's config (``log_space``: PB2)."""

    dimensions: Mapping[str, Dimension]  # explored name -> its dimension
    log_space: bool = False

    def key(self, name: str) -> str:
        dimension = self.dimensions.get(name)
        if self.log_space and isinstance(dimension, Range) and dimension.scaling == "log":
            return LOG_PREFIX + name
        return name

    def to_config(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """A member's hyperparameters as Ray's config entries."""
        config = {}
        for name, value in values.items():
            key = self.key(name)
            config[key] = math.log(value) if key != name else value
        return config

    def to_values(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Ray's config back to hyperparameters (the member key and Ray's own entries dropped)."""
        values = {}
        for key, value in config.items():
            if key == MEMBER_KEY or key.startswith("__"):
                continue
            if key.startswith(LOG_PREFIX):
                name = key.removeprefix(LOG_PREFIX)
                values[name] = self.clip(name, math.exp(value))
            else:
                values[key] = self.clip(key, value)
        return values

    def clip(self, name: str, value: Any) -> Any:
        """A range's value clipped to its bounds (Ray's perturbation does not clip)."""
        dimension = self.dimensions.get(name)
        if isinstance(dimension, Range) and isinstance(value, int | float) and not isinstance(value, bool):
            return float(min(max(value, dimension.low), dimension.high))
        return value

    def clip_config(self, config: dict[str, Any]) -> dict[str, Any]:
        """Ray PBT's ``custom_explore_fn``: its perturbed config, each range clipped to the search space."""
        return {key: self.clip(key, value) if key in self.dimensions else value for key, value in config.items()}

    def mutations(self) -> dict[str, Any]:
        """Ray PBT's ``hyperparam_mutations``: a range resamples from its distribution (log-uniform for
        log-scaled ranges), a choice moves to a neighbouring feasible point or resamples."""
        from ray import tune

        mutations: dict[str, Any] = {}
        for name, dimension in self.dimensions.items():
            if isinstance(dimension, Choice):
                mutations[name] = list(dimension.feasible_points)
            elif dimension.scaling == "log":
                mutations[name] = tune.loguniform(dimension.low, dimension.high)
            else:
                mutations[name] = tune.uniform(dimension.low, dimension.high)
        return mutations

    def bounds(self) -> dict[str, list[float]]:
        """PB2's ``hyperparam_bounds``: the continuous ranges, log-scaled ones in log space."""
        bounds = {}
        for name, dimension in self.dimensions.items():
            if not isinstance(dimension, Range):
                continue
            if self.key(name) != name:
                bounds[self.key(name)] = [math.log(dimension.low), math.log(dimension.high)]
            else:
                bounds[name] = [float(dimension.low), float(dimension.high)]
        return bounds
