"""AlgoPerf's ``tuning_search_space.json``: ranges, feasible points, or a list of fixed points.

Two shapes are accepted, as in AlgoPerf:
- a mapping ``{name: {"min": a, "max": b, "scaling": "linear"|"log"}}`` or
  ``{name: {"feasible_points": [...]}}``, sampled quasi-randomly;
- a list of points ``[{name: value, ...}, ...]``, taken in order, one per trial.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from algobench.errors import SearchSpaceError

SCALINGS = ("linear", "log")


@dataclass(frozen=True)
class Range:
    name: str
    low: float
    high: float
    scaling: str

    def value_at(self, u: float) -> float:
        """Map u in [0, 1) onto the range."""
        if self.scaling == "log":
            return math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        return self.low + u * (self.high - self.low)


@dataclass(frozen=True)
class Choice:
    name: str
    feasible_points: tuple[Any, ...]

    def value_at(self, u: float) -> Any:
        return self.feasible_points[min(int(u * len(self.feasible_points)), len(self.feasible_points) - 1)]


Dimension = Range | Choice


@dataclass(frozen=True)
class SearchSpace:
    """Either ``dimensions`` (to sample) or ``fixed_points`` (to take in order)."""

    source: str
    dimensions: tuple[Dimension, ...] = ()
    fixed_points: tuple[dict[str, Any], ...] | None = None


def load_search_space(path: str | Path) -> SearchSpace:
    """Read and check a search space file; every problem names the file and the parameter."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SearchSpaceError(f"search space file not found: {path}") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise SearchSpaceError(f"{path}:{error.lineno}: not valid JSON: {error.msg}") from None
    return parse_search_space(raw, source=str(path))


def parse_search_space(raw: Any, source: str = "<search space>") -> SearchSpace:
    if isinstance(raw, list):
        if not raw or not all(isinstance(p, dict) and p for p in raw):
            raise SearchSpaceError(f"{source}: a list search space must be non-empty objects")
        return SearchSpace(source=source, fixed_points=tuple(dict(p) for p in raw))
    if not isinstance(raw, dict) or not raw:
        raise SearchSpaceError(
            f"{source}: expected an object of parameters or a list of points, got {type(raw).__name__}"
        )
    return SearchSpace(
        source=source,
        dimensions=tuple(_parse_dimension(source, name, raw[name]) for name in sorted(raw)),
    )


def _parse_dimension(source: str, name: str, entry: Any) -> Dimension:
    where = f"{source}: parameter {name!r}"
    if not isinstance(entry, dict):
        raise SearchSpaceError(f"{where}: expected an object, got {entry!r}")
    if "feasible_points" in entry:
        points = entry["feasible_points"]
        if not isinstance(points, list) or not points:
            raise SearchSpaceError(f"{where}: feasible_points must be a non-empty list")
        return Choice(name, tuple(points))
    missing = [key for key in ("min", "max") if key not in entry]
    if missing:
        raise SearchSpaceError(f"{where}: needs 'min' and 'max' (or 'feasible_points'); missing {missing}")
    try:
        low, high = float(entry["min"]), float(entry["max"])
    except (TypeError, ValueError):
        raise SearchSpaceError(f"{where}: min and max must be numbers") from None
    scaling = entry.get("scaling", "linear")
    if scaling not in SCALINGS:
        raise SearchSpaceError(f"{where}: scaling must be one of {SCALINGS}, got {scaling!r}")
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise SearchSpaceError(f"{where}: needs finite min <= max, got min={low}, max={high}")
    if scaling == "log" and low <= 0:
        raise SearchSpaceError(f"{where}: log scaling needs min > 0, got {low}")
    return Range(name, low, high, scaling)
