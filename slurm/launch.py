"""Run a planned list of trials as submitit jobs, picking up where an earlier run left off.

``launch`` is what ``algobench slurm submit`` does: it sorts the trials (``triage``: finished,
still on as an earlier SLURM job, or to run), then hands the ones to run to the same driver
loop as ``algobench submit`` (``algobench.tuning.driver.drive_specs``) with a
``SubmititExecutor``, and follows the earlier jobs beside them. A trial is never submitted twice
while its job is queued or running.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import wait as wait_for_futures
from dataclasses import dataclass
from pathlib import Path

import submitit

from algobench.errors import AlgobenchError
from algobench.executors.base import Summary
from algobench.layout import SUMMARY_FILE, TrialStatus
from algobench.results import read_summary
from algobench.slurm.causes import base_state, is_active
from algobench.slurm.executor import (
    END_CONFIRM_SEC,
    LOG_FOLDER,
    STUCK_STATES,
    UNKNOWN_GRACE_SEC,
    SubmititExecutor,
    settle,
)
from algobench.slurm.profiles import ClusterProfile
from algobench.slurm.reachable import check_cluster
from algobench.slurm.records import job_states, read_record, recorded_slurm_job
from algobench.trial_spec import TrialSpec
from algobench.tuning.driver import drive_specs


@dataclass
class Launched:
    """A trial and the job running it (None when the trial was already finished)."""

    spec: TrialSpec
    job: submitit.Job | None = None
    outcome: str | None = None  # the trial's final status, or the job state while unfinished
    cause: str | None = None  # why a trial failed or timed out, or why it is still unfinished
    submitted: float = 0.0  # when its job was submitted (time.time())


def launch(
    specs: Sequence[TrialSpec],
    *,
    cluster: str,
    profile: ClusterProfile,
    retry_failed: bool = False,
    wait: bool = True,
    wait_timeout_sec: float | None = None,
    poll_sec: float = 2.0,
    unknown_grace_sec: float = UNKNOWN_GRACE_SEC,
    on_finished: Callable[[Launched], None] | None = None,
) -> list[Launched]:
    """Submit every unfinished trial and (unless ``wait`` is False) wait for them, bounded.

    Trials with a final summary are skipped (``retry_failed`` also reruns failed and timed-out
    ones); a trial whose SLURM job is still queued or running is waited for, never submitted
    twice. ``on_finished`` hears each trial as it ends. Returns one ``Launched`` per spec, in order.
    """
    check_cluster(cluster, profile.partition)
    launched = [Launched(spec) for spec in specs]
    attached, new = triage(launched, cluster, profile, retry_failed, unknown_grace_sec)
    if not attached and not new:
        return launched
    by_dir = {item.spec.trial_dir(): item for item in launched}
    with SubmititExecutor(
        cluster, profile, folder=Path(specs[0].experiment_dir) / LOG_FOLDER, queued=len(new),
        poll_sec=poll_sec, unknown_grace_sec=unknown_grace_sec, wait_timeout_sec=wait_timeout_sec,
    ) as executor:  # fmt: skip

        def finished(spec: TrialSpec, summary: Summary | None, error: BaseException | None) -> None:
            item = by_dir[spec.trial_dir()]
            item.job = executor.jobs.get(spec.trial_dir(), item.job)
            if summary is None:  # still unfinished when the wait ended, or not submitted
                item.outcome = executor.job_state(item.job) if item.job else "NOT SUBMITTED"
                item.cause = str(error) if error else None
                return
            item.outcome, item.cause = summary["status"], _first_line(summary.get("error"))
            if on_finished:
                on_finished(item)

        if not wait:
            executor.submit_many([item.spec for item in new])
            for item in new:
                item.job = executor.jobs[item.spec.trial_dir()]
            return launched
        followed = [executor.follow(item.spec, item.job, item.submitted) for item in attached]
        for item, future in zip(attached, followed, strict=True):
            future.add_done_callback(lambda done, spec=item.spec: _report(finished, spec, done))
        drive_specs([item.spec for item in new], executor, on_result=finished)
        wait_for_futures(followed)
    return launched


def _report(finished: Callable, spec: TrialSpec, future: Future[Summary]) -> None:
    if not future.cancelled():
        error = future.exception()
        finished(spec, None if error else future.result(), error)


def triage(
    launched: Sequence[Launched], cluster: str, profile: ClusterProfile, retry_failed: bool, grace_sec: float
) -> tuple[list[Launched], list[Launched]]:
    """Sort the trials: (still on as a recorded SLURM job, to submit); the rest are finished.

    A recorded job that ended without its trial's summary (cancelled, killed while nothing
    watched it) gets one now, naming the cause; a job that sacct has not known about for
    ``grace_sec`` is lost and its trial submitted again. With ``retry_failed`` a failed or
    timed-out trial is submitted again (its summary is removed). Asks sacct once, for all, and
    once more, ``END_CONFIRM_SEC`` later, about the jobs it said had ended.
    """
    askable = shutil.which("sacct") is not None  # without sacct here, no recorded job can be asked about
    recorded = {}
    for item in launched:
        trial_dir = item.spec.trial_dir()
        job = recorded_slurm_job(trial_dir) if askable and read_summary(trial_dir) is None else None
        if job is not None:
            recorded[trial_dir] = (job, (read_record(trial_dir) or {}).get("submitted", 0.0))
    states = job_states(str(job.job_id) for job, _ in recorded.values()) if recorded else {}
    ended = [job_id for job_id, state in states.items() if not is_active(state)]
    if ended:  # a job between two attempts (requeued) may look ended: ask again before recording an end
        time.sleep(END_CONFIRM_SEC)
        states.update(job_states(ended))
    attached, new = [], []
    for item in launched:
        trial_dir = item.spec.trial_dir()
        if trial_dir in recorded:
            job, submitted = recorded[trial_dir]
            state = states[str(job.job_id)]
            lost = base_state(state) in STUCK_STATES and time.time() - submitted > grace_sec
            if is_active(state) and not lost:
                if cluster != "slurm":
                    raise AlgobenchError(
                        f"{trial_dir} is still {state} as SLURM job {job.job_id}; wait for it "
                        f"(algobench slurm status) or scancel it before running it with --cluster {cluster}"
                    )
                item.job, item.submitted = job, submitted
                attached.append(item)
                continue
            if not lost:  # ended without a summary (cancelled, killed): record why
                settle(item.spec, job, state, profile)
        summary = read_summary(trial_dir)
        status = TrialStatus.parse(summary["status"]) if summary else None
        if summary is None or (retry_failed and status is not None and status.retryable):
            (trial_dir / SUMMARY_FILE).unlink(missing_ok=True)
            new.append(item)
        else:
            item.outcome, item.cause = summary["status"], _first_line(summary.get("error"))
    return attached, new


def _first_line(text: str | None) -> str | None:
    return text.strip().splitlines()[0] if text and text.strip() else None
