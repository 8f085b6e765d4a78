"""Every registered tuner passes the same checks (in the manner of Optuna's sampler tests):
the same seed gives the same requests; a run stopped part-way and resumed ends with the same
trials as a straight run; bad settings are one-line errors naming the setting and its source."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from algobench.errors import AlgobenchError
from algobench.executors.inprocess import InProcessExecutor
from algobench.trial_spec import TrialSpec
from algobench.tuning.base import TrialRequest
from algobench.tuning.driver import drive
from algobench.tuning.search_space import load_search_space
from algobench.tuning.tuners import TUNERS, TuningTask, make_settings, tuner_class
from algobench.workloads import get_workload
from tests.conftest import SUBMISSIONS

ADAMW = SUBMISSIONS / "adamw" / "submission.py"
TIMING = {
    "score", "total_duration", "accumulated_submission_time", "accumulated_eval_time",
    "accumulated_logging_time", "process_cpu_time", "preemption_count",
}  # fmt: skip
# Small, fast settings per tuner (tiny scale, a few segments each).
SMALL = {
    "halton": {"trials": 3, "max_steps": 40, "eval_every_steps": 20},
    "pbt": {"population": 4, "interval": 20, "max_steps": 60, "quantile": 0.5},
    "tpe": {"trials": 3, "max_steps": 40, "eval_every_steps": 20, "pruner": "median", "prune_interval": 20},
    "gp": {"trials": 3, "max_steps": 20, "eval_every_steps": 20, "startup_trials": 1},
    "cmaes": {"trials": 3, "max_steps": 20, "eval_every_steps": 20, "startup_trials": 0, "popsize": 2},
    "qmc": {"trials": 3, "max_steps": 20, "eval_every_steps": 20},
    "gp-opt": {"trials": 4, "max_steps": 20, "eval_every_steps": 20},
    "pb2": {"population": 4, "interval": 20, "max_steps": 60},
}
# Tuners that run on Ray Tune only: their runs are tested against a real Ray (tests/test_ray_tune.py),
# here only their settings.
NATIVE = [name for name in TUNERS if not getattr(tuner_class(name), "ray_only", False)]


def make_task(experiment: Path, seed: int = 0) -> TuningTask:
    return TuningTask(
        submission_path=str(ADAMW), submission_name="adamw_t", workload_name="digits_mlp", study=0, seed=seed,
        experiment_dir=experiment, search_space=load_search_space(ADAMW.parent / "tuning_search_space.json"),
        step_hint=5000,
    )  # fmt: skip


# Variants of a registered tuner that resume differently (asynchronous PBT forks from snapshots).
VARIANTS = {"pbt-async": ("pbt", {"mode": "async"})}


def build(name: str, experiment: Path, seed: int = 0, **overrides):
    name, extra = VARIANTS.get(name, (name, {}))
    task = make_task(experiment, seed)
    cls = tuner_class(name)
    settings = make_settings(cls.Settings, name, [("test", {**SMALL[name], **extra, **overrides})], task)
    return cls(task, settings), task


def spec_factory(task: TuningTask, tuner):
    def make_spec(request: TrialRequest) -> TrialSpec:
        root = task.experiment_dir
        if request.fork_from is None and request.change_step is not None and hasattr(tuner, "donor_root"):
            root = tuner.donor_root(request) or root
        return TrialSpec(
            submission_path=task.submission_path, submission_name=task.submission_name,
            workload_name=task.workload_name, study=task.study, trial=request.trial,
            hyperparameters=request.hyperparameters, seed=task.member_seed(request.trial),
            experiment_dir=str(root), make_workload=get_workload, scale="tiny", threads=1,
            eval_every_steps=tuner.eval_every_steps, max_steps=tuner.max_steps, stop_on_target=False,
            until_step=request.until_step,
        )  # fmt: skip

    return make_spec


def run(name: str, experiment: Path, seed: int = 0, stop_after: int | None = None, **overrides) -> list:
    """Drive the tuner to its end (or stop after ``stop_after`` results); the requests it made."""
    tuner, task = build(name, experiment, seed, **overrides)
    asked: list[TrialRequest] = []
    ask = tuner.ask

    def recording_ask():
        request = ask()
        if request is not None:
            asked.append(request)
        return request

    tuner.ask = recording_ask
    heard = []

    def on_result(spec, summary, error):
        heard.append(spec)
        if stop_after is not None and len(heard) >= stop_after:
            raise KeyboardInterrupt  # a Ctrl-C between two results

    try:
        drive(tuner, InProcessExecutor(), spec_factory(task, tuner), on_result=on_result)
    except KeyboardInterrupt:
        assert stop_after is not None
    return asked


def final_state(experiment: Path) -> dict:
    """What a run leaves: each trial's summary (status, steps), schedule and eval log (timing aside)."""
    state = {}
    for trial in sorted(experiment.glob("adamw_t/study_0/digits_mlp_pytorch/trial_*")):
        summary = json.loads((trial / "summary.json").read_text())
        rows = (trial / "eval_measurements.csv").read_text().splitlines()
        header = rows[0].split(",")
        keep = [i for i, column in enumerate(header) if column not in TIMING]
        log = [[line.split(",")[i] for i in keep] for line in rows]
        schedule = json.loads((trial / "hparams.json").read_text())["schedule"]
        state[trial.name] = (summary["status"], summary["steps"], schedule, log)
    events = experiment / "tuning/digits_mlp/study_0/events.jsonl"
    state["events"] = events.read_text() if events.exists() else None
    return state


