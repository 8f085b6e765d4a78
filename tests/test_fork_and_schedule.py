"""Forkable trials and hyperparameter schedules: what tuners (PBT, replay) stand on."""

from __future__ import annotations

import pytest
import torch

from algobench.errors import SubmissionError
from algobench.hyperparameters import Hyperparameters
from algobench.runner import RunConfig, TrialRunner
from algobench.seeds import derive_seed
from algobench.submission import load_submission
from algobench.workloads import get_workload
from tests.conftest import SUBMISSIONS

ADAMW = SUBMISSIONS / "adamw" / "submission.py"
NADAMW = SUBMISSIONS / "nadamw" / "submission.py"
TIMING = {
    "score", "total_duration", "accumulated_submission_time", "accumulated_eval_time",
    "accumulated_logging_time", "process_cpu_time", "preemption_count",
}  # fmt: skip
HP = {"learning_rate": 3e-3, "one_minus_beta1": 0.1, "beta2": 0.999, "weight_decay": 0.01, "warmup_factor": 0.05}


def runner(seed: int, path=ADAMW, hp=HP, schedule=(), max_steps=100) -> TrialRunner:
    config = RunConfig(
        budget_sec=1e9, eval_period_sec=1e9, seed=seed, eval_every_steps=20, max_steps=max_steps,
        stop_on_target=False, schedule=tuple(schedule),
    )  # fmt: skip
    return TrialRunner(get_workload("digits_mlp", scale="tiny"), load_submission(path), Hyperparameters(hp), config)


def metrics(history):
    return [{k: v for k, v in row.items() if k not in TIMING} for row in history]


def parameters(trial: TrialRunner) -> list[torch.Tensor]:
    return [p.detach().clone() for p in trial.model.parameters()]


def test_a_state_copy_shares_nothing_with_its_donor():
    donor = runner(seed=1)
    donor.run(until_step=40)
    before = parameters(donor)
    moments = [s["exp_avg"].clone() for s in donor.optimizer_state["optimizer"].state.values()]
    clone = runner(seed=2)
    clone.load_state_dict(donor.state_dict())
    clone.run(until_step=60)
    with torch.no_grad():
        for p in clone.model.parameters():
            p.add_(1.0)  # mutate the clone's learner outright
    assert donor.state.global_step == 40 and clone.state.global_step == 60
    assert all(torch.equal(a, b) for a, b in zip(before, parameters(donor), strict=True))
    after = [s["exp_avg"] for s in donor.optimizer_state["optimizer"].state.values()]
    assert all(torch.equal(a, b) for a, b in zip(moments, after, strict=True))
    assert donor.state.eval_history is not clone.state.eval_history
    # The donor goes on exactly as a twin that was never copied.
    twin = runner(seed=1)
    twin.run(until_step=100)
    donor.run(until_step=100)
    assert metrics(donor.state.eval_history) == metrics(twin.state.eval_history)


def test_a_fork_inherits_the_lineage_but_trains_on_other_batches():
    donor = runner(seed=1)
    donor.run(until_step=40)
    clone = runner(seed=2)
    clone.fork_from(donor, reseed=derive_seed(2, 1))
    assert metrics(clone.state.eval_history) == metrics(donor.state.eval_history)  # lineage history
    assert clone.state.clocks.submission == donor.state.clocks.submission
    donor_batch = next(donor.input_queue)["targets"]
    clone_batch = runner(seed=2)
    clone_batch.fork_from(donor, reseed=derive_seed(2, 1))
    assert not torch.equal(next(clone_batch.input_queue)["targets"], donor_batch)


@pytest.mark.parametrize("path", [ADAMW, NADAMW], ids=["native", "algoperf"])
def test_a_learning_rate_change_scales_the_schedule_from_that_step(path):
    trial = runner(seed=1, path=path)
    trial.run(until_step=50)
    optimizer, scheduler = trial.optimizer_state["optimizer"], trial.optimizer_state["scheduler"]
    factor = scheduler.lr_lambdas[0](scheduler.last_epoch)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(3e-3 * factor)
    trial.set_hyperparameters({"learning_rate": 1e-2})
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-2 * factor)
    trial.run(until_step=80)  # the schedule goes on from the new base
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-2 * scheduler.lr_lambdas[0](scheduler.last_epoch))
    trial.set_hyperparameters({"weight_decay": 0.2, "one_minus_beta1": 0.2})
    assert optimizer.param_groups[0]["weight_decay"] == 0.2
    assert optimizer.param_groups[0]["betas"][0] == pytest.approx(0.8)
    steps = [point.global_step for point in trial.state.schedule]
    assert steps == [0, 50, 80]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"learnin_rate": 1e-3}, "cannot change learnin_rate mid-run"),
        ({"warmup_factor": 0.2}, "cannot change warmup_factor mid-run"),
        ({"epsilon": "x"}, "epsilon must be a finite number"),
        ({"learning_rate": "fast"}, "learning_rate must be a finite number"),
    ],
)
def test_a_change_that_cannot_be_applied_is_refused_naming_the_submission(changes, message):
    trial = runner(seed=1)
    with pytest.raises(SubmissionError, match=str(ADAMW)) as error:
        trial.set_hyperparameters(changes)
    assert message in str(error.value)
    trial.set_hyperparameters({"warmup_factor": 0.05})  # the same value: nothing to apply, accepted


