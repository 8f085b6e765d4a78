"""``algobench tune`` end to end: the process executor, the progress lines and closing table, a run
killed with SIGKILL that the same command resumes to the straight run's results, replay, export,
scoring, and bad settings as one-line errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from algobench.cli import main
from algobench.tuning.events import read_eval_rows, read_lines
from tests.conftest import SUBMISSIONS

ADAMW = SUBMISSIONS / "adamw" / "submission.py"
TIMING = {
    "score", "total_duration", "accumulated_submission_time", "accumulated_eval_time",
    "accumulated_logging_time", "process_cpu_time", "preemption_count",
}  # fmt: skip
SMALL = ["--scale", "tiny", "--population", "4", "--interval", "20", "--threads", "1", "--quiet"]


def tune_args(experiment: Path, *extra: str) -> list[str]:
    return ["tune", str(ADAMW), "--workloads", "digits_mlp", "--experiment-dir", str(experiment), *SMALL, *extra]


def test_help_lists_the_tuners_and_subcommands(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["tune", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "halton" in out and "pbt" in out and "Population Based Training" in out
    assert "replay" in out and "export" in out and "--population" in out and "--config" in out
    with pytest.raises(SystemExit):
        main(["tune", "replay", "--help"])
    assert "--own-seed" in capsys.readouterr().out


def test_tune_runs_a_population_in_child_processes(tmp_path, capsys):
    experiment = tmp_path / "exp"
    args = tune_args(experiment, "--max-steps", "40")
    args.remove("--quiet")
    assert main(args) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0].split()[:3] == ["workload", "time", "to"]
    assert "digits_mlp" in captured.out and f"results: {experiment}" in captured.out
    rounds = [line for line in captured.err.splitlines() if " round " in line]
    assert len(rounds) == 1 and "round 1 step 20 (validation/accuracy) | m1 " in rounds[0] and "lr=" in rounds[0]
    members = sorted(experiment.glob("adamw_pbt/study_0/digits_mlp_pytorch/trial_*"))
    assert [m.name for m in members] == ["trial_1", "trial_2", "trial_3", "trial_4"]
    for member in members:
        summary = json.loads((member / "summary.json").read_text())
        assert summary["steps"] == 40 and summary["status"] in ("ok", "target_reached")
        assert {p.name for p in member.iterdir()} >= {"eval_measurements.csv", "hparams.json", "meta_data.json"}
    tuning = experiment / "tuning/digits_mlp/study_0"
    assert {p.name for p in tuning.iterdir()} >= {"settings.json", "events.jsonl", "segments.jsonl", "overhead.json"}
    segments = read_lines(tuning / "segments.jsonl")
    assert len(segments) == 4 * 2 and all(s["own_compute"] >= 0 for s in segments)
    # A rerun of the finished command does nothing new.
    written = (tuning / "events.jsonl").read_text()
    assert main(tune_args(experiment, "--max-steps", "40")) == 0
    assert (tuning / "events.jsonl").read_text() == written


def test_a_killed_tune_resumes_to_the_straight_runs_results(tmp_path):
    config = tmp_path / "pbt.yaml"
    config.write_text("population: 4\ninterval: 20\nmax_steps: 80\nquantile: 0.5\n")
    straight = tmp_path / "straight"
    common = ["--workloads", "digits_mlp", "--scale", "tiny", "--config", str(config), "--threads", "1", "--quiet",
              "--executor", "inprocess"]  # fmt: skip
    assert main(["tune", str(ADAMW), "--experiment-dir", str(straight), *common]) == 0

    killed = tmp_path / "killed"
    command = [sys.executable, "-m", "algobench.cli", "tune", str(ADAMW), "--experiment-dir", str(killed), *common]
    events = killed / "tuning/digits_mlp/study_0/events.jsonl"
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if events.exists() and sum(r.get("event") == "round" for r in read_lines(events)) >= 2:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the kill must land mid-run"
    assert not (killed / "adamw_pbt/study_0/digits_mlp_pytorch/trial_1/summary.json").exists()

    assert subprocess.run(command, capture_output=True, timeout=300).returncode == 0
    assert events.read_text() == (straight / "tuning/digits_mlp/study_0/events.jsonl").read_text()
    for member in range(1, 5):
        trial = f"adamw_pbt/study_0/digits_mlp_pytorch/trial_{member}"
        rows = [{k: v for k, v in r.items() if k not in TIMING} for r in read_eval_rows(killed / trial)]
        assert rows == [{k: v for k, v in r.items() if k not in TIMING} for r in read_eval_rows(straight / trial)]
        assert json.loads((killed / trial / "hparams.json").read_text()) == json.loads(
            (straight / trial / "hparams.json").read_text()
        )


def test_replay_export_and_score_of_tuned_experiments(tmp_path, capsys):
    pbt, halton = tmp_path / "pbt", tmp_path / "halton"
    assert main(tune_args(pbt, "--max-steps", "60", "--executor", "inprocess", "--no-stop-on-target")) == 0
    args = ["tune", str(ADAMW), "--tuner", "halton", "--trials", "2", "--max-steps", "60", "--eval-every", "10",
            "--workloads", "digits_mlp", "--scale", "tiny", "--threads", "1", "--quiet", "--executor", "inprocess",
            "--no-stop-on-target"]  # fmt: skip
    assert main([*args, "--experiment-dir", str(halton)]) == 0
    assert main([*args, "--experiment-dir", str(pbt)]) == 2  # one tuner run per workload and study
    assert "already holds a pbt run (adamw_pbt) of digits_mlp study 0" in capsys.readouterr().err

    for experiment in (pbt, halton):
        assert main(["tune", "replay", str(experiment), "--seeds", "2", "--executor", "inprocess", "--quiet"]) == 0
    replays = sorted(pbt.glob("tuning/digits_mlp/study_0/replay/adamw_pbt_m*/study_*/digits_mlp_pytorch/trial_1"))
    assert len(replays) == 2 and all((r / "summary.json").exists() for r in replays)

    out = tmp_path / "exported.py"
    assert main(["tune", "export", str(pbt), "--member", "2", "--out", str(out)]) == 0
    assert "HYPERPARAMETER_SCHEDULE = [" in out.read_text() and "--ruleset self" in capsys.readouterr().out
    from algobench.submission import load_submission

    assert load_submission(out).form == "algoperf"

    assert main(["tune", "score", str(pbt), str(halton), "--out", str(tmp_path / "scores")]) == 0
    printed = capsys.readouterr().out
    assert "algoperf" in printed and "equal_compute" in printed and "replay" in printed
    assert "adamw_pbt" in printed and "adamw_halton" in printed and "Kendall" in printed
    assert {p.name for p in (tmp_path / "scores").iterdir()} == {"runs.csv", "times.csv", "scores.csv", "kendall.csv"}
    import pandas as pd

    runs = pd.read_csv(tmp_path / "scores" / "runs.csv").set_index("tuner")
    ledger = json.loads((pbt / "tuning/digits_mlp/study_0/overhead.json").read_text())
    spent = ledger["decision_sec"] + ledger["fork_sec"] + ledger["idle_sec"]
    assert 0 < runs.loc["adamw_pbt", "overhead_fraction"] == pytest.approx(spent / ledger["slot_sec"])  # wall / wall

    assert main(["score", str(pbt), str(halton)]) == 0  # the plain scoring shows the tuner views too
    printed = capsys.readouterr().out
    assert "tuners (algobench tune score" in printed and "equal_compute" in printed and "adamw_pbt" in printed

    # Only the workloads asked for: a workload no run has is an error naming it, not an empty table.
    from algobench.scoring.errors import ScoringError
    from algobench.scoring.tuners import score_tuners

    assert set(score_tuners([pbt, halton], workloads=["digits_mlp"]).runs["workload"]) == {"digits_mlp"}
    with pytest.raises(ScoringError, match="no tuner runs of mnist1d under"):
        score_tuners([pbt, halton], workloads=["mnist1d"])
    assert main(["tune", "score", str(pbt), "--workloads", "mnist1d"]) == 2


@pytest.mark.parametrize(
    ("extra", "config", "message"),
    [
        (
            ["--population", "1"],
            None,
            "the command line: population must be at least 2 (one member has no one to copy), got 1",
        ),
        (["--quantile", "0.7"], None, "quantile must be in (0, 0.5], got 0.7"),
        (["--tuner", "bayes"], None, "unknown tuner 'bayes'; known tuners: halton, pbt"),
        ([], "explore: [learnin_rate]\n", "pbt.yaml: explore names 'learnin_rate', not a hyperparameter of"),
        ([], "populaton: 4\n", "pbt.yaml: unknown pbt setting 'populaton'"),
        ([], "- 1\n", "pbt.yaml: expected a mapping of tuner settings, got list"),
        (["--tuner", "halton"], None, "--population is not a setting of the halton tuner"),
    ],
)
def test_bad_tuner_settings_are_one_line_errors(extra, config, message, tmp_path, capsys):
    args = tune_args(tmp_path / "exp", *extra)
    if config is not None:
        (tmp_path / "pbt.yaml").write_text(config)
        args += ["--config", str(tmp_path / "pbt.yaml")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "exp").exists()  # nothing ran, nothing written


def test_resuming_with_other_settings_is_refused(tmp_path, capsys):
    experiment = tmp_path / "exp"
    assert main(tune_args(experiment, "--max-steps", "20", "--executor", "inprocess")) == 0
    assert main(tune_args(experiment, "--max-steps", "20", "--executor", "inprocess", "--quantile", "0.5")) == 2
    assert "other settings (settings.quantile: was 0.25, now 0.5)" in capsys.readouterr().err
