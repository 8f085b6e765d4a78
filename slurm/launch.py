"""Fan trials out as submitit jobs (SLURM, local processes, or in-process debug) and wait, bounded.

The executor is a parameter: the same ``TrialJob`` runs on every cluster. On SLURM all trials
go in one job array; locally at most ``array_parallelism`` trial processes run at once. Every
wait has a deadline, and a job that ends without writing its trial's summary (cancelled, out of
memory, out of time) gets a ``failed`` or ``timeout`` summary naming the cause, so a rerun with
``--retry-failed`` picks exactly those trials up again.
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
from algobench.results import SUMMARY_FILE, is_finished, read_json, read_summary, write_json
from algobench.slurm.jobs import TrialJob
from algobench.slurm.profiles import ClusterProfile
from algobench.trial import TrialSpec

CLUSTERS = ("slurm", "local", "debug")
JOB_FILE = "slurm_job.json"
LOG_FOLDER = ".submitit"
TIMEOUT_STATES = ("TIMEOUT", "DEADLINE")
# UNKNOWN: sacct has not seen the job yet (just submitted); waiting is safer than a resubmit.
ACTIVE_STATES = ("PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "SUSPENDED", "RESIZING", "UNKNOWN")


@dataclass
class Launched:
    """A trial and the job running it (None when the trial was already finished)."""

    spec: TrialSpec
    job: submitit.Job | None = None
    outcome: str | None = None  # the trial's final status, or the job state while unfinished
    cause: str | None = None


def check_cluster(cluster: str) -> None:
    """Fail early, and clearly, when SLURM is asked for but cannot be reached."""
    if cluster not in CLUSTERS:
        raise AlgobenchError(f"unknown cluster {cluster!r}; choose one of {', '.join(CLUSTERS)}")
    if cluster != "slurm":
        return
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        raise AlgobenchError("no SLURM found (sbatch/sinfo not on PATH); use --cluster local to run on this machine")
    try:
        probe = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, timeout=15)
    except subprocess.TimeoutExpired:
        raise AlgobenchError("SLURM did not answer within 15 s (sinfo); use --cluster local to run here") from None
    if probe.returncode != 0:
        reason = (probe.stderr or probe.stdout).strip().splitlines()[-1:] or ["no output"]
        raise AlgobenchError(f"SLURM is not reachable (sinfo: {reason[0]}); use --cluster local to run here")


def make_executor(cluster: str, folder: Path, profile: ClusterProfile) -> submitit.AutoExecutor:
    executor = submitit.AutoExecutor(folder=folder / "%j", cluster=cluster)
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
            slurm_setup=list(profile.setup),
            slurm_additional_parameters=additional,
        )
    executor.update_parameters(**{k: v for k, v in parameters.items() if v is not None})
    return executor


def _record_job(spec: TrialSpec, job: submitit.Job, cluster: str) -> None:
    spec.trial_dir().mkdir(parents=True, exist_ok=True)
    write_json(
        spec.trial_dir() / JOB_FILE,
        {"job_id": str(job.job_id), "cluster": cluster, "log_folder": str(job.paths.folder), "submitted": time.time()},
    )


def _submit(
    executor: submitit.AutoExecutor, specs: Sequence[TrialSpec], cluster: str, cpus: int
) -> list[submitit.Job]:
    try:
        if cluster == "slurm":
            with executor.batch():
                jobs = [executor.submit(TrialJob(cpus), spec) for spec in specs]
        else:
            jobs = [executor.submit(TrialJob(cpus), spec) for spec in specs]
    except (submitit.core.utils.FailedJobError, subprocess.CalledProcessError, RuntimeError) as error:
        message = str(error).strip().splitlines()
        detail = next((line for line in message if "error" in line.lower()), message[-1] if message else "")
        raise AlgobenchError(f"sbatch refused the job array: {detail}") from None
    for spec, job in zip(specs, jobs, strict=True):
        _record_job(spec, job, cluster)
    return jobs


def launch(
    specs: Sequence[TrialSpec],
    *,
    cluster: str,
    profile: ClusterProfile,
    retry_failed: bool = False,
    wait: bool = True,
    wait_timeout_sec: float | None = None,
    poll_sec: float = 2.0,
    on_finished: Callable[[Launched], None] | None = None,
) -> list[Launched]:
    """Submit every unfinished trial and (unless ``wait`` is False) wait for them, bounded."""
    check_cluster(cluster)
    if not specs:
        return []
    launched = [Launched(spec) for spec in specs]
    todo = []
    for item in launched:
        trial_dir = item.spec.trial_dir()
        if cluster == "slurm" and read_summary(trial_dir) is None:
            job = recorded_slurm_job(trial_dir)
            if job is not None and job.state in ACTIVE_STATES:
                item.job = job  # still queued or running: wait for it, never submit it twice
                todo.append(item)
                continue
            if job is not None:  # ended without a summary (cancelled, killed): record why
                item.job = job
                _settle(item)
                item.job = None
        if is_finished(trial_dir, retry_failed=retry_failed):
            item.outcome = read_summary(trial_dir)["status"]
        else:
            todo.append(item)
    new = [item for item in todo if item.job is None]
    for item in new:
        (item.spec.trial_dir() / SUMMARY_FILE).unlink(missing_ok=True)  # --retry-failed
    executor = make_executor(cluster, Path(specs[0].experiment_dir) / LOG_FOLDER, profile)
    if cluster == "slurm":
        if new:
            for item, job in zip(new, _submit(executor, [i.spec for i in new], cluster, profile.cpus), strict=True):
                item.job = job
        if not wait:
            return launched
        _wait(todo, [], executor, cluster, profile, wait_timeout_sec, poll_sec, on_finished)
    else:
        _wait([], list(todo), executor, cluster, profile, wait_timeout_sec, poll_sec, on_finished)
    return launched


def _wait(
    running: list[Launched],
    queued: list[Launched],
    executor: submitit.AutoExecutor,
    cluster: str,
    profile: ClusterProfile,
    wait_timeout_sec: float | None,
    poll_sec: float,
    on_finished: Callable[[Launched], None] | None,
) -> None:
    """Poll until every job is done or the deadline passes; locally, keep the pool filled."""
    deadline = None if wait_timeout_sec is None else time.monotonic() + wait_timeout_sec
    running = list(running)
    while running or queued:
        free = max(profile.array_parallelism - len(running), 0) if cluster != "slurm" else 0
        starting, queued = queued[:free], queued[free:]
        if starting:
            jobs = _submit(executor, [i.spec for i in starting], cluster, profile.cpus)
            for item, job in zip(starting, jobs, strict=True):
                item.job = job
                running.append(item)
        for item in list(running):
            if _job_done(item.job, cluster):
                running.remove(item)
                _settle(item)
                if on_finished:
                    on_finished(item)
        if deadline is not None and time.monotonic() > deadline:
            for item in running + queued:
                item.outcome = item.job.state if item.job else "NOT SUBMITTED"
                item.cause = f"still running after the {wait_timeout_sec:.0f} s wait; see `algobench slurm status`"
            return
        if running or queued:
            time.sleep(poll_sec)


def _job_done(job: submitit.Job, cluster: str) -> bool:
    if cluster == "debug":
        with contextlib.suppress(Exception):  # a failure is recorded by _settle
            job.result()  # the debug executor runs the job here, in this process
        return True
    return job.done(force_check=True)


def _settle(item: Launched) -> None:
    """Give a finished job's trial its outcome; a job that died without a summary gets one."""
    summary = read_summary(item.spec.trial_dir())
    if summary is not None:
        item.outcome = summary["status"]
        return
    state = item.job.state
    status = "timeout" if state in TIMEOUT_STATES else "failed"
    cause = f"job {item.job.job_id} ended {state}"
    error = _job_error(item.job)
    if error:
        cause += f": {error}"
    record_failure(item.spec, status, cause)
    item.outcome, item.cause = status, cause


def _job_error(job: submitit.Job) -> str:
    """The last line of the job's exception, else of its stderr (empty when there is neither)."""
    try:
        exception = job.exception()
    except Exception:  # no result file at all (killed, cancelled): fall back to stderr
        exception = None
    if exception is not None:
        lines = [line for line in str(exception).strip().splitlines() if line.strip()]
        return lines[-1] if lines else type(exception).__name__
    try:
        stderr = job.stderr() or ""
    except Exception:
        return ""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def recorded_slurm_job(trial_dir: Path) -> submitit.SlurmJob | None:
    """The SLURM job last recorded for this trial, if any."""
    record = read_json(trial_dir / JOB_FILE)
    if record is None or record.get("cluster") != "slurm":
        return None
    return submitit.SlurmJob(folder=record["log_folder"], job_id=record["job_id"])
