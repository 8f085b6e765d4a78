"""Optuna's samplers and pruners behind the tuner interface: the objective's values, a pruner that
sees steps, a study that survives SIGKILL of ``algobench tune`` and is shared by two workers, a
dead worker's trials failed by the heartbeat, bad settings as one-line errors, and every model-based
tuner end to end through ``algobench tune`` and ``algobench tune score``."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from algobench.cli import main
from algobench.errors import AlgobenchError
from algobench.executors.inprocess import InProcessExecutor
from algobench.layout import Direction
from algobench.tuning.driver import drive
from algobench.tuning.objective import GAP_CAP, running_values, surrogate, trial_value
from algobench.tuning.optuna_storage import HEARTBEAT, STALE, WORKER, open_storage
from algobench.tuning.tuners import make_settings, tuner_class
from tests.conftest import SUBMISSIONS
from tests.test_tuners import make_task, spec_factory

ADAMW = SUBMISSIONS / "adamw" / "submission.py"
TRIALS = "adamw_{tuner}/study_0/digits_mlp_pytorch"
COMMON = ["--workloads", "digits_mlp", "--scale", "tiny", "--threads", "1", "--quiet", "--executor", "inprocess"]


def build(experiment: Path, name: str = "tpe", **settings):
    task = make_task(experiment)
    cls = tuner_class(name)
    values = {"trials": 3, "max_steps": 40, "eval_every_steps": 20, **settings}
    return cls(task, make_settings(cls.Settings, name, [("test", values)], task)), task


def study_of(storage: str | Path, name: str = "adamw_tpe/digits_mlp/study_0") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_storage(str(storage), Path(storage).parent))


# --- the objective ----------------------------------------------------------------------------------


def test_the_surrogate_ranks_every_reach_before_every_miss_and_misses_by_their_gap():
    budget = 100.0
    assert surrogate(0.97, 0.96, Direction.MAX, budget, 12.5) == pytest.approx(math.log(12.5))
    near = surrogate(0.95, 0.96, Direction.MAX, budget, None)
    far = surrogate(0.50, 0.96, Direction.MAX, budget, None)
    assert near == pytest.approx(math.log(100) + math.log1p(0.01 / 0.96))
    assert math.log(99.9) < near < far
    # A falling metric (a loss): above the target is the miss.
    assert surrogate(3.5, 3.0, Direction.MIN, budget, None) == pytest.approx(math.log(100) + math.log1p(0.5 / 3.0))
    # No usable metric (diverged, failed before an evaluation): the capped gap, still finite.
    assert surrogate(math.nan, 0.96, Direction.MAX, budget, None) == pytest.approx(math.log(100) + math.log1p(GAP_CAP))
    assert surrogate(None, 0.96, Direction.MAX, budget, None) == surrogate(-1e9, 0.96, Direction.MAX, budget, None)


def test_running_values_never_rise_and_switch_to_the_time_once_the_target_is_reached():
    rows = [
        {"global_step": 20, "score": 1.0, "validation/accuracy": 0.5},
        {"global_step": 40, "score": 2.0, "validation/accuracy": 0.4},  # worse: the best so far holds
        {"global_step": 60, "score": 3.0, "validation/accuracy": 0.97},
        {"global_step": 80, "score": 4.0, "validation/accuracy": 0.99},
    ]
    values = running_values(rows, "validation/accuracy", 0.96, Direction.MAX, 50.0)
    assert [step for step, _ in values] == [20, 40, 60, 80]
    assert values[0][1] == values[1][1] == pytest.approx(math.log(50) + math.log1p(0.46 / 0.96))
    assert values[2][1] == values[3][1] == pytest.approx(math.log(3.0))


def test_a_summary_without_target_or_with_untrusted_times_has_no_value():
    good = {"status": "ok", "validation_target_value": 0.9, "metric_direction": "max",
            "max_allowed_runtime_sec": 10.0, "best_validation_metric": 0.45, "time_to_target": None}  # fmt: skip
    assert trial_value(good) == pytest.approx(math.log(10) + math.log1p(0.5))
    assert trial_value({**good, "status": "invalid"}) is None
    assert trial_value({"status": "timeout", "error": "killed"}) is None


# --- pruning ------------------------------------------------------------------------------------------


def test_the_pruner_sees_steps_and_a_pruned_trial_is_finished_where_it_stands(tmp_path):
    tuner, task = build(tmp_path, trials=3, pruner="median", prune_interval=20, startup_trials=2)
    # Two startup trials (never pruned), then a learning rate far too small: the median pruner stops it.
    good = {"learning_rate": 8e-3, "one_minus_beta1": 0.1, "beta2": 0.999, "weight_decay": 0.01, "warmup_factor": 0.05}
    for lr in (8e-3, 6e-3, 5e-4):
        tuner.study.enqueue_trial({**good, "learning_rate": lr})
    asked = []
    ask = tuner.ask
    tuner.ask = lambda: asked.append(ask()) or asked[-1]
    drive(tuner, InProcessExecutor(), spec_factory(task, tuner))
    trials = tuner.study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.PRUNED]
    # Intermediate values are keyed by global_step (20, 40), never by seconds.
    assert [sorted(t.intermediate_values) for t in trials] == [[20, 40], [20, 40], [20]]
    assert [r.until_step for r in asked if r is not None] == [20, 40, 20, 40, 20]
    pruned = json.loads((task.member_dir(3) / "summary.json").read_text())
    assert pruned["status"] == "ok" and pruned["stopped_by"] == "pruner" and pruned["steps"] == 20
    assert trials[2].intermediate_values[20] > max(t.intermediate_values[20] for t in trials[:2])
    # Its compute still counts: its segment is in segments.jsonl-ready form (its eval log stops at 20).
    rows = (task.member_dir(3) / "eval_measurements.csv").read_text().splitlines()
    assert len(rows) == 2


# --- storage, resume, workers ---------------------------------------------------------------------------


def test_a_killed_tune_resumes_its_study_without_losing_or_duplicating_trials(tmp_path):
    experiment = tmp_path / "exp"
    command = [sys.executable, "-m", "algobench.cli", "tune", str(ADAMW), "--tuner", "tpe", "--trials", "4",
               "--max-steps", "60", "--eval-every", "20", "--experiment-dir", str(experiment), *COMMON]  # fmt: skip
    trials = experiment / TRIALS.format(tuner="tpe")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if (trials / "trial_2/summary.json").exists() and (trials / "trial_3/eval_measurements.csv").exists():
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the kill must land mid-run"
    journal = experiment / "tuning/optuna.journal"
    before = study_of(journal).get_trials()
    assert TrialState.RUNNING in [t.state for t in before], "a trial was cut off mid-run"

    assert subprocess.run(command, capture_output=True, timeout=300).returncode == 0
    after = study_of(journal).get_trials()
    assert [t.number for t in after] == [0, 1, 2, 3]
    assert [t.state for t in after] == [TrialState.COMPLETE] * 4
    for trial in after:  # each Optuna trial is the trial directory of its number, run once to its end
        directory = trials / f"trial_{trial.number + 1}"
        summary = json.loads((directory / "summary.json").read_text())
        assert summary["steps"] == 60 and trial.user_attrs["steps"] == 60
        assert json.loads((directory / "hparams.json").read_text())["schedule"][0]["hyperparameters"] == trial.params
        steps = [int(line.split(",")[0]) for line in (directory / "eval_measurements.csv").read_text().splitlines()[1:]]
        assert steps == [20, 40, 60] and sorted(trial.intermediate_values) == [20, 40, 60]
    assert sorted(p.name for p in trials.iterdir()) == ["trial_1", "trial_2", "trial_3", "trial_4"]


def test_two_workers_share_one_study(tmp_path):
    storage = tmp_path / "shared.journal"
    commands = [
        [sys.executable, "-m", "algobench.cli", "tune", str(ADAMW), "--tuner", "tpe", "--trials", "6",
         "--max-steps", "40", "--storage", str(storage), "--experiment-dir", str(tmp_path / name), *COMMON]
        for name in ("a", "b")
    ]  # fmt: skip
    workers = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for c in commands]
    for worker in workers:
        assert worker.wait(timeout=300) == 0, worker.stderr.read().decode()[-2000:]
    trials = study_of(storage).get_trials()
    assert [t.number for t in trials] == list(range(6)) and all(t.state == TrialState.COMPLETE for t in trials)
    owners = {t.number: t.system_attrs[WORKER] for t in trials}
    ran = {}
    for name in ("a", "b"):
        folders = (tmp_path / name / TRIALS.format(tuner="tpe")).glob("trial_*")
        ran[name] = sorted(int(p.name.removeprefix("trial_")) - 1 for p in folders)
    # Every trial ran exactly once, in the directory of the worker that asked for it.
    assert sorted(ran["a"] + ran["b"]) == list(range(6))
    for name, numbers in ran.items():
        assert all(owners[n] == str((tmp_path / name).resolve()) for n in numbers)


def test_a_dead_workers_running_trial_is_failed_and_replaced(tmp_path):
    tuner, task = build(tmp_path, trials=2, heartbeat_sec=0.05, max_steps=20)
    storage = tuner.study._storage
    dead = tuner.study.ask(tuner._distributions)  # a trial another worker started, then died
    storage.set_trial_system_attr(dead._trial_id, WORKER, "/elsewhere")
    storage.set_trial_system_attr(dead._trial_id, HEARTBEAT, time.time() - 10)
    alive = tuner.study.ask(tuner._distributions)  # one that is still beating: left alone
    storage.set_trial_system_attr(alive._trial_id, WORKER, "/another")
    storage.set_trial_system_attr(alive._trial_id, HEARTBEAT, time.time() + 3600)
    drive(tuner, InProcessExecutor(), spec_factory(task, tuner))
    trials = tuner.study.get_trials()
    assert trials[0].state == TrialState.FAIL and "no heartbeat" in trials[0].system_attrs[STALE]
    assert trials[1].state == TrialState.RUNNING  # the live worker's: not ours to touch
    # The failed trial does not count: this worker ran one trial to fill the study's 2.
    assert [t.state for t in trials[2:]] == [TrialState.COMPLETE]
    assert trials[2].system_attrs[WORKER] == str(tmp_path.resolve())


# --- bad settings ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--tuner", "bohb"], "unknown tuner 'bohb'; known tuners: "),
        (["--tuner", "tpe", "--pruner", "asha"], "unknown pruner 'asha'; known pruners: none, median, sha"),
        (["--tuner", "gp-opt", "--acquisition", "pi"], "acquisition must be one of ucb, ei, got 'pi'"),
        (["--tuner", "tpe", "--storage", "postgresql+nosuchdriver://x/y"], "--storage postgresql+nosuchdriver://x/y: "),
        (["--tuner", "tpe", "--storage", "sqlite:////no/such/dir/x.db"], "--storage sqlite:////no/such/dir/x.db: "),
        (["--tuner", "qmc", "--storage", "/no/such/folder/x.journal"], "folder /no/such/folder does not exist"),
        (["--tuner", "tpe", "--pruner", "median", "--prune-interval", "30", "--eval-every", "20"], "not a multiple of"),
    ],
)  # fmt: skip
def test_bad_settings_are_one_line_errors(extra, message, tmp_path, capsys):
    args = ["tune", str(ADAMW), "--experiment-dir", str(tmp_path / "exp"), *COMMON, *extra]
    assert main(args) != 0
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "exp" / "adamw_tpe").exists()


def test_open_storage_names_what_it_could_not_open(tmp_path):
    with pytest.raises(AlgobenchError, match=r"^--storage bogus://x: cannot open: "):
        open_storage("bogus://x", tmp_path)


# --- end to end --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tuner", "extra"),
    [
        ("tpe", ["--startup-trials", "1"]),
        ("gp", ["--startup-trials", "1"]),
        ("cmaes", ["--startup-trials", "0"]),
        ("qmc", []),
        ("gp-opt", ["--acquisition", "ei"]),
    ],
)
def test_each_model_based_tuner_runs_through_algobench_tune_and_is_scored(tuner, extra, tmp_path, capsys):
    experiment = tmp_path / "exp"
    args = ["tune", str(ADAMW), "--tuner", tuner, "--trials", "3", "--max-steps", "20", "--eval-every", "20",
            "--experiment-dir", str(experiment), *COMMON, *extra]  # fmt: skip
    assert main(args) == 0
    trials = sorted((experiment / TRIALS.format(tuner=tuner)).glob("trial_*"))
    assert [t.name for t in trials] == ["trial_1", "trial_2", "trial_3"]
    for trial in trials:
        summary = json.loads((trial / "summary.json").read_text())
        assert summary["steps"] == 20 and summary["status"] in ("ok", "target_reached")
        assert {p.name for p in trial.iterdir()} >= {"eval_measurements.csv", "hparams.json", "meta_data.json"}
    settings = json.loads((experiment / "tuning/digits_mlp/study_0/settings.json").read_text())
    assert settings["tuner"] == tuner and settings["members"] == 3
    capsys.readouterr()
    assert main(["tune", "score", str(experiment)]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith(f"adamw_{tuner} "))
    assert row.split()[1:4] == ["digits_mlp", "0", "3"]  # workload, study, members read back
    if tuner != "gp-opt":
        trials_in_study = study_of(experiment / "tuning/optuna.journal", f"adamw_{tuner}/digits_mlp/study_0").trials
        assert [t.state for t in trials_in_study] == [TrialState.COMPLETE] * 3
    else:
        result = json.loads((experiment / "tuning/digits_mlp/study_0/gp_opt.json").read_text())
        assert result["evaluations"] == 3 and 1 <= result["unique"] <= result["switches"] <= 3
