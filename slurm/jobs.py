"""The job every executor runs: one trial, checkpointable so preemption requeues it."""

from __future__ import annotations

from typing import Any

import submitit
import torch

from algobench.trial import TrialSpec, run_trial


class TrialJob(submitit.helpers.Checkpointable):
    """Runs ``run_trial(spec)``; on preemption or time-out submitit requeues the same call.

    The trial state itself is saved by the runner (after every evaluation and every 30 s), so
    the requeued call resumes from the trial directory: nothing needs saving here.
    """

    def __init__(self, cpus: int) -> None:
        self.cpus = cpus

    def __call__(self, spec: TrialSpec) -> dict[str, Any]:
        torch.set_num_threads(max(self.cpus, 1))  # what the job was given, not the node's cores
        return run_trial(spec)
