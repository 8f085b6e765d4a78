"""Where an Optuna study lives, and how workers that share it notice each other's crashes.

By default a study is kept in ``<experiment>/tuning/optuna.journal``: Optuna's ``JournalStorage``
on a ``JournalFileBackend``, an append-only log that several processes on a shared filesystem can
write at once (SQLite cannot: it locks up, or corrupts, on NFS). ``--storage`` names another
journal file (a path) or any database URL Optuna's ``RDBStorage`` opens (``sqlite:///x.db``,
``postgresql://...``); the same file or URL opens as it is in ``optuna-dashboard``.

Liveness: a worker stamps each trial it runs with a heartbeat (the system attribute
``algobench:heartbeat``, wall-clock seconds) every ``heartbeat_sec``. A RUNNING trial whose stamp
is older than ``STALE_BEATS`` heartbeats belongs to a worker that died; the next worker to look
marks it FAIL (with ``algobench:stale``), and the study asks for a new trial in its place. Optuna's
own heartbeat exists only for ``RDBStorage``; this one works on every storage.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from algobench.errors import AlgobenchError
from algobench.layout import TUNING_DIR

JOURNAL_FILE = "optuna.journal"
HEARTBEAT = "algobench:heartbeat"
WORKER = "algobench:worker"
STALE = "algobench:stale"
STALE_BEATS = 4


def default_storage_path(experiment_dir: str | Path) -> Path:
    return Path(experiment_dir) / TUNING_DIR / JOURNAL_FILE


def open_storage(storage: str | None, experiment_dir: str | Path) -> Any:
    """An Optuna storage for ``storage`` (None: the experiment's journal file); a storage that
    cannot be opened is one ``AlgobenchError`` line naming it."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    if storage is None or "://" not in storage:
        path = Path(storage) if storage else default_storage_path(experiment_dir)
        if storage is None:
            path.parent.mkdir(parents=True, exist_ok=True)
        if not path.parent.is_dir():
            raise AlgobenchError(f"--storage {storage}: folder {path.parent} does not exist")
        if path.exists() and not path.is_file():
            raise AlgobenchError(f"--storage {storage}: {path} is not a file")
        try:
            return JournalStorage(JournalFileBackend(str(path)))
        except Exception as error:  # noqa: BLE001 - Optuna's and the OS's many ways to refuse
            raise AlgobenchError(f"--storage {path}: cannot open the journal: {_line(error)}") from None
    try:
        return optuna.storages.RDBStorage(storage)
    except Exception as error:  # noqa: BLE001 - SQLAlchemy's many ways to refuse a URL
        raise AlgobenchError(f"--storage {storage}: cannot open: {_line(error)}") from None


def _line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"


def fail_stale_trials(study: Any, heartbeat_sec: float, mine: Callable[[Any], bool]) -> list[int]:
    """Mark FAIL every RUNNING trial of another worker whose heartbeat is older than
    ``STALE_BEATS * heartbeat_sec``; the numbers of the trials it failed."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    storage = study._storage  # the study's own storage object: Optuna exposes no public accessor
    now = time.time()
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        beat = trial.system_attrs.get(HEARTBEAT)
        if beat is None or mine(trial) or now - float(beat) <= STALE_BEATS * heartbeat_sec:
            continue
        try:
            storage.set_trial_system_attr(trial._trial_id, STALE, f"no heartbeat for {now - float(beat):.0f} s")
            storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
            failed.append(trial.number)
        except UpdateFinishedTrialError:  # another worker failed (or finished) it first
            continue
    return failed


class Heartbeat:
    """A daemon thread that stamps the trials in ``trial_ids()`` every ``interval`` seconds, until
    ``stop()`` (or the process ends: a dead process stops beating, which is the point)."""

    def __init__(self, storage: Any, interval: float, trial_ids: Callable[[], list[int]]) -> None:
        self._storage = storage
        self._interval = interval
        self._trial_ids = trial_ids
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self) -> None:
        now = time.time()
        for trial_id in self._trial_ids():
            try:
                self._storage.set_trial_system_attr(trial_id, HEARTBEAT, now)
            except Exception:  # noqa: BLE001 - a trial finished (or failed by another worker) meanwhile
                continue

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="algobench-heartbeat", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.beat()
