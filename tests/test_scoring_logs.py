"""Reading experiment directories: both layouts, and every kind of bad input, loud and named."""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import replace
from pathlib import Path

import pytest

from algobench.scoring import ScoringError, ScoringWarning, get_protocol, score
from tests.scoring_fixtures.logs import eval_csv, write_algoperf_trial, write_trial

INF = math.inf


def hits(t: float, target: float = 0.9) -> list[tuple[float, float]]:
    """Evaluations of a trial that first reaches ``target`` at time t (never, if t is inf)."""
    if math.isinf(t):
        return [(40.0, target - 0.2), (80.0, target - 0.1)]
    return [(t / 2, target - 0.1), (t, target), (t + 5, target + 0.01)]


def experiment(root: Path, plan: dict[str, dict[str, list[list[float]]]], **kwargs) -> Path:
    """plan[submission][workload] = per study, the trials' times to target."""
    for submission, workloads in plan.items():
        for workload, studies in workloads.items():
            for study, trials in enumerate(studies):
                for trial, t in enumerate(trials, start=1):
                    write_trial(root, submission, workload, study, trial, hits(t), **kwargs)
    return root


def protocol_with(trials_per_study: int, studies: int = 3, **changes):
    return replace(get_protocol("algobench-v1"), trials_per_study=trials_per_study, studies=studies, **changes)


def messages(record: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, ScoringWarning)]


def test_algobench_layout_hand_computed(tmp_path: Path) -> None:
    root = experiment(
        tmp_path / "exp",
        {
            "adam": {"digits": [[10, 12], [14, INF], [11, 30]], "mnist1d": [[INF, INF], [40, INF], [50, 45]]},
            "sgd": {"digits": [[24, INF], [INF, 22], [20, 26]], "mnist1d": [[30, 33], [35, 34], [INF, 31]]},
        },
    )
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        result = score(root, protocol_with(2))
    assert messages(record) == []
    # adam: digits studies 10, 14, 11 -> 11; mnist1d inf, 40, 45 -> 45
    # sgd:  digits 24, 22, 20 -> 22;          mnist1d 30, 34, 31 -> 31
    assert result.times.loc["adam"].tolist() == [11.0, 45.0]
    assert result.times.loc["sgd"].tolist() == [22.0, 31.0]
    assert result.ratios.loc["adam"].tolist() == [1.0, 45 / 31]
    assert result.ratios.loc["sgd"].tolist() == [2.0, 1.0]
    assert result.scores.loc["adam", "score"] == pytest.approx((3 + 4 - 45 / 31) / 6)
    assert result.scores.loc["sgd", "score"] == pytest.approx((2 + 3) / 6)
    trial = result.trials.set_index(["submission", "workload", "study", "trial"]).loc[("adam", "digits", 0, 2)]
    assert trial["time_to_target"] == 12.0 and trial["status"] == "target_reached"
    assert trial["machine"].startswith("testhost") and "learning_rate" in trial["hparams"]


def test_algoperf_layout_teams_timestamps_and_rulesets(tmp_path: Path) -> None:
    root = tmp_path / "logs"
    target = 30.8491  # AlgoPerf's WMT validation BLEU target
    write_algoperf_trial(root / "team_a", "sub", "wmt", 0, 1, [(100.0, 20.0), (200.0, target)], "bleu")
    # a re-run in a timestamped directory belongs to the same submission
    write_algoperf_trial(root / "team_a", "sub-2024-05-01-10-11-12", "wmt", 1, 1, [(300.0, target + 1)], "bleu")
    write_algoperf_trial(root / "team_b", "other", "wmt", 0, 1, [(100.0, 31.0)], "bleu", framework="pytorch")
    with pytest.warns(ScoringWarning):  # 7 missing base workloads, too few studies and trials
        result = score(root, "algoperf-v0.6")
    assert sorted(result.times.index) == ["other", "sub"]
    assert result.times.loc["sub", "wmt"] == 250.0  # median of 200 and 300
    assert result.times.loc["other", "wmt"] == 100.0
    assert result.ratios.loc["sub", "wmt"] == 2.5
    assert result.ratios.shape == (2, 8)  # all eight base workloads count, missing ones as never reached


