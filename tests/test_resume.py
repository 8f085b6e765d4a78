"""A trial killed with SIGKILL resumes from its checkpoint: no eval row lost or duplicated."""

from __future__ import annotations

import csv
import os
import pickle
import signal
import subprocess
import sys
import time
from dataclasses import replace

from algobench.results import EVAL_FILE
from algobench.trial import TrialSpec, run_trial
from tests.conftest import SUBMISSIONS

TIMING = {
    "score", "total_duration", "accumulated_submission_time", "accumulated_eval_time",
    "accumulated_logging_time", "process_cpu_time", "preemption_count",
}  # fmt: skip


def read_rows(trial_dir):
    with open(trial_dir / EVAL_FILE) as handle:
        return [{k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(handle)]


def test_sigkill_then_rerun_gives_the_straight_run_log(tmp_path):
    spec = TrialSpec(
        submission_path=str(SUBMISSIONS / "adamw" / "submission.py"),
        submission_name="adamw",
        workload_name="mnist1d",
        study=0,
        trial=1,
        hyperparameters={"learning_rate": 2e-3},
        seed=5,
        experiment_dir=str(tmp_path / "killed"),
        stop_on_target=False,
        max_steps=240,
        eval_every_steps=20,
    )
    straight_spec = replace(spec, experiment_dir=str(tmp_path / "straight"))
    straight = run_trial(straight_spec)
    assert straight["steps"] == 240

    code = (
        "import sys, pickle; from algobench.trial import run_trial; run_trial(pickle.loads(bytes.fromhex(sys.argv[1])))"
    )
    process = subprocess.Popen([sys.executable, "-c", code, pickle.dumps(spec).hex()], env=os.environ.copy())
    eval_file = spec.trial_dir() / EVAL_FILE
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if eval_file.exists() and len(eval_file.read_text().splitlines()) >= 4:  # header + 3 rows
            break
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_rows = len(read_rows(spec.trial_dir()))
    assert 3 <= killed_rows < 12, "the kill must land mid-run"
    assert not (spec.trial_dir() / "summary.json").exists()

    resumed = run_trial(spec)
    assert resumed["status"] == straight["status"]
    assert resumed["preemption_count"] == 1
    rows = read_rows(spec.trial_dir())
    assert [int(r["global_step"]) for r in rows] == list(range(20, 241, 20))
    assert rows == read_rows(straight_spec.trial_dir())
