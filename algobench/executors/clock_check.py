"""The parent's check of a trial's clocks against the wall time it saw itself.

The trial process reports every evaluation row as it is written; the parent timestamps each
report on its own clock. A trial whose clocks are impossible — negative, running backwards,
submission time larger than the wall time around it, or wall time that disagrees with the
parent's by more than scheduling noise allows — is ``invalid`` and never scored. This is what
catches a submission that patches algobench's own timers, which no in-process measure can.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

CLOCK_COLUMNS = ("score", "total_duration", "accumulated_eval_time", "accumulated_logging_time")
RELATIVE_SLACK = 0.25  # scheduling noise between the two processes' readings, relative ...
ABSOLUTE_SLACK_SEC = 0.5  # ... and absolute (message latency, start-up)
LAG_SLACK_SEC = 1.0  # how late a busy parent may read the last report
CPU_SLACK_SEC = 0.05  # the trial's work between its clock reading and the parent's CPU reading
CPU_TICK_SEC = 0.02  # the kernel counts CPU time in clock ticks (/proc/<pid>/stat), twice over a difference


@dataclass(frozen=True)
class Report:
    """One evaluation row as the trial reported it, with the parent's time of receipt, the CPU
    time the kernel had counted for the trial's process by then (None where unknown), and how
    long the parent's reading loop had, by then, been kept from running beyond its polling
    period, in all (``lag``: on a loaded machine, or behind another thread holding the GIL, the
    parent is held up too, and reads the reports queued meanwhile late by that much)."""

    parent_time: float
    row: dict[str, Any]
    cpu: float | None = None
    lag: float = 0.0


def check_clocks(
    reports: Sequence[Report],
    parent_start: float,
    parent_end: float,
    reference: Report | None = None,
    cores: int = 1,
    clock: str = "wall",
) -> str | None:
    """None when the trial's clocks are possible, else a one-line reason.

    A report reaches the parent no earlier than it was sent, and possibly later when the parent
    was busy; so the claimed wall time up to report i may not exceed what the parent saw from the
    process's start to receiving i (claiming more time than passed), and over the whole trial the
    claimed wall time must cover most of what passed between the ``reference`` (the trial's
    report that its training starts, else its first evaluation) and its last evaluation (a clock
    that stands still or runs slow). And a process cannot use more CPU than ``cores`` times the wall
    time it ran: the kernel's count of the trial's CPU time bounds its clock from below however
    short the run and however busy the parent.

    On the ``cpu`` clock, submission time is CPU time of all the process's threads: it may exceed
    the wall time around it, by at most ``cores`` times; and it may not exceed the CPU time the
    kernel counted for the process over the same stretch (a clock that runs fast).
    """
    on_cpu = clock == "cpu"
    per_wall = max(cores, 1) if on_cpu else 1  # submission seconds one wall second can hold
    for index, report in enumerate(reports):
        row = report.row
        values = {column: row.get(column) for column in CLOCK_COLUMNS}
        for column, value in values.items():
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                return f"step {row.get('global_step')}: {column} is {value!r}"
        if values["score"] > per_wall * values["total_duration"] + 1e-3:
            limit = f"{per_wall} x " if on_cpu else ""
            return (
                f"step {row.get('global_step')}: submission time {values['score']:.3f} s exceeds {limit}the "
                f"wall time around it ({values['total_duration']:.3f} s)"
            )
        parts = values["score"] / per_wall + values["accumulated_eval_time"] + values["accumulated_logging_time"]
        if parts > values["total_duration"] + ABSOLUTE_SLACK_SEC:
            return f"step {row.get('global_step')}: submission, eval and logging time add up to more than the wall time"
        if index:
            before = reports[index - 1].row
            for column in CLOCK_COLUMNS:
                if row[column] < before[column]:
                    went = f"{before[column]:.3f} -> {row[column]:.3f} s"
                    return f"step {row.get('global_step')}: {column} went backwards ({went})"
            claimed = row["total_duration"] - reports[0].row["total_duration"]
            seen = report.parent_time - parent_start
            if claimed > seen + ABSOLUTE_SLACK_SEC:
                return (
                    f"step {row.get('global_step')}: the trial claims {claimed:.2f} s of wall time where the "
                    f"parent process saw {seen:.2f} s pass"
                )
    first = reference or (reports[0] if reports else None)
    if reports and first is not None and first is not reports[-1]:
        claimed = reports[-1].row["total_duration"] - first.row["total_duration"]
        if on_cpu:
            reason = _cpu_clock_too_fast(reports)
            if reason is not None:
                return reason
        if first.cpu is not None and reports[-1].cpu is not None:
            used = reports[-1].cpu - first.cpu
            if claimed < (1 - RELATIVE_SLACK) * used / max(cores, 1) - CPU_SLACK_SEC:
                return (
                    f"the trial's process used {used:.2f} s of CPU on {cores} core(s) while its wall clock "
                    f"advanced only {claimed:.2f} s"
                )
        seen = (reports[-1].parent_time - reports[-1].lag) - (first.parent_time - first.lag)
        if claimed < (1 - RELATIVE_SLACK) * seen - LAG_SLACK_SEC:
            return (
                f"the trial's wall clock advanced {claimed:.2f} s between its first and last evaluation while "
                f"the parent process saw {seen:.2f} s pass"
            )
    return None


def _cpu_clock_too_fast(reports: Sequence[Report]) -> str | None:
    """On the ``cpu`` clock, the submission time claimed between the first and the last evaluation
    may not exceed the CPU time the kernel counted for the process in between (both readings are
    of this process, so a resumed trial's earlier segments do not enter)."""
    first, last = reports[0], reports[-1]
    if first is last or first.cpu is None or last.cpu is None:
        return None
    claimed = last.row["score"] - first.row["score"]
    used = last.cpu - first.cpu
    if claimed > used + CPU_SLACK_SEC + CPU_TICK_SEC:
        return f"the trial claims {claimed:.2f} s of CPU time on its clock where the kernel counted {used:.2f} s"
    return None
