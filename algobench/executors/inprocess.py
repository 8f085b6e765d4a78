"""Trials in this process, one after another: for debugging (breakpoints, tracebacks).

Nothing is isolated here: a submission that exits, hangs or patches the clock takes this
process with it, and there is no parent to check its clocks. ``algobench submit`` uses the
process executor unless asked for this one.
"""

from __future__ import annotations

from concurrent.futures import Future

from algobench.executors.base import Executor, InfrastructureError, Summary, failed_future, resolved
from algobench.trial_spec import TrialSpec


class InProcessExecutor(Executor):
    name = "inprocess"

    def __init__(self, *, show_progress: bool = False) -> None:
        self._show_progress = show_progress

    def submit(self, spec: TrialSpec) -> Future[Summary]:
        from algobench.trial import run_trial

        bar = None
        if self._show_progress:
            from algobench.progress import TrialProgressBar

            bar = TrialProgressBar(spec)
        try:
            return resolved(run_trial(spec, on_progress=bar.update if bar else None))
        except InfrastructureError as error:
            return failed_future(error)
        finally:
            if bar is not None:
                bar.close()
