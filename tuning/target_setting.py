"""Setting a workload's targets the way AlgoPerf set its own, at CPU scale.

For a base workload: tune AdamW, NAdamW, heavy-ball momentum and Nesterov momentum, each with
quasi-random (Halton) search over its baseline search space, every trial trained to the end
of its run; rerun each optimizer's best point over several seeds; the optimizer whose seeds
have the best median wins. The validation target is the median over the winner's seeds of
their best validation metric; the test target is the worst test metric, at the first
evaluation that reached the validation target, of the seeds that reached it (as AlgoPerf took
the worst over its seeds that reached the validation target).

For a variant, the winning optimizer's best base configuration is rerun on the variant over
the seeds instead of searching again. AlgoPerf searched again for each variant; reusing the
base configuration is a deliberate saving of machine time (a variant's target may then be a
little easier than AlgoPerf's procedure would make it). A variant trains for its base's
number of steps, as AlgoPerf's variants share their base's ``step_hint``; where its step is
clearly dearer (a larger model), its budget is the base's scaled by the ratio of the two
reference steps, timed side by side, so that the tuned baseline keeps the same headroom.

Target-setting runs train for ``RUN_FRACTION`` of the budget, so the budget leaves the tuned
baseline about 1.5x headroom to reach the target; their schedules span that run length (their
trials are given it as ``step_hint``). A workload's own ``step_hint`` is, as AlgoPerf defines it,
the number of steps the reference machine makes in the whole budget (``budget_steps``), so that
a schedule over ``step_hint`` uses the budget it has. The run length is counted in steps, not
seconds: the number of reference steps (``reference_steps.json``) that fit in that time, with
evaluations every ``eval_period_time_sec`` worth of steps. On a shared machine a wall-clock
run length gives a starved trial ten times fewer steps than its neighbour, and the targets
then measure the load, not the optimizers. The wall-clock budget is kept only as a generous
safety limit (``WALL_SAFETY``).

Every trial has a fixed directory (versioned by ``PROCEDURE``), and the runner skips finished
trials, so an interrupted ``algobench targets`` resumes where it stopped.

Target setting is a tuning procedure: it runs the baseline submissions (installed as package
data, ``algobench.baselines``) through the core's ``run_trial``, and writes each workload's
targets file into a folder the user names; a maintainer copies the files into the source tree's
``workloads/targets/``, where the workloads package reads them.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import statistics
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from algobench.errors import AlgobenchError
from algobench.executors.base import Executor
from algobench.executors.process import ProcessExecutor
from algobench.layout import EVAL_FILE, Direction
from algobench.results import atomic_write_bytes
from algobench.trial_spec import TrialSpec
from algobench.tuning.driver import drive_specs
from algobench.tuning.rulesets import get_ruleset
from algobench.workloads.calibration import calibration_factor, machine_info
from algobench.workloads.data_cache import cache_dir
from algobench.workloads.registry import get_workload, load_targets, workload_class, workload_info

OPTIMIZERS = ("adamw", "nadamw", "sgd_momentum", "nesterov")  # heavy ball = sgd_momentum
BASELINES = "algobench.baselines"  # the baseline submissions, installed as package data
RULESET = "external"
DEFAULT_OUT_DIR = Path("targets")  # relative to the current directory
RUN_FRACTION = 1 / 1.5
DEFAULT_TRIALS = 6
DEFAULT_SEEDS = 3  # reruns of each optimizer's best point, to pick the winner
DEFAULT_TARGET_SEEDS = 5  # reruns of the winner (or of a variant) whose median is the target
SEARCH_SEED = 0
RERUN_SEED_OFFSET = 1000
FRESH_STUDY_OFFSET = 1000  # the fresh-seed check's reruns: studies (and seeds) apart from the target's
FRESH_SEED_OFFSET = 5000
PROCEDURE = "steps-v3"  # trial directories of an earlier procedure are never reused (v3: schedules over the run length)
WALL_SAFETY = 20.0
TARGET_DIGITS = 6
DEARER_STEP = 1.1  # a variant's budget grows with its step time only beyond the timing noise


@dataclass(frozen=True)
class Run:
    """The outcome of one target-setting trial, read back from its directory."""

    optimizer: str
    trial: int
    seed: int
    hyperparameters: dict[str, Any]
    best_validation: float | None
    trial_dir: Path


def default_root() -> Path:
    return cache_dir() / "targets"


@contextlib.contextmanager
def baseline_file(optimizer: str, name: str) -> Iterator[Path]:
    """A file of baseline submission ``optimizer`` (``submission.py`` or
    ``tuning_search_space.json``), found as installed package data."""
    resource = resources.files(BASELINES) / optimizer / name
    if not resource.is_file():
        raise AlgobenchError(f"the baseline submission {optimizer!r} has no {name} in the installed package")
    with resources.as_file(resource) as path:
        yield Path(path)


def step_budget(workload: str) -> tuple[int, int]:
    """(run length, evaluation period) in steps: what the reference machine does in
    ``RUN_FRACTION`` of the budget and in one evaluation period."""
    budget, step_seconds = _budget_and_step(workload)
    eval_period = workload_class(workload).eval_period_time_sec
    return max(1, round(budget * RUN_FRACTION / step_seconds)), max(1, round(eval_period / step_seconds))


def budget_steps(workload: str) -> int:
    """The steps the reference machine makes in the whole budget: the workload's ``step_hint``."""
    budget, step_seconds = _budget_and_step(workload)
    return max(1, round(budget / step_seconds))


