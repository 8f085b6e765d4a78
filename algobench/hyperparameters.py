"""Hyperparameters as an attribute-access mapping, the shape AlgoPerf submissions expect."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any


class Hyperparameters(Mapping[str, Any]):
    """Read-only: ``hp.learning_rate`` and ``hp["learning_rate"]``; ``hasattr`` is False when absent.

    AlgoPerf hands submissions a namedtuple; this behaves the same for attribute access and
    ``hasattr``/``getattr(hp, name, default)`` while also being a plain mapping for tuners.
    """

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        object.__setattr__(self, "_values", dict(values or {}))

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"hyperparameter {name!r} is not set") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("hyperparameters are read-only; tuners make a new Hyperparameters")

    def get(self, key: str, default: Any = None) -> Any:
        return self._values.get(key, default)  # no exception on the hot path, unlike Mapping.get

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Hyperparameters({self._values!r})"

    def _asdict(self) -> dict[str, Any]:
        """namedtuple's spelling, which some AlgoPerf submissions call."""
        return dict(self._values)

    def __getstate__(self) -> dict[str, Any]:
        return self._values

    def __setstate__(self, state: dict[str, Any]) -> None:
        object.__setattr__(self, "_values", dict(state))


@dataclass(frozen=True)
class ChangePoint:
    """One entry of a trial's hyperparameter schedule: at ``global_step``, before that step
    runs, ``hyperparameters`` change (a partial mapping) and, for a fork, the trial's random
    streams are re-keyed to ``reseed``. A trial's recorded schedule, replayed into a fresh
    trial, reproduces its eval log."""

    global_step: int
    hyperparameters: Mapping[str, Any]
    reseed: int | None = None

    def to_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"global_step": self.global_step, "hyperparameters": dict(self.hyperparameters)}
        if self.reseed is not None:
            entry["reseed"] = self.reseed
        return entry

    @classmethod
    def from_json(cls, entry: Mapping[str, Any]) -> ChangePoint:
        return cls(int(entry["global_step"]), dict(entry.get("hyperparameters") or {}), entry.get("reseed"))