def test_self_tuning_budget_multiplier_from_flags(tmp_path: Path) -> None:
    # WMT's v0.6 budget is 43,336 s; a hit at 50,000 s is within it only under self-tuning (x1.5)
    for name, ruleset in (("ext", "external"), ("self", "self")):
        write_algoperf_trial(tmp_path, name, "wmt", 0, 1, [(50_000.0, 31.0)], "bleu", ruleset=ruleset)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = score(tmp_path, "algoperf-v0.6", rules="docs")
        code = score(tmp_path, "algoperf-v0.6", rules="code")
    assert result.trials.set_index("submission").loc[["ext", "self"], "budget_sec"].tolist() == [43_336.0, 65_004.0]
    assert result.times["wmt"].tolist() == [INF, 50_000.0]
    assert code.times["wmt"].tolist() == [50_000.0, 50_000.0]  # AlgoPerf's code does not check the budget


def test_truncated_last_line_is_dropped(tmp_path: Path) -> None:
    text = eval_csv([(10.0, 0.5), (20.0, 0.8)]) + "3,0,30.0,31.0,30.0,1.0,0.0,240,30.0,0.9"  # no newline
    path = write_trial(tmp_path, "a", "digits", 0, 1, [], csv_text=text, summary=False)
    write_trial(tmp_path, "a", "digits", 1, 1, hits(25.0))  # gives the workload its target
    with pytest.warns(ScoringWarning) as record:
        result = score(tmp_path, protocol_with(1, studies=2))
    assert any(str(path / "eval_measurements.csv") in m and "incomplete" in m for m in messages(record))
    trial = result.trials.set_index("study").loc[0]
    assert trial["num_evals"] == 2 and trial["time_to_target"] == INF


def test_nan_metric_stays_nan_and_never_reaches(tmp_path: Path) -> None:
    # a loss to minimise: had NaN been read as 0 it would have "reached" 0.5 at t = 10
    text = eval_csv([(10.0, math.nan), (20.0, 0.7), (30.0, 0.4)], "validation/loss").replace(",nan\n", ",\n")
    text = text.replace(",0.7\n", ",nan\n")
    path = write_trial(tmp_path, "a", "w", 0, 1, [], metric="loss", direction="min", target=0.5, csv_text=text)
    with pytest.warns(ScoringWarning) as record:
        result = score(tmp_path, protocol_with(1, studies=1))
    assert any(str(path / "eval_measurements.csv") in m and "NaN in 2 of 3" in m for m in messages(record))
    assert result.trials["time_to_target"].tolist() == [30.0]
    assert math.isnan(result.evals["value"].iloc[0]) and math.isnan(result.evals["value"].iloc[1])


def test_missing_eval_log_docs_versus_code(tmp_path: Path) -> None:
    experiment(tmp_path, {"a": {"w": [[10], [20], [30]]}})
    missing = tmp_path / "a" / "study_2" / "w_pytorch" / "trial_1" / "eval_measurements.csv"
    missing.unlink()
    with pytest.warns(ScoringWarning) as record:
        docs = score(tmp_path, protocol_with(1))
    assert any(str(missing) in m and "missing evaluation log" in m for m in messages(record))
    assert docs.times.loc["a", "w"] == 20.0  # median(10, 20, inf): the trial counts as a miss
    with pytest.warns(ScoringWarning):
        code = score(tmp_path, protocol_with(1), rules="code")
    assert code.times.loc["a", "w"] == 15.0  # median(10, 20): AlgoPerf drops the trial and its study


def test_unequal_studies_and_trials_are_named(tmp_path: Path) -> None:
    experiment(tmp_path, {"a": {"w": [[10, 11], [20, 21], [30, 31]]}, "b": {"w": [[10, 11], [20]]}})
    with pytest.warns(ScoringWarning) as record:
        score(tmp_path, protocol_with(2))
    found = messages(record)
    assert f"{tmp_path / 'b'}: 2 studies of workload 'w', protocol algobench-v1 expects 3" in found
    assert any(m.startswith(str(tmp_path / "b" / "study_1" / "w_pytorch")) and "1 trials" in m for m in found)
    assert not any(str(tmp_path / "a") in m for m in found)


