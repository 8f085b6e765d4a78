"""A tuner run's own files, beside the trial directories (DESIGN.md contract 4):

    <experiment>/tuning/<workload>/study_<k>/
        settings.json    # the tuner, its settings and the task: a rerun must match them to resume
        events.jsonl     # one line per decision (PBT: exploit/explore, and each round's fitness)
        segments.jsonl   # one line per segment a member ran: its own compute, on its own clock
        overhead.json    # the driver's wall time, slot time busy, tuner decisions, fork copies

Lines are appended a group at a time with one write and an fsync, and every group ends with a
*commit* line (PBT's ``round`` line, or an asynchronous member's ``ready`` line): a reader keeps
only committed groups, so a run killed while writing leaves the last decision either whole or
absent (and then it is made again, from the same inputs, on resume).

``RecordingTuner`` wraps any tuner for the command line: it writes ``segments.jsonl`` (what each
member trained, from which step and clock to which, with its evaluations, so that the equal-
compute view can charge every member for its own work, forked-over members included) and
measures the tuner's overhead.
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from algobench.errors import AlgobenchError
from algobench.executors.base import Executor
from algobench.hyperparameters import ChangePoint
from algobench.layout import EVAL_FILE, EVENTS_FILE, HPARAMS_FILE
from algobench.results import read_json, write_json
from algobench.trial_spec import TrialSpec
from algobench.tuning.base import Summary, TrialRequest, Tuner

SETTINGS_FILE = "settings.json"
SEGMENTS_FILE = "segments.jsonl"
OVERHEAD_FILE = "overhead.json"
FORMAT_VERSION = 1


# --- JSON lines ---------------------------------------------------------------------------------


def append_lines(path: Path, records: Sequence[Mapping[str, Any]]) -> None:
    """Append ``records`` as JSON lines in one write, then fsync (a group is whole or torn at its end)."""
    if not records:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(_json_safe(r), sort_keys=True) + "\n" for r in records)
    with open(path, "a") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def read_lines(path: Path) -> list[dict[str, Any]]:
    """Every complete, readable line of ``path`` (none if it does not exist)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    records = []
    for line in text.splitlines(keepends=True):
        if not line.endswith("\n"):
            break  # a write torn by a kill: the group it belongs to is not committed
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return records


def read_committed(path: Path, commit: str | Iterable[str]) -> list[dict[str, Any]]:
    """The lines of ``path`` up to and including the last line whose ``event`` is ``commit``."""
    commits = {commit} if isinstance(commit, str) else set(commit)
    records = read_lines(path)
    last = max((i for i, r in enumerate(records) if r.get("event") in commits), default=-1)
    return records[: last + 1]


def events_path(tuning_dir: Path) -> Path:
    return Path(tuning_dir) / EVENTS_FILE


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and value != value:  # NaN
        return None
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


# --- settings -----------------------------------------------------------------------------------


def check_settings(tuning_dir: Path, record: Mapping[str, Any], write: bool = False) -> None:
    """Check that a previous run's ``settings.json`` matches ``record`` (to resume it); with
    ``write``, write it when there is none."""
    path = Path(tuning_dir) / SETTINGS_FILE
    previous = read_json(path)
    record = _json_safe(dict(record))
    if previous is not None:
        if (previous.get("tuner"), previous.get("name")) != (record.get("tuner"), record.get("name")):
            raise AlgobenchError(
                f"{path.parents[3]} already holds a {previous.get('tuner')} run ({previous.get('name')}) of "
                f"{previous.get('workload')} study {previous.get('study')}: an experiment directory holds one tuner "
                f"run per workload and study; use another --experiment-dir (`algobench tune score` compares several)"
            )
        for key in sorted(set(previous) | set(record)):
            if key == "algobench_version":
                continue
            old, new = previous.get(key), record.get(key)
            if old != new:
                detail = _first_difference(old, new)
                raise AlgobenchError(
                    f"{path} was written by a run with other settings ({key}{detail}); resuming needs the same "
                    f"settings: rerun with them, or use another --experiment-dir"
                )
        return
    if write:
        write_json(path, record)


