"""Cluster profiles: a YAML file of sbatch resources, overridden by command-line options."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from algobench.errors import AlgobenchError


@dataclass(frozen=True)
class ClusterProfile:
    """What every trial job asks the cluster for."""

    partition: str | None = None
    account: str | None = None
    time_min: int = 30
    mem_gb: float = 4
    cpus: int = 2
    gpus: int = 0
    array_parallelism: int = 8
    timeout_requeues: int = 3  # times a job that hits --time is requeued to go on from its checkpoint
    setup: tuple[str, ...] = ()
    additional: dict[str, Any] = field(default_factory=dict)

    def with_overrides(self, **values: Any) -> ClusterProfile:
        """This profile with every non-None value replaced (the command line wins)."""
        return replace(self, **{k: v for k, v in values.items() if v is not None})


def profile_path(name_or_path: str | Path) -> Path:
    """A file path as given, or the name of a profile shipped in ``slurm/profiles/`` ("example")."""
    path = Path(name_or_path)
    if path.exists() or path.suffix or len(path.parts) > 1:
        return path
    return Path(__file__).parent / "profiles" / f"{path.name}.yaml"


def load_profile(path: str | Path | None) -> ClusterProfile:
    """Read a profile file; unknown keys and wrong types are errors naming the file."""
    if path is None:
        return ClusterProfile()
    path = profile_path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise AlgobenchError(f"cluster profile not found: {path}") from None
    except yaml.YAMLError as error:
        raise AlgobenchError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(raw, dict):
        raise AlgobenchError(f"{path}: a profile is a mapping of settings, got {type(raw).__name__}")
    known = {f.name for f in fields(ClusterProfile)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise AlgobenchError(f"{path}: unknown profile keys {unknown}; known: {sorted(known)}")
    values = {k: v for k, v in raw.items() if v is not None}
    if "setup" in values:
        if not isinstance(values["setup"], list) or not all(isinstance(s, str) for s in values["setup"]):
            raise AlgobenchError(f"{path}: 'setup' must be a list of shell lines")
        values["setup"] = tuple(values["setup"])
    if "additional" in values and not isinstance(values["additional"], dict):
        raise AlgobenchError(f"{path}: 'additional' must be a mapping of sbatch options")
    for key in ("time_min", "cpus", "gpus", "array_parallelism", "timeout_requeues"):
        if key in values and (not isinstance(values[key], int) or isinstance(values[key], bool)):
            raise AlgobenchError(f"{path}: {key!r} must be an integer, got {values[key]!r}")
    if "mem_gb" in values and (not isinstance(values["mem_gb"], int | float) or isinstance(values["mem_gb"], bool)):
        raise AlgobenchError(f"{path}: 'mem_gb' must be a number of GB, got {values['mem_gb']!r}")
    for key in ("partition", "account"):
        if key in values and not isinstance(values[key], str):
            raise AlgobenchError(f"{path}: {key!r} must be a name, got {values[key]!r}")
    return ClusterProfile(**values)
