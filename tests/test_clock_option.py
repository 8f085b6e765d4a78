"""``--clock cpu``: budgets and time-to-target on the trial process's CPU time, recorded per trial,
checked by the parent, and never mixed with wall-clock trials in scoring."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
import torch

from algobench.cli import build_parser
from algobench.errors import AlgobenchError
from algobench.executors.clock_check import Report, check_clocks
from algobench.hyperparameters import Hyperparameters
from algobench.layout import META_FILE, SUMMARY_FILE
from algobench.runner import RunConfig, TrialRunner
from algobench.scoring.errors import ScoringError
from algobench.scoring.pipeline import score
from algobench.submission import load_submission
from algobench.trial import run_trial
from algobench.trial_spec import TrialSpec
from algobench.workloads import get_workload
from algobench.workloads.digits_mlp import DigitsMLP

# One SGD step, then either a sleep (waiting: no CPU) or a busy loop until this process has spent
# BURN_SEC of CPU in the step: the two halves of what the CPU clock must tell apart.
SUBMISSION = """
import time
import torch

MODE = "{mode}"
BURN_SEC = {burn}


def get_batch_size(workload_name):
    return 32


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    return {{"optimizer": torch.optim.SGD(model_params.parameters(), lr=0.05)}}


def update_params(workload, current_param_container, current_params_types, model_state, hyperparameters,
                  batch, loss_type, optimizer_state, eval_results, global_step, rng):
    model = current_param_container
    logits, _ = workload.model_fn(model, batch, model_state, "train", rng, False)
    loss = workload.loss_fn(batch["targets"], logits)["summed"].mean()
    optimizer_state["optimizer"].zero_grad()
    loss.backward()
    optimizer_state["optimizer"].step()
    if MODE == "sleep":
        time.sleep(BURN_SEC)
    else:
        start = time.process_time()
        while time.process_time() - start < BURN_SEC:
            pass
    return optimizer_state, model, model_state
"""


@pytest.fixture(autouse=True)
def one_thread():
    """As a CPU-clock trial runs: idle OpenMP workers spin, and the CPU clock would count it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def submission_file(write_submission, mode: str, burn: float):
    return write_submission(SUBMISSION.format(mode=mode, burn=burn), name=f"{mode}_{burn}")


def run(path, clock: str, budget: float, max_steps: int) -> TrialRunner:
    config = RunConfig(budget_sec=budget, eval_period_sec=1e9, max_steps=max_steps, stop_on_target=False, clock=clock)
    runner = TrialRunner(DigitsMLP(), load_submission(path), Hyperparameters({}), config)
    runner.run()
    return runner


def test_a_submission_that_sleeps_uses_no_cpu_budget(write_submission):
    """Ten 50 ms sleeps overrun a 0.2 s wall budget by the fourth step at the latest (sooner on a
    busy machine); on the CPU clock the same budget is hardly touched and the trial runs to its
    step limit."""
    path = submission_file(write_submission, "sleep", 0.05)
    on_wall = run(path, "wall", budget=0.2, max_steps=10)
    on_cpu = run(path, "cpu", budget=0.2, max_steps=10)
    assert on_wall.state.status == "out_of_time" and on_wall.state.global_step <= 4
    assert on_cpu.state.status == "ok" and on_cpu.state.global_step == 10
    assert on_cpu.state.clocks.submission < 0.2 <= on_wall.state.clocks.submission
    assert on_cpu.state.clocks.wall >= 10 * 0.05  # the sleeps happened; only the CPU clock ignores them


def test_a_submission_that_burns_cpu_stops_at_the_step_that_spends_the_budget(write_submission):
    """Each step burns >= 60 ms of CPU (plus a little for the SGD step): a 0.3 s CPU budget is
    spent during step 5, and the trial stops right there, with the CPU seconds on its clock."""
    path = submission_file(write_submission, "burn", 0.06)
    runner = run(path, "cpu", budget=0.3, max_steps=50)
    state = runner.state
    assert state.status == "out_of_time"
    assert state.global_step == 5
    per_step = state.clocks.submission / state.global_step
    assert 0.3 <= state.clocks.submission < 0.3 + per_step  # the budget, overrun by less than one step
    assert state.clocks.submission == pytest.approx(state.clocks.process_cpu)
    assert [row["score"] for row in state.eval_history] == [state.clocks.submission]


