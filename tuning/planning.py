"""``algobench submit``'s plan: submission × workloads × studies × trials, as trial specs.

Planning is pure (the same arguments give the same trials, hyperparameters and seeds), so a rerun
of the same command finds the same trial directories and skips the finished ones. It never runs
submission code: the file is checked statically here and imported by each trial's own process.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from algobench.errors import AlgobenchError, SearchSpaceError
from algobench.executors.base import available_cores
from algobench.seeds import derive_seed
from algobench.submission_check import check_submission_file
from algobench.trial_spec import TrialSpec
from algobench.tuning.halton import sample
from algobench.tuning.rulesets import get_ruleset
from algobench.tuning.search_space import SearchSpace, load_search_space

SEARCH_SPACE_FILE = "tuning_search_space.json"


def submission_name(path: Path) -> str:
    """The folder name (``submissions/nadamw/submission.py`` -> ``nadamw``), else the file's stem."""
    return path.parent.name if path.stem == "submission" else path.stem


def plan_trials(
    submission_path: str | Path,
    *,
    workloads: Sequence[str],
    ruleset: str = "external",
    num_trials: int = 5,
    num_studies: int = 3,
    experiment_dir: str | Path = "experiments",
    seed: int = 0,
    device: str = "cpu",
    search_space_path: str | Path | None = None,
    stop_on_target: bool = True,
    data_dir: str | Path | None = None,
    scale: str = "cpu",
    threads: int | None = None,
    trial_timeout_sec: float | None = None,
) -> list[TrialSpec]:
    """The trials ``algobench submit`` runs, in order; bad input raises ``AlgobenchError``.

    Study k draws its hyperparameters from the Halton sequence seeded by (seed, k), so studies
    are independent repetitions of the tuning procedure, as the rules intend. Budgets are
    scaled by this machine's calibration factor per workload (1.0 when uncalibrated). Each trial
    gets ``threads`` cores (default: all this process may use).
    """
    from algobench.workloads import get_workload
    from algobench.workloads.calibration import calibration_factor
    from algobench.workloads.registry import workload_info

    path = check_submission_file(submission_path)
    for name in workloads:
        workload_info(name)  # fail fast on an unknown name
    rules = get_ruleset(ruleset)
    if num_studies < 1 or num_trials < 1:
        raise AlgobenchError("--studies and --trials must be at least 1")
    if threads is not None and threads < 1:
        raise AlgobenchError(f"--threads must be at least 1, got {threads}")
    points_per_study = _points(path, rules.uses_search_space, search_space_path, num_trials, num_studies, seed)
    experiment_dir = Path(experiment_dir).resolve()
    return [
        TrialSpec(
            submission_path=str(path),
            submission_name=submission_name(path),
            workload_name=name,
            study=study,
            trial=index + 1,
            hyperparameters=point,
            seed=derive_seed(seed, study, index + 1),
            experiment_dir=str(experiment_dir),
            make_workload=get_workload,
            ruleset=ruleset,
            budget_multiplier=rules.budget_multiplier,
            device=device,
            stop_on_target=stop_on_target,
            calibration_factor=calibration_factor(name, threads or available_cores()),
            data_dir=None if data_dir is None else str(Path(data_dir).resolve()),
            scale=scale,
            threads=threads or available_cores(),
            timeout_sec=trial_timeout_sec,
        )
        for name in workloads
        for study, points in enumerate(points_per_study)
        for index, point in enumerate(points)
    ]


def _points(
    path: Path, uses_search_space: bool, space_path: str | Path | None, num_trials: int, num_studies: int, seed: int
) -> list[list[dict[str, Any] | None]]:
    if not uses_search_space:
        return [[None] for _ in range(num_studies)]  # self-tuning: one trial per study
    space = search_space_of(path, space_path)
    return [sample(space, num_trials, derive_seed(seed, study)) for study in range(num_studies)]


def search_space_of(submission_path: str | Path, space_path: str | Path | None = None) -> SearchSpace:
    """The search space a ruleset with one draws from: ``space_path``, else the file next to the submission."""
    space_path = Path(space_path or Path(submission_path).parent / SEARCH_SPACE_FILE)
    if not space_path.exists():
        raise SearchSpaceError(
            f"this ruleset needs a search space: {space_path} not found (pass --search-space, or use --ruleset self)"
        )
    return load_search_space(space_path)