def _budget_and_step(workload: str) -> tuple[float, float]:
    from algobench.workloads.calibration import reference_steps

    base_name = workload_info(workload).base_name
    step_seconds = reference_steps()["step_seconds"].get(base_name)
    if step_seconds is None:
        raise AlgobenchError(
            f"{workload}: no reference step time; run `algobench calibrate --write-reference --workloads {base_name}`"
        )
    return load_targets(base_name).max_allowed_runtime_sec, step_seconds  # a variant runs its base's steps


def variant_budget(workload: str, base_budget: float) -> tuple[float, float]:
    """(budget, step ratio) of a variant: ``base_budget``, scaled by how much dearer the
    variant's reference step is than its base's when that is beyond ``DEARER_STEP``."""
    from algobench.workloads.calibration import step_time_ratio

    ratio = step_time_ratio(workload, workload_info(workload).base_name)
    return (float(math.ceil(base_budget * ratio)) if ratio > DEARER_STEP else base_budget), ratio


def _threads() -> int:
    """Target-setting trials run one at a time, on every core the process has."""
    import torch

    return torch.get_num_threads()


def _spec(optimizer: str, workload: str, study: int, trial: int, seed: int, hyperparameters: dict[str, Any],
          root: Path, device: str, submission: Path) -> TrialSpec:  # fmt: skip
    max_steps, eval_every = step_budget(workload)
    return TrialSpec(
        submission_path=str(submission),
        submission_name=optimizer,
        workload_name=workload,
        study=study,
        trial=trial,
        hyperparameters=hyperparameters,
        seed=seed,
        experiment_dir=str(root / workload / PROCEDURE),
        make_workload=get_workload,
        ruleset=RULESET,
        budget_multiplier=get_ruleset(RULESET).budget_multiplier,
        device=device,
        stop_on_target=False,
        calibration_factor=calibration_factor(workload, _threads()),
        # The run length is counted in steps; the wall-clock budget is only a safety limit.
        budget_scale=RUN_FRACTION * WALL_SAFETY,
        max_steps=max_steps,
        eval_every_steps=eval_every,
        threads=_threads(),
        step_hint=max_steps,  # the targets' runs schedule over their own length (the workload's is the budget's)
    )


def _runs(optimizer: str, workload: str, jobs: list[tuple[int, int, int, dict[str, Any]]], root: Path, device: str,
          executor: Executor) -> list[Run]:  # fmt: skip
    """Run (study, trial, seed, hyperparameters) jobs through the executor, in order."""
    with baseline_file(optimizer, "submission.py") as submission:
        specs = [_spec(optimizer, workload, *job, root, device, submission) for job in jobs]
        summaries = {spec.trial_dir(): summary for spec, summary in drive_specs(specs, executor)}
    runs = []
    for spec, (_, trial, seed, hyperparameters) in zip(specs, jobs, strict=True):
        summary = summaries[spec.trial_dir()]
        if summary is None:
            raise AlgobenchError(f"{spec.trial_dir()} did not finish (algobench failed there); rerun to retry it")
        best = summary.get("best_validation_metric")
        best = float(best) if best is not None and math.isfinite(best) else None
        steps = summary.get("steps")
        print(f"  {workload} {optimizer} study {spec.study} trial {trial}: {summary['status']} after {steps} steps, "
              f"best {best}", file=sys.stderr)  # fmt: skip
        runs.append(Run(optimizer, trial, seed, hyperparameters, best, spec.trial_dir()))
    return runs


