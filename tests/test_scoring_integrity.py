"""Log integrity: steps out of order, unscored statuses, and summaries that contradict their logs."""

from __future__ import annotations

import argparse
import math
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from algobench.scoring import Problems, ScoringError, ScoringWarning, get_protocol, score
from algobench.scoring.cli import register
from algobench.scoring.integrity import is_unscored, step_order_problems
from tests.scoring_fixtures.logs import write_algoperf_trial, write_trial

INF = math.inf
HEADER = (
    "global_step,preemption_count,score,total_duration,accumulated_submission_time,"
    "accumulated_eval_time,accumulated_logging_time,examples_seen,process_cpu_time,validation/accuracy\n"
)


def log(*rows: tuple[int, float, float]) -> str:
    """A handwritten eval_measurements.csv: one (global_step, submission time, accuracy) per row."""
    return HEADER + "".join(f"{step},0,{t},{t + 1},{t},1.0,0.0,{step * 8},{t},{acc}\n" for step, t, acc in rows)


def hits(t: float) -> list[tuple[float, float]]:
    return [(t / 2, 0.8), (t, 0.9), (t + 5, 0.91)]


def protocol(trials: int, studies: int = 1):
    return replace(get_protocol("algobench-v1"), trials_per_study=trials, studies=studies)


