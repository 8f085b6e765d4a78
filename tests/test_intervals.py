"""Bootstrap intervals over studies: resampling that matches the exact bootstrap distribution, a
known result for a given seed (cross-checked against scipy's own bootstrap), and speed-ups that are
or are not distinguishable from noise, through ``algobench score``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from algobench.scoring.intervals import bootstrap, resampled_medians
from algobench.scoring.pipeline import score

pytestmark = pytest.mark.filterwarnings("ignore::algobench.scoring.errors.ScoringWarning")  # 1 trial per study


def test_resampled_medians_follow_the_exact_bootstrap_distribution():
    """For three distinct values a < b < c, the median of a resample of three is a with
    probability P(at least two draws are a) = 3 (1/3)^2 (2/3) + (1/3)^3 = 7/27, likewise c, and b
    with probability 13/27."""
    medians = resampled_medians(np.array([1.0, 2.0, 3.0]), 27_000, np.random.default_rng(0))
    shares = [np.mean(medians == value) for value in (1.0, 2.0, 3.0)]
    assert shares == pytest.approx([7 / 27, 13 / 27, 7 / 27], abs=0.01)


def test_a_known_interval_for_a_seed_agrees_with_scipys_percentile_bootstrap():
    """Eleven studies' times: the 95 % percentile interval of the median, seed 0, 9,999 resamples.
    scipy's bootstrap, an independent implementation with its own draws, finds the same values."""
    times = np.array([10.0, 11.0, 12.5, 9.0, 13.0, 10.5, 30.0, 11.5, 12.0, 9.5, 14.0])
    medians = resampled_medians(times, 9_999, np.random.default_rng(0))
    low = np.quantile(medians, 0.025, method="lower")
    high = np.quantile(medians, 0.975, method="higher")
    assert (low, high) == (10.0, 13.0)
    theirs = stats.bootstrap(
        (times,), np.median, n_resamples=9_999, method="percentile", random_state=np.random.default_rng(1)
    ).confidence_interval
    assert (theirs.low, theirs.high) == pytest.approx((low, high), abs=0.5)  # the support's neighbours


def write_trial(
    root: Path, submission: str, workload: str, study: int, time_to_target: float | None, base: str | None = None
) -> None:
    """One finished trial as the runner leaves it: summary.json and eval_measurements.csv."""
    trial = root / submission / f"study_{study}" / f"{workload}_pytorch" / "trial_1"
    trial.mkdir(parents=True)
    reached = time_to_target is not None
    final = time_to_target if reached else 100.0
    rows = [(1, final / 2, 0.5), (2, final, 0.95 if reached else 0.6)]
    lines = ["global_step,score,validation/accuracy", *(f"{s},{t},{v}" for s, t, v in rows)]
    (trial / "eval_measurements.csv").write_text("\n".join(lines) + "\n")
    summary = {
        "submission": submission, "workload": workload, "base_workload": base or workload,
        "variant": "wide" if base else None,
        "study": study, "trial": 1, "ruleset": "self", "clock": "wall", "target_metric_name": "accuracy",
        "metric_direction": "max", "validation_target_value": 0.9, "max_allowed_runtime_sec": 100.0,
        "status": "target_reached" if reached else "out_of_time", "time_to_target": time_to_target,
    }  # fmt: skip
    (trial / "summary.json").write_text(json.dumps(summary))


STUDIES = {
    # Five studies per workload. "quick" is twice as fast as "base" on u with small noise; on v
    # the two overlap study for study, so that speed-up cannot be told from noise.
    ("base", "u"): [20.0, 21.0, 19.0, 20.5, 19.5],
    ("quick", "u"): [10.0, 10.5, 9.5, 10.2, 9.8],
    ("base", "v"): [30.0, 40.0, 20.0, 35.0, 25.0],
    ("quick", "v"): [28.0, 41.0, 22.0, 33.0, 26.0],
}


@pytest.fixture
def experiment(tmp_path: Path) -> Path:
    for (submission, workload), times in STUDIES.items():
        for study, time in enumerate(times):
            write_trial(tmp_path, submission, workload, study, time)
    return tmp_path


def test_intervals_bound_the_point_estimates_and_tell_a_real_speedup_from_noise(experiment: Path):
    result = score(experiment, "algobench-v1", reference="base")
    intervals = bootstrap(result, n_resamples=2000, seed=0)
    times_low, times_high = intervals.times
    assert (times_low <= result.times).all().all() and (result.times <= times_high).all().all()
    # The median of five studies resamples to a value among them: u's interval for quick lies in [9.5, 10.5].
    assert 9.5 <= times_low.loc["quick", "u"] <= 10.0 <= times_high.loc["quick", "u"] <= 10.5
    score_low, score_high = intervals.scores
    assert (score_low <= result.scores["score"]).all() and (result.scores["score"] <= score_high).all()
    speed_low, speed_high = intervals.speedups
    assert speed_low.loc["quick", "speedup/u"] > 1.8  # 19/10.5 at worst
    verdicts = intervals.verdicts()
    assert verdicts.loc["quick", "speedup/u"] == "faster"
    assert verdicts.loc["quick", "speedup/v"] == "indistinguishable"
    assert verdicts.loc["base", "speedup"] == "indistinguishable"  # the reference against itself: exactly 1
    assert speed_low.loc["base", "speedup"] == speed_high.loc["base", "speedup"] == 1.0


