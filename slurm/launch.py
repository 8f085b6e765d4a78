"""Fan trials out as submitit jobs (SLURM, local processes, or in-process debug) and wait, bounded.

The executor is a parameter: the same ``TrialJob`` runs on every cluster. On SLURM all trials
go in one job array; locally at most ``array_parallelism`` trial processes run at once. Every
wait is bounded: one ``sacct`` call per poll follows all jobs, a job that SLURM's accounting
never knows about is given up after a grace period, and a job that ends without writing its
trial's summary (cancelled, out of memory, out of time) gets a ``failed`` or ``timeout``
summary naming the cause, so a rerun with ``--retry-failed`` picks exactly those trials up.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import submitit

from algobench.errors import AlgobenchError
from algobench.experiment import record_failure
from algobench.results import RETRYABLE_STATUSES, SUMMARY_FILE, read_summary
from algobench.slurm.causes import base_state, explain_job_end, is_active
from algobench.slurm.jobs import TrialJob
from algobench.slurm.profiles import ClusterProfile
from algobench.slurm.reachable import check_cluster
from algobench.slurm.records import read_record, record_job, recorded_slurm_job
from algobench.trial import TrialSpec

LOG_FOLDER = ".submitit"  # under the experiment directory: sbatch scripts, pickles, job logs
# A job sacct has not heard of this long after its submission is taken as lost (accounting off
# or purged); states that submitit counts as unfinished but that can also be final get the same.
UNKNOWN_GRACE_SEC = 180.0
STUCK_STATES = ("UNKNOWN", "PREEMPTED")
MAX_POLL_SEC = 10.0  # sacct is asked at most this seldom while jobs run (backing off from poll_sec)


@dataclass
class Launched:
    """A trial and the job running it (None when the trial was already finished)."""

    spec: TrialSpec
    job: submitit.Job | None = None
    outcome: str | None = None  # the trial's final status, or the job state while unfinished
    cause: str | None = None  # why a trial failed or timed out, or why it is still unfinished
    submitted: float = 0.0  # when its job was submitted (time.time())


def make_executor(cluster: str, folder: Path, profile: ClusterProfile) -> submitit.AutoExecutor:
    """An executor for ``cluster`` asking for the profile's resources (the same on every cluster)."""
    executor = submitit.AutoExecutor(
        folder=folder / "%j",
        cluster=cluster,
        slurm_max_num_timeout=profile.timeout_requeues,  # each cluster reads its own prefix only
        local_max_num_timeout=profile.timeout_requeues,
    )
    parameters: dict[str, Any] = {
        "timeout_min": profile.time_min,
        "mem_gb": profile.mem_gb,
        "cpus_per_task": profile.cpus,
        "gpus_per_node": profile.gpus,
    }
    if cluster == "slurm":
        additional = dict(profile.additional)
        if profile.account:
            additional["account"] = profile.account
        parameters.update(
            slurm_partition=profile.partition,
            slurm_array_parallelism=profile.array_parallelism,
            slurm_signal_delay_s=signal_delay_sec(profile.time_min),
            slurm_setup=list(profile.setup),
            slurm_additional_parameters=additional,
        )
    executor.update_parameters(**{k: v for k, v in parameters.items() if v is not None})
    return executor