def search(workload: str, optimizer: str, trials: int, root: Path, device: str, executor: Executor) -> list[Run]:
    """Quasi-random search: ``trials`` Halton points of the optimizer's search space (study 0)."""
    from algobench.tuning import halton
    from algobench.tuning.search_space import load_search_space

    with baseline_file(optimizer, "tuning_search_space.json") as path:
        space = load_search_space(path)
    points = halton.sample(space, trials, seed=SEARCH_SEED)
    return _runs(optimizer, workload, [(0, i, i, hp) for i, hp in enumerate(points)], root, device, executor)


def rerun(workload: str, optimizer: str, best: Run | dict[str, Any], trial: int, seeds: int, root: Path,
          device: str, executor: Executor) -> list[Run]:  # fmt: skip
    """The chosen configuration over ``seeds`` fresh seeds (studies 1..seeds)."""
    hyperparameters = best.hyperparameters if isinstance(best, Run) else best
    jobs = [(k, trial, RERUN_SEED_OFFSET + k, hyperparameters) for k in range(1, seeds + 1)]
    return _runs(optimizer, workload, jobs, root, device, executor)


def _pick_best(runs: list[Run], direction: Direction) -> Run | None:
    best = None
    for run in runs:
        if run.best_validation is not None and (
            best is None or direction.better(run.best_validation, best.best_validation)
        ):
            best = run
    return best


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def round_easier(value: float, direction: Direction | str, digits: int = TARGET_DIGITS) -> float:
    """A metric value as a target: to ``digits`` decimals, rounded towards the easier side, so
    that a metric equal to ``value`` reaches it. Metrics are float32: a nearest rounding
    (0.89999998 -> 0.9) would put the median seed itself short of its target, and a value written
    by hand is taken as the float32 metric it stands for (288/300 = 0.96 is 0.95999998 in
    float32, so 0.96 becomes 0.959999). Tuned and provisional targets both go through here."""
    direction = Direction(direction)
    as_float32 = float(np.float32(value))
    easier = direction.worst([value, as_float32])
    if easier is None:
        raise AlgobenchError(f"a target must be a finite number, not {value}")
    scale = 10**digits
    return (math.floor if direction is Direction.MAX else math.ceil)(easier * scale) / scale


def _first_reaching(run: Run, metric: str, target: float, direction: Direction) -> dict[str, float] | None:
    """The first evaluation row of ``run`` whose validation metric reached ``target``."""
    path = run.trial_dir / EVAL_FILE
    if not path.exists():
        return None
    with path.open() as handle:
        for row in csv.DictReader(handle):
            try:
                value = float(row[f"validation/{metric}"])
            except (KeyError, ValueError):
                continue
            if math.isfinite(value) and direction.reached(value, target):
                return {"score": float(row["score"]), "test": float(row[f"test/{metric}"])}
    return None


def targets_from_runs(runs: list[Run], metric: str, direction: Direction | str) -> dict[str, Any]:
    """Validation target = median best; test target = the worst test metric, at the first
    evaluation that reached the validation target, of the runs that reached it (AlgoPerf's rule:
    a submission that reaches the validation target should reach the test target too)."""
    direction = Direction(direction)
    validation = _median([r.best_validation for r in runs if r.best_validation is not None])
    if validation is None:
        raise AlgobenchError("no target-setting run produced a finite validation metric")
    rows = [row for r in runs if (row := _first_reaching(r, metric, validation, direction)) is not None]
    return {
        "validation_target_value": round_easier(validation, direction),
        "test_target_value": round_easier(direction.worst([row["test"] for row in rows]), direction),
        "time_to_target_sec": [round(row["score"], 2) for row in rows],
    }


