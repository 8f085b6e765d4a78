"""A tuner's output as something to rerun: a member's lineage, replayed or exported.

A member's trial directory holds its lineage's whole schedule (``hparams.json``: the first point
at step 0, with the seed the lineage started from, then each fork's changes and reseed). That
schedule is the tuner's frozen output:

- ``replay_specs`` reruns it as single trials (``algobench tune replay``): on the lineage's own
  seed and reseeds it reproduces the lineage's eval log exactly (timing columns aside); on fresh
  seeds (and on the workload's variants) it measures what the schedule does on runs the tuner
  never saw, without the reseeds (one continuous run per seed).
- ``export_source`` writes an AlgoPerf-form submission file that runs the schedule by itself
  (``algobench tune export``): it loads the original submission and, at each change point's step,
  writes the new values into the torch optimizer and scheduler with the runner's own
  ``Submission.apply_hyperparameters``, so ``algobench submit EXPORTED --ruleset self`` scores
  the schedule like any other submission.
"""

from __future__ import annotations

import math
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from algobench import layout
from algobench.errors import AlgobenchError
from algobench.hyperparameters import ChangePoint
from algobench.layout import Direction
from algobench.results import read_json, read_summary
from algobench.seeds import derive_seed
from algobench.trial_spec import TrialSpec
from algobench.tuning.events import SETTINGS_FILE, read_schedule, read_settings

REPLAY_DIR = "replay"  # <tuning dir>/replay/: an experiment of the lineage's replays
REPLAY_STREAM = 1_000_003  # fresh seeds: derive_seed(seed, REPLAY_STREAM, i), never a member's seed
OUTPUT_FILE = "output.json"  # <tuning dir>/output.json: the member a tuner run declares its output
BY_OBJECTIVE = frozenset({"tpe", "gp", "cmaes", "qmc", "gp-opt"})  # their output: the lowest objective


@dataclass(frozen=True)
class Lineage:
    """One member of a tuner run: where it lives, the run's settings, and its schedule."""

    tuning_dir: Path
    settings: dict[str, Any]
    member: int
    trial_dir: Path
    schedule: list[ChangePoint]

    @property
    def workload(self) -> str:
        return self.settings["workload"]

    @property
    def name(self) -> str:
        return f"{self.settings['name']}_m{self.member}"


def tuning_dirs(experiment_dir: Path) -> list[Path]:
    """Every ``tuning/<workload>/study_<k>`` directory of an experiment that has settings."""
    root = Path(experiment_dir) / layout.TUNING_DIR
    return sorted(p.parent for p in root.glob(f"*/study_*/{SETTINGS_FILE}"))


def find_lineage(
    path: str | Path, member: int | str | None = "best", workload: str | None = None, study: int | None = None
) -> Lineage:
    """The lineage named by ``path`` (a member's trial directory, a study's tuning directory, or an
    experiment directory with one tuned workload and study, or ``workload``/``study`` to choose)
    and ``member`` (a number, or ``best``: the tuner's output, see ``best_member``)."""
    path = Path(path).resolve()
    if not path.exists():
        raise AlgobenchError(f"{path} does not exist")
    trial_match = re.fullmatch(r"trial_(\d+)", path.name)
    if trial_match and (path / layout.HPARAMS_FILE).exists():
        member = int(trial_match.group(1))
        study_match = re.fullmatch(r"study_(\d+)", path.parent.parent.name)
        workload_name = path.parent.name.removesuffix(f"_{layout.FRAMEWORK}")
        experiment = path.parents[3]
        tuning_dir = experiment / layout.TUNING_DIR / workload_name / (study_match.group(0) if study_match else "")
    elif (path / SETTINGS_FILE).exists():
        tuning_dir = path
    else:
        found = tuning_dirs(path)
        if workload is not None:
            found = [d for d in found if d.parent.name == workload]
        if study is not None:
            found = [d for d in found if d.name == f"study_{study}"]
        if len(found) != 1:
            listed = ", ".join(f"{d.parent.name} {d.name}" for d in found) or "none"
            raise AlgobenchError(
                f"{path}: {len(found)} tuner runs match ({listed}); name one with --workload and --study, "
                f"or pass its tuning directory or a member's trial directory"
            )
        tuning_dir = found[0]
    settings = read_settings(tuning_dir)
    experiment = tuning_dir.parents[2]

    def member_dir(index: int) -> Path:
        return layout.trial_dir(experiment, settings["name"], settings["study"], settings["workload"], index)

    if member is None or member == "best":
        member = best_member([member_dir(i) for i in range(1, settings["members"] + 1)], settings, tuning_dir)
    member = int(member)
    trial_dir = member_dir(member)
    schedule = read_schedule(trial_dir)
    if not schedule:
        raise AlgobenchError(f"{trial_dir} has no hyperparameter schedule (hparams.json): member {member} never ran")
    return Lineage(tuning_dir, settings, member, trial_dir, schedule)


