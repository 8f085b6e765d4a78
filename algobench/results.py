"""The trial directory on disk (DESIGN.md contract 4): atomic JSON, an append-only eval log.

Every write either replaces a file whole (temp file + rename) or appends one complete line,
so a kill at any moment leaves a directory that both this project and AlgoPerf can read.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from algobench.errors import AlgobenchError
from algobench.layout import SUMMARY_FILE, TrialStatus

# AlgoPerf's bookkeeping columns come first; metric columns follow in sorted order.
LEADING_COLUMNS = (
    "global_step",
    "preemption_count",
    "score",
    "total_duration",
    "accumulated_submission_time",
    "accumulated_eval_time",
    "accumulated_logging_time",
    "examples_seen",
    "process_cpu_time",
)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _json_safe(value: Any) -> Any:
    """JSON has no infinity or NaN: write them as null (never as a number they are not)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def write_json(path: Path, payload: dict[str, Any]) -> None:
    atomic_write_bytes(path, json.dumps(_json_safe(payload), indent=2, sort_keys=True).encode())


def read_json(path: Path) -> Any:
    """The parsed file, or None when it does not exist; ``UnreadableFileError`` naming the file
    when it is not JSON (random bytes, a truncated write from elsewhere)."""
    try:
        return json.loads(path.read_bytes().decode())
    except FileNotFoundError:
        return None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UnreadableFileError(f"{path}: not a readable JSON file ({type(error).__name__})") from None


class UnreadableFileError(AlgobenchError):
    """A results file that exists but cannot be parsed."""


def read_summary(trial_dir: str | Path) -> dict[str, Any] | None:
    """The trial's summary if it has finished (a final status), else None.

    An unreadable or malformed summary is set aside (renamed ``summary.json.corrupt``) with a
    warning naming it, so that the trial runs again instead of being trusted or crashing a sweep.
    """
    path = Path(trial_dir) / SUMMARY_FILE
    try:
        summary = read_json(path)
    except UnreadableFileError as error:
        return _set_aside(path, str(error))
    if summary is None:
        return None
    if not isinstance(summary, dict):
        return _set_aside(path, f"{path}: expected a JSON object, found {type(summary).__name__}")
    if TrialStatus.parse(summary.get("status")) is None:
        return None
    return summary


def _set_aside(path: Path, problem: str) -> None:
    aside = path.with_name(path.name + ".corrupt")
    warnings.warn(f"{problem}; moved to {aside.name}, the trial will run again", stacklevel=3)
    os.replace(path, aside)
    return None


def is_finished(trial_dir: str | Path, retry_failed: bool = False) -> bool:
    summary = read_summary(trial_dir)
    if summary is None:
        return False
    return not (retry_failed and TrialStatus(summary["status"]).retryable)


def eval_columns(row: dict[str, Any]) -> list[str]:
    metrics = sorted(k for k in row if k not in LEADING_COLUMNS)
    return [c for c in LEADING_COLUMNS if c in row] + metrics


def _csv_text(rows: Sequence[dict[str, Any]], columns: list[str], header: bool) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    if header:
        writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


class EvalLog:
    """``eval_measurements.csv``: one row per evaluation, appended as whole lines."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, row: dict[str, Any]) -> None:
        new_file = not self.path.exists() or self.path.stat().st_size == 0
        columns = eval_columns(row) if new_file else self._header()
        with open(self.path, "a") as handle:
            handle.write(_csv_text([row], columns, header=new_file))
            handle.flush()
            os.fsync(handle.fileno())

    def rewrite(self, rows: Sequence[dict[str, Any]]) -> None:
        """Replace the log with exactly ``rows`` (on resume: the checkpoint's history)."""
        if not rows:
            self.path.unlink(missing_ok=True)
            return
        atomic_write_bytes(self.path, _csv_text(rows, eval_columns(rows[0]), header=True).encode())

    def _header(self) -> list[str]:
        with open(self.path) as handle:
            return next(csv.reader(handle))