def _first_difference(old: Any, new: Any) -> str:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                return f".{key}: was {old.get(key)!r}, now {new.get(key)!r}"
    return f": was {old!r}, now {new!r}"


def read_settings(tuning_dir: Path) -> dict[str, Any]:
    path = Path(tuning_dir) / SETTINGS_FILE
    settings = read_json(path)
    if settings is None:
        raise AlgobenchError(f"{tuning_dir} holds no {SETTINGS_FILE}: not the directory of an `algobench tune` run")
    return settings


# --- reading a member's files (torch-free) -------------------------------------------------------


def read_eval_rows(trial_dir: Path) -> list[dict[str, float]]:
    """``eval_measurements.csv`` as floats (empty cells: NaN); [] when there is none."""
    try:
        with open(Path(trial_dir) / EVAL_FILE, newline="") as handle:
            rows = list(csv.DictReader(handle))
    except FileNotFoundError:
        return []
    return [{k: _float(v) for k, v in row.items() if k is not None} for row in rows]


def _float(cell: str | None) -> float:
    try:
        return float(cell) if cell not in (None, "") else float("nan")
    except ValueError:
        return float("nan")


def read_schedule(trial_dir: Path) -> list[ChangePoint]:
    """The schedule in ``hparams.json`` (the core's ``write_schedule`` format), torch-free."""
    raw = read_json(Path(trial_dir) / HPARAMS_FILE) or {}
    return [ChangePoint.from_json(entry) for entry in raw.get("schedule", [])]


def values_at(schedule: Sequence[ChangePoint], step: int) -> dict[str, Any]:
    """The hyperparameters in effect from ``step`` on: every change point at or before it, merged."""
    values: dict[str, Any] = {}
    for point in sorted(schedule, key=lambda p: p.global_step):
        if point.global_step <= step:
            values.update(point.hyperparameters)
    return values


# --- segments and overhead --------------------------------------------------------------------------


class RecordingTuner(Tuner):
    """Wraps a tuner: the same requests and decisions, plus ``segments.jsonl`` and the overhead
    ledger. Attributes it does not have are the wrapped tuner's."""

    def __init__(self, inner: Tuner, tuning_dir: Path, member_dir: Any, metric_key: str) -> None:
        self.inner = inner
        self.name = inner.name
        self.tuning_dir = Path(tuning_dir)
        self._member_dir = member_dir
        self._metric_key = metric_key
        self._segments_path = self.tuning_dir / SEGMENTS_FILE
        known = read_lines(self._segments_path)
        self._last_step: dict[int, int] = {}
        self._seen = set()
        for record in known:
            self._last_step[record["member"]] = record["end_step"]
            self._seen.add((record["member"], record["start_step"], record["end_step"]))
        self._starts: dict[int, tuple[int, int | None]] = {}
        self.ledger = Ledger()
        self._fork_asked_at: float | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    # the Tuner interface
    def ask(self) -> TrialRequest | None:
        self.mark()
        start = time.perf_counter()
        request = self.inner.ask()
        now = time.perf_counter()
        self.ledger.decision_sec += now - start
        if request is not None:
            forked = request.fork_from is not None or bool(request.changes)
            start_step = request.change_step if forked else self._last_step.get(request.trial, 0)
            self._starts[request.trial] = (int(start_step or 0), request.fork_from)
            if forked:
                self._fork_asked_at = now  # the driver copies the donor's files until our next call
                self.ledger.forks += 1
        return request

    def tell(self, request: TrialRequest, summary: Summary) -> None:
        self.mark()
        self._record(request, summary)
        start = time.perf_counter()
        self.inner.tell(request, summary)
        self.ledger.decision_sec += time.perf_counter() - start

    @property
    def finished(self) -> bool:
        return self.inner.finished

    def mark(self) -> None:
        """Called at each step of the driver: closes the time spent copying a fork's files."""
        if self._fork_asked_at is not None:
            self.ledger.fork_sec += time.perf_counter() - self._fork_asked_at
            self._fork_asked_at = None

    def _record(self, request: TrialRequest, summary: Summary) -> None:
        member = request.trial
        start_step, fork_from = self._starts.pop(member, (self._last_step.get(member, 0), None))
        rows = read_eval_rows(self._member_dir(member))
        end_step = summary.get("steps")
        if end_step is None:
            end_step = int(rows[-1]["global_step"]) if rows else start_step
        end_step = int(end_step)
        key = (member, start_step, end_step)
        self._last_step[member] = end_step
        if key in self._seen:
            return  # a resumed run heard a segment it had already recorded
        self._seen.add(key)
        at_start = next((r for r in rows if int(r["global_step"]) == start_step), None)
        start_clock = 0.0 if start_step == 0 or at_start is None else at_start["score"]
        start_eval = 0.0 if start_step == 0 or at_start is None else at_start["accumulated_eval_time"]
        evals = [
            [int(r["global_step"]), r["score"], r.get(self._metric_key, float("nan"))]
            for r in rows
            if int(r["global_step"]) > start_step
        ]
        end_clock = summary.get("submission_time")
        if end_clock is None:
            end_clock = evals[-1][1] if evals else start_clock
        schedule = read_schedule(self._member_dir(member))
        record = {
            "member": member,
            "round": request.round,
            "fork_from": fork_from,
            "start_step": start_step,
            "end_step": end_step,
            "start_clock": start_clock,
            "end_clock": end_clock,
            "own_compute": max(float(end_clock) - float(start_clock), 0.0),
            "eval_time": max(float(summary.get("eval_time") or 0.0) - start_eval, 0.0),
            "status": summary.get("status"),
            "time_to_target": summary.get("time_to_target"),
            "hyperparameters": values_at(schedule, start_step),
            "evals": evals,
        }
        append_lines(self._segments_path, [record])


