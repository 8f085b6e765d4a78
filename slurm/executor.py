"""``SubmititExecutor``: trials as submitit jobs, on SLURM, as local processes, or in this process.

The cluster is a parameter, not a code path: every trial is the same ``TrialJob`` submitted through
``submitit.AutoExecutor(cluster=...)``, and every future resolves to the trial's summary. Only
three things differ, because submitit's executors differ in them:

- **following jobs**: a SLURM job's state comes from accounting, so one background thread asks
  ``sacct`` once per poll about every job (through a watcher of this executor's own, not the one
  submitit shares between all jobs of a process) and gives up a job that accounting never knows
  about after a grace period; a local job knows its own state (its process);
- **debug jobs run when their result is asked for**, in the asking thread: this executor asks at
  once, so the trial runs in the caller's thread (a debugger and Ctrl-C reach it);
- **how many trials run at once**: SLURM runs at most ``array_parallelism`` of a job array and
  queues the rest; on this machine trials share its cores fairly (``fair_local_parallelism``).

A job that ends without its trial's summary (cancelled, out of memory, out of time, lost) gets a
``failed`` or ``timeout`` summary naming the cause, so a rerun with ``--retry-failed`` picks
exactly those trials up. Every wait is bounded (a job ends by its time limit or is given up as
lost); ``wait_timeout_sec`` ends it sooner, leaving the jobs running: their futures then fail
with ``InfrastructureError`` (nothing final was written, a rerun waits for them again).
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import submitit
from submitit.slurm.slurm import SlurmInfoWatcher

from algobench.errors import AlgobenchError
from algobench.executors.base import Executor, InfrastructureError, Summary, available_cores, failed_future
from algobench.layout import TrialStatus
from algobench.results import read_summary
from algobench.slurm.causes import base_state, explain_job_end
from algobench.slurm.jobs import TrialJob
from algobench.slurm.profiles import ClusterProfile
from algobench.slurm.reachable import CLUSTERS
from algobench.slurm.records import record_job
from algobench.trial import record_failure
from algobench.trial_spec import TrialSpec

LOG_FOLDER = ".submitit"  # under the experiment directory: sbatch scripts, pickles, job logs
# A job sacct has not heard of this long after its submission is taken as lost (accounting off
# or purged); states that submitit counts as unfinished but that can also be final get the same.
UNKNOWN_GRACE_SEC = 180.0
STUCK_STATES = ("UNKNOWN", "PREEMPTED")
MAX_POLL_SEC = 10.0  # sacct is asked at most this seldom while jobs run (backing off from poll_sec)
# An end that sacct reports while the trial has written no summary is believed only when a second
# look this much later agrees: a job being requeued (preempted, timed out) may look ended between
# its two attempts.
END_CONFIRM_SEC = 5.0


def fair_local_parallelism(requested: int, cpus: int, cores: int) -> int:
    """How many trials of ``cpus`` cores each may run side by side on ``cores`` cores.

    Trials that share cores slow each other down, so side by side they would measure less than
    one alone (two trials on two cores, two threads each, both ran out of time where one at a
    time both reached the target): at most ``cores // cpus``, at least one.
    """
    return max(1, min(requested, cores // max(cpus, 1)))


def signal_delay_sec(time_min: int) -> int:
    """How long before its time limit a job is warned (USR2) to checkpoint and requeue.

    submitit's 90 s is longer than a short job: the signal would come at its start, before the
    handler is installed, and kill it. A fifth of the limit, at most 90 s, leaves time either way.
    """
    return max(5, min(90, time_min * 60 // 5))


def make_submitit_executor(cluster: str, folder: Path, profile: ClusterProfile) -> submitit.AutoExecutor:
    """A submitit executor asking for the profile's resources, the same on every cluster.

    SLURM-only settings carry submitit's ``slurm_`` prefix, which the other clusters ignore.
    """
    executor = submitit.AutoExecutor(
        folder=folder / "%j",
        cluster=cluster,
        slurm_max_num_timeout=profile.timeout_requeues,  # each cluster reads its own prefix only
        local_max_num_timeout=profile.timeout_requeues,
    )
    additional = dict(profile.additional)
    if profile.account:
        additional["account"] = profile.account
    parameters: dict[str, Any] = {
        "timeout_min": profile.time_min,
        "mem_gb": profile.mem_gb,
        "cpus_per_task": profile.cpus,
        "gpus_per_node": profile.gpus,
        "slurm_partition": profile.partition,
        "slurm_array_parallelism": profile.array_parallelism,
        "slurm_signal_delay_s": signal_delay_sec(profile.time_min),
        "slurm_setup": list(profile.setup),
        "slurm_additional_parameters": additional,
    }
    executor.update_parameters(**{k: v for k, v in parameters.items() if v is not None})
    return executor


def job_error(job: submitit.Job) -> str:
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


def settle(
    spec: TrialSpec, job: submitit.Job, state: str, profile: ClusterProfile, lost_cause: str | None = None
) -> Summary:
    """The summary of a trial whose job has ended: the one the trial wrote, else one recording why
    there is none (``lost_cause``, or the cause read from the job's state and stderr)."""
    summary = read_summary(spec.trial_dir())
    if summary is not None:
        return summary
    if lost_cause is not None:
        return record_failure(spec, TrialStatus.FAILED, lost_cause)
    end = explain_job_end(str(job.job_id), state, job_error(job), time_min=profile.time_min, mem_gb=profile.mem_gb)
    return record_failure(spec, TrialStatus(end.status), end.cause)


@dataclass
class _Followed:
    """A job this executor waits for, and the future its trial's summary goes to."""

    spec: TrialSpec
    job: submitit.Job
    future: Future[Summary]
    submitted: float  # time.time() of its submission


class SubmititExecutor(Executor):
    """Runs each trial as a submitit job on ``cluster`` ("slurm", "local" or "debug").

    ``folder`` holds submitit's sbatch scripts, pickles and job logs (``launch`` uses
    ``<experiment>/.submitit``). ``queued``: trials a driver may keep waiting in SLURM's queue
    beside the ``array_parallelism`` running ones (``launch`` passes its plan's length, so that
    a planned sweep is one job array); there is no queue locally. ``cores``: the cores local
    trials share (default: those this process may run on). Every wait ends ``wait_timeout_sec``
    after the executor is made (None: when the jobs end); the jobs go on.
    """

    name = "submitit"

    def __init__(
        self,
        cluster: str = "slurm",
        profile: ClusterProfile | None = None,
        *,
        folder: str | Path,
        queued: int = 0,
        cores: int | None = None,
        poll_sec: float = 2.0,
        unknown_grace_sec: float = UNKNOWN_GRACE_SEC,
        wait_timeout_sec: float | None = None,
    ) -> None:
        if cluster not in CLUSTERS:
            raise AlgobenchError(f"unknown cluster {cluster!r}; choose one of {', '.join(CLUSTERS)}")
        self.cluster = cluster
        self.profile = profile or ClusterProfile()
        self.folder = Path(folder)
        self.queued = max(queued, 0)
        self.cores = cores or available_cores()
        self.poll_sec = poll_sec
        self.unknown_grace_sec = unknown_grace_sec
        self.wait_timeout_sec = wait_timeout_sec
        self.jobs: dict[Path, submitit.Job] = {}  # trial directory -> the job running it
        self._deadline = None if wait_timeout_sec is None else time.monotonic() + wait_timeout_sec
        self._submitit: submitit.AutoExecutor | None = None
        self._accounting = SlurmInfoWatcher() if cluster == "slurm" else None  # sacct, for this executor's jobs
        self._ends_seen: dict[str, float] = {}  # job id -> when sacct first said it ended, no summary yet
        self._followed: list[_Followed] = []
        self._wake = threading.Condition()
        self._watcher: threading.Thread | None = None
        self._news = False  # jobs were added since the last poll (poll soon, no back-off)
        self._closed = False
        self._parallelism = self._trials_at_once()

    def _trials_at_once(self) -> int:
        requested, cpus = self.profile.array_parallelism, self.profile.cpus
        if self.cluster == "slurm":  # the job array runs at most array_parallelism; SLURM queues the rest
            return max(requested, 1) + self.queued
        if self.cluster == "debug":  # a trial runs in this process when it is submitted
            return 1
        fair = fair_local_parallelism(requested, cpus, self.cores)
        if fair < requested:
            warnings.warn(
                f"--array-parallelism {requested} at --cpus {cpus} per trial is more than this machine's "
                f"{self.cores} cores hold; running {fair} at once, so that trials side by side measure what "
                "each would alone",
                stacklevel=3,
            )
        elif cpus > self.cores:
            warnings.warn(
                f"--cpus {cpus} is more than this machine's {self.cores} cores: each trial's {cpus} threads share them",
                stacklevel=3,
            )
        return fair

    @property
    def parallelism(self) -> int:
        return self._parallelism

    def submit(self, spec: TrialSpec) -> Future[Summary]:
        return self.submit_many([spec])[0]

    def submit_many(self, specs: Sequence[TrialSpec]) -> list[Future[Summary]]:
        """Submit the trials as one job array (on SLURM) and record each job in its trial dir.

        Each trial gets the profile's cores as its torch threads (``spec.threads``), which its
        results record. Raises ``AlgobenchError`` when the cluster refuses the jobs.
        """
        if self._closed:
            raise RuntimeError("this SubmititExecutor is closed")
        if not specs:
            return []
        if self._expired():
            return [failed_future(InfrastructureError(self._unfinished_message("not submitted"))) for _ in specs]
        specs = [replace(spec, threads=max(self.profile.cpus, 1)) for spec in specs]
        jobs = self._submit_jobs(specs)
        submitted = time.time()
        futures = []
        for spec, job in zip(specs, jobs, strict=True):
            spec.trial_dir().mkdir(parents=True, exist_ok=True)
            record_job(spec.trial_dir(), job, self.cluster)
            self.jobs[spec.trial_dir()] = job
            if self.cluster == "debug":
                futures.append(self._run_here(spec, job))
            else:
                futures.append(self.follow(spec, job, submitted))
        return futures

    def follow(self, spec: TrialSpec, job: submitit.Job, submitted: float) -> Future[Summary]:
        """A future for the summary of a trial whose job is already on (submitted at ``submitted``,
        by this executor or by an earlier command), so that it is waited for, not run twice."""
        future: Future[Summary] = Future()
        with self._wake:
            if self._closed:
                raise RuntimeError("this SubmititExecutor is closed")
            self.jobs[spec.trial_dir()] = job
            self._followed.append(_Followed(spec, job, future, submitted))
            if self._accounting is not None:
                self._accounting.register_job(str(job.job_id))
            self._news = True
            if self._watcher is None:
                self._watcher = threading.Thread(target=self._watch, name="algobench-submitit-watcher", daemon=True)
                self._watcher.start()
            self._wake.notify_all()
        return future

    def job_state(self, job: submitit.Job) -> str:
        """The job's last known state (sacct's, as of the last poll, for SLURM jobs)."""
        if self._accounting is not None:
            return self._accounting.get_state(str(job.job_id), mode="cache")
        return job.state

    def close(self) -> None:
        """Stop waiting: unfinished futures are cancelled; the jobs themselves go on."""
        with self._wake:
            self._closed = True
            pending, self._followed = self._followed, []
            self._wake.notify_all()
        for item in pending:
            item.future.cancel()
        if self._watcher is not None and self._watcher is not threading.current_thread():
            self._watcher.join(timeout=self.poll_sec + 5)

    # --- submitting ------------------------------------------------------------------------------
    def _submit_jobs(self, specs: Sequence[TrialSpec]) -> list[submitit.Job]:
        if self._submitit is None:
            self._submitit = make_submitit_executor(self.cluster, self.folder, self.profile)
        try:
            with self._submitit.batch():  # one job array on SLURM; submitted when the block ends
                jobs = [self._submitit.submit(TrialJob(), spec) for spec in specs]
        except (submitit.core.utils.FailedJobError, subprocess.CalledProcessError, OSError) as error:
            lines = list(dict.fromkeys(line.strip() for line in str(error).splitlines() if line.strip()))
            detail = "; ".join(line for line in lines if "error" in line.lower()) or (lines[-1] if lines else "")
            raise AlgobenchError(f"{self.cluster} refused the trial jobs: {detail}") from None
        return jobs

    def _run_here(self, spec: TrialSpec, job: submitit.Job) -> Future[Summary]:
        """Run a debug job now, in this thread (submitit runs it when its result is asked for)."""
        with contextlib.suppress(Exception):  # the job's exception is recorded with its trial by settle
            job.result()
        future: Future[Summary] = Future()
        self._resolve(_Followed(spec, job, future, time.time()), None)
        return future

    # --- waiting ---------------------------------------------------------------------------------
    def _watch(self) -> None:
        """The watcher thread: poll every followed job until it ends, the deadline or ``close``."""
        delay = self.poll_sec
        try:
            while True:
                with self._wake:
                    while not self._followed and not self._closed:
                        self._wake.wait()
                    if self._closed:
                        return
                    followed, news, self._news = list(self._followed), self._news, False
                ended = self._ended(followed)
                for item, lost_cause in ended:
                    self._resolve(item, lost_cause)
                with self._wake:
                    finished = {id(item) for item, _ in ended}
                    self._followed = [item for item in self._followed if id(item) not in finished]
                    if self._expired():
                        expired, self._followed = self._followed, []
                        message = self._unfinished_message("still unfinished")
                        for item in expired:
                            self._set(item.future, error=InfrastructureError(message))
                    calm = self._accounting is not None and not ended and not news  # local polls are cheap
                    delay = min(delay * 1.5, MAX_POLL_SEC) if calm else self.poll_sec
                    if self._deadline is not None:
                        delay = max(0.0, min(delay, self._deadline - time.monotonic()))
                    self._wake.wait_for(lambda: self._closed or self._news, timeout=delay)
        except BaseException as error:  # never leave a driver waiting on a future nobody will resolve
            with self._wake:
                orphans, self._followed = self._followed, []
            for item in orphans:
                self._set(item.future, error=InfrastructureError(f"the job watcher failed: {error!r}"))
            raise

    def _ended(self, followed: Sequence[_Followed]) -> list[tuple[_Followed, str | None]]:
        """The followed jobs that have ended, each with a cause when its job was lost."""
        if self._accounting is None:
            return [(item, None) for item in followed if item.job.done()]  # a local job asks its process
        self._accounting.update()  # one sacct call for every job
        ended = []
        for item in followed:
            job_id = str(item.job.job_id)
            if item.job.paths.result_pickle.exists():
                ended.append((item, None))
                continue
            if self._accounting.is_done(job_id, mode="cache"):
                if self._end_confirmed(item):
                    ended.append((item, None))
                continue
            self._ends_seen.pop(job_id, None)
            state = base_state(self._accounting.get_state(job_id, mode="cache"))
            if state in STUCK_STATES and time.time() - item.submitted > self.unknown_grace_sec:
                cause = (
                    f"job {job_id} still {state} in sacct {self.unknown_grace_sec:g} s after submission: "
                    "lost (is accounting, slurmdbd, running?)"
                )
                ended.append((item, cause))
        return ended

    def _end_confirmed(self, item: _Followed) -> bool:
        """Whether the end sacct reports is final: at once if the trial wrote its summary, else
        when sacct still says so ``END_CONFIRM_SEC`` after it first did."""
        if read_summary(item.spec.trial_dir()) is not None:
            return True
        job_id = str(item.job.job_id)
        first = self._ends_seen.setdefault(job_id, time.monotonic())
        if time.monotonic() - first < END_CONFIRM_SEC:
            return False
        del self._ends_seen[job_id]  # settled: nothing left to confirm
        return True

    def _resolve(self, item: _Followed, lost_cause: str | None) -> None:
        try:
            summary = settle(item.spec, item.job, self.job_state(item.job), self.profile, lost_cause)
        except Exception as error:  # algobench's own machinery failed: nothing final, a rerun retries
            message = f"{item.spec.trial_dir()}: {type(error).__name__}: {error}"
            self._set(item.future, error=InfrastructureError(message))
        else:
            self._set(item.future, result=summary)

    def _expired(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    def _unfinished_message(self, what: str) -> str:
        return f"{what} after the {self.wait_timeout_sec:g} s wait; see `algobench slurm status`"

    @staticmethod
    def _set(future: Future[Summary], result: Summary | None = None, error: BaseException | None = None) -> None:
        with contextlib.suppress(InvalidStateError):  # cancelled by close()
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)
