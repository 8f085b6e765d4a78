"""PBT and PB2 on Ray Tune: ``algobench tune --tuner pbt --backend ray`` and ``--tuner pb2``.

The population is native PBT's (the same members, starting points, explored names, interval and
fitness), handed to Ray Tune's ``PopulationBasedTraining`` or ``PB2`` scheduler; each member is
an ``AlgobenchTrainable`` (``tuning/ray_trainable.py``) that trains it in segments with algobench's
own trial code. What Ray users trip over is set here once:

- ``time_attr`` is the global step and the perturbation interval is in steps;
- synchronous mode by default (``mode: sync``), members compared at equal steps; a member that
  fails or ends is no longer live (its fitness is NaN: never compared), and the others go on
  without it, also when they are already waiting for it at a barrier (``tuning/ray_schedulers.py``);
- every member exists from the start: ``--parallel`` is enforced by the CPUs each member reserves,
  not by Ray Tune's ``max_concurrent_trials`` (which would run the population in sequential groups);
- every checkpoint is kept (``num_to_keep=None``), so a donor's checkpoint is never gone when a
  clone is restored from it; they live under ``<tuning dir>/ray/``, beside Ray's own files;
- Ray's randomness (its ``random`` module draws) is seeded from the run's seed and study.

The run is mirrored into algobench's layout as it goes: member trial directories (written by the
trial code itself), ``segments.jsonl`` (by each member), ``results.jsonl`` (every result Ray
reported, from which ``events.jsonl`` is rebuilt in native PBT's format: each barrier's exploits,
then its ``round`` line), ``overhead.json`` and ``settings.json`` — so ``algobench score``,
``tune score``, ``tune replay``, ``tune export`` and ``tune plot`` read a Ray run unchanged.
A rerun of the same command resumes Ray's experiment (``Tuner.restore``).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ray import tune

from algobench.errors import AlgobenchError
from algobench.layout import Direction
from algobench.results import read_summary
from algobench.seeds import derive_seed
from algobench.tuning.base import TrialRequest
from algobench.tuning.events import Ledger, append_lines, events_path, read_lines
from algobench.tuning.ray_space import MEMBER_KEY, RaySpace

RAY_DIR = "ray"  # Ray Tune's experiment (its trial folders and checkpoints), in the tuning directory
RESULTS_FILE = "results.jsonl"  # every result Ray reported: what events.jsonl is rebuilt from
TRIAL_RETRIES = 2  # a member whose actor or segment failed in algobench is restarted from its checkpoint
EXPLOIT_FIELDS = ("round", "step", "member", "donor", "donor_step", "old_hyperparameters", "new_hyperparameters",
                  "changes", "fitness", "donor_fitness", "metric", "reseed")  # fmt: skip


@contextlib.contextmanager
def ray_session(address: str | None) -> Iterator[None]:
    """Ray for the command: the cluster at ``address``/``$RAY_ADDRESS``, else a local one, stopped after."""
    import ray

    from algobench.executors.ray_executor import connect

    began = time.perf_counter()
    started = connect(address)
    print(
        f"ray: {'started a local Ray' if started else 'joined ' + ray.get_runtime_context().gcs_address} "
        f"in {time.perf_counter() - began:.1f} s",
        file=sys.stderr,
    )
    try:
        yield None
    finally:
        if started:
            ray.shutdown()


def check_ray_tuner(tuner: Any) -> None:
    """What Ray Tune's schedulers cannot do, as one line each."""
    settings = tuner.settings
    if tuner.name not in ("pbt", "pb2"):
        raise AlgobenchError(f"--backend ray runs the pbt and pb2 tuners, not {tuner.name}")
    if settings.selection != "truncation":
        raise AlgobenchError(
            f"{tuner.name} on Ray: Ray Tune selects by truncation (quantile); selection: {settings.selection} is "
            f"native PBT's (drop --backend ray)"
        )
    explorer = getattr(settings, "explorer", None)
    if tuner.name == "pbt" and explorer not in (None, type(settings)().explorer):
        raise AlgobenchError(
            f"pbt on Ray: Ray Tune's PBT explores by perturbation; explorer: {explorer} is native PBT's "
            f"(drop --backend ray)"
        )
    if not tuner.explored:
        raise AlgobenchError(f"{tuner.name} on Ray: nothing to explore in {tuner.task.search_space.source}")


