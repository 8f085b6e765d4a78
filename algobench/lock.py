"""One run at a time per experiment directory.

Two ``algobench`` runs writing the same trial directories would interleave their eval logs and
overwrite each other's summaries; the second one stops at once with a message naming the first.
The lock is an ``flock`` on a file in the directory, released by the kernel when the holder
exits, however it exits (so a killed run never leaves a stale lock).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from algobench.errors import AlgobenchError
from algobench.layout import LOCK_FILE


def prepare_experiment_dir(path: str | Path) -> Path:
    """The directory, created if needed; a clear ``AlgobenchError`` when it cannot be used."""
    path = Path(path).resolve()
    if path.exists() and not path.is_dir():
        raise AlgobenchError(f"--experiment-dir {path} exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise AlgobenchError(f"cannot create --experiment-dir {path}: {error.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise AlgobenchError(f"--experiment-dir {path} is not writable")
    return path


@contextlib.contextmanager
def experiment_lock(path: str | Path) -> Iterator[None]:
    """Hold the experiment directory's lock, or raise naming the process that holds it."""
    lock_path = prepare_experiment_dir(path) / LOCK_FILE
    handle = open(lock_path, "a+")  # noqa: SIM115 - held for the whole run, closed below
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise AlgobenchError(
                f"{Path(path).resolve()} is in use by another algobench run ({holder}); wait for it to "
                f"finish, or use another --experiment-dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}, started {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC")
        handle.flush()
        yield
    finally:
        handle.close()
