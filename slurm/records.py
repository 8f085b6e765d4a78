"""``slurm_job.json``: which job runs (or ran) a trial, so ``status`` and a resubmission find it.

Written atomically next to the trial's results when the job is submitted; a resubmission
replaces it. Only SLURM records can be looked up again later (local and debug jobs are
children of the command that started them).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import submitit
from submitit.slurm.slurm import SlurmInfoWatcher

from algobench.results import read_json, write_json

JOB_FILE = "slurm_job.json"


def record_job(trial_dir: Path, job: submitit.Job, cluster: str) -> None:
    write_json(
        trial_dir / JOB_FILE,
        {
            "job_id": str(job.job_id),
            "cluster": cluster,
            "log_folder": str(job.paths.folder),
            "submitted": time.time(),
        },
    )


def read_record(trial_dir: Path) -> dict[str, Any] | None:
    return read_json(trial_dir / JOB_FILE)


def recorded_slurm_job(trial_dir: Path) -> submitit.SlurmJob | None:
    """The SLURM job last recorded for this trial, if any (making it costs no sacct call)."""
    record = read_record(trial_dir)
    if record is None or record.get("cluster") != "slurm":
        return None
    return submitit.SlurmJob(folder=record["log_folder"], job_id=record["job_id"])


def job_states(job_ids: Iterable[str]) -> dict[str, str]:
    """sacct's state of each SLURM job, from one sacct call ("UNKNOWN" for a job it does not know).

    Asked through a watcher of our own: submitit's class-wide one is shared by every job of the
    process, so its cache and its timing are not ours to rely on.
    """
    ids = list(dict.fromkeys(str(job_id) for job_id in job_ids))
    if not ids:
        return {}
    watcher = SlurmInfoWatcher()
    for job_id in ids:
        watcher.register_job(job_id)
    watcher.update()
    return {job_id: watcher.get_state(job_id, mode="cache") for job_id in ids}