def tune_on_ray(task: Any, tuner: Any, _session: Any, args: argparse.Namespace) -> list[dict[str, Any]]:
    """One population (one workload, one study) on Ray Tune to its end; its members' final summaries."""
    from algobench.cli import preload_modules
    from algobench.tuning.cli import settings_record, trial_spec, validation_key
    from algobench.tuning.events import check_settings
    from algobench.tuning.ray_trainable import AlgobenchTrainable, MemberContext, member_name

    check_ray_tuner(tuner)
    check_settings(task.tuning_dir, settings_record(task, tuner, args), write=True)
    members = list(range(1, tuner.settings.population + 1))
    finals = [read_summary(task.member_dir(m)) for m in members]
    if all(s is not None for s in finals):
        return finals  # a finished run: nothing to do
    space = RaySpace({name: tuner.dimensions[name] for name in tuner.explored}, log_space=tuner.name == "pb2")
    points = tuner._initial_points()  # the same starting population as native PBT
    metric_key = tuner.metric
    context = MemberContext(
        task=task,
        template=trial_spec(task, tuner, TrialRequest(trial=1, hyperparameters=points[0]), args),
        space=space,
        interval=tuner.interval,
        fitness_evals=tuner.settings.fitness_evals,
        metric_key=metric_key,
        validation_key=validation_key(task.workload_name),
        sign=float(Direction(tuner.direction).sign()),
        preload=preload_modules([task.workload_name]),
    )
    trainable = tune.with_resources(
        tune.with_parameters(AlgobenchTrainable, context=context), member_resources(args.threads, args.parallel)
    )
    configs = [space.to_config(point) for point in points]
    keys = dict.fromkeys(key for config in configs for key in config)
    param_space = {
        MEMBER_KEY: tune.grid_search(members),
        **{k: tune.sample_from(InitialValue(configs, k)) for k in keys},
    }
    mirror = EventMirror(task.tuning_dir, tuner.interval)
    storage = Path(task.tuning_dir)
    random.seed(derive_seed(task.seed, task.study))  # Ray's schedulers draw from the random module
    run_config = tune.RunConfig(
        name=RAY_DIR, storage_path=str(storage), verbose=0, callbacks=[mirror],
        failure_config=tune.FailureConfig(max_failures=TRIAL_RETRIES),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
    )  # fmt: skip
    if tune.Tuner.can_restore(str(storage / RAY_DIR)):
        runner = tune.Tuner.restore(
            str(storage / RAY_DIR), trainable=trainable, param_space=param_space,
            resume_unfinished=True, resume_errored=True,
        )  # fmt: skip
    else:
        runner = tune.Tuner(
            trainable,
            param_space=param_space,
            tune_config=tune.TuneConfig(
                scheduler=make_scheduler(tuner, space), num_samples=1, reuse_actors=True,
                trial_name_creator=member_name,
                trial_dirname_creator=member_name,
            ),
            run_config=run_config,
        )  # fmt: skip
    if not args.quiet:
        where = f"{task.workload_name} study {task.study}"
        print(f"{where}: {tuner.name} on Ray Tune with {len(members)} members -> {task.tuning_dir}", file=sys.stderr)
    began = time.perf_counter()
    try:
        runner.fit()
    finally:
        mirror.write_events()
        save_overhead(task.tuning_dir, time.perf_counter() - began, args)
    return [s for s in (read_summary(task.member_dir(m)) for m in members) if s is not None]


def member_resources(threads: int, parallel: int | None) -> dict[str, float]:
    """What Ray reserves for each member: its ``--threads`` CPUs, or with ``--parallel N`` the
    cluster's CPUs / N (at most the largest node's), so that Ray runs at most N members at once.

    ``--parallel`` is not Ray Tune's ``max_concurrent_trials``: that limit holds back the creation
    of members while N are live, paused ones included, so with N below the population the first N
    would run to the end before the others existed, never compared with them (and with N = 1,
    never compared at all)."""
    import ray

    cpus = float(max(int(threads), 1))
    if parallel is None:
        return {"cpu": cpus}
    total = float(ray.cluster_resources().get("CPU", cpus))
    largest = max((float(n["Resources"].get("CPU", 0)) for n in ray.nodes() if n.get("Alive")), default=total)
    share = math.floor(total / max(int(parallel), 1) * 1e4) / 1e4  # Ray counts CPUs to 1e-4
    return {"cpu": min(max(cpus, share), max(largest, cpus))}


def make_scheduler(tuner: Any, space: RaySpace) -> Any:
    """Ray Tune's PBT or PB2 scheduler with the population's settings (see the module docstring)."""
    settings = tuner.settings
    common = {
        "time_attr": "global_step",
        "metric": "fitness",  # the trainable reports it signed: larger is better
        "mode": "max",
        "perturbation_interval": tuner.interval,
        "quantile_fraction": settings.quantile,
        "log_config": False,
        "require_attrs": False,  # a member without a finite fitness (diverged) is not compared
        "synch": settings.mode == "sync",
    }
    from algobench.tuning.ray_schedulers import AlgobenchPB2, AlgobenchPBT

    if tuner.name == "pb2":
        return AlgobenchPB2(hyperparam_bounds=space.bounds(), **common)
    return AlgobenchPBT(
        hyperparam_mutations=space.mutations(), burn_in_period=settings.burn_in,
        resample_probability=settings.resample_probability,
        perturbation_factors=tuple(settings.perturbation_factors), custom_explore_fn=space.clip_config, **common,
    )  # fmt: skip


