"""One executor interface behind every way a trial runs (DESIGN.md, data flow).

An executor takes a picklable ``TrialSpec`` and returns a ``concurrent.futures.Future`` that
resolves to the trial's summary (the dict written to ``summary.json``). The same spec runs the
same way in this process, in a child process, as a submitit job (SLURM, local, debug) or on Ray:
the driver loop (``algobench.tuning.driver``) never asks which one it has.

A future that raises ``InfrastructureError`` means algobench's own machinery failed (not the
submission): nothing final was written for that trial, so a rerun retries it.
"""

from __future__ import annotations

import abc
import contextlib
import os
from collections.abc import Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from algobench.trial import TrialSpec

Summary = dict[str, Any]


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system has one)."""
    with contextlib.suppress(AttributeError, OSError):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class InfrastructureError(RuntimeError):
    """algobench itself (not the submission) failed while running a trial; a rerun retries it."""


class Executor(abc.ABC):
    """Runs trials. Subclasses implement ``submit``; ``parallelism`` says how many trials the
    driver may keep in flight at once (the executor enforces fairness: see ``cores``)."""

    name: str = "executor"

    @property
    def parallelism(self) -> int:
        """How many trials may run at once."""
        return 1

    @abc.abstractmethod
    def submit(self, spec: TrialSpec) -> Future[Summary]:
        """Start (or queue) one trial; the future resolves to its summary."""

    def submit_many(self, specs: Sequence[TrialSpec]) -> list[Future[Summary]]:
        """Start several trials at once (SLURM submits them as one job array)."""
        return [self.submit(spec) for spec in specs]

    def close(self) -> None:  # noqa: B027 - most executors hold nothing to release
        """Release workers and processes; pending futures are cancelled."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def resolved(summary: Summary) -> Future[Summary]:
    """A future that is already done (for executors that run a trial before returning)."""
    future: Future[Summary] = Future()
    future.set_result(summary)
    return future


def failed_future(error: BaseException) -> Future[Summary]:
    future: Future[Summary] = Future()
    future.set_exception(error)
    return future