def write_output(tuning_dir: Path, member: int, rule: str, **details: Any) -> None:
    """Declare ``member`` the tuner run's output (``best_member`` then replays it), and why."""
    from algobench.results import write_json

    write_json(Path(tuning_dir) / OUTPUT_FILE, {"member": int(member), "rule": rule, **details})


def best_member(trial_dirs: Sequence[Path], settings: dict[str, Any], tuning_dir: Path | None = None) -> int:
    """The member that stands for the tuner run's output (what ``tune replay --member best`` and
    the replay view rerun), chosen per tuner:

    1. the member the run declared in ``<tuning dir>/output.json`` (``write_output``): GP-Opt's
       candidate with the best posterior mean (its first run), not its luckiest single run;
    2. for the tuners that minimise the objective (``BY_OBJECTIVE``: Optuna's samplers, and
       GP-Opt before it has written its output), the completed trial with the lowest objective
       (``algobench.tuning.objective``), as Optuna's ``study.best_trial`` (pruned trials excluded);
    3. otherwise (PBT, Halton: AlgoPerf's rule), the lineage that reached the target first on its
       lineage clock, else the best validation metric.
    """
    declared = read_json(Path(tuning_dir) / OUTPUT_FILE) if tuning_dir is not None else None
    if declared is not None and isinstance(declared.get("member"), int):
        return int(declared["member"])
    summaries = [(int(d.name.removeprefix("trial_")), read_summary(d)) for d in trial_dirs]
    summaries = [(m, s) for m, s in summaries if s is not None]
    trusted = [(m, s) for m, s in summaries if s.get("status") not in ("failed", "timeout", "invalid")]
    summaries = trusted or summaries
    if not summaries:
        raise AlgobenchError(f"no member of {settings['name']} ({settings['workload']}) has finished yet")
    if settings.get("tuner") in BY_OBJECTIVE:
        from algobench.tuning.objective import trial_value
        from algobench.tuning.optuna_tuner import STOPPED_BY

        valued = [(trial_value(s), m) for m, s in summaries if s.get(STOPPED_BY) != "pruner"]
        valued = [(v, m) for v, m in valued if v is not None]
        if valued:
            return min(valued)[1]
    reached = [(s["time_to_target"], m) for m, s in summaries if s.get("time_to_target") is not None]
    if reached:
        return min(reached)[1]
    direction = Direction(summaries[0][1].get("metric_direction", "max"))
    scored = [
        (direction.sign() * s["best_validation_metric"], m)
        for m, s in summaries
        if _finite(s.get("best_validation_metric"))
    ]
    if not scored:
        raise AlgobenchError(f"no member of {settings['name']} ({settings['workload']}) has a finite metric")
    return max(scored, key=lambda pair: (pair[0], -pair[1]))[1]


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def replay_seeds(lineage: Lineage, count: int, seed: int | None) -> list[int]:
    base = lineage.settings["seed"] if seed is None else seed
    return [derive_seed(base, REPLAY_STREAM, index) for index in range(count)]


