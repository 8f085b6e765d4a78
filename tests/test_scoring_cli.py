"""``algobench score``: the printed table, the files in ``--out``, exit codes, and reproducibility."""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from algobench.scoring.cli import register
from tests.scoring_fixtures.logs import write_trial

INF = math.inf


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="algobench")
    register(parser.add_subparsers())
    args = parser.parse_args(["score", *argv])
    return args.func(args)


def hits(t: float) -> list[tuple[float, float]]:
    return [(40.0, 0.7), (80.0, 0.8)] if math.isinf(t) else [(t / 2, 0.8), (t, 0.9)]


@pytest.fixture
def experiment(tmp_path: Path) -> Path:
    """Three submissions, two workloads, one study of one trial each (algobench layout)."""
    root = tmp_path / "exp"
    plan = {"adam": {"u": 10, "v": 40}, "sgd": {"u": 20, "v": 10}, "lion": {"u": 50, "v": INF}}
    for submission, workloads in plan.items():
        for workload, t in workloads.items():
            for study in range(3):
                for trial in range(1, 6):
                    write_trial(root, submission, workload, study, trial, hits(t if trial == 1 else INF))
    return root


def test_prints_scores_and_ratios(experiment: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(str(experiment), "--bootstrap", "0") == 0  # the plain table (intervals: tests/test_intervals.py)
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert lines[0].startswith("protocol algobench-v1 (rules: docs)")
    rows = {line.split()[0]: line.split()[1:] for line in lines[3:]}
    # u: 10, 20, 50 -> ratios 1, 2, 5 (> 4: inf); v: 40, 10, inf -> 4, 1, inf
    assert rows["adam"] == ["0.5000", "1.000", "4.000"]  # (3 + 0) / 6
    assert rows["sgd"] == ["0.8333", "2.000", "1.000"]  # (2 + 3) / 6
    assert rows["lion"] == ["0.0000", "inf", "inf"]
    assert [line.split()[0] for line in lines[3:]] == ["sgd", "adam", "lion"]  # best first


def test_writes_tables_plots_and_report(experiment: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert run(str(experiment), "--out", str(out), "--reference", "adam") == 0
    assert "wrote" in capsys.readouterr().out
    times = pd.read_csv(out / "time_to_targets.csv", index_col="submission")
    assert times.loc["adam"].tolist() == [10.0, 40.0] and times.loc["lion", "v"] == INF
    scores = pd.read_csv(out / "scores.csv", index_col="submission")
    assert scores.loc["sgd", "score"] == pytest.approx(5 / 6)
    assert scores.loc["sgd", "speedup"] == pytest.approx(math.sqrt(10 / 20 * 40 / 10))  # sqrt(0.5 * 4)
    assert set(scores["reference"]) == {"adam"}
    assert (out / "performance_profile.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "performance_profile.pdf").read_bytes()[:5] == b"%PDF-"
    assert sorted(p.name for p in (out / "workloads").iterdir()) == ["u.png", "v.png"]
    report = (out / "report.html").read_text()
    assert report.count("data:image/png;base64,") == 3
    assert 'id="scores"' in report and 'id="runs"' in report and str(experiment / "adam") in report
    profile = pd.read_csv(out / "performance_profile.csv", index_col="submission")
    assert len(profile.columns) == 1001 and profile.loc["sgd"].iloc[-1] == 1.0


def test_outputs_are_reproducible(experiment: Path, tmp_path: Path) -> None:
    for name in ("one", "two"):
        assert run(str(experiment), "--out", str(tmp_path / name)) == 0
    for path in sorted((tmp_path / "one").rglob("*.*")):
        twin = tmp_path / "two" / path.relative_to(tmp_path / "one")
        assert path.read_bytes() == twin.read_bytes(), path.name


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(str(tmp_path / "missing")) == 2
    err = capsys.readouterr().err
    assert err == f"algobench score: error: {tmp_path / 'missing'}: no such directory\n"


def test_strict_stops_at_the_first_problem(experiment: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = experiment / "sgd" / "study_1" / "v_pytorch" / "trial_3" / "eval_measurements.csv"
    log.write_text(log.read_text() + "3,0,99")
    assert run(str(experiment)) == 0
    err = capsys.readouterr().err
    assert f"warning: {log}: last line is incomplete" in err and "1 warning(s)" in err
    assert run(str(experiment), "--strict") == 2
    err = capsys.readouterr().err
    problem = "last line is incomplete (was the run killed while writing?); dropped it"
    assert err.splitlines() == [f"algobench score: error: {log}: {problem}"]


def test_import_does_not_load_matplotlib() -> None:
    code = "import sys, algobench.scoring; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