def spec_for(tmp_path, path, clock: str, name: str) -> TrialSpec:
    return TrialSpec(
        submission_path=str(path), submission_name=name, workload_name="digits_mlp", study=0, trial=1,
        hyperparameters={}, seed=3, experiment_dir=str(tmp_path / "exp"), make_workload=get_workload,
        stop_on_target=False, max_steps=6, eval_every_steps=3, scale="tiny", threads=1, clock=clock,
    )  # fmt: skip


def test_the_clock_is_recorded_in_the_summary_and_the_metadata(tmp_path, write_submission):
    path = submission_file(write_submission, "burn", 0.01)
    summary = run_trial(spec_for(tmp_path, path, "cpu", "burner"))
    trial_dir = spec_for(tmp_path, path, "cpu", "burner").trial_dir()
    on_disk = json.loads((trial_dir / SUMMARY_FILE).read_text())
    meta = json.loads((trial_dir / META_FILE).read_text())
    assert summary["clock"] == on_disk["clock"] == meta["clock"] == meta["spec"]["clock"] == "cpu"
    assert on_disk["threads"] == meta["torch_threads"] == 1
    assert on_disk["submission_time"] == pytest.approx(on_disk["process_cpu_time"])
    assert on_disk["submission_time"] >= 6 * 0.01


@pytest.mark.filterwarnings("ignore::algobench.scoring.errors.ScoringWarning")  # one study, one trial
def test_scoring_refuses_to_mix_clocks_and_names_the_trials(tmp_path, write_submission):
    path = submission_file(write_submission, "burn", 0.001)
    wall = spec_for(tmp_path, path, "wall", "on_wall")
    cpu = spec_for(tmp_path, path, "cpu", "on_cpu")
    run_trial(wall)
    run_trial(cpu)
    with pytest.raises(ScoringError) as caught:
        score(tmp_path / "exp", "algobench-v1")
    message = str(caught.value)
    assert "\n" not in message and "different clocks" in message
    assert f"cpu: 1 trial(s), e.g. {cpu.trial_dir()}" in message
    assert f"wall: 1 trial(s), e.g. {wall.trial_dir()}" in message
    # Each clock alone scores, and says which clock its times are on.
    alone = score(tmp_path / "exp" / "on_cpu", "algobench-v1")
    assert alone.clock == "cpu"
    assert score(tmp_path / "exp" / "on_wall", "algobench-v1").clock == "wall"


@pytest.mark.filterwarnings("ignore::algobench.scoring.errors.ScoringWarning")  # one study, an unfinished trial
def test_an_unfinished_trial_keeps_the_clock_and_ruleset_its_metadata_recorded(tmp_path, write_submission):
    """A trial still running has no summary yet; scoring a sweep in progress takes its clock and
    ruleset from ``meta_data.json`` instead of calling it a wall-clock, external-tuning trial and
    reporting a mix."""
    path = submission_file(write_submission, "burn", 0.001)
    finished = replace(spec_for(tmp_path, path, "cpu", "sub"), ruleset="transfer")
    running = replace(finished, trial=2)
    run_trial(finished)
    run_trial(running)
    (running.trial_dir() / SUMMARY_FILE).unlink()  # as while it runs
    result = score(tmp_path / "exp", "algobench-v1")
    assert result.clock == "cpu"
    assert sorted(result.trials["clock"]) == ["cpu", "cpu"]
    assert sorted(result.trials["ruleset"]) == ["transfer", "transfer"]
    assert not [p for p in result.problems if "different rulesets" in p]


