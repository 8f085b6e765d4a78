"""The runner's clocks, bound when algobench is imported, before any submission is.

A submission can rebind ``time.perf_counter`` (or ``time.time``, ``time.process_time``) in the
process it runs in; the runner never looks its timers up through the ``time`` module, so such a
patch does not reach them. A submission that goes further and patches algobench itself is caught
by the parent process, which checks each trial's clocks against the wall time it saw and the CPU
time the kernel counted (``algobench.executors.clock_check``).

Two clocks can measure submission time (budgets, evaluation periods, time-to-target):

- ``wall`` (the default, AlgoPerf's): elapsed time. It moves with whatever else the machine runs.
- ``cpu``: the trial process's CPU time, all its threads together (``time.process_time``), with a
  fixed number of torch threads per trial. Another process's load hardly moves it, so repeats on
  a shared machine agree; a submission that waits costs nothing on it, one that computes on more
  threads pays for each of them.

Either way only the submission's own work is on the clock; evaluation is timed apart.
"""

from __future__ import annotations

from time import perf_counter as _perf_counter
from time import process_time as _process_time
from typing import Literal

from algobench.errors import AlgobenchError

ClockName = Literal["wall", "cpu"]
CLOCKS: tuple[ClockName, ...] = ("wall", "cpu")
DEFAULT_CLOCK: ClockName = "wall"


def check_clock(name: str, where: str = "--clock") -> ClockName:
    """``name`` if it is a clock algobench has, else a one-line ``AlgobenchError``."""
    if name not in CLOCKS:
        raise AlgobenchError(f"{where}: unknown clock {name!r}; choose one of {', '.join(CLOCKS)}")
    return name  # type: ignore[return-value]


class Stopwatch:
    """Wall and process-CPU readings from timers captured at import."""

    __slots__ = ("_cpu", "_wall")

    def __init__(self) -> None:
        self._wall = _perf_counter
        self._cpu = _process_time

    def wall(self) -> float:
        return self._wall()

    def cpu(self) -> float:
        return self._cpu()

    def both(self) -> tuple[float, float]:
        """(wall, cpu) now: a reading to measure one stretch of work on either clock."""
        return self._wall(), self._cpu()
