"""The timed loop: what the clock counts, the budget, endings, and exact segmented resume."""

from __future__ import annotations

import math
import time

import pytest

from algobench.hyperparameters import Hyperparameters
from algobench.runner import RunConfig, TrialRunner
from algobench.submission import load_submission
from algobench.workloads.digits_mlp import DigitsMLP
from algobench.workloads.registry import load_targets
from tests.conftest import SUBMISSIONS

TIMING_COLUMNS = {
    "score", "total_duration", "accumulated_submission_time", "accumulated_eval_time",
    "accumulated_logging_time", "process_cpu_time", "preemption_count",
}  # fmt: skip

ADAMW = SUBMISSIONS / "adamw" / "submission.py"
NADAMW = SUBMISSIONS / "nadamw" / "submission.py"
HP = Hyperparameters({"learning_rate": 3e-3, "weight_decay": 0.01})


class SlowEvalDigits(DigitsMLP):
    """Digits with a deliberately slow evaluation: it must not count as submission time."""

    eval_sleep_sec = 0.25

    def eval_model(self, *args, **kwargs):
        time.sleep(self.eval_sleep_sec)
        return super().eval_model(*args, **kwargs)


def make_runner(config: RunConfig, workload=None, submission_path=ADAMW, trial_dir=None, hp=HP) -> TrialRunner:
    workload = workload or DigitsMLP()
    return TrialRunner(workload, load_submission(submission_path), hp, config, trial_dir)


def strip_timing(rows):
    return [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in rows]


def test_evaluation_time_is_not_submission_time():
    config = RunConfig(budget_sec=60, eval_period_sec=1e9, eval_every_steps=20, max_steps=100, stop_on_target=False)
    runner = make_runner(config, workload=SlowEvalDigits())
    runner.run()
    assert runner.state.global_step == 100
    rows = runner.state.eval_history
    assert len(rows) == 5
    last = rows[-1]
    assert last["accumulated_eval_time"] >= 5 * SlowEvalDigits.eval_sleep_sec
    # Wall time holds submission and eval time side by side: were the sleeps counted as
    # submission time as well, the two would add up to more than the wall time by >= 1.25 s.
    assert last["accumulated_submission_time"] + last["accumulated_eval_time"] <= last["total_duration"] + 0.05


def test_budget_is_enforced_between_steps_not_only_at_evaluations():
    budget = 0.3
    runner = make_runner(RunConfig(budget_sec=budget, eval_period_sec=1e9, stop_on_target=False))
    assert runner.run() == "out_of_time"
    rows = runner.state.eval_history
    assert len(rows) == 1  # no periodic eval fell due: only the end-of-run one
    # The run stopped at the first step past the budget.
    assert budget <= rows[-1]["score"] < budget + 0.1
    assert runner.state.time_to_target is None  # an eval past the budget never counts


def test_time_based_evaluations_follow_submission_time():
    runner = make_runner(RunConfig(budget_sec=1.0, eval_period_sec=0.2, stop_on_target=False))
    runner.run()
    scores = [row["score"] for row in runner.state.eval_history]
    assert len(scores) >= 3
    gaps = [b - a for a, b in zip(scores, scores[1:], strict=False)]
    assert all(g >= 0.2 for g in gaps[:-1])


def test_target_reached_ends_the_trial_and_records_time_to_target():
    """The target's own winner (NAdamW with the point the target procedure chose): seed 0 reaches
    it in under 1,000 steps, at one thread or two."""
    winner = load_targets("digits_mlp").provenance
    assert winner["winner"] == "nadamw"
    config = RunConfig(budget_sec=30, eval_period_sec=1e9, eval_every_steps=25)
    runner = make_runner(config, submission_path=NADAMW, hp=Hyperparameters(winner["hyperparameters"]))
    assert runner.run() == "target_reached"
    row = runner.state.eval_history[-1]
    assert row["validation/accuracy"] >= runner.workload.validation_target_value
    assert runner.state.time_to_target == row["score"]
    assert all(
        r["validation/accuracy"] < runner.workload.validation_target_value for r in runner.state.eval_history[:-1]
    )


