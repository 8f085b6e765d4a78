"""Native PBT: exploration in the search space's own scale, selection, a population that rescues
its hopeless half, lineages that continue their donors' logs, replays that reproduce a lineage,
exported schedules, asynchronous mode, and a fork interrupted between its copy and its first step."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from algobench.cli import main
from algobench.errors import AlgobenchError
from algobench.hyperparameters import ChangePoint, Hyperparameters
from algobench.tuning.events import read_eval_rows, read_lines, read_schedule, values_at
from algobench.tuning.pbt import PBT, explore_value
from algobench.tuning.search_space import Choice, Range, load_search_space
from algobench.tuning.tuners import TuningTask, make_settings
from tests.conftest import SUBMISSIONS

ADAMW = SUBMISSIONS / "adamw" / "submission.py"
TIMING = {
    "score", "total_duration", "accumulated_submission_time", "accumulated_eval_time",
    "accumulated_logging_time", "process_cpu_time", "preemption_count",
}  # fmt: skip
GOOD = (3e-3, 5e-3)
HOPELESS = 1e-6
ROUNDS = 4  # decisions at steps 20, 40, 60, 80 of 100
BASE = {"one_minus_beta1": 0.1, "beta2": 0.999, "weight_decay": 0.01, "warmup_factor": 0.002}  # a 10-step warm-up
SPACE = {
    "learning_rate": {"min": 1e-6, "max": 1e-2, "scaling": "log"},
    "one_minus_beta1": {"min": 0.03, "max": 0.2, "scaling": "log"},
    "weight_decay": {"min": 1e-3, "max": 0.2, "scaling": "log"},
    "beta2": {"feasible_points": [0.999]},
    "warmup_factor": {"feasible_points": [0.05]},
}


# --- explore ------------------------------------------------------------------------------------


def test_log_ranges_are_perturbed_by_the_factors_and_clipped_to_the_bounds():
    lr = Range("learning_rate", 1e-4, 1e-2, "log")
    rng = np.random.default_rng(0)
    moved = {explore_value(lr, 1e-3, rng, 0.0, (0.8, 1.2)) for _ in range(50)}
    assert sorted(moved) == pytest.approx([8e-4, 1.2e-3])
    assert {explore_value(lr, 9.5e-3, rng, 0.0, (1.2,)) for _ in range(5)} == {1e-2}  # clipped, not 1.14e-2
    assert {explore_value(lr, 1.1e-4, rng, 0.0, (0.8,)) for _ in range(5)} == {1e-4}
    resampled = [explore_value(lr, 1e-3, rng, 1.0, (0.8, 1.2)) for _ in range(200)]
    assert all(1e-4 <= v <= 1e-2 for v in resampled)
    logs = np.log10(resampled)  # uniform in log space: about half below the geometric middle
    assert 0.35 < np.mean(logs < -3) < 0.65
    linear = Range("beta1", 0.8, 0.99, "linear")
    assert explore_value(linear, 0.95, np.random.default_rng(1), 0.0, (1.2,)) == 0.99


def test_choices_move_to_a_neighbour_or_resample():
    choice = Choice("batch", (16, 32, 64, 128))
    rng = np.random.default_rng(0)
    assert {explore_value(choice, 32, rng, 0.0, (0.8, 1.2)) for _ in range(50)} == {16, 64}
    assert {explore_value(choice, 16, rng, 0.0, (0.8, 1.2)) for _ in range(20)} == {32}  # the end's one neighbour
    assert {explore_value(choice, 7, rng, 0.0, (0.8, 1.2)) for _ in range(50)} <= {16, 32, 64, 128}
    assert {explore_value(choice, 32, rng, 1.0, (0.8, 1.2)) for _ in range(100)} == {16, 32, 64, 128}


def test_the_same_generator_seed_explores_the_same_way():
    lr = Range("learning_rate", 1e-4, 1e-2, "log")
    draws = [[explore_value(lr, 1e-3, np.random.default_rng(7), 0.25, (0.8, 1.2)) for _ in range(3)] for _ in range(2)]
    assert draws[0] == draws[1]


# --- settings -----------------------------------------------------------------------------------


def task(tmp_path: Path, space_path: Path | None = None) -> TuningTask:
    space = load_search_space(space_path or ADAMW.parent / "tuning_search_space.json")
    return TuningTask(str(ADAMW), "adamw_pbt", "digits_mlp", 0, 0, tmp_path, space, step_hint=5000)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"population": 1}, "population must be at least 2"),
        ({"quantile": 0.7}, "quantile must be in (0, 0.5], got 0.7"),
        ({"quantile": 0}, "quantile must be in (0, 0.5], got 0"),
        ({"mode": "eventually"}, "mode must be one of sync, async"),
        ({"selection": "roulette"}, "selection must be one of truncation, tournament"),
        ({"explore": ["learnin_rate"]}, "explore names 'learnin_rate', not a hyperparameter of"),
        ({"fixed": ["momentum"]}, "fixed names 'momentum', not a hyperparameter of"),
        ({"explore": ["warmup_factor"]}, "explore names 'warmup_factor', which the runner cannot change mid-run"),
        ({"initial_points": [{"learning_rate": 1e-3}]}, "initial_points lists 1 points for a population of 8"),
        (
            {"population": 2, "initial_points": [{"lr": 1}, {"lr": 2}]},
            "initial_points names 'lr', not a hyperparameter",
        ),
        ({"interval": 30, "eval_every_steps": 20}, "interval 30 is not a multiple of eval_every_steps 20"),
        ({"interval": 50, "max_steps": 40}, "interval 50 is longer than max_steps 40"),
        ({"perturbation_factors": [1.2, -1]}, "perturbation_factors must be positive numbers"),
    ],
)
def test_bad_pbt_settings_are_one_line_errors(settings, message, tmp_path):
    with pytest.raises(AlgobenchError) as error:
        make_settings(PBT.Settings, "pbt", [("pbt.yaml", settings)], task(tmp_path))
    assert message in str(error.value) and "\n" not in str(error.value)
    assert str(error.value).startswith("pbt.yaml")


def test_by_default_pbt_explores_what_the_runner_can_change(tmp_path):
    settings = make_settings(PBT.Settings, "pbt", [("t", {"population": 2, "interval": 20})], task(tmp_path))
    tuner = PBT(task(tmp_path), settings)
    assert tuner.explored == ("learning_rate", "one_minus_beta1", "weight_decay")
    assert tuner.kept_fixed == ()  # beta2 and warmup_factor have one feasible point: nothing to explore
    assert tuner.eval_every_steps == 10 and tuner.interval == 20
    default = PBT(task(tmp_path), make_settings(PBT.Settings, "pbt", [("t", {})], task(tmp_path)))
    assert default.interval == 250 and len(default.members) == 8


# --- a population, through the command line (in-process) ----------------------------------------------


def tune(experiment: Path, *extra: str, config: dict | None = None, space: Path | None = None) -> int:
    args = ["tune", str(ADAMW), "--workloads", "digits_mlp", "--scale", "tiny", "--experiment-dir", str(experiment),
            "--executor", "inprocess", "--quiet", "--no-stop-on-target"]  # fmt: skip
    if config is not None:
        path = experiment.parent / f"{experiment.name}.yaml"
        path.write_text(yaml.safe_dump(config))
        args += ["--config", str(path)]
    if space is not None:
        args += ["--search-space", str(space)]
    return main([*args, *extra])


@pytest.fixture(scope="module")
def rescued(tmp_path_factory) -> Path:
    """Four members, two starting with a hopeless learning rate; the bottom half copies the top."""
    root = tmp_path_factory.mktemp("rescued")
    space = root / "space.json"
    space.write_text(json.dumps(SPACE))
    points = [{**BASE, "learning_rate": lr} for lr in (GOOD[0], HOPELESS, GOOD[1], HOPELESS)]
    config = {"population": 4, "interval": 20, "max_steps": 100, "quantile": 0.5, "resample_probability": 0.0,
              "initial_points": points}  # fmt: skip
    assert tune(root / "exp", config=config, space=space) == 0
    return root / "exp"


def member_dir(experiment: Path, member: int) -> Path:
    return experiment / "adamw_pbt/study_0/digits_mlp_pytorch" / f"trial_{member}"


def events(experiment: Path) -> list[dict]:
    return read_lines(experiment / "tuning/digits_mlp/study_0/events.jsonl")


def test_the_hopeless_half_ends_within_the_good_members_range(rescued):
    # the extremes a good member can reach by perturbing every round (rounding: 1e-12 relative)
    low, high = GOOD[0] * 0.8**ROUNDS * (1 - 1e-12), min(GOOD[1] * 1.2**ROUNDS, 1e-2) * (1 + 1e-12)
    for member in range(1, 5):
        schedule = read_schedule(member_dir(rescued, member))
        final = values_at(schedule, 10**9)["learning_rate"]
        assert low <= final <= high, f"member {member} ends at learning rate {final}"
        summary = json.loads((member_dir(rescued, member) / "summary.json").read_text())
        assert summary["status"] in ("ok", "target_reached") and summary["steps"] == 100
        assert summary["best_validation_metric"] > 0.5
    first_round = [e for e in events(rescued) if e["event"] == "exploit" and e["round"] == 1]
    assert sorted(e["member"] for e in first_round) == [2, 4]  # the hopeless ones copy at the first barrier
    assert all(e["donor"] in (1, 3) and e["old_hyperparameters"]["learning_rate"] == HOPELESS for e in first_round)


def test_every_lineage_continues_its_donors_log(rescued):
    exploits = [e for e in events(rescued) if e["event"] == "exploit"]
    assert exploits, "the population must have forked"
    rounds = [e for e in events(rescued) if e["event"] == "round"]
    assert [r["step"] for r in rounds] == [20, 40, 60, 80]
    for member in range(1, 5):
        mine = [e for e in exploits if e["member"] == member]
        if not mine:
            continue
        last = mine[-1]
        rows = read_eval_rows(member_dir(rescued, member))
        before = [r for r in rows if r["global_step"] <= last["step"]]
        # The log up to the fork is the donor's lineage: its fitness at the fork, exactly.
        fitness = float(np.mean([r["validation/accuracy"] for r in before[-2:]]))
        assert fitness == last["donor_fitness"]
        assert [r["global_step"] for r in rows] == list(range(10, 101, 10))  # then goes on to the end
        points = {p.global_step: p for p in read_schedule(member_dir(rescued, member))}
        assert points[last["step"]].hyperparameters == last["changes"]
        assert points[last["step"]].reseed == last["reseed"]


def test_the_event_log_records_each_decision(rescued):
    exploit = next(e for e in events(rescued) if e["event"] == "exploit")
    assert set(exploit) >= {"round", "step", "member", "donor", "donor_step", "old_hyperparameters",
                            "new_hyperparameters", "fitness", "donor_fitness"}  # fmt: skip
    assert exploit["donor_fitness"] > exploit["fitness"]
    assert exploit["new_hyperparameters"] == {**exploit["new_hyperparameters"], **exploit["changes"]}
    settings = json.loads((rescued / "tuning/digits_mlp/study_0/settings.json").read_text())
    assert settings["tuner"] == "pbt" and settings["settings"]["population"] == 4 and settings["members"] == 4


def forked_member(experiment: Path) -> int:
    return next(m for m in range(1, 5) if len(read_schedule(member_dir(experiment, m))) > 1)


def metric_rows(rows) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


def test_a_replay_on_the_lineages_own_seed_reproduces_its_log(rescued, tmp_path):
    from algobench.executors.inprocess import InProcessExecutor
    from algobench.tuning.driver import drive_specs
    from algobench.tuning.lineage import find_lineage, replay_seeds, replay_specs

    member = forked_member(rescued)
    lineage = find_lineage(rescued, member)
    own = replay_specs(lineage, seeds=None, workloads=["digits_mlp"], experiment_dir=tmp_path / "own")
    fresh = replay_specs(lineage, seeds=replay_seeds(lineage, 2, None), workloads=["digits_mlp"],
                         experiment_dir=tmp_path / "fresh")  # fmt: skip
    results = drive_specs([*own, *fresh], InProcessExecutor())
    assert all(summary["status"] in ("ok", "target_reached") for _, summary in results)
    replayed = read_eval_rows(own[0].trial_dir())
    assert metric_rows(replayed) == metric_rows(read_eval_rows(lineage.trial_dir))
    assert [p.to_json() for p in read_schedule(own[0].trial_dir())] == [p.to_json() for p in lineage.schedule]
    # Fresh seeds: the same changes at the same steps, no reseeds, other batches.
    seeds = {spec.seed for spec in fresh}
    assert len(seeds) == 2 and not seeds & {p.reseed for p in lineage.schedule}
    for spec in fresh:
        schedule = read_schedule(spec.trial_dir())
        assert [p.global_step for p in schedule] == [p.global_step for p in lineage.schedule]
        assert all(p.reseed is None for p in schedule[1:])
        assert metric_rows(read_eval_rows(spec.trial_dir())) != metric_rows(replayed)


def test_an_exported_schedule_runs_the_schedule(rescued, tmp_path):
    from algobench.runner import RunConfig, TrialRunner
    from algobench.submission import load_submission
    from algobench.tuning.lineage import find_lineage, write_export
    from algobench.workloads import get_workload

    lineage = find_lineage(rescued, forked_member(rescued))
    exported = write_export(lineage, tmp_path / "pbt_schedule.py")
    plain = tuple(ChangePoint(p.global_step, dict(p.hyperparameters)) for p in lineage.schedule[1:])

    def run(path, hyperparameters, schedule=()):
        config = RunConfig(budget_sec=1e9, eval_period_sec=1e9, seed=11, eval_every_steps=20, max_steps=140,
                           stop_on_target=False, schedule=schedule)  # fmt: skip
        trial = TrialRunner(get_workload("digits_mlp", scale="tiny"), load_submission(path),
                            Hyperparameters(hyperparameters), config)  # fmt: skip
        trial.run()
        return trial

    by_export = run(exported, {})  # the self-tuning ruleset hands it nothing
    by_runner = run(ADAMW, dict(lineage.schedule[0].hyperparameters), plain)
    assert metric_rows(by_export.state.eval_history) == metric_rows(by_runner.state.eval_history)
    optimizer = by_export.optimizer_state["optimizer"]
    final = values_at(lineage.schedule, 10**9)
    assert optimizer.param_groups[0]["weight_decay"] == pytest.approx(final["weight_decay"])

    assert main(["submit", str(exported), "--ruleset", "self", "--studies", "1", "--scale", "tiny",
                 "--workloads", "digits_mlp", "--experiment-dir", str(tmp_path / "scored"), "--quiet",
                 "--executor", "inprocess", "--threads", "1"]) == 0  # fmt: skip
    summary = json.loads(next((tmp_path / "scored").glob("*/study_0/*/trial_1/summary.json")).read_text())
    assert summary["status"] in ("target_reached", "out_of_time"), summary.get("error")


def test_asynchronous_members_fork_from_snapshots_at_equal_steps(tmp_path):
    config = {"population": 4, "interval": 20, "max_steps": 80, "mode": "async", "quantile": 0.5}
    assert tune(tmp_path / "exp", config=config) == 0
    log = events(tmp_path / "exp")
    ready = [e for e in log if e["event"] == "ready"]
    assert len(ready) == 4 * 3  # each member at 20, 40, 60
    fitness = {(e["member"], e["step"]): e["fitness"] for e in ready}
    exploits = [e for e in log if e["event"] == "exploit"]
    assert exploits
    for exploit in exploits:  # compared at the same step, with the donor's fitness at that step
        assert exploit["donor_fitness"] == fitness[(exploit["donor"], exploit["step"])]
        assert exploit["donor_fitness"] > exploit["fitness"]
    for member in range(1, 5):
        summary = json.loads((member_dir(tmp_path / "exp", member) / "summary.json").read_text())
        assert summary["status"] == "ok" and summary["steps"] == 80 and summary["preemption_count"] == 0
    assert not list((tmp_path / "exp/tuning/digits_mlp/study_0/snapshots").glob("*"))  # pruned at the end


def test_a_fork_copied_but_not_yet_applied_is_applied_on_resume(tmp_path):
    """Stopped after the driver copied a fork's files, before the clone's segment ran."""
    import algobench.executors.inprocess as inprocess

    config = {"population": 4, "interval": 20, "max_steps": 60, "quantile": 0.5}
    assert tune(tmp_path / "straight", config=config) == 0

    original = inprocess.InProcessExecutor.submit

    def submit(self, spec):
        if (spec.trial_dir() / "fork.json").exists():
            raise KeyboardInterrupt
        return original(self, spec)

    inprocess.InProcessExecutor.submit = submit
    try:
        assert tune(tmp_path / "resumed", config=config) == 130
    finally:
        inprocess.InProcessExecutor.submit = original
    pending = list((tmp_path / "resumed").glob("adamw_pbt/study_0/*/trial_*/fork.json"))
    assert len(pending) == 1
    assert tune(tmp_path / "resumed", config=config) == 0
    assert events(tmp_path / "resumed") == events(tmp_path / "straight")
    for member in range(1, 5):
        a = read_eval_rows(member_dir(tmp_path / "straight", member))
        b = read_eval_rows(member_dir(tmp_path / "resumed", member))
        assert metric_rows(a) == metric_rows(b)


def test_fitness_is_direction_aware(tmp_path):
    tuner = PBT(task(tmp_path), make_settings(PBT.Settings, "pbt", [("t", {"population": 2, "interval": 20})],
                                              task(tmp_path)))  # fmt: skip
    assert tuner._score(0.9) > tuner._score(0.5) and tuner._score(math.nan) == -math.inf
    from algobench.layout import Direction

    tuner.direction = Direction.MIN
    assert tuner._score(0.1) > tuner._score(0.5)
