"""``algobench slurm status``: per trial, its job, the job's state and the trial's progress.

Read from the experiment directory alone (``slurm_job.json``, the eval log, the summary) plus
one ``sacct`` call for all SLURM jobs, so it works from any shell, while jobs run or long after.
"""

from __future__ import annotations

import contextlib
import csv
import shutil
from dataclasses import dataclass
from pathlib import Path

from algobench.layout import EVAL_FILE
from algobench.results import read_summary
from algobench.slurm.records import job_states, read_record, recorded_slurm_job


@dataclass(frozen=True)
class TrialRow:
    """One line of ``algobench slurm status``."""

    trial: str  # path relative to the experiment directory
    job_id: str
    job_state: str  # sacct's state for SLURM jobs; the cluster's name for local and debug jobs
    status: str  # the trial's final status, or "running" / "not started"
    step: int | None  # global step of the last evaluation
    metric: str  # last validation value of the target metric, as logged
    cause: str  # why a trial failed or timed out (empty otherwise)


def trial_dirs(experiment_dir: Path) -> list[Path]:
    return sorted(p for p in experiment_dir.glob("*/study_*/*_*/trial_*") if p.is_dir())


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
    value = last.get(key) or "-"
    with contextlib.suppress(ValueError):
        value = f"{float(value):.4g}"
    return int(float(last["global_step"])), value


def _metric_name(trial_dir: Path, summary: dict | None) -> str | None:
    """The target metric: from the summary, else from the workload's class (a running trial)."""
    if summary and summary.get("target_metric_name"):
        return summary["target_metric_name"]
    from algobench.workloads.registry import workload_class

    workload = trial_dir.parent.name.removesuffix("_pytorch")
    try:
        return workload_class(workload).target_metric_name
    except Exception:  # an unknown workload folder: show the first validation column
        return None


def _job_states(dirs: list[Path]) -> dict[Path, str]:
    """sacct's state of every recorded SLURM job, from one sacct call."""
    if shutil.which("sacct") is None:
        return {d: "no sacct here" for d in dirs if (read_record(d) or {}).get("cluster") == "slurm"}
    jobs = {d: str(job.job_id) for d in dirs if (job := recorded_slurm_job(d)) is not None}
    states = job_states(jobs.values())
    return {d: states[job_id] for d, job_id in jobs.items()}


def experiment_status(experiment_dir: str | Path) -> list[TrialRow]:
    """One row per trial directory under ``experiment_dir``, in path order."""
    experiment_dir = Path(experiment_dir)
    dirs = trial_dirs(experiment_dir)
    states = _job_states(dirs)
    result = []
    for trial_dir in dirs:
        record = read_record(trial_dir)
        summary = read_summary(trial_dir)
        step, metric = _last_eval(trial_dir, _metric_name(trial_dir, summary))
        if summary:
            status = summary["status"]
        else:
            status = "running" if step is not None else ("submitted" if record else "not started")
        error = (summary or {}).get("error") or ""
        result.append(
            TrialRow(
                trial=trial_dir.relative_to(experiment_dir).as_posix(),
                job_id=record["job_id"] if record else "-",
                job_state=states.get(trial_dir, record.get("cluster", "?") if record else "-"),
                status=status,
                step=step,
                metric=metric,
                cause=error.strip().splitlines()[0] if error.strip() else "",
            )
        )
    return result


def format_status(rows: list[TrialRow]) -> str:
    """A fixed-width table; a failed trial's cause goes on the line below it."""
    if not rows:
        return "no trials found"
    width = max(len("trial"), *(len(r.trial) for r in rows))
    header = f"{'trial':<{width}}  {'job':>10}  {'job state':<16}  {'status':<15}  {'step':>8}  {'last metric':>11}"
    lines = [header, "-" * len(header)]
    for r in rows:
        step = "-" if r.step is None else str(r.step)
        lines.append(
            f"{r.trial:<{width}}  {r.job_id:>10}  {r.job_state:<16}  {r.status:<15}  {step:>8}  {r.metric:>11}"
        )
        if r.cause:
            lines.append(f"{'':<{width}}  cause: {r.cause}")
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1
    lines.append(", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
    return "\n".join(lines)
