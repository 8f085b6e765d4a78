"""The parent's check of a trial's clocks: impossible clocks are caught, honest ones pass."""

from __future__ import annotations

from algobench.executors.clock_check import Report, check_clocks


def row(step: int, submission: float, wall: float, eval_time: float = 0.0, logging: float = 0.0) -> dict:
    return {
        "global_step": step, "score": submission, "total_duration": wall,
        "accumulated_eval_time": eval_time, "accumulated_logging_time": logging,
    }  # fmt: skip


def honest(steps: int = 5, period: float = 1.0, cpu_per_sec: float = 1.9) -> list[Report]:
    """Evaluations every ``period`` s of wall time, 80 % of it submission time, on 2 cores."""
    return [Report(10.0 + k * period, row(k * 100, 0.8 * k * period, k * period), 5.0 + cpu_per_sec * k * period)
            for k in range(1, steps + 1)]  # fmt: skip


def test_honest_clocks_pass():
    reports = honest()
    start = Report(10.0, {"total_duration": 0.0}, 5.0)
    assert check_clocks(reports, parent_start=8.0, parent_end=16.0, reference=start, cores=2) is None


def test_a_clock_claiming_more_time_than_passed_is_caught():
    reports = honest()
    reports[-1] = Report(reports[-1].parent_time, row(500, 4.0, 50.0), reports[-1].cpu)
    reason = check_clocks(reports, parent_start=8.0, parent_end=16.0, cores=2)
    assert reason is not None and "claims" in reason


def test_a_clock_that_stands_still_is_caught_by_the_parent_wall_time():
    reports = [Report(10.0 + k, row(k * 100, 0.01 * k, 0.012 * k)) for k in range(1, 9)]
    reason = check_clocks(reports, parent_start=9.0, parent_end=18.0, cores=2)
    assert reason is not None and "parent process saw" in reason


def test_a_report_the_busy_parent_read_late_is_not_taken_for_a_slow_clock():
    """A 0.16 s trial whose last report the parent, descheduled on a loaded machine, read 2.4 s
    after the start: its own polling loop saw the delay, so the trial is not blamed for it."""
    start = Report(10.0, {"total_duration": 0.0})
    late = Report(12.4, row(200, 0.12, 0.16))
    reason = check_clocks([late], parent_start=9.0, parent_end=12.5, reference=start)
    assert reason is not None and "parent process saw 2.40 s" in reason
    seen_late = Report(12.4, row(200, 0.12, 0.16), lag=2.2)
    assert check_clocks([seen_late], parent_start=9.0, parent_end=12.5, reference=start) is None


def test_a_slowed_clock_is_caught_by_the_kernels_cpu_count_even_in_a_short_run():
    """0.6 s of CPU on 2 cores needs at least 0.3 s of wall time; the clock claims 0.03 s."""
    start = Report(10.0, {"total_duration": 0.0}, cpu=1.0)
    reports = [Report(10.6, row(2000, 0.02, 0.03), cpu=1.6)]
    reason = check_clocks(reports, parent_start=9.0, parent_end=10.7, reference=start, cores=2)
    assert reason is not None and "1 core" not in reason and "0.60 s of CPU on 2 core(s)" in reason


def test_backwards_and_negative_clocks_are_caught():
    backwards = [Report(1.0, row(10, 1.0, 2.0)), Report(2.0, row(20, 0.5, 3.0))]
    assert "went backwards" in check_clocks(backwards, 0.0, 3.0)
    negative = [Report(1.0, row(10, -1.0, 2.0))]
    assert "score is -1.0" in check_clocks(negative, 0.0, 3.0)
    exceeding = [Report(1.0, row(10, 3.0, 2.0))]
    assert "exceeds the wall time" in check_clocks(exceeding, 0.0, 3.0)
