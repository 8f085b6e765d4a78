"""Why a job ended without its trial's summary, in words a user can act on.

SLURM says how a job ended (``sacct``'s state); the job's stderr says more when SLURM's own
word is vague (memory enforced by polling ends a job FAILED, with "exceeded memory limit" in
its stderr). A trial whose job ran out of time gets status ``timeout``, any other ``failed``;
both are rerun by ``--retry-failed``.
"""

from __future__ import annotations

from dataclasses import dataclass

TIMEOUT_STATES = ("TIMEOUT", "DEADLINE")
# UNKNOWN: sacct has not seen the job yet (just submitted); waiting is safer than a resubmit.
ACTIVE_STATES = (
    "PENDING", "RUNNING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "CONFIGURING", "COMPLETING",
    "SUSPENDED", "RESIZING", "PREEMPTED", "SIGNALING", "STAGE_OUT", "UNKNOWN",
)  # fmt: skip
OUT_OF_MEMORY_SIGNS = (
    "exceeded memory limit",
    "exceeded job memory limit",
    "out_of_memory",
    "oom-kill",
    "oom_kill",
    "out of memory",
)
# What submitit raises inside the job when a time-out is not requeued (too many, or not checkpointable).
TIMED_OUT_SIGN = "timed-out"
# SLURM's warning before the time limit (or preemption) killed the job before its handler was set.
EARLY_SIGNAL_SIGN = "user defined signal 2"

EXPLANATIONS = {
    "CANCELLED": "cancelled (scancel, or an administrator)",
    "NODE_FAIL": "its node failed",
    "BOOT_FAIL": "its node failed to boot",
    "PREEMPTED": "preempted and not requeued",
    "COMPLETED": "the job ended without the trial writing its summary",
    "FAILED": "the job's process failed",
}


@dataclass(frozen=True)
class JobEnd:
    """What a finished job's trial is recorded as."""

    status: str  # "failed" or "timeout"
    cause: str


def base_state(state: str) -> str:
    """sacct's state without its suffix ("CANCELLED by 0" -> "CANCELLED")."""
    return state.split()[0].rstrip("+").upper() if state.strip() else "UNKNOWN"


def is_active(state: str) -> bool:
    return base_state(state) in ACTIVE_STATES


def explain_job_end(
    job_id: str, state: str, error_text: str, *, time_min: float | None = None, mem_gb: float | None = None
) -> JobEnd:
    """The trial status and the cause of a job that ended with no summary from the trial.

    ``error_text`` is the job's exception or the tail of its stderr (either may be empty).
    """
    state_name = base_state(state)
    lowered = error_text.lower()
    detail = _last_line(error_text)
    limit = f" of {time_min:g} min" if time_min else ""
    if state_name in TIMEOUT_STATES or TIMED_OUT_SIGN in lowered:
        return JobEnd("timeout", f"job {job_id} {state}: out of time (its --time limit{limit}, after any requeues)")
    if EARLY_SIGNAL_SIGN in lowered:
        return JobEnd(
            "timeout",
            f"job {job_id} {state}: killed by SLURM's time-limit (or preemption) warning before it could "
            f"checkpoint; give it a longer --time than{limit}",
        )
    if state_name == "OUT_OF_MEMORY" or any(sign in lowered for sign in OUT_OF_MEMORY_SIGNS):
        limit = f" of {mem_gb:g} GB" if mem_gb else ""
        return JobEnd("failed", f"job {job_id} {state}: out of memory (its --mem limit{limit})")
    explanation = EXPLANATIONS.get(state_name, "ended")
    cause = f"job {job_id} {state}: {explanation}"
    if detail and state_name != "CANCELLED":
        cause += f" ({detail})"
    return JobEnd("failed", cause)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