def test_submit_and_tune_take_the_clock_option(tmp_path):
    parser = build_parser()
    args = parser.parse_args(["submit", "x.py", "--clock", "cpu"])
    assert args.clock == "cpu"
    assert parser.parse_args(["submit", "x.py"]).clock == "wall"
    assert parser.parse_args(["tune", "x.py", "--clock", "cpu"]).clock == "cpu"
    with pytest.raises(SystemExit):
        parser.parse_args(["submit", "x.py", "--clock", "gpu"])


def test_the_cpu_clock_gives_one_thread_unless_told_and_records_the_import_root(tmp_path):
    from algobench.cli import with_run_options

    parser = build_parser()
    base = TrialSpec("s.py", "s", "digits_mlp", 0, 1, None, 0, str(tmp_path), threads=2)
    cpu = with_run_options([base], parser.parse_args(["submit", "x.py", "--clock", "cpu"]))[0]
    assert (cpu.clock, cpu.threads, cpu.import_root) == ("cpu", 1, None)
    told = parser.parse_args(["submit", "x.py", "--clock", "cpu", "--threads", "2", "--import-root", str(tmp_path)])
    assert with_run_options([base], told)[0].threads == 2
    assert with_run_options([base], told)[0].import_root == str(tmp_path.resolve())
    assert with_run_options([base], parser.parse_args(["submit", "x.py"]))[0].threads == 2
    missing = parser.parse_args(["submit", "x.py", "--import-root", str(tmp_path / "nowhere")])
    with pytest.raises(AlgobenchError, match=r"^--import-root .*nowhere: not a directory$"):
        with_run_options([base], missing)


def test_an_unknown_clock_in_a_spec_is_one_line():
    from algobench.clock import check_clock

    with pytest.raises(AlgobenchError, match=r"^trial spec clock: unknown clock 'gpu'; choose one of wall, cpu$"):
        check_clock("gpu", "trial spec clock")


def row(step: int, submission: float, wall: float) -> dict:
    return {"global_step": step, "score": submission, "total_duration": wall,
            "accumulated_eval_time": 0.0, "accumulated_logging_time": 0.0}  # fmt: skip


def test_the_parent_check_allows_cpu_time_on_several_cores_but_not_more_than_the_kernel_counted():
    """Two threads busy for 1 s of wall: 1.9 s of CPU on the clock is possible on 2 cores (and
    impossible on the wall clock); claiming more CPU than the kernel counted is not."""
    start = Report(10.0, {"total_duration": 0.0}, cpu=1.0)
    honest = [Report(10.5, row(10, 0.9, 0.5), cpu=2.0), Report(11.0, row(20, 1.9, 1.0), cpu=3.0)]
    assert check_clocks(honest, 9.9, 11.1, start, cores=2, clock="cpu") is None
    assert "exceeds the wall time" in check_clocks(honest, 9.9, 11.1, start, cores=2, clock="wall")
    too_fast = [Report(10.5, row(10, 0.9, 0.5), cpu=2.0), Report(11.0, row(20, 1.9, 1.0), cpu=2.3)]
    reason = check_clocks(too_fast, 9.9, 11.1, start, cores=2, clock="cpu")
    assert reason == "the trial claims 1.00 s of CPU time on its clock where the kernel counted 0.30 s"
    beyond_cores = [Report(10.5, row(10, 2.5, 0.5), cpu=4.0)]
    assert "exceeds 2 x the wall time" in check_clocks(beyond_cores, 9.9, 11.1, start, cores=2, clock="cpu")


def test_cpu_clock_trial_passes_the_process_executors_check(tmp_path, write_submission):
    """End to end in a child process: the parent's clock check accepts an honest CPU-clock trial."""
    from algobench.executors.process import ProcessExecutor

    path = submission_file(write_submission, "burn", 0.02)
    spec = replace(spec_for(tmp_path, path, "cpu", "child"), max_steps=30, eval_every_steps=10)
    with ProcessExecutor(parallel=1) as executor:
        summary = executor.submit(spec).result()
    assert summary["status"] == "ok", summary.get("error")
    assert summary["clock"] == "cpu"
    assert 30 * 0.02 <= summary["submission_time"] < math.inf
