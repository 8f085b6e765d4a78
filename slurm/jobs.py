"""The job every executor runs: one trial, checkpointable so preemption and time-outs requeue it."""

from __future__ import annotations

from typing import Any

import submitit
import torch

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
        summary = run_trial(spec)
        return _time_out_is_timeout(spec, summary)


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