class Ledger:
    """Where the driver's time went: tuner decisions, fork copies, slot time busy and idle."""

    def __init__(self) -> None:
        self.decision_sec = 0.0
        self.fork_sec = 0.0
        self.forks = 0
        self.busy_sec = 0.0  # sum over segments of their wall time in the executor
        self.segments = 0
        self.wall_sec = 0.0
        self.parallelism = 1

    def save(self, tuning_dir: Path) -> dict[str, Any]:
        """Add this run's numbers to the file's (a resumed run adds to the killed one's)."""
        path = Path(tuning_dir) / OVERHEAD_FILE
        previous = read_json(path) or {}
        keys = ("decision_sec", "fork_sec", "forks", "busy_sec", "segments", "wall_sec")
        totals = {key: previous.get(key, 0) + getattr(self, key) for key in keys}
        totals["slot_sec"] = previous.get("slot_sec", 0) + self.wall_sec * self.parallelism
        totals["parallelism"] = self.parallelism
        totals["idle_sec"] = max(totals["slot_sec"] - totals["busy_sec"], 0.0)
        totals["runs"] = previous.get("runs", 0) + 1
        write_json(path, totals)
        return totals


class TimedExecutor(Executor):
    """Wraps an executor: the same trials, with each segment's wall time in the ledger."""

    def __init__(self, inner: Executor, recorder: RecordingTuner) -> None:
        self.inner = inner
        self.name = inner.name
        self.recorder = recorder
        recorder.ledger.parallelism = inner.parallelism

    @property
    def parallelism(self) -> int:
        return self.inner.parallelism

    def submit(self, spec: TrialSpec) -> Future[Summary]:
        return self.submit_many([spec])[0]

    def submit_many(self, specs: Sequence[TrialSpec]) -> list[Future[Summary]]:
        self.recorder.mark()
        started = time.perf_counter()
        futures = self.inner.submit_many(specs)
        ledger = self.recorder.ledger

        def done(_: Future[Summary]) -> None:
            ledger.busy_sec += time.perf_counter() - started
            ledger.segments += 1

        for future in futures:
            future.add_done_callback(done)
        return futures

    def close(self) -> None:
        self.inner.close()