def scored(root: Path, trials: int, strict: bool = False):
    """The result and the warnings' texts."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        result = score(root, protocol(trials), strict=strict)
    return result, [str(w.message) for w in record if issubclass(w.category, ScoringWarning)]


# ---------------------------------------------------------------------------------------------
# global_step must increase


def test_repeated_step_drops_the_trial_naming_file_and_row(tmp_path: Path) -> None:
    text = log((10, 5.0, 0.5), (20, 10.0, 0.7), (20, 12.0, 0.95))
    bad = write_trial(tmp_path, "a", "w", 0, 1, [(5.0, 0.5), (10.0, 0.7), (12.0, 0.95)], csv_text=text)
    write_trial(tmp_path, "a", "w", 0, 2, hits(30))
    result, found = scored(tmp_path, 2)
    assert found == [
        f"{bad / 'eval_measurements.csv'}: global_step repeats at evaluation 3 (step 20 after 20): "
        "rows of an earlier, dead run followed by a rerun's? trial not scored"
    ]
    assert result.trials["trial"].tolist() == [2]
    assert result.times.loc["a", "w"] == 30.0  # not 12.0, the hit of the dead run's log
    assert set(result.evals["trial_id"]) == set(result.trials.index)


def test_backwards_step_a_dead_run_then_a_rerun(tmp_path: Path) -> None:
    # the dead run reached the target at t = 9; the rerun started again from step 10
    text = log((10, 3.0, 0.5), (20, 6.0, 0.8), (30, 9.0, 0.92), (10, 4.0, 0.6), (20, 8.0, 0.7))
    bad = write_trial(tmp_path, "a", "w", 0, 1, [(9.0, 0.92)], csv_text=text)
    write_trial(tmp_path, "a", "w", 0, 2, hits(40))
    result, found = scored(tmp_path, 2)
    assert (
        f"{bad / 'eval_measurements.csv'}: global_step goes backwards at evaluation 4 (step 10 after 30): "
        "rows of an earlier, dead run followed by a rerun's? trial not scored"
    ) in found
    assert result.times.loc["a", "w"] == 40.0


def test_steps_out_of_order_strict_refuses(tmp_path: Path) -> None:
    text = log((10, 3.0, 0.5), (30, 6.0, 0.8), (20, 9.0, 0.92))
    bad = write_trial(tmp_path, "a", "w", 0, 1, [(9.0, 0.92)], csv_text=text)
    with pytest.raises(ScoringError) as error:
        scored(tmp_path, 1, strict=True)
    assert str(error.value).startswith(f"{bad / 'eval_measurements.csv'}: global_step goes backwards at evaluation 3")


def test_step_order_in_memory_unsorted_and_without_steps() -> None:
    trials = pd.DataFrame({"path": ["/t0", "/t1", "/t2"]}, index=pd.Index([0, 1, 2], name="trial_id"))
    evals = pd.DataFrame(
        {
            "trial_id": [1, 0, 1, 0, 2, 2],
            "eval_index": [1, 0, 0, 1, 0, 1],
            "global_step": [5.0, 1.0, 7.0, 2.0, np.nan, np.nan],  # trial 1: 7 then 5; trial 2: no column
        }
    )
    problems = Problems()
    with pytest.warns(ScoringWarning):
        bad = step_order_problems(trials, evals, problems)
    assert bad.tolist() == [1]
    assert problems.messages == [
        "/t1/eval_measurements.csv: global_step goes backwards at evaluation 2 (step 5 after 7): "
        "rows of an earlier, dead run followed by a rerun's? trial not scored"
    ]


# ---------------------------------------------------------------------------------------------
# failed, timeout and invalid never count


@pytest.mark.parametrize("status", ["failed", "timeout", "invalid"])
def test_unscored_status_with_a_target_reaching_log_is_infinity(tmp_path: Path, status: str) -> None:
    path = write_trial(tmp_path, "a", "w", 0, 1, hits(10), summary_extra={"status": status})
    write_trial(tmp_path, "a", "w", 1, 1, hits(20))
    write_trial(tmp_path, "a", "w", 2, 1, hits(30))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        result = score(tmp_path, protocol(1, studies=3))
    found = [str(w.message) for w in record if issubclass(w.category, ScoringWarning)]
    assert found == [
        f"{path / 'summary.json'}: status {status}, but its evaluation log reaches the target at 10 s: the log "
        f"and the summary disagree; a {status} trial never counts (time to target: infinity)"
    ]
    assert result.trials.set_index("study")["time_to_target"].tolist() == [INF, 20.0, 30.0]
    assert result.times.loc["a", "w"] == 30.0  # median(inf, 20, 30); had the log counted: 20
    with pytest.raises(ScoringError, match=f"status {status}, but its evaluation log reaches the target"):
        score(tmp_path, protocol(1, studies=3), strict=True)


def test_failed_trial_that_never_reached_is_quiet_and_diverged_still_counts(tmp_path: Path) -> None:
    write_trial(tmp_path, "a", "w", 0, 1, hits(INF), summary_extra={"status": "failed"})
    write_trial(tmp_path, "a", "w", 0, 2, hits(15), summary_extra={"status": "diverged"})
    result, found = scored(tmp_path, 2)
    assert found == []
    assert result.trials["time_to_target"].tolist() == [INF, 15.0]


def test_is_unscored() -> None:
    assert [is_unscored(s) for s in ("failed", "timeout", "invalid")] == [True] * 3
    assert [is_unscored(s) for s in ("ok", "target_reached", "out_of_time", "diverged", "", None)] == [False] * 6


# ---------------------------------------------------------------------------------------------
# summary.json against the log


def test_summary_time_differs_from_the_log(tmp_path: Path) -> None:
    bad = write_trial(tmp_path, "a", "w", 0, 1, hits(10), summary_extra={"time_to_target": 10.5})
    close = write_trial(tmp_path, "a", "w", 0, 2, hits(20), summary_extra={"time_to_target": 20.0 * (1 + 5e-7)})
    result, found = scored(tmp_path, 2)
    assert found == [
        f"{bad / 'summary.json'}: summary.json says time_to_target 10.5, its evaluation log first reaches the "
        "target at 10 s: the summary and the log disagree; trial not scored"
    ]
    assert result.trials["path"].tolist() == [str(close)]  # within 1e-6: agrees
    assert result.times.loc["a", "w"] == 20.0


def test_summary_says_reached_but_the_log_never_does(tmp_path: Path) -> None:
    bad = write_trial(tmp_path, "a", "w", 0, 1, hits(INF), summary_extra={"status": "target_reached"})
    write_trial(tmp_path, "a", "w", 0, 2, hits(25))
    result, found = scored(tmp_path, 2)
    assert found == [
        f"{bad / 'summary.json'}: summary.json says status target_reached and time_to_target null, its "
        "evaluation log never reaches the target within the budget: the summary and the log disagree; "
        "trial not scored"
    ]
    assert result.trials["trial"].tolist() == [2]


def test_summary_time_but_the_log_never_reaches(tmp_path: Path) -> None:
    bad = write_trial(tmp_path, "a", "w", 0, 1, hits(INF), summary_extra={"time_to_target": 12.0})
    with pytest.raises(ScoringError) as error:
        scored(tmp_path, 1, strict=True)
    assert str(error.value) == (
        f"{bad / 'summary.json'}: summary.json says time_to_target 12.0, its evaluation log never reaches the "
        "target within the budget: the summary and the log disagree; trial not scored"
    )


def test_summary_without_a_hit_but_the_log_reaches_keeps_the_log(tmp_path: Path) -> None:
    path = write_trial(
        tmp_path, "a", "w", 0, 1, hits(10), summary_extra={"status": "out_of_time", "time_to_target": None}
    )
    result, found = scored(tmp_path, 1)
    assert found == [
        f"{path / 'summary.json'}: summary.json says status out_of_time and time_to_target null, its evaluation "
        "log first reaches the target at 10 s: the summary and the log disagree; scoring uses the log"
    ]
    assert result.trials["time_to_target"].tolist() == [10.0]


def test_algoperf_logs_have_no_summary_to_compare(tmp_path: Path) -> None:
    target = 30.8491  # AlgoPerf's WMT validation BLEU target
    for trial, t in ((1, 100.0), (2, 200.0)):
        write_algoperf_trial(tmp_path, "a", "wmt", 0, trial, [(t / 2, 20.0), (t, target)], "bleu", ruleset="external")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        result = score(tmp_path, "algoperf-v0.6")
    assert not [w for w in record if "summary" in str(w.message) or "global_step" in str(w.message)]
    assert result.trials["time_to_target"].tolist() == [100.0, 200.0]
    assert result.times.loc["a", "wmt"] == 100.0


def test_cli_strict_refuses_with_exit_code_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for study in range(3):  # algobench-v1: 3 studies x 5 trials, so that the log is the first problem
        for trial in range(1, 6):
            write_trial(tmp_path, "a", "w", study, trial, hits(10.0 * trial))
    text = log((10, 3.0, 0.5), (10, 6.0, 0.95))
    bad = write_trial(tmp_path, "a", "w", 1, 2, [(6.0, 0.95)], csv_text=text)
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["score", str(tmp_path), "--strict"])
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"error: {bad / 'eval_measurements.csv'}: global_step repeats at evaluation 2 (step 10 after 10)" in err


def test_a_summary_of_random_bytes_or_a_list_is_a_named_problem_not_a_crash(tmp_path, capsys):
    """D3: `algobench score` on damaged summaries names each file and goes on."""
    import os

    from algobench.cli import main

    for index, content in enumerate([os.urandom(64), b"[]"]):
        trial = tmp_path / "sub" / "study_0" / "digits_mlp_pytorch" / f"trial_{index + 1}"
        trial.mkdir(parents=True)
        (trial / "summary.json").write_bytes(content)
        (trial / "eval_measurements.csv").write_text("global_step,score,validation/accuracy\n10,1.0,0.5\n20,2.0,0.97\n")
    assert main(["score", str(tmp_path), "--strict"]) == 2  # strict: named problems refuse
    err = capsys.readouterr().err
    assert "trial_1/summary.json" in err and "Traceback" not in err
    main(["score", str(tmp_path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert "trial_1/summary.json: cannot read" in err
    assert "trial_2/summary.json: not a JSON object; ignored" in err