def test_same_seed_same_log_different_seed_different_log():
    config = RunConfig(
        budget_sec=60, eval_period_sec=1e9, eval_every_steps=30, max_steps=90, seed=3, stop_on_target=False
    )
    a, b = make_runner(config), make_runner(config)
    a.run(), b.run()
    assert strip_timing(a.state.eval_history) == strip_timing(b.state.eval_history)
    c = make_runner(RunConfig(**{**config.__dict__, "seed": 4}))
    c.run()
    assert strip_timing(c.state.eval_history) != strip_timing(a.state.eval_history)


@pytest.mark.parametrize("submission_path", [ADAMW, NADAMW], ids=["native", "algoperf"])
def test_segments_and_restore_equal_one_straight_run(tmp_path, submission_path):
    config = RunConfig(
        budget_sec=60, eval_period_sec=1e9, eval_every_steps=40, max_steps=200, seed=7, stop_on_target=False
    )
    straight = make_runner(config, submission_path=submission_path)
    final_status = straight.run()
    assert straight.state.global_step == 200

    first = make_runner(config, submission_path=submission_path, trial_dir=tmp_path)
    assert first.run(until_step=57) is None
    assert first.state.global_step == 57
    # A fresh runner (as after a kill) picks the trial up from the checkpoint on disk.
    second = make_runner(config, submission_path=submission_path, trial_dir=tmp_path)
    assert second.resume()
    assert second.run(until_step=130) is None
    third = make_runner(config, submission_path=submission_path, trial_dir=tmp_path)
    third.resume()
    assert third.run() == final_status

    assert strip_timing(third.state.eval_history) == strip_timing(straight.state.eval_history)
    # Planned segment ends are no preemptions (a kill is: see test_resume).
    assert [r["preemption_count"] for r in third.state.eval_history] == [0, 0, 0, 0, 0]


def test_update_params_that_raises_fails_the_trial_with_file_and_line(write_submission):
    path = write_submission("""
        import torch

        def make_optimizer(params, hyperparameters, workload):
            return torch.optim.SGD(params, lr=0.1)

        def get_batch_size(workload_name):
            return 16
    """)
    # Swap in an AlgoPerf-form update that raises on step 3.
    path.write_text(
        path.read_text()
        + """
def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    return {}

def update_params(workload, current_param_container, current_params_types, model_state,
                  hyperparameters, batch, loss_type, optimizer_state, eval_results, global_step, rng):
    if global_step == 3:
        raise ValueError("exploded on purpose")
    return optimizer_state, current_param_container, model_state
"""
    )
    runner = make_runner(RunConfig(budget_sec=10, eval_period_sec=1e9), submission_path=path)
    assert runner.run() == "failed"
    assert runner.state.global_step == 4
    assert "update_params raised ValueError: exploded on purpose" in runner.state.error
    assert f"{path}:15" in runner.state.error


def test_nan_loss_ends_as_diverged():
    runner = make_runner(RunConfig(budget_sec=10, eval_period_sec=1e9), hp=Hyperparameters({"learning_rate": 1e12}))
    assert runner.run() == "diverged"
    assert "not finite" in runner.state.error or "training loss is nan" in runner.state.error


def test_training_complete_error_ends_with_a_final_eval(write_submission):
    path = write_submission("""
        from algoperf import spec

        def get_batch_size(workload_name):
            return 16

        def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
            return {}

        def update_params(workload, current_param_container, current_params_types, model_state,
                          hyperparameters, batch, loss_type, optimizer_state, eval_results,
                          global_step, rng):
            if global_step == 9:
                raise spec.TrainingCompleteError
            return optimizer_state, current_param_container, model_state
    """)
    runner = make_runner(RunConfig(budget_sec=10, eval_period_sec=1e9), submission_path=path)
    assert runner.run() == "ok"
    assert runner.state.global_step == 10
    assert [r["global_step"] for r in runner.state.eval_history] == [10]
    assert math.isfinite(runner.state.eval_history[0]["validation/loss"])