def test_unknown_workload(tmp_path: Path) -> None:
    write_algoperf_trial(tmp_path, "sub", "wmt", 0, 1, [(1.0, 31.0)], "bleu")
    write_algoperf_trial(tmp_path, "sub", "imagenet_resnet_tiny", 0, 1, [(1.0, 0.9)], "accuracy")
    with pytest.warns(ScoringWarning) as record:
        result = score(tmp_path, "algoperf-v0.6")
    where = tmp_path / "sub" / "study_0" / "imagenet_resnet_tiny_jax"
    problem = "unknown workload 'imagenet_resnet_tiny' for protocol algoperf-v0.6; its trials are not scored"
    assert f"{where}: {problem}" in messages(record)
    assert "imagenet_resnet_tiny" not in set(result.trials["workload"])


def test_mixed_calibration_is_named(tmp_path: Path) -> None:
    write_trial(tmp_path, "a", "w", 0, 1, hits(10), calibration=1.0)
    slow = write_trial(tmp_path, "b", "w", 0, 1, hits(20), calibration=2.5)
    with pytest.warns(ScoringWarning) as record:
        score(tmp_path, protocol_with(1, studies=1))
    assert any("different calibration factors" in m and str(slow) in m for m in messages(record))


def test_summary_disagreeing_with_its_log(tmp_path: Path) -> None:
    # the summary's time and the log's first hit differ: neither can be trusted, the trial is dropped
    path = write_trial(tmp_path, "a", "w", 0, 1, hits(10), summary_extra={"time_to_target": 7.0})
    write_trial(tmp_path, "a", "w", 0, 2, hits(30))
    with pytest.warns(ScoringWarning) as record:
        result = score(tmp_path, protocol_with(2, studies=1))
    assert any(m.startswith(str(path / "summary.json")) and "says time_to_target 7.0" in m for m in messages(record))
    assert result.trials["trial"].tolist() == [2] and result.times.loc["a", "w"] == 30.0


def test_bad_rows_empty_logs_and_missing_summaries(tmp_path: Path) -> None:
    text = eval_csv([(10.0, 0.5), (20.0, 0.95)]).replace("\n2", "\n2,extra", 1)  # second row: one field too many
    bad = write_trial(tmp_path, "a", "w", 0, 1, [], csv_text=text)
    empty = write_trial(tmp_path, "a", "w", 1, 1, [], csv_text="")
    bare = write_trial(tmp_path, "a", "w", 2, 1, hits(30), summary=False)
    with pytest.warns(ScoringWarning) as record:
        result = score(tmp_path, protocol_with(1))
    found = messages(record)
    assert f"{bad / 'eval_measurements.csv'}: 1 row(s) with the wrong number of fields; dropped" in found
    assert f"{empty / 'eval_measurements.csv'}: no evaluations (empty file)" in found
    assert any(m.startswith(f"{bare}: no summary.json") for m in found)
    assert result.trials.sort_values("study")["time_to_target"].tolist() == [INF, INF, 30.0]


def test_no_target_anywhere(tmp_path: Path) -> None:
    write_trial(tmp_path, "a", "w", 0, 1, hits(10), summary=False)
    with pytest.warns(ScoringWarning, match="no summary.json with its target"), pytest.raises(ScoringError):
        score(tmp_path, protocol_with(1, studies=1))


def test_variant_rule_from_summaries(tmp_path: Path) -> None:
    experiment(tmp_path, {"a": {"w": [[10]]}, "b": {"w": [[20]]}})
    write_trial(tmp_path, "a", "w_tanh", 0, 1, hits(INF), base="w")
    write_trial(tmp_path, "b", "w_tanh", 0, 1, hits(50), base="w")
    protocol = protocol_with(1, studies=1)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        plain = score(tmp_path, protocol)
        ruled = score(tmp_path, protocol, variant_rule=True)
    assert any("'w_tanh' is not scored" in m for m in messages(record))
    assert plain.ratios["w"].tolist() == [1.0, 2.0]
    assert ruled.held_out == {"w_tanh": "w"}
    assert ruled.ratios["w"].tolist() == [INF, 1.0]  # a never trained its variant


