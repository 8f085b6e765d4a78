"""``algobench slurm status``: per trial, its job, the job's state and the trial's progress."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import submitit

from algobench.results import EVAL_FILE, read_json, read_summary
from algobench.slurm.launch import JOB_FILE


@dataclass(frozen=True)
class TrialStatus:
    trial: str  # path relative to the experiment directory
    job_id: str
    job_state: str
    status: str  # the trial's final status, or "running"/"not started"
    step: int | None
    metric: str  # last validation value of the target metric, as logged


def trial_dirs(experiment_dir: Path) -> list[Path]:
    return sorted(p for p in experiment_dir.glob("*/study_*/*_*/trial_*") if p.is_dir())


def _job_state(record: dict | None) -> str:
    if record is None:
        return "-"
    if record.get("cluster") != "slurm":
        return record.get("cluster", "?")
    try:
        return submitit.SlurmJob(folder=record["log_folder"], job_id=record["job_id"]).state
    except Exception as error:  # sacct unreachable: say so rather than guess
        return f"unknown ({type(error).__name__})"


def _last_eval(trial_dir: Path, metric_name: str | None) -> tuple[int | None, str]:
    path = trial_dir / EVAL_FILE
    if not path.exists():
        return None, "-"
    with open(path) as handle:
        rows = [row for row in csv.DictReader(handle) if row.get("global_step")]
    if not rows:
        return None, "-"
    last = rows[-1]
    key = f"validation/{metric_name}" if metric_name else next((k for k in last if k.startswith("validation/")), "")
    return int(float(last["global_step"])), last.get(key, "-")[:8]


def experiment_status(experiment_dir: str | Path) -> list[TrialStatus]:
    experiment_dir = Path(experiment_dir)
    result = []
    for trial_dir in trial_dirs(experiment_dir):
        record = read_json(trial_dir / JOB_FILE)
        summary = read_summary(trial_dir)
        metric_name = (summary or {}).get("target_metric_name")
        step, metric = _last_eval(trial_dir, metric_name)
        status = summary["status"] if summary else ("running" if step is not None or record else "not started")
        result.append(
            TrialStatus(
                trial=trial_dir.relative_to(experiment_dir).as_posix(),
                job_id=record["job_id"] if record else "-",
                job_state=_job_state(record),
                status=status,
                step=step,
                metric=metric,
            )
        )
    return result


def format_status(rows: list[TrialStatus]) -> str:
    header = f"{'trial':<52} {'job':>10} {'job state':<14} {'status':<15} {'step':>7} {'last metric':>11}"
    lines = [header, "-" * len(header)]
    for r in rows:
        step = "-" if r.step is None else str(r.step)
        lines.append(f"{r.trial:<52} {r.job_id:>10} {r.job_state:<14} {r.status:<15} {step:>7} {r.metric:>11}")
    return "\n".join(lines)
