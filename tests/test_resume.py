"""Crash-safe results: a trial killed at any moment, or left with a damaged file, resumes to the
straight run's exact eval log (RNG included); a second run on the same directory is refused."""

from __future__ import annotations

import csv
import os
import pickle
import signal
import subprocess
import sys
import time
from dataclasses import replace

import pytest

from algobench.errors import AlgobenchError
from algobench.layout import CHECKPOINT_FILE, EVAL_FILE, SUMMARY_FILE
from algobench.lock import experiment_lock
from algobench.trial import run_trial
from algobench.trial_spec import TrialSpec
from algobench.workloads import get_workload
from tests.conftest import SUBMISSIONS

TIMING = {
    "score", "total_duration", "accumulated_submission_time", "accumulated_eval_time",
    "accumulated_logging_time", "process_cpu_time", "preemption_count",
}  # fmt: skip

# SGD plus noise drawn from torch's global RNG: resumes replay it only if the RNG is restored as
# it was at the checkpoint (D2).
NOISY_SGD = """
import torch

class NoisySGD(torch.optim.SGD):
    @torch.no_grad()
    def step(self, closure=None):
        super().step(closure)
        for group in self.param_groups:
            for p in group["params"]:
                p.add_(torch.randn_like(p), alpha=1e-3)

def make_optimizer(params, hyperparameters, workload):
    return NoisySGD(params, lr=0.05)
"""


def read_rows(trial_dir):
    with open(trial_dir / EVAL_FILE) as handle:
        return [{k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(handle)]


def make_spec(root, submission=SUBMISSIONS / "adamw" / "submission.py", **overrides) -> TrialSpec:
    fields = dict(
        submission_path=str(submission), submission_name="sub", workload_name="mnist1d", study=0, trial=1,
        hyperparameters={"learning_rate": 2e-3}, seed=5, experiment_dir=str(root), make_workload=get_workload,
        stop_on_target=False, max_steps=240, eval_every_steps=20, scale="tiny", threads=1,
    )  # fmt: skip
    return TrialSpec(**{**fields, **overrides})


@pytest.fixture
def noisy(write_submission):
    return write_submission(NOISY_SGD, name="noisy")


@pytest.mark.parametrize("which", ["adamw", "noisy"])
def test_sigkill_then_rerun_gives_the_straight_run_log(tmp_path, which, noisy):
    submission = noisy if which == "noisy" else SUBMISSIONS / "adamw" / "submission.py"
    spec = make_spec(tmp_path / "killed", submission, workload_name="digits_mlp", max_steps=1200, eval_every_steps=100)
    straight_spec = replace(spec, experiment_dir=str(tmp_path / "straight"))
    straight = run_trial(straight_spec)
    assert straight["steps"] == 1200

    code = (
        "import sys, pickle; from algobench.trial import run_trial; run_trial(pickle.loads(bytes.fromhex(sys.argv[1])))"
    )
    process = subprocess.Popen([sys.executable, "-c", code, pickle.dumps(spec).hex()], env=os.environ.copy())
    eval_file = spec.trial_dir() / EVAL_FILE
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if eval_file.exists() and len(eval_file.read_text().splitlines()) >= 4:  # header + 3 rows
            break
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_rows = len(read_rows(spec.trial_dir()))
    assert 3 <= killed_rows < 12, "the kill must land mid-run"
    assert not (spec.trial_dir() / SUMMARY_FILE).exists()

    resumed = run_trial(spec)
    assert resumed["status"] == straight["status"]
    assert resumed["preemption_count"] == 1
    rows = read_rows(spec.trial_dir())
    assert [int(r["global_step"]) for r in rows] == list(range(100, 1201, 100))
    assert rows == read_rows(straight_spec.trial_dir())


def test_rows_of_a_run_killed_before_its_first_checkpoint_are_dropped(tmp_path, noisy):
    """D1: a dead run left rows but no checkpoint; the rerun's log is the straight run's, once."""
    spec = make_spec(tmp_path / "rerun", noisy)
    straight = read_rows(run_trial(replace(spec, experiment_dir=str(tmp_path / "straight"))) and
                         replace(spec, experiment_dir=str(tmp_path / "straight")).trial_dir())  # fmt: skip
    spec.trial_dir().mkdir(parents=True)
    header = (tmp_path / "straight" / "sub" / "study_0" / "mnist1d_pytorch" / "trial_1" / EVAL_FILE).read_text()
    (spec.trial_dir() / EVAL_FILE).write_text("\n".join(header.splitlines()[:3]) + "\n")  # two dead rows
    run_trial(spec)
    rows = read_rows(spec.trial_dir())
    assert [int(r["global_step"]) for r in rows] == list(range(20, 241, 20))
    assert rows == straight


@pytest.mark.parametrize("damage", ["truncated", "random_bytes"])
def test_a_damaged_checkpoint_is_set_aside_and_the_trial_resumes_from_the_previous(tmp_path, noisy, damage):
    """D4: the damaged file is kept aside, the previous checkpoint used, the notes say so."""
    spec = make_spec(tmp_path / "damaged", noisy)
    straight_dir = replace(spec, experiment_dir=str(tmp_path / "straight")).trial_dir()
    run_trial(replace(spec, experiment_dir=str(tmp_path / "straight")))
    run_trial(replace(spec, until_step=100))  # a segment: checkpoints at 80 (prev) and 100
    checkpoint = spec.trial_dir() / CHECKPOINT_FILE
    data = checkpoint.read_bytes()
    checkpoint.write_bytes(data[: len(data) // 2] if damage == "truncated" else os.urandom(4096))
    with pytest.warns(UserWarning, match="could not be read"):
        summary = run_trial(spec)
    assert (spec.trial_dir() / (CHECKPOINT_FILE + ".corrupt")).exists()
    assert any("set aside" in note and "step" in note for note in summary["notes"])
    assert read_rows(spec.trial_dir()) == read_rows(straight_dir)


def test_a_second_run_on_the_same_experiment_directory_is_refused(tmp_path):
    """D5: one run at a time; the second learns who holds the directory."""
    with experiment_lock(tmp_path):
        code = "import sys; from algobench.lock import experiment_lock\nwith experiment_lock(sys.argv[1]): pass"
        second = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True)
        assert second.returncode != 0
        assert "is in use by another algobench run (pid" in second.stderr
    with experiment_lock(tmp_path):  # released: the next run goes ahead
        pass


def test_bad_experiment_directories_are_one_line_errors(tmp_path):
    """D3: a file, or a directory that cannot be written."""
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(AlgobenchError, match="exists and is not a directory"), experiment_lock(a_file):
        pass
    if os.geteuid() != 0:  # root writes anywhere
        read_only = tmp_path / "ro"
        read_only.mkdir(mode=0o500)
        with pytest.raises(AlgobenchError, match="not writable"), experiment_lock(read_only / "x"):
            pass