class InitialValue:
    """``tune.sample_from``: member k's starting value of one config key (picklable, unlike a lambda)."""

    def __init__(self, configs: list[dict[str, Any]], key: str) -> None:
        self.configs, self.key = configs, key

    def __call__(self, config: Any) -> Any:
        return self.configs[int(config[MEMBER_KEY]) - 1].get(self.key)


class EventMirror(tune.Callback):
    """Mirrors Ray's results into algobench's files as they come (driver side)."""

    def __init__(self, tuning_dir: Path, interval: int) -> None:
        self.tuning_dir = Path(tuning_dir)
        self.interval = interval

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        record = {
            "member": result.get("algobench_member"),
            "step": result.get("global_step"),
            "status": result.get("algobench_status"),
            "fitness": result.get("algobench_fitness"),
            "hyperparameters": result.get("algobench_values"),
            "segment_sec": result.get("algobench_segment_sec"),
            "exploit": result.get("algobench_exploit"),
        }
        append_lines(self.tuning_dir / RESULTS_FILE, [record])
        self.write_events()

    def write_events(self) -> None:
        """``events.jsonl`` rebuilt from every result so far, whole (written aside, then renamed)."""
        records = compose_events(read_lines(self.tuning_dir / RESULTS_FILE), self.interval)
        target = events_path(self.tuning_dir)
        staged = target.with_name(target.name + ".tmp")
        staged.unlink(missing_ok=True)
        append_lines(staged, records)
        if staged.exists():
            staged.replace(target)


def compose_events(results: list[dict[str, Any]], interval: int) -> list[dict[str, Any]]:
    """Native PBT's event log from Ray's results: at each barrier a live member reached, the
    exploits decided there (each known from its recipient's next result), then the ``round`` line
    with every member's fitness there and its hyperparameters after the decisions."""
    at: dict[int, dict[int, dict[str, Any]]] = {}  # step -> member -> its (last) result there
    exploits: dict[tuple[int, int], dict[str, Any]] = {}  # (step, member) -> the exploit record
    for result in results:
        at.setdefault(int(result["step"]), {})[int(result["member"])] = result
        exploit = result.get("exploit")
        if exploit:
            exploits[(int(exploit["step"]), int(exploit["member"]))] = {
                "event": "exploit",
                **{k: exploit.get(k) for k in EXPLOIT_FIELDS},
            }
    records: list[dict[str, Any]] = []
    for step in sorted(at):
        here = {m: r for m, r in at[step].items() if r.get("status") is None}  # a member that ended is not compared
        if step % interval or not here:
            continue  # not a barrier, or every member ended here: nothing was decided
        decided = sorted(
            (e for (s, _), e in exploits.items() if s == step), key=lambda e: (e["fitness"] is None, e["member"])
        )
        records += decided
        after = {m: dict(r.get("hyperparameters") or {}) for m, r in here.items()}
        for exploit in decided:
            after[exploit["member"]] = dict(exploit["new_hyperparameters"])
        records.append(
            {
                "event": "round",
                "round": step // interval,
                "step": step,
                "fitness": {str(m): r.get("fitness") for m, r in sorted(here.items())},
                "hyperparameters": {str(m): v for m, v in sorted(after.items())},
                "exploits": len(decided),
            }
        )
    return records


def save_overhead(tuning_dir: Path, wall_sec: float, args: argparse.Namespace) -> dict[str, Any]:
    """``overhead.json`` in the native ledger's terms: the segments' own wall time against the
    slots' time; what is left (Ray's scheduling, actor start-up, checkpoint copies) is idle."""
    from algobench.executors.ray_executor import cluster_cpus

    results = read_lines(Path(tuning_dir) / RESULTS_FILE)
    ledger = Ledger()
    ledger.wall_sec = wall_sec
    slots = max(cluster_cpus() // max(int(args.threads), 1), 1)
    ledger.parallelism = slots if args.parallel is None else max(min(args.parallel, slots), 1)
    ledger.busy_sec = sum(float(r.get("segment_sec") or 0.0) for r in results)
    ledger.segments = len(results)
    ledger.forks = sum(1 for r in results if r.get("exploit"))
    ledger.fork_sec = sum(float(r["exploit"].get("fork_sec") or 0.0) for r in results if r.get("exploit"))
    return ledger.save(tuning_dir)