def test_the_same_seed_gives_the_same_intervals_and_another_seed_may_not(experiment: Path):
    result = score(experiment, "algobench-v1", reference="base")
    first, again = bootstrap(result, 500, seed=3), bootstrap(result, 500, seed=3)
    assert first.scores[0].equals(again.scores[0]) and first.speedups[1].equals(again.speedups[1])
    assert first.times[0].equals(again.times[0])


def test_unreached_targets_give_infinite_bounds_not_nan(tmp_path: Path):
    for study, time in enumerate([10.0, None, None]):
        write_trial(tmp_path, "flaky", "u", study, time)
    for study in range(3):
        write_trial(tmp_path, "steady", "u", study, 12.0)
    result = score(tmp_path, "algobench-v1")
    low, high = bootstrap(result, 400, seed=0).times
    assert result.times.loc["flaky", "u"] == math.inf
    assert low.loc["flaky", "u"] == 10.0 and high.loc["flaky", "u"] == math.inf


def test_bad_bootstrap_settings_are_one_line_errors(experiment: Path):
    from algobench.scoring.errors import ScoringError

    result = score(experiment, "algobench-v1")
    with pytest.raises(ScoringError, match="resamples must be at least 1"):
        bootstrap(result, 0)
    with pytest.raises(ScoringError, match="confidence must be between 0 and 1"):
        bootstrap(result, 10, confidence=1.5)


def test_all_replicates_at_once_equal_the_pipeline_run_on_each_replicate(tmp_path: Path):
    """The wide (vectorised) computation, variant rule included, against the pipeline's functions
    applied to one replicate's table: with a single resample the bounds are that replicate."""
    from algobench.scoring.intervals import replicate_times
    from algobench.scoring.profiles import benchmark_scores, effective_times, performance_ratios

    times = {"a": ([5.0, 9.0, 7.0], [6.0, None, 8.0]), "b": ([6.0, 6.5, 7.0], [9.0, 9.5, 30.0])}
    for submission, (base, variant) in times.items():
        for study, (t_base, t_variant) in enumerate(zip(base, variant, strict=True)):
            write_trial(tmp_path, submission, "u", study, t_base)
            write_trial(tmp_path, submission, "u_wide", study, t_variant, base="u")
    result = score(tmp_path, "algobench-v1", variant_rule=True)
    assert result.held_out == {"u_wide": "u"}
    for seed in range(5):
        one = bootstrap(result, n_resamples=1, seed=seed)
        replicate = replicate_times(result.study_times, 1, seed)[0]
        table = result.times.copy()
        table.loc[:, :] = replicate
        ratios = performance_ratios(effective_times(table, ["u"], {"u_wide": "u"}, 4.0), 4.0)
        assert one.ratios[0].equals(ratios) and one.ratios[1].equals(ratios)
        assert one.scores[0].to_numpy() == pytest.approx(benchmark_scores(ratios, 4.0).to_numpy())


def test_algobench_score_prints_intervals_verdicts_and_variants(experiment: Path, capsys):
    """Every printed number has its interval; --reference says which speed-ups stand out of the
    noise; a submission that reaches the base but misses its variant is named per workload."""
    from algobench.cli import main

    for study in range(5):  # quick's variant of u: never reached
        write_trial(experiment, "quick", "u_wide", study, None, base="u")
    for study, time in enumerate([25.0, 26.0, 24.0, 25.5, 24.5]):  # base's: always reached
        write_trial(experiment, "base", "u_wide", study, time, base="u")
    code = main(["score", str(experiment), "--protocol", "algobench-v1", "--reference", "base", "--bootstrap", "500"])
    out = capsys.readouterr().out
    assert code == 0
    assert "95% bootstrap intervals over studies (500 resamples, seed 0)" in out
    lines = out.splitlines()
    quick_ratios = next(line for line in lines if line.startswith("quick "))
    assert "1.000 [1.000, 1.000]" in quick_ratios  # fastest on u in every replicate
    speedups = lines[lines.index("speed-ups against base (noise: the interval holds 1):") + 3]
    assert speedups.startswith("quick") and " faster" in speedups and " noise" in speedups
    variants = out.split("variants: studies that reached the base target but missed the variant's\n")[1]
    rows = [line.split() for line in variants.splitlines()[1:3]]
    assert rows[0][:5] == ["base", "u", "u_wide", "5/5", "0/5"] and "reaches both" in variants.splitlines()[1]
    assert rows[1][:5] == ["quick", "u", "u_wide", "5/5", "5/5"]
    assert variants.splitlines()[2].endswith("reaches the base, misses the variant")