def set_base_targets(
    workload: str, trials: int, seeds: int, root: Path, device: str, target_seeds: int, executor: Executor
) -> dict[str, Any]:
    info = workload_info(workload)
    direction, metric = info.metric_direction, info.target_metric_name
    per_optimizer: dict[str, Any] = {}
    finals: dict[str, list[Run]] = {}
    for optimizer in OPTIMIZERS:
        runs = search(workload, optimizer, trials, root, device, executor)
        best = _pick_best(runs, direction)
        if best is None:
            per_optimizer[optimizer] = {"search": [r.best_validation for r in runs], "best_trial": None}
            continue
        finals[optimizer] = rerun(workload, optimizer, best, best.trial, seeds, root, device, executor)
        seed_values = [r.best_validation for r in finals[optimizer] if r.best_validation is not None]
        per_optimizer[optimizer] = {
            "search": [r.best_validation for r in runs],
            "best_trial": best.trial,
            "hyperparameters": best.hyperparameters,
            "seeds": seed_values,
            "median": _median(seed_values),
        }
    ranked = [o for o in finals if per_optimizer[o]["median"] is not None]
    if not ranked:
        raise AlgobenchError(f"{workload}: no optimizer produced a finite validation metric")
    winner = ranked[0]
    for o in ranked[1:]:
        if direction.better(per_optimizer[o]["median"], per_optimizer[winner]["median"]):
            winner = o
    # The winner's first ``seeds`` reruns are reused; more seeds make the median less of a draw.
    target_runs = rerun(workload, winner, per_optimizer[winner]["hyperparameters"],
                        per_optimizer[winner]["best_trial"], target_seeds, root, device, executor)  # fmt: skip
    result = targets_from_runs(target_runs, metric, direction)
    provenance = {
        "method": "target_setting",
        "procedure": f"quasi-random search ({trials} trials each) of {', '.join(OPTIMIZERS)}, "
        f"best point of each rerun over {seeds} seeds; the winner (best median) rerun over "
        f"{target_seeds} seeds; validation target = their median best",
        "winner": winner,
        "hyperparameters": per_optimizer[winner]["hyperparameters"],
        "optimizers": per_optimizer,
        "trials": trials,
        "seeds": seeds,
        "seeds_best": [r.best_validation for r in target_runs],
    }
    return {**result, "provenance": provenance}


def reseed_base_targets(
    workload: str, target_seeds: int, root: Path, device: str, out_dir: Path, executor: Executor
) -> dict[str, Any]:
    """The recorded winner of the base's search (its targets file, in ``out_dir`` else installed)
    rerun over ``target_seeds`` seeds, the search itself reused: AlgoPerf's 20 seeds without
    repeating the search. Refused when the file records no search."""
    info = workload_info(workload)
    refusal = (f"{workload}: its targets were not set by the procedure, so there is no winner to rerun: run "
               f"`algobench targets {workload}` without --reseed-winner")  # fmt: skip
    recorded = _recorded_search(workload, out_dir, refusal)["provenance"]
    runs = _rerun_winner(workload, recorded, target_seeds, root, device, executor)
    result = targets_from_runs(runs, info.target_metric_name, info.metric_direction)
    kept = {k: v for k, v in recorded.items() if k in ("winner", "hyperparameters", "optimizers", "trials", "seeds")}
    searched = recorded.get("search_date") or recorded.get("date")
    provenance = {
        "method": "target_setting",
        **kept,
        "search_date": searched,
        "procedure": f"quasi-random search ({recorded.get('trials')} trials each) of {', '.join(OPTIMIZERS)}, best "
        f"point of each rerun over {recorded.get('seeds')} seeds (search of {searched}, reused); the "
        f"winner rerun over {target_seeds} seeds; validation target = their median best",
        "seeds_best": [r.best_validation for r in runs],
    }
    return {**result, "provenance": provenance}


def fresh_seed_check(
    workload: str, document: dict[str, Any], seeds: int, root: Path, device: str, executor: Executor
) -> dict[str, Any]:
    """The winner on ``seeds`` seeds the target never saw: how many reach their own target. The
    target is the median of the target seeds' best values, so about half should."""
    info = workload_info(workload)
    provenance = document["provenance"]
    winner, hyperparameters = provenance["winner"], provenance["hyperparameters"]
    base = provenance.get("optimizers", {}).get(winner, {}).get("best_trial")
    trial = base if base is not None else load_targets(info.base_name).provenance["optimizers"][winner]["best_trial"]
    jobs = [(FRESH_STUDY_OFFSET + k, trial, FRESH_SEED_OFFSET + k, hyperparameters) for k in range(1, seeds + 1)]
    runs = _runs(winner, workload, jobs, root, device, executor)
    target = float(document["validation_target_value"])
    values = [r.best_validation for r in runs]
    reached = sum(v is not None and info.metric_direction.reached(v, target) for v in values)
    return {"seeds": seeds, "reached": int(reached), "values": values, "expected_share": 0.5}


def _recorded_search(base_name: str, out_dir: Path, refusal: str) -> dict[str, Any]:
    """The base's targets document, when its provenance records the procedure's search (a winner
    to rerun); else ``refusal`` as the error."""
    document = _base_document(base_name, out_dir)
    if document["provenance"].get("method") != "target_setting":
        raise AlgobenchError(refusal)
    return document


def _rerun_winner(workload: str, search: dict[str, Any], seeds: int, root: Path, device: str,
                  executor: Executor) -> list[Run]:  # fmt: skip
    """The winner a search recorded (its provenance), on ``workload``, over ``seeds`` seeds."""
    winner = search["winner"]
    trial = search["optimizers"][winner]["best_trial"]
    return rerun(workload, winner, search["hyperparameters"], trial, seeds, root, device, executor)