def replay_specs(
    lineage: Lineage,
    *,
    seeds: Sequence[int] | None,
    workloads: Sequence[str],
    experiment_dir: Path,
    threads: int = 1,
    timeout_sec: float | None = None,
) -> list[TrialSpec]:
    """One single trial per (workload, seed) running the lineage's schedule; study i is seed i.

    ``seeds=None`` replays on the lineage's own seed and reseeds (an exact reproduction); fresh
    seeds drop the reseeds, so each replay is one continuous run with changes at the same steps.
    """
    from algobench.workloads import get_workload
    from algobench.workloads.calibration import calibration_factor

    settings = lineage.settings
    first, later = lineage.schedule[0], lineage.schedule[1:]
    if seeds is None:
        if first.reseed is None:
            raise AlgobenchError(f"{lineage.trial_dir}: the schedule does not record the lineage's seed")
        runs = [(int(first.reseed), tuple(later))]
    else:
        plain = tuple(ChangePoint(p.global_step, dict(p.hyperparameters)) for p in later)
        runs = [(seed, plain) for seed in seeds]
    name = lineage.name if seeds is not None else f"{lineage.name}_own_seed"  # never mixed with fresh seeds
    return [
        TrialSpec(
            submission_path=settings["submission_path"],
            submission_name=name,
            workload_name=workload,
            study=index,
            trial=1,
            hyperparameters=dict(first.hyperparameters),
            seed=seed,
            experiment_dir=str(experiment_dir),
            make_workload=get_workload,
            device=settings["device"],
            stop_on_target=settings["stop_on_target"],
            calibration_factor=calibration_factor(workload, threads),
            max_steps=settings["max_steps"],
            eval_every_steps=settings["eval_every_steps"],
            data_dir=settings.get("data_dir"),
            scale=settings["scale"],
            threads=threads,
            clock=settings.get("clock", "wall"),
            tuning_split=settings.get("tuning_split", 0.0),  # trained on what the tuner's members trained on
            timeout_sec=timeout_sec,
            schedule=schedule,
        )
        for workload in workloads
        for index, (seed, schedule) in enumerate(runs)
    ]


def variants_of(workload: str) -> list[str]:
    """The registered variants of ``workload``'s base workload."""
    from algobench.workloads.registry import workload_info, workload_names

    base = workload_info(workload).base_name
    return [n for n in workload_names() if workload_info(n).base_name == base and workload_info(n).variant]


# --- export ---------------------------------------------------------------------------------------

EXPORT_TEMPLATE = '''"""A hyperparameter schedule found by `algobench tune` ({tuner}), as a submission of its own.

Lineage: member {member} of {name}, {workload} study {study}
         ({trial_dir})
Runs {original_shown} with HYPERPARAMETER_SCHEDULE: the first point's values from step 0, and
each later point's changes written into the torch optimizer(s) and scheduler(s) before that
step, with algobench's Submission.apply_hyperparameters (the learning rate scales the schedule,
keeping its shape), exactly as the runner changes a PBT member's hyperparameters. The
hyperparameters the runner passes in are ignored: score it with

    algobench submit {out_name} --ruleset self

(written by `algobench tune export`; the random-stream reseeds of the lineage's forks are not part
of a submission, so a run of this file matches a replay on fresh seeds, not the lineage itself).
"""

from pathlib import Path

from algoperf import pytorch_utils

from algobench.hyperparameters import Hyperparameters
from algobench.submission import load_submission

ORIGINAL = {original_expr}
HYPERPARAMETER_SCHEDULE = {schedule}

_, _, _DEVICE, _ = pytorch_utils.pytorch_setup()
_ORIGINAL = load_submission(ORIGINAL, device=_DEVICE)


def _values_at(step):
    values = {{}}
    for point in HYPERPARAMETER_SCHEDULE:
        if point["global_step"] <= step:
            values.update(point["hyperparameters"])
    return Hyperparameters(values)


def _changes_at(step):
    changes = {{}}
    for point in HYPERPARAMETER_SCHEDULE:
        if step > 0 and point["global_step"] == step:
            changes.update(point["hyperparameters"])
    return changes


def get_batch_size(workload_name):
    first = HYPERPARAMETER_SCHEDULE[0]["hyperparameters"]
    if "batch_size" in first:
        return int(first["batch_size"])
    if _ORIGINAL.get_batch_size is not None:
        return _ORIGINAL.get_batch_size(workload_name)
    from algobench.workloads import workload_class

    return workload_class(workload_name).default_batch_size


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    return _ORIGINAL.init_optimizer_state(
        workload=workload, model_params=model_params, model_state=model_state,
        hyperparameters=_values_at(0), rng=rng,
    )


def update_params(
    workload, current_param_container, current_params_types, model_state, hyperparameters, batch,
    loss_type, optimizer_state, eval_results, global_step, rng, train_state=None,
):
    changes = _changes_at(global_step)
    if changes:
        _ORIGINAL.apply_hyperparameters(optimizer_state, _values_at(global_step - 1), changes)
    extra = {{"train_state": train_state}} if _ORIGINAL.update_params_takes_train_state else {{}}
    return _ORIGINAL.update_params(
        workload=workload, current_param_container=current_param_container,
        current_params_types=current_params_types, model_state=model_state,
        hyperparameters=_values_at(global_step), batch=batch, loss_type=loss_type,
        optimizer_state=optimizer_state, eval_results=eval_results, global_step=global_step, rng=rng,
        **extra,
    )


def prepare_for_eval(
    workload, current_param_container, current_params_types, model_state, hyperparameters, loss_type,
    optimizer_state, eval_results, global_step, rng,
):
    if _ORIGINAL.prepare_for_eval is None:
        return optimizer_state, current_param_container, model_state
    return _ORIGINAL.prepare_for_eval(
        workload=workload, current_param_container=current_param_container,
        current_params_types=current_params_types, model_state=model_state,
        hyperparameters=_values_at(global_step), loss_type=loss_type, optimizer_state=optimizer_state,
        eval_results=eval_results, global_step=global_step, rng=rng,
    )


def data_selection(
    workload, input_queue, optimizer_state, current_param_container, model_state, hyperparameters,
    global_step, rng,
):
    return _ORIGINAL.data_selection(
        workload, input_queue, optimizer_state, current_param_container, model_state,
        _values_at(global_step), global_step, rng,
    )
'''


