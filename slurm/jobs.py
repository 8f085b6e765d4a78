"""The job every executor runs: one trial, checkpointable so preemption and time-outs requeue it."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

import submitit
import torch
from submitit.core.job_environment import JobEnvironment, SignalHandler

from algobench.layout import SUMMARY_FILE
from algobench.results import write_json
from algobench.slurm.causes import TIMED_OUT_SIGN
from algobench.trial import run_trial
from algobench.trial_spec import TrialSpec


class TrialJob(submitit.helpers.Checkpointable):
    """Runs ``run_trial(spec)``; on preemption or time-out submitit requeues the same call.

    The trial state itself is saved by the runner (after every evaluation and every ~30 s), so
    the requeued call resumes from the trial directory: ``checkpoint`` (inherited) only has to
    hand submitit this same call again. The trial gets ``spec.threads`` torch threads: the cores
    its job was given (``SubmititExecutor`` sets them from the profile), not the node's.
    """

    def __call__(self, spec: TrialSpec) -> dict[str, Any]:
        torch.set_num_threads(max(spec.threads, 1))
        with _requeue_ends_the_process():
            summary = run_trial(spec)
        return _time_out_is_timeout(spec, summary)


@contextlib.contextmanager
def _requeue_ends_the_process() -> Iterator[None]:
    """Make submitit's requeue on preemption or time-out end this process, whatever code it lands in.

    On SLURM's warning signal submitit requeues the job, then raises ``SystemExit`` wherever the
    trial happens to be. Inside a submission's ``update_params`` the runner takes an exit as the
    submission's own (its failure), which would record a preempted trial as failed. So once the
    requeue is done the process ends here, at once, as a kill would end it: the requeued job
    resumes the trial from its last checkpoint. A time-out that is not requeued any more still
    raises inside the trial (``UncompletedJobError``), which records it (``_time_out_is_timeout``).
    """
    usr = JobEnvironment._usr_sig()
    handler = signal.getsignal(usr)
    if threading.current_thread() is not threading.main_thread() or not isinstance(
        getattr(handler, "__self__", None), SignalHandler
    ):
        yield  # not in a submitit job (debug runs in-process, without submitit's handler)
        return

    def requeue_then_exit(signum: int, frame: Any) -> None:
        try:
            handler(signum, frame)
        except SystemExit as requeued:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(requeued.code if isinstance(requeued.code, int) else 1)

    signal.signal(usr, requeue_then_exit)
    try:
        yield
    finally:
        signal.signal(usr, handler)


def _time_out_is_timeout(spec: TrialSpec, summary: dict[str, Any]) -> dict[str, Any]:
    """A time-out that submitit does not requeue any more is raised inside the trial, which
    records it as a failure; it is the job's time limit that ended the trial, so say so."""
    error = summary.get("error") or ""
    if summary.get("status") != "failed" or "UncompletedJobError" not in error or TIMED_OUT_SIGN not in error:
        return summary
    summary = {
        **summary,
        "status": "timeout",
        "error": f"out of time: the job reached its --time limit after its requeues ({error})",
    }
    write_json(spec.trial_dir() / SUMMARY_FILE, summary)
    return summary