def signal_delay_sec(time_min: int) -> int:
    """How long before its time limit a job is warned (USR2) to checkpoint and requeue.

    submitit's 90 s is longer than a short job: the signal would come at its start, before the
    handler is installed, and kill it. A fifth of the limit, at most 90 s, leaves time either way.
    """
    return max(5, min(90, time_min * 60 // 5))


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
    twice. Returns one ``Launched`` per spec, in order.
    """
    check_cluster(cluster, profile.partition)
    launched = [Launched(spec) for spec in specs]
    recorded = _recorded_jobs([item.spec for item in launched])
    attached: list[Launched] = []
    new: list[Launched] = []
    for item in launched:
        verdict = _triage(item, recorded.get(item.spec.trial_dir()), cluster, profile, retry_failed, unknown_grace_sec)
        if verdict == "attached":
            attached.append(item)
        elif verdict == "new":
            (item.spec.trial_dir() / SUMMARY_FILE).unlink(missing_ok=True)  # --retry-failed
            new.append(item)
    if not attached and not new:
        return launched
    executor = make_executor(cluster, Path(specs[0].experiment_dir) / LOG_FOLDER, profile)
    if cluster == "slurm":
        _submit(executor, new, cluster, profile.cpus)
        if wait:
            _wait(attached + new, [], executor, cluster, profile, wait_timeout_sec, poll_sec,
                  unknown_grace_sec, on_finished)  # fmt: skip
    else:
        _wait([], new, executor, cluster, profile, wait_timeout_sec, poll_sec, unknown_grace_sec, on_finished)
    return launched


def _recorded_jobs(specs: Sequence[TrialSpec]) -> dict[Path, tuple[submitit.SlurmJob, float]]:
    """Each unfinished trial's recorded SLURM job (and its submission time), asked about in one
    sacct call; empty where sacct is not here to ask."""
    if shutil.which("sacct") is None:
        return {}
    recorded = {}
    for spec in specs:
        trial_dir = spec.trial_dir()
        job = recorded_slurm_job(trial_dir) if read_summary(trial_dir) is None else None
        if job is not None:
            recorded[trial_dir] = (job, (read_record(trial_dir) or {}).get("submitted", 0.0))
    if recorded:
        submitit.SlurmJob.watcher.update()
    return recorded


def _triage(
    item: Launched,
    recorded: tuple[submitit.SlurmJob, float] | None,
    cluster: str,
    profile: ClusterProfile,
    retry_failed: bool,
    grace_sec: float,
) -> str:
    """ "finished", "attached" (its SLURM job is still on) or "new" (to submit)."""
    trial_dir = item.spec.trial_dir()
    summary = read_summary(trial_dir)
    if summary is None and recorded is not None:
        job, submitted = recorded
        state = job.watcher.get_state(job.job_id, mode="cache")
        lost = base_state(state) in STUCK_STATES and time.time() - submitted > grace_sec
        if is_active(state) and not lost:
            if cluster != "slurm":
                raise AlgobenchError(
                    f"{trial_dir} is still {state} as SLURM job {job.job_id}; wait for it "
                    f"(algobench slurm status) or scancel it before running it with --cluster {cluster}"
                )
            item.job, item.submitted = job, submitted
            return "attached"
        if not lost:  # ended without a summary (cancelled, killed): record why
            item.job = job
            _settle(item, profile)
            item.job = None
            summary = read_summary(trial_dir)
    if summary is None:
        return "new"
    if retry_failed and summary["status"] in RETRYABLE_STATUSES:
        return "new"
    item.outcome = summary["status"]
    item.cause = _first_line(summary.get("error"))
    return "finished"


def _submit(executor: submitit.AutoExecutor, items: Sequence[Launched], cluster: str, cpus: int) -> None:
    """Submit the items' trials (on SLURM as one job array) and record each job in its trial dir."""
    if not items:
        return
    specs = [item.spec for item in items]
    try:
        if cluster == "slurm":
            with executor.batch():
                jobs = [executor.submit(TrialJob(cpus), spec) for spec in specs]
        else:
            jobs = [executor.submit(TrialJob(cpus), spec) for spec in specs]
    except (submitit.core.utils.FailedJobError, subprocess.CalledProcessError, OSError) as error:
        lines = list(dict.fromkeys(line.strip() for line in str(error).splitlines() if line.strip()))
        detail = "; ".join(line for line in lines if "error" in line.lower()) or (lines[-1] if lines else "")
        raise AlgobenchError(f"{cluster} refused the trial jobs: {detail}") from None
    for item, job in zip(items, jobs, strict=True):
        item.spec.trial_dir().mkdir(parents=True, exist_ok=True)
        record_job(item.spec.trial_dir(), job, cluster)
        item.job, item.submitted = job, time.time()


def _wait(
    running: list[Launched],
    queued: list[Launched],
    executor: submitit.AutoExecutor,
    cluster: str,
    profile: ClusterProfile,
    wait_timeout_sec: float | None,
    poll_sec: float,
    grace_sec: float,
    on_finished: Callable[[Launched], None] | None,
) -> None:
    """Poll until every job is done or the deadline passes; locally, keep the pool filled."""
    deadline = None if wait_timeout_sec is None else time.monotonic() + wait_timeout_sec
    running, queued = list(running), list(queued)
    delay = poll_sec
    while running or queued:
        limit = len(queued) if cluster == "debug" else max(profile.array_parallelism, 1)
        free = max(limit - len(running), 0)
        starting, queued = queued[:free], queued[free:]
        _submit(executor, starting, cluster, profile.cpus)
        running += starting
        ended = _ended(running, cluster, grace_sec)
        for item, lost_cause in ended:
            running.remove(item)
            _settle(item, profile, lost_cause)
            if on_finished:
                on_finished(item)
        if deadline is not None and time.monotonic() > deadline:
            for item in running + queued:
                item.outcome = item.job.state if item.job else "NOT SUBMITTED"
                item.cause = f"still unfinished after the {wait_timeout_sec:g} s wait; see `algobench slurm status`"
            return
        if running or queued:
            calm = cluster == "slurm" and not ended and not starting  # local polls are cheap: no back-off
            delay = min(delay * 1.5, MAX_POLL_SEC) if calm else poll_sec
            time.sleep(delay if cluster != "debug" else 0)


def _ended(running: list[Launched], cluster: str, grace_sec: float) -> list[tuple[Launched, str | None]]:
    """The running items whose jobs have ended, each with a cause when its job was lost."""
    if cluster == "debug":
        for item in running:
            with contextlib.suppress(Exception):  # a failure is recorded by _settle
                item.job.result()  # the debug executor runs the job here, in this process
        return [(item, None) for item in running]
    if cluster != "slurm":
        return [(item, None) for item in running if item.job.done()]
    watcher = submitit.SlurmJob.watcher  # shared by all SLURM jobs: one sacct call asks about all
    watcher.update()
    ended = []
    for item in running:
        job = item.job
        if job.paths.result_pickle.exists() or watcher.is_done(job.job_id, mode="cache"):
            ended.append((item, None))
            continue
        state = base_state(watcher.get_state(job.job_id, mode="cache"))
        if state in STUCK_STATES and time.time() - item.submitted > grace_sec:
            ended.append((item, f"job {job.job_id} still {state} in sacct {grace_sec:g} s after submission: "
                                "lost (is accounting, slurmdbd, running?)"))  # fmt: skip
    return ended


def _settle(item: Launched, profile: ClusterProfile, lost_cause: str | None = None) -> None:
    """Give a finished job's trial its outcome; a job that died without a summary gets one."""
    summary = read_summary(item.spec.trial_dir())
    if summary is not None:
        item.outcome, item.cause = summary["status"], _first_line(summary.get("error"))
        return
    if lost_cause is not None:
        status, cause = "failed", lost_cause
    else:
        end = explain_job_end(
            str(item.job.job_id), item.job.state, _job_error(item.job), time_min=profile.time_min, mem_gb=profile.mem_gb
        )
        status, cause = end.status, end.cause
    record_failure(item.spec, status, cause)
    item.outcome, item.cause = status, cause


def _job_error(job: submitit.Job) -> str:
    """The job's exception if it left one, else the tail of its stderr (empty when neither).

    Read from the files directly: submitit's ``job.exception()`` waits for a result file.
    """
    if job.paths.result_pickle.exists():
        with contextlib.suppress(Exception):
            outcome, result = submitit.core.utils.pickle_load(job.paths.result_pickle)
            if outcome == "error":
                return str(result)
    with contextlib.suppress(Exception):
        stderr = job.stderr() or ""
        return "\n".join(stderr.strip().splitlines()[-30:])
    return ""


def _first_line(text: str | None) -> str | None:
    return text.strip().splitlines()[0] if text and text.strip() else None
