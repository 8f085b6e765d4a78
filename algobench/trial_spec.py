"""What one trial is, as a picklable value: the unit every executor runs (torch-free)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from algobench import layout
from algobench.hyperparameters import ChangePoint

if TYPE_CHECKING:
    from algobench.workload import Workload


@dataclass(frozen=True)
class TrialSpec:
    """Everything one trial (or one segment of a trial) needs; it pickles, so child processes,
    SLURM and Ray can carry it.

    ``make_workload`` is the workload factory (``algobench.workloads.get_workload``), passed in by
    whoever plans the trial, so that the core never imports the workloads package. ``schedule``
    holds the hyperparameter change points after step 0 (PBT, replay); ``until_step`` ends a
    segment early, leaving the trial checkpointed and unfinished.
    """

    submission_path: str
    submission_name: str
    workload_name: str
    study: int
    trial: int
    hyperparameters: dict[str, Any] | None
    seed: int
    experiment_dir: str
    make_workload: Callable[..., Workload] | None = None
    ruleset: str = "external"
    budget_multiplier: float = 1.0  # the ruleset's (1.5 for self-tuning)
    device: str = "cpu"
    stop_on_target: bool = True
    calibration_factor: float = 1.0  # this machine's step time / the reference machine's, only
    budget_scale: float = 1.0  # a procedure's own share of the budget (target setting), else 1
    max_steps: int | None = None
    eval_every_steps: int | None = None
    data_dir: str | None = None  # for workloads that read a dataset from disk
    scale: str = "cpu"  # problem size: "cpu" (targets are set here), "gpu" or "tiny"
    threads: int = 1  # torch threads (cores) the trial is given; recorded with its results
    timeout_sec: float | None = None  # kill the trial's process after this long (child executors)
    schedule: tuple[ChangePoint, ...] = ()  # hyperparameter changes after step 0 (PBT, replay)
    until_step: int | None = None
    clock: str = "wall"  # what budgets and time-to-target are measured on: "wall" or "cpu" (algobench.clock)
    step_hint: int | None = None  # overrides the workload's (target setting: schedules over its own run length)
    tuning_split: float = 0.0  # fraction of train held out and evaluated as "tuning/..." (a tuner's fitness)
    import_root: str | None = None  # put first on sys.path of the trial process (files that import their own repo)

    def trial_dir(self) -> Path:
        return layout.trial_dir(self.experiment_dir, self.submission_name, self.study, self.workload_name, self.trial)
