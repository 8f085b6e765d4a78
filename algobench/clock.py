"""The runner's clocks, bound when algobench is imported, before any submission is.

A submission can rebind ``time.perf_counter`` (or ``time.time``, ``time.monotonic``) in the
process it runs in; the runner never looks its timers up through the ``time`` module, so such a
patch does not reach them. A submission that goes further and patches algobench itself is caught
by the parent process, which checks each trial's clocks against the wall time it saw
(``algobench.executors.clock_check``).
"""

from __future__ import annotations

from time import perf_counter as _perf_counter
from time import process_time as _process_time


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
