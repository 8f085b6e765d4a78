"""The tuners ``algobench tune`` knows, one registry line each, and what every tuner is built from.

A tuner is a class behind ``algobench.tuning.base.Tuner`` (``ask``/``tell``/``finished``), built
as ``TunerClass(task, settings)``:

- ``task`` (``TuningTask``) says what is tuned: the submission, one workload, one study, the
  seed, the search space, and where the trial directories live. A tuner's state resumes from
  those directories (and, for population tuners, from their event log), so building the same
  tuner again on the same task continues where a killed run stopped.
- ``settings`` is the tuner's own ``Settings`` dataclass (``TunerClass.Settings``), read from a
  YAML file and command-line flags by ``make_settings``: an unknown key, a value of the wrong
  type or out of range is one ``AlgobenchError`` line naming the key and where it came from.

Every tuner also says how its trials are run: ``eval_every_steps`` (None: the workload's
time-based evaluation period) and ``max_steps`` (None: until the budget).

A new tuner is one file with one class and one line in ``TUNERS``.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

from algobench import layout
from algobench.errors import AlgobenchError
from algobench.seeds import derive_seed
from algobench.tuning.search_space import SearchSpace

TUNERS: Mapping[str, str] = MappingProxyType(
    {
        "halton": "algobench.tuning.halton:HaltonTuner",  # AlgoPerf's quasi-random search
        "pbt": "algobench.tuning.pbt:PBT",  # Population Based Training (Jaderberg et al. 2017)
        "pb2": "algobench.tuning.ray_pb2:PB2",  # Population Based Bandits (Parker-Holder et al. 2020), on Ray Tune
        "tpe": "algobench.tuning.optuna_tuner:TPETuner",  # Optuna's samplers, through ask-and-tell
        "gp": "algobench.tuning.optuna_tuner:GPTuner",
        "cmaes": "algobench.tuning.optuna_tuner:CmaEsTuner",
        "qmc": "algobench.tuning.optuna_tuner:QMCTuner",
        "gp-opt": "algobench.tuning.gp_opt:GPOptTuner",  # Calandriello et al. 2022: few unique candidates
    }
)


def tuner_class(name: str) -> type:
    """The class registered as ``name``; an unknown name is one line listing the known ones."""
    try:
        module_name, class_name = TUNERS[name].split(":")
    except KeyError:
        raise AlgobenchError(f"unknown tuner {name!r}; known tuners: {', '.join(TUNERS)}") from None
    return getattr(importlib.import_module(module_name), class_name)


def describe_tuners() -> str:
    """One line per tuner (its docstring's first line), for ``algobench tune --help``."""
    lines = []
    for name in TUNERS:
        doc = (tuner_class(name).__doc__ or "").strip().splitlines()
        lines.append(f"  {name:<8} {doc[0] if doc else ''}")
    return "\n".join(lines)


@dataclass(frozen=True)
class TuningTask:
    """What one tuner run tunes: one submission on one workload, one study.

    Member (trial) ``j`` lives in the AlgoPerf layout under ``experiment_dir`` with the seed
    ``derive_seed(seed, study, j)``, as ``algobench submit``'s trial ``j`` does; the tuner's own
    files (settings, events) go to ``tuning_dir``.
    """

    submission_path: str
    submission_name: str  # the folder name in the experiment (e.g. ``adamw_pbt``)
    workload_name: str
    study: int
    seed: int
    experiment_dir: Path
    search_space: SearchSpace
    step_hint: int | None = None  # the workload's, for defaults that scale with it

    def member_dir(self, member: int) -> Path:
        return layout.trial_dir(self.experiment_dir, self.submission_name, self.study, self.workload_name, member)

    @property
    def tuning_dir(self) -> Path:
        return Path(self.experiment_dir) / layout.TUNING_DIR / self.workload_name / f"study_{self.study}"

    def member_seed(self, member: int) -> int:
        return derive_seed(self.seed, self.study, member)

    def study_seed(self) -> int:
        """The seed of the study's Halton points (as ``algobench submit`` draws them)."""
        return derive_seed(self.seed, self.study)


# --- settings ---------------------------------------------------------------------------------


def setting(default: Any, kind: str, help: str) -> Any:  # noqa: A002 - the word users read
    """A settings field: ``kind`` is how a YAML or command-line value is read (see ``_READERS``)."""
    return field(default=default, metadata={"kind": kind, "help": help})


@dataclass(frozen=True)
class Settings:
    """Settings every tuner has. Subclasses add their own fields with ``setting(...)`` and check
    their values in ``check`` (one ``AlgobenchError`` line each)."""

    max_steps: int | None = setting(None, "int?", "stop every trial at this step (default: the budget ends it)")
    eval_every_steps: int | None = setting(
        None, "int?", "evaluate every this many steps (default: the workload's time-based period)"
    )

    def check(self, task: TuningTask, where: Callable[..., str]) -> None:
        """Raise one ``AlgobenchError`` line for a bad value; ``where(*keys)`` names the source of the
        setting(s) concerned (a file, the command line, or the defaults)."""
        for name in ("max_steps", "eval_every_steps"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise AlgobenchError(f"{where(name)}: {name} must be at least 1, got {value}")

    def to_json(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def help_lines(cls) -> list[str]:
        return [
            f"{f.name} ({f.metadata['kind']}, default {_plain(f.default)}): {f.metadata['help']}" for f in fields(cls)
        ]


def make_settings(
    cls: type[Settings], tuner: str, layers: list[tuple[str, Mapping[str, Any]]], task: TuningTask
) -> Settings:
    """``cls`` from ``layers`` of (source, mapping), later layers overriding earlier ones (a YAML
    file, then command-line flags); each key is checked against ``cls``'s fields."""
    known = {f.name: f for f in fields(cls)}
    values: dict[str, Any] = {}
    where: dict[str, str] = {}
    for source, mapping in layers:
        if not isinstance(mapping, Mapping):
            raise AlgobenchError(f"{source}: expected a mapping of {tuner} settings, got {type(mapping).__name__}")
        for key, raw in mapping.items():
            if key not in known:
                raise AlgobenchError(
                    f"{source}: unknown {tuner} setting {key!r}; {tuner} settings: {', '.join(sorted(known))}"
                )
            values[key] = _READERS[known[key].metadata["kind"]](raw, f"{source}: {key}")
            where[key] = source
    settings = cls(**values)

    def source(*keys: str) -> str:
        named = [where[key] for key in keys if key in where]
        return " / ".join(dict.fromkeys(named)) or f"{tuner} defaults"

    settings.check(task, source)
    return settings


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    return value


def _int(raw: Any, where: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise AlgobenchError(f"{where} must be an integer, got {raw!r}")
    try:
        value = float(raw)
    except ValueError:
        raise AlgobenchError(f"{where} must be an integer, got {raw!r}") from None
    if not math.isfinite(value) or value != int(value):
        raise AlgobenchError(f"{where} must be an integer, got {raw!r}")
    return int(value)


def _float(raw: Any, where: str) -> float:
    if isinstance(raw, bool):
        raise AlgobenchError(f"{where} must be a number, got {raw!r}")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise AlgobenchError(f"{where} must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise AlgobenchError(f"{where} must be a finite number, got {raw!r}")
    return value


def _bool(raw: Any, where: str) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in ("true", "false", "yes", "no", "1", "0"):
        return raw.lower() in ("true", "yes", "1")
    raise AlgobenchError(f"{where} must be true or false, got {raw!r}")


def _str(raw: Any, where: str) -> str:
    if not isinstance(raw, str):
        raise AlgobenchError(f"{where} must be a string, got {raw!r}")
    return raw


def _list(raw: Any, where: str) -> list[Any]:
    if isinstance(raw, str):
        return [part.strip() for part in raw.split(",") if part.strip()]
    if not isinstance(raw, list | tuple):
        raise AlgobenchError(f"{where} must be a list, got {raw!r}")
    return list(raw)


def _optional(read: Callable[[Any, str], Any]) -> Callable[[Any, str], Any]:
    return lambda raw, where: None if raw is None or raw == "none" else read(raw, where)


def _names(raw: Any, where: str) -> tuple[str, ...]:
    return tuple(_str(item, where) for item in _list(raw, where))


def _floats(raw: Any, where: str) -> tuple[float, ...]:
    return tuple(_float(item, where) for item in _list(raw, where))


def _points(raw: Any, where: str) -> tuple[dict[str, Any], ...]:
    items = _list(raw, where)
    if not all(isinstance(item, Mapping) for item in items):
        raise AlgobenchError(f"{where} must be a list of mappings (hyperparameter: value)")
    return tuple(dict(item) for item in items)


_READERS: Mapping[str, Callable[[Any, str], Any]] = {
    "int": _int,
    "int?": _optional(_int),
    "float": _float,
    "bool": _bool,
    "str": _str,
    "str?": _optional(_str),
    "names?": _optional(_names),
    "names": _names,
    "floats": _floats,
    "points?": _optional(_points),
}
