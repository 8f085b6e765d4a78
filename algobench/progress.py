"""A progress bar per running trial, drawn by the process that watches it (never by the trial's
own process, whose output goes to its trial directory)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from algobench.runner import Progress
    from algobench.trial_spec import TrialSpec


class TrialProgressBar:
    """A tqdm bar: step, submission time against the budget, last metric against the target."""

    def __init__(self, spec: TrialSpec) -> None:
        from tqdm import tqdm

        self.bar = tqdm(
            total=None, unit="step", leave=False, dynamic_ncols=True,
            desc=f"{spec.workload_name} s{spec.study} t{spec.trial}",
        )  # fmt: skip

    def update(self, progress: Progress) -> None:
        metric = "-" if progress.last_metric is None else f"{progress.last_metric:.4f}"
        self.bar.n = progress.global_step
        self.bar.set_postfix_str(
            f"{progress.submission_time:.1f}/{progress.budget_sec:.0f}s "
            f"{progress.metric_name} {metric} (target {progress.target:.4f})"
        )

    def close(self) -> None:
        self.bar.close()