def export_source(lineage: Lineage, out: Path, copy: bool = False) -> str:
    """The text of the exported submission file; with ``copy`` the original is copied beside it."""
    original = Path(lineage.settings["submission_path"])
    if copy:
        copied = out.with_name(f"{out.stem}_original.py")
        shutil.copyfile(original, copied)
        original_expr = f"str(Path(__file__).with_name({copied.name!r}))"
        original_shown = f"{copied.name} (a copy of {original})"
    else:
        original_expr = repr(str(original))
        original_shown = str(original)
    schedule = [{"global_step": p.global_step, "hyperparameters": dict(p.hyperparameters)} for p in lineage.schedule]
    return EXPORT_TEMPLATE.format(
        tuner=lineage.settings["tuner"],
        member=lineage.member,
        name=lineage.settings["name"],
        workload=lineage.workload,
        study=lineage.settings["study"],
        trial_dir=lineage.trial_dir,
        original_shown=original_shown,
        out_name=out.name,
        original_expr=original_expr,
        schedule=_format_schedule(schedule),
    )


def _format_schedule(schedule: list[dict[str, Any]]) -> str:
    lines = ["["]
    for point in schedule:
        lines.append(f"    {point!r},")
    lines.append("]")
    return "\n".join(lines)


def write_export(lineage: Lineage, out: str | Path, copy: bool = False) -> Path:
    from algobench.results import atomic_write_bytes

    out = Path(out).resolve()
    if out.suffix != ".py":
        raise AlgobenchError(f"--out {out}: the exported submission must be a .py file")
    atomic_write_bytes(out, export_source(lineage, out, copy=copy).encode())
    return out


def lineage_events(lineage: Lineage) -> list[dict[str, Any]]:
    """The exploit events that built this member's lineage, oldest first (following donors back)."""
    from algobench.tuning.events import events_path, read_lines

    exploits = [r for r in read_lines(events_path(lineage.tuning_dir)) if r.get("event") == "exploit"]
    chain, member, step = [], lineage.member, math.inf
    for record in reversed(exploits):
        if record["member"] == member and record["step"] < step:
            chain.append(record)
            member, step = record["donor"], record["step"]
    return list(reversed(chain))