LOG = "a/study_0/w_pytorch/trial_1/eval_measurements.csv"
BAD_INPUTS = {
    "truncated": (
        lambda p: write_trial(p, "a", "w", 0, 1, [], csv_text=eval_csv([(1.0, 0.5)]) + "2,0,3"),
        r"trial_1/eval_measurements\.csv: last line is incomplete",
    ),
    "nan": (
        lambda p: write_trial(p, "a", "w", 0, 1, [], csv_text=eval_csv([(1.0, math.nan)])),
        r"trial_1/eval_measurements\.csv: validation/accuracy is NaN",
    ),
    "missing-log": (lambda p: (p / LOG).unlink(), r"trial_1/eval_measurements\.csv: missing evaluation log"),
    "trials": (
        lambda p: write_trial(p, "a", "w", 0, 2, hits(12)),
        r"study_0/w_pytorch: 2 trials, protocol algobench-v1 expects 1",
    ),
    "studies": (lambda p: write_trial(p, "a", "w", 1, 1, hits(12)), r"/a: 2 studies of workload 'w'"),
    "calibration": (
        lambda p: write_trial(p, "b", "w", 0, 1, hits(12), calibration=2.0),
        r"trial_1: runs with different calibration factors",
    ),
    "unknown-workload": (
        lambda p: write_algoperf_trial(p, "a", "mystery", 0, 1, [(1.0, 1.0)], "accuracy"),
        r"mystery_jax: workload 'mystery': no summary.json",
    ),
    "stray-dir": (
        lambda p: (p / "a/study_0/notes").mkdir(),
        r"study_0/notes: not a <workload>_<jax\|pytorch> directory",
    ),
}


@pytest.mark.parametrize(("setup", "pattern"), list(BAD_INPUTS.values()), ids=list(BAD_INPUTS))
def test_strict_turns_each_problem_into_an_error_naming_the_file(tmp_path: Path, setup, pattern: str) -> None:
    write_trial(tmp_path, "a", "w", 0, 1, hits(10))
    protocol = protocol_with(1, studies=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        score(tmp_path, protocol, strict=True)  # clean logs: no warning, no error
    setup(tmp_path)
    with pytest.raises(ScoringError) as error:
        score(tmp_path, protocol, strict=True)
    assert re.search(pattern, str(error.value)), str(error.value)
    assert str(tmp_path) in str(error.value)


def test_paths_that_hold_nothing(tmp_path: Path) -> None:
    with pytest.raises(ScoringError, match="no such directory"):
        score(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.warns(ScoringWarning, match="no results here"), pytest.raises(ScoringError, match="no trials"):
        score(tmp_path / "empty")


def test_unknown_protocol_and_reference(tmp_path: Path) -> None:
    write_trial(tmp_path, "a", "w", 0, 1, hits(10))
    with pytest.raises(ScoringError, match="unknown scoring protocol 'algoperf-v9'"):
        score(tmp_path, "algoperf-v9")
    with pytest.raises(ScoringError, match="reference submission 'zzz' is not among a"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        score(tmp_path, reference="zzz")


def test_reading_only_some_workloads_reads_nothing_of_the_others(tmp_path: Path) -> None:
    from algobench.scoring.errors import Problems
    from algobench.scoring.logs import load_trials

    root = experiment(tmp_path / "exp", {"adam": {"digits": [[10, 12]], "mnist1d": [[40, INF]]}})
    (root / "adam" / "study_0" / "mnist1d_pytorch" / "trial_2" / "summary.json").unlink()  # a problem there
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        everything = Problems()
        load_trials([root], protocol_with(2, studies=1), everything)
        problems = Problems()
        trial_set = load_trials([root], protocol_with(2, studies=1), problems, workloads={"digits"})
    assert any("mnist1d" in message for message in everything.messages)  # the problem is there to find
    assert set(trial_set.trials["workload"]) == {"digits"} and len(trial_set.trials) == 2
    assert set(trial_set.evals["trial_id"]) == set(trial_set.trials.index)
    assert problems.messages == []  # nothing of mnist1d was read