@pytest.mark.parametrize("name", NATIVE)
def test_the_same_seed_gives_the_same_requests(name, tmp_path):
    first = run(name, tmp_path / "a")
    second = run(name, tmp_path / "b")
    assert first == second and len(first) >= 3
    assert final_state(tmp_path / "a") == final_state(tmp_path / "b")
    other = run(name, tmp_path / "c", seed=1)
    assert [r.hyperparameters for r in other] != [r.hyperparameters for r in first]


# Where to stop: for PBT (4 members), right after round 1's decision (its forks not yet copied),
# in the middle of round 2, and after a resumed run's own decision.
STOPS = {"halton": (2,), "pbt": (4, 6), "pbt-async": (3, 6)}


@pytest.mark.parametrize("name", [*NATIVE, *VARIANTS])
def test_a_run_stopped_part_way_resumes_to_the_same_trials(name, tmp_path):
    run(name, tmp_path / "straight")
    for stop_after in STOPS.get(name, (2,)):
        partial = run(name, tmp_path / "resumed", stop_after=stop_after)
        assert partial, "the stopped run must have asked for work"
    run(name, tmp_path / "resumed")  # a new tuner on the same directories continues
    assert final_state(tmp_path / "resumed") == final_state(tmp_path / "straight")


@pytest.mark.parametrize("name", list(TUNERS))
@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"no_such_setting": 1}, "test: unknown {name} setting 'no_such_setting'"),
        ({"max_steps": 0}, "max_steps must be at least 1, got 0"),
        ({"max_steps": "many"}, "test: max_steps must be an integer, got 'many'"),
        ({"eval_every_steps": 2.5}, "test: eval_every_steps must be an integer, got 2.5"),
    ],
)
def test_bad_settings_are_one_line_errors(name, settings, message, tmp_path):
    with pytest.raises(AlgobenchError) as error:
        build(name, tmp_path, **settings)
    assert message.format(name=name) in str(error.value)
    assert "\n" not in str(error.value)


def test_every_tuner_has_small_settings_here():
    assert set(SMALL) == set(TUNERS)


def test_a_ray_only_tuner_refuses_the_native_driver(tmp_path):
    tuner, _ = build("pb2", tmp_path)
    with pytest.raises(AlgobenchError, match="pb2 runs on Ray Tune only"):
        tuner.ask()


def test_an_unknown_tuner_is_one_line_listing_the_known_ones():
    with pytest.raises(AlgobenchError, match="unknown tuner 'bayes'; known tuners: halton, pbt"):
        tuner_class("bayes")


def test_halton_tuner_is_algobench_submits_plan(tmp_path):
    """Study k's trials are `algobench submit`'s trials of study k: same points, same seeds."""
    from algobench.tuning.planning import plan_trials

    tuner, task = build("halton", tmp_path, seed=3, trials=4)
    task = replace(task, study=1)
    tuner = type(tuner)(task, tuner.settings)
    requests = [tuner.ask() for _ in range(4)]
    assert tuner.ask() is None and tuner.finished
    planned = [s for s in plan_trials(ADAMW, workloads=["digits_mlp"], num_trials=4, num_studies=2, seed=3,
                                      experiment_dir=tmp_path) if s.study == 1]  # fmt: skip
    assert [r.hyperparameters for r in requests] == [s.hyperparameters for s in planned]
    assert [task.member_seed(r.trial) for r in requests] == [s.seed for s in planned]