def _base_document(base_name: str, out_dir: Path) -> dict[str, Any]:
    """The base workload's targets document: the one just written to ``out_dir``, if any, else
    the installed one."""
    written = Path(out_dir) / f"{base_name}.json"
    if written.exists():
        return json.loads(written.read_text())
    targets = load_targets(base_name)
    return {"max_allowed_runtime_sec": targets.max_allowed_runtime_sec, "provenance": dict(targets.provenance)}


def set_variant_targets(
    workload: str, seeds: int, root: Path, device: str, out_dir: Path, executor: Executor
) -> dict[str, Any]:
    info = workload_info(workload)
    refusal = (f"{workload} is a variant of {info.base_name}, whose targets are not set yet: run "
               f"`algobench targets {info.base_name}` first")  # fmt: skip
    base_document = _recorded_search(info.base_name, out_dir, refusal)
    base = base_document["provenance"]
    winner, hyperparameters = base["winner"], base["hyperparameters"]
    budget, step_ratio = variant_budget(workload, float(base_document["max_allowed_runtime_sec"]))
    runs = _rerun_winner(workload, base, seeds, root, device, executor)
    result = targets_from_runs(runs, info.target_metric_name, info.metric_direction)
    provenance = {
        "method": "target_setting_variant",
        "procedure": f"the base workload's winning configuration ({winner}) rerun over {seeds} seeds on the "
        "variant, without a new search (AlgoPerf searched again; a deliberate saving)",
        "winner": winner,
        "hyperparameters": hyperparameters,
        "seeds_best": [r.best_validation for r in runs],
        "seeds": seeds,
        "step_ratio_to_base": round(step_ratio, 3),
        "budget_rule": f"the base's budget, times the step ratio when it exceeds {DEARER_STEP}",
    }
    return {**result, "budget": budget, "provenance": provenance}


def set_targets(
    workload: str,
    trials: int = DEFAULT_TRIALS,
    seeds: int = DEFAULT_SEEDS,
    target_seeds: int = DEFAULT_TARGET_SEEDS,
    root: Path | None = None,
    device: str = "cpu",
    command: str = "",
    out_dir: Path = DEFAULT_OUT_DIR,
    executor: Executor | None = None,
    reseed_winner: bool = False,
    check_seeds: int = 0,
) -> dict[str, Any]:
    """Run (or resume) the procedure for ``workload`` and write ``<out_dir>/<workload>.json``
    (a maintainer copies it into ``workloads/targets/``); trial directories go under ``root``.
    ``reseed_winner``: a base reruns its recorded winner over ``target_seeds`` instead of searching
    again. ``check_seeds``: then runs the winner on that many fresh seeds and records how many
    reach the new target."""
    root = root or default_root()
    target_seeds = max(seeds, target_seeds)  # the winner's ``seeds`` reruns are among them
    with executor or ProcessExecutor(preload=("algobench.workloads.registry",)) as runs_on:
        if workload_info(workload).variant is not None:
            result = set_variant_targets(workload, target_seeds, root, device, out_dir, runs_on)
        elif reseed_winner:
            result = reseed_base_targets(workload, target_seeds, root, device, out_dir, runs_on)
        else:
            result = set_base_targets(workload, trials, seeds, root, device, target_seeds, runs_on)
        if check_seeds:
            result["provenance"]["fresh_seed_check"] = fresh_seed_check(
                workload, result, check_seeds, root, device, runs_on
            )
    budget = result.pop("budget", None) or load_targets(workload).max_allowed_runtime_sec
    result["provenance"].update(
        {
            "date": datetime.now(UTC).date().isoformat(),
            "machine": machine_info(),
            "calibration_factor": calibration_factor(workload, _threads()),
            "run_length_sec": round(budget * RUN_FRACTION, 2),
            "run_length_steps": step_budget(workload)[0],
            "procedure_version": PROCEDURE,
            "command": command or f"algobench targets {workload}",
            "trial_dirs": str(root / workload / PROCEDURE),
        }
    )
    time_to_target = result.pop("time_to_target_sec")
    result["provenance"]["time_to_target_sec"] = time_to_target
    document = {
        "validation_target_value": result["validation_target_value"],
        "test_target_value": result["test_target_value"],
        "max_allowed_runtime_sec": budget,
        "provenance": result["provenance"],
    }
    # The keys keep their order (targets first), as in the files a maintainer reads.
    atomic_write_bytes(Path(out_dir) / f"{workload}.json", (json.dumps(document, indent=2) + "\n").encode())
    return document