def test_fork_change_then_replay_of_the_recorded_schedule_reproduces_the_log():
    donor = runner(seed=1)
    donor.run(until_step=40)
    clone = runner(seed=7)
    clone.fork_from(donor, reseed=derive_seed(7, 1), changes={"learning_rate": 8e-3})
    clone.run()
    schedule = clone.state.schedule
    assert [p.global_step for p in schedule] == [0, 40] and schedule[1].hyperparameters == {"learning_rate": 8e-3}

    replay = runner(seed=schedule[0].reseed, hp=dict(schedule[0].hyperparameters), schedule=schedule[1:])
    replay.run()
    assert [row["global_step"] for row in replay.state.eval_history] == [20, 40, 60, 80, 100]
    assert metrics(replay.state.eval_history) == metrics(clone.state.eval_history)
    assert [p.to_json() for p in replay.state.schedule] == [p.to_json() for p in schedule]


def test_the_driver_forks_trials_on_disk_and_the_clone_replays_exactly(tmp_path):
    """PBT's path: segments of trials in the executor, a fork decided between segments."""
    from dataclasses import replace

    from algobench.executors.inprocess import InProcessExecutor
    from algobench.trial_spec import TrialSpec
    from algobench.tuning.base import FixedTrials, TrialRequest
    from algobench.tuning.driver import drive

    base = TrialSpec(
        submission_path=str(ADAMW), submission_name="adamw", workload_name="digits_mlp", study=0, trial=0,
        hyperparameters=HP, seed=0, experiment_dir=str(tmp_path), make_workload=get_workload, scale="tiny",
        eval_every_steps=20, max_steps=100, stop_on_target=False, threads=1,
    )  # fmt: skip

    def make_spec(request: TrialRequest) -> TrialSpec:
        return replace(base, trial=request.trial, seed=100 + request.trial, until_step=request.until_step)

    requests = [
        TrialRequest(trial=1, hyperparameters=HP, until_step=40),
        TrialRequest(trial=2, hyperparameters=HP, until_step=40),
        TrialRequest(
            trial=2, hyperparameters=HP, fork_from=1, change_step=40, changes={"learning_rate": 8e-3}, round=1
        ),
        TrialRequest(trial=1, hyperparameters=HP),
    ]
    results = drive(FixedTrials(requests), InProcessExecutor(), make_spec)
    clone = results[2][1]
    assert clone["status"] == "ok" and clone["schedule_changes"] == 1 and clone["preemption_count"] == 0
    assert results[3][1]["preemption_count"] == 0  # a planned segment boundary is no preemption
    from algobench.trial import read_schedule

    schedule = read_schedule(make_spec(requests[2]).trial_dir())
    assert schedule[0].reseed == 101 and schedule[1].global_step == 40  # trial 1's lineage, then the fork
    replay = runner(seed=schedule[0].reseed, hp=dict(schedule[0].hyperparameters), schedule=schedule[1:])
    replay.run()
    import csv

    with open(make_spec(requests[2]).trial_dir() / "eval_measurements.csv") as handle:
        logged = [{k: float(v) for k, v in row.items() if k not in TIMING} for row in csv.DictReader(handle)]
    assert [int(r["global_step"]) for r in logged] == [20, 40, 60, 80, 100]
    assert logged == [{k: float(v) for k, v in row.items()} for row in metrics(replay.state.eval_history)]


def test_beta1_is_the_momentum_of_sgd_style_optimizers():
    trial = runner(seed=1, path=SUBMISSIONS / "sgd_momentum" / "submission.py", hp={"learning_rate": 0.05})
    trial.run(until_step=10)
    trial.set_hyperparameters({"one_minus_beta1": 0.2})
    assert trial.optimizer_state["optimizer"].param_groups[0]["momentum"] == pytest.approx(0.8)
    with pytest.raises(SubmissionError, match="beta2 \\(an optimizer here has no 'betas'\\)"):
        trial.set_hyperparameters({"beta2": 0.95})


def test_a_fork_killed_between_copying_and_placing_its_checkpoint_completes_on_the_clone(tmp_path):
    """The donor's checkpoint is staged, then put in place; a kill in between is finished later."""
    from algobench.fork import STAGED_CHECKPOINT, complete_fork_copy, fork_trial_dir

    donor_dir, clone_dir = tmp_path / "donor", tmp_path / "clone"
    donor_dir.mkdir()
    (donor_dir / "checkpoint.pt").write_bytes(b"donor state")
    fork_trial_dir(donor_dir, clone_dir, at_step=40, reseed=7, changes={"learning_rate": 1e-2})
    assert (clone_dir / "checkpoint.pt").read_bytes() == b"donor state"
    (clone_dir / "checkpoint.pt").rename(clone_dir / STAGED_CHECKPOINT)  # as if killed before the rename
    complete_fork_copy(clone_dir)
    assert (clone_dir / "checkpoint.pt").read_bytes() == b"donor state"
    assert not (clone_dir / STAGED_CHECKPOINT).exists()
