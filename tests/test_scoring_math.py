"""The scoring math on small tables computed by hand, number by number, and its properties.

Hand computations are written next to each expected value; max_tau = 4 throughout, so a
workload with ratio r <= 4 adds (4 - r) / (3 n) to the exact score.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from algobench.scoring import (
    RULES,
    benchmark_scores,
    effective_times,
    performance_profiles,
    performance_ratios,
    profile_steps,
    speedups,
    study_times,
    submission_times,
    tau_grid,
    trial_times,
)

INF = math.inf
TAU = 4.0


def frame(rows: dict[str, list[float]], columns: list[str]) -> pd.DataFrame:
    table = pd.DataFrame.from_dict(rows, orient="index", columns=columns, dtype=float)
    table.index.name = "submission"
    return table


# Three submissions, three workloads: a tie for best (w1), a ratio of exactly 4 (C on w1, still
# counted), a ratio past 4 (C on w2, 4.5 -> inf), and a target never reached (A on w3).
TIMES = frame({"A": [10, 20, INF], "B": [10, 50, 30], "C": [40, 90, 60]}, ["w1", "w2", "w3"])


def test_ratios_by_hand() -> None:
    ratios = performance_ratios(effective_times(TIMES, ["w1", "w2", "w3"], {}, TAU), TAU)
    assert ratios.loc["A"].tolist() == [1.0, 1.0, INF]  # 10/10, 20/20, never
    assert ratios.loc["B"].tolist() == [1.0, 2.5, 1.0]  # tie on w1, 50/20, 30/30
    assert ratios.loc["C"].tolist() == [4.0, INF, 2.0]  # 40/10 = 4 exactly, 90/20 = 4.5 > 4, 60/30


def test_exact_scores_by_hand() -> None:
    ratios = performance_ratios(effective_times(TIMES, ["w1", "w2", "w3"], {}, TAU), TAU)
    scores = benchmark_scores(ratios, TAU, "exact")
    assert scores["A"] == pytest.approx((3 + 3 + 0) / 9)  # 2/3
    assert scores["B"] == pytest.approx((3 + 1.5 + 3) / 9)  # 5/6
    assert scores["C"] == pytest.approx((0 + 0 + 2) / 9)  # 2/9: a ratio of exactly 4 earns nothing


def test_profile_by_hand() -> None:
    ratios = performance_ratios(effective_times(TIMES, ["w1", "w2", "w3"], {}, TAU), TAU)
    rho = performance_profiles(ratios, np.array([1.0, 2.0, 2.5, 3.9, 4.0]))
    assert rho.loc["A"].tolist() == pytest.approx([2 / 3, 2 / 3, 2 / 3, 2 / 3, 2 / 3])
    assert rho.loc["B"].tolist() == pytest.approx([2 / 3, 2 / 3, 1, 1, 1])  # 2.5 <= tau from 2.5 on
    assert rho.loc["C"].tolist() == pytest.approx([0, 1 / 3, 1 / 3, 1 / 3, 2 / 3])  # r = 4 counts at tau = 4
    x, y = profile_steps(ratios.loc["C"], TAU)
    assert x.tolist() == [1.0, 2.0, 4.0] and y.tolist() == pytest.approx([0, 1 / 3, 2 / 3])


def test_trapezoid_on_algoperf_grid_by_hand() -> None:
    # One workload with ratio 2 on linspace(1, 4, 100) (step h = 3/99): rho is 1 from grid point
    # k = 33 (tau = 2) on: 66 full intervals and one half interval -> 66.5 h = 2.01515...
    ratios = frame({"A": [2.0]}, ["w"])
    assert benchmark_scores(ratios, TAU, "trapezoid", 100)["A"] == pytest.approx(66.5 * (3 / 99) / 3)
    assert benchmark_scores(ratios, TAU, "exact")["A"] == pytest.approx(2 / 3)
    # ratio 2.5 falls in the middle of an interval: both give exactly half the area
    ratios = frame({"A": [2.5]}, ["w"])
    assert benchmark_scores(ratios, TAU, "trapezoid", 100)["A"] == pytest.approx(0.5)
    assert tau_grid(TAU, 100)[[0, 33, 99]].tolist() == pytest.approx([1.0, 2.0, 4.0])


def test_speedups_by_hand() -> None:
    times = frame({"R": [100, 200], "S": [50, INF]}, ["u", "w"])
    table = speedups(times, "R", {"u": 1000.0, "w": 300.0})
    assert table.loc["S", "speedup/u"] == pytest.approx(2.0)  # 100 / 50
    assert table.loc["S", "speedup/w"] == pytest.approx(200 / 301)  # never reached: budget + 1 s
    assert table.loc["S", "speedup"] == pytest.approx(math.sqrt(2.0 * 200 / 301))  # 1.15278
    assert table.loc["R", "speedup"] == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------
# Trials, studies, medians


def trials_table(rows: list[tuple]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """rows: (submission, workload, study, trial, [(time, value), ...]); target 1 to maximise, budget 100."""
    trials = pd.DataFrame(
        {
            "submission": [r[0] for r in rows],
            "workload": [r[1] for r in rows],
            "study": [r[2] for r in rows],
            "trial": [r[3] for r in rows],
            "path": [f"{r[0]}/{r[2]}/{r[1]}/{r[3]}" for r in rows],
            "target": 1.0,
            "direction": "max",
            "budget_sec": 100.0,
        }
    )
    trials.index.name = "trial_id"
    evals = pd.DataFrame(
        [(i, j, t, v) for i, r in enumerate(rows) for j, (t, v) in enumerate(r[4])],
        columns=["trial_id", "eval_index", "time", "value"],
    )
    return trials, evals


def test_first_evaluation_at_target_nan_never_reaches() -> None:
    trials, evals = trials_table(
        [
            ("A", "w", 0, 1, [(5, 0.5), (10, math.nan), (15, 1.0), (20, 1.5)]),  # NaN is not a hit
            ("A", "w", 0, 2, [(5, 0.99), (10, 0.98)]),  # never
            ("A", "w", 0, 3, [(5, 1.0)]),  # exactly the target counts (>=)
        ]
    )
    table = trial_times(trials, evals, RULES["docs"])
    assert table["time_to_target"].tolist() == [15.0, INF, 5.0]
    assert table["reached_eval_index"].tolist() == [2, -1, 0]


def test_minimised_metric_and_budget() -> None:
    trials, evals = trials_table([("A", "w", 0, 1, [(50, 3.0), (120, 0.5)])])
    trials["direction"] = "min"
    assert trial_times(trials, evals, RULES["docs"])["time_to_target"].tolist() == [INF]  # 120 > budget 100
    assert trial_times(trials, evals, RULES["code"])["time_to_target"].tolist() == [120.0]  # code: no check


def test_best_trial_fastest_versus_earliest_evaluation() -> None:
    # trial 1 reaches at its 3rd evaluation (t = 30); trial 2 at its 4th, but sooner (t = 25)
    trials, evals = trials_table(
        [
            ("A", "w", 0, 1, [(10, 0), (20, 0), (30, 1)]),
            ("A", "w", 0, 2, [(5, 0), (10, 0), (15, 0), (25, 1)]),
        ]
    )
    docs = study_times(trial_times(trials, evals, RULES["docs"]), RULES["docs"])
    code = study_times(trial_times(trials, evals, RULES["code"]), RULES["code"])
    assert docs[["time_to_target", "best_trial"]].values.tolist() == [[25.0, 2.0]]
    assert code[["time_to_target", "best_trial"]].values.tolist() == [[30.0, 1.0]]


def test_earliest_evaluation_ties_go_to_the_faster_trial() -> None:
    trials, evals = trials_table([("A", "w", 0, 1, [(10, 0), (31, 1)]), ("A", "w", 0, 2, [(10, 0), (29, 1)])])
    code = study_times(trial_times(trials, evals, RULES["code"]), RULES["code"])
    assert code[["time_to_target", "best_trial"]].values.tolist() == [[29.0, 2.0]]


@pytest.mark.parametrize(
    ("per_study", "median"),
    [
        ([30.0, 10.0, 20.0], 20.0),
        ([10.0, INF, 30.0], 30.0),  # infinity takes part: sorted 10, 30, inf
        ([10.0, INF, INF], INF),
        ([10.0, INF], INF),  # even count: mean of the middle two, (10 + inf) / 2
        ([10.0, 20.0, INF, INF], INF),
        ([10.0, 20.0, 30.0, INF], 25.0),
        ([5.0, 7.0, 9.0, INF, INF], 9.0),
    ],
)
def test_median_over_studies_with_infinities(per_study: list[float], median: float) -> None:
    rows = []
    for study, t in enumerate(per_study):
        # two trials per study; the study's time is the better one
        hit = [(t, 1.0)] if math.isfinite(t) else [(50.0, 0.0)]
        rows += [("A", "w", study, 1, hit), ("A", "w", study, 2, [(90.0, 0.0)])]
    trials, evals = trials_table(rows)
    studies = study_times(trial_times(trials, evals, RULES["docs"]), RULES["docs"])
    assert studies["time_to_target"].tolist() == per_study
    assert submission_times(studies).loc["A", "w"] == median


def test_three_submissions_from_trials_to_score() -> None:
    """2 studies x 2 trials per workload; every intermediate number checked."""
    rows = []

    def add(sub: str, workload: str, study_hits: list[tuple[float, float]]) -> None:
        for study, hits in enumerate(study_hits):
            for trial, t in enumerate(hits, start=1):
                rows.append((sub, workload, study, trial, [(t, 1.0)] if math.isfinite(t) else [(99.0, 0.0)]))

    add("A", "u", [(10, 12), (14, INF)])  # studies: 10, 14 -> median 12
    add("A", "v", [(INF, INF), (INF, 40)])  # inf, 40 -> inf
    add("A", "w", [(30, 20), (25, 50)])  # 20, 25 -> 22.5
    add("B", "u", [(24, INF), (INF, 24)])  # 24, 24 -> 24
    add("B", "v", [(50, 60), (70, 30)])  # 50, 30 -> 40
    add("B", "w", [(90, INF), (INF, INF)])  # 90, inf -> inf
    add("C", "u", [(60, 50), (48, 49)])  # 50, 48 -> 49
    add("C", "v", [(40, 45), (41, 42)])  # 40, 41 -> 40.5
    add("C", "w", [(45, 45), (45, 50)])  # 45, 45 -> 45
    trials, evals = trials_table(rows)
    times = submission_times(study_times(trial_times(trials, evals, RULES["docs"]), RULES["docs"]))
    assert times.loc["A"].tolist() == [12.0, INF, 22.5]
    assert times.loc["B"].tolist() == [24.0, 40.0, INF]
    assert times.loc["C"].tolist() == [49.0, 40.5, 45.0]
    ratios = performance_ratios(effective_times(times, ["u", "v", "w"], {}, TAU), TAU)
    assert ratios.loc["A"].tolist() == [1.0, INF, 1.0]
    assert ratios.loc["B"].tolist() == [2.0, 1.0, INF]
    assert ratios.loc["C"].tolist() == [INF, 40.5 / 40, 2.0]  # 49 / 12 = 4.083 > 4; 1.0125; 45 / 22.5
    scores = benchmark_scores(ratios, TAU, "exact")
    assert scores["A"] == pytest.approx(6 / 9)
    assert scores["B"] == pytest.approx((2 + 3) / 9)
    assert scores["C"] == pytest.approx((4 - 1.0125 + 2) / 9)


# ---------------------------------------------------------------------------------------------
# The held-out variant rule


def test_variant_rule_by_hand() -> None:
    # A misses its variant; B's variant time is past 4x the best variant (50 > 4 * 12); C passes.
    times = frame({"A": [10, INF], "B": [20, 50], "C": [30, 12]}, ["w", "w_var"])
    effective = effective_times(times, ["w"], {"w_var": "w"}, TAU)
    assert effective["w"].tolist() == [INF, INF, 30.0]
    ratios = performance_ratios(effective, TAU)
    assert ratios["w"].tolist() == [INF, INF, 1.0]  # the best left is C
    assert benchmark_scores(ratios, TAU, "exact").tolist() == [0.0, 0.0, 1.0]
    # without the rule: 10, 20, 30 -> ratios 1, 2, 3
    plain = performance_ratios(effective_times(times, ["w"], {}, TAU), TAU)
    assert plain["w"].tolist() == [1.0, 2.0, 3.0]
    assert benchmark_scores(plain, TAU, "exact").tolist() == pytest.approx([1.0, 2 / 3, 1 / 3])


def test_variant_fastest_counts_only_submissions_that_reached_the_base() -> None:
    # C trains the variant fastest (5) but never the base: it must not set the 4x bar on the
    # variant, else B's variant (70 > 4 * 5) would fail and take B's base down with it.
    times = frame({"A": [10, 20, 10], "B": [25, 70, 10], "C": [INF, 5, 10]}, ["w", "w_var", "u"])
    effective = effective_times(times, ["w", "u"], {"w_var": "w"}, TAU)
    assert effective["w"].tolist() == [10.0, 25.0, INF]
    ratios = performance_ratios(effective, TAU)
    assert ratios["w"].tolist() == [1.0, 2.5, INF]
    assert benchmark_scores(ratios, TAU, "exact").tolist() == pytest.approx([1.0, 0.75, 0.5])


def test_variant_rule_cuts_bases_against_the_fastest_before_the_penalty() -> None:
    # AlgoPerf's order: the 4x cut on the base uses A's 10 although A is then penalised, so B
    # (45 > 40) is out, and C becomes the best (ratio 1).
    times = frame({"A": [10, INF], "B": [45, 50], "C": [30, 60]}, ["w", "w_var"])
    ratios = performance_ratios(effective_times(times, ["w"], {"w_var": "w"}, TAU), TAU)
    assert ratios["w"].tolist() == [INF, INF, 1.0]


def test_missing_variant_runs_count_as_not_reached() -> None:
    times = frame({"A": [10, np.nan], "B": [20, 30]}, ["w", "w_var"])
    ratios = performance_ratios(effective_times(times, ["w"], {"w_var": "w"}, TAU), TAU)
    assert ratios["w"].tolist() == [INF, 1.0]


# ---------------------------------------------------------------------------------------------
# Properties

times_strategy = st.integers(min_value=1, max_value=5).flatmap(
    lambda n_workloads: st.lists(
        st.lists(
            st.one_of(st.just(INF), st.floats(min_value=0.5, max_value=1e4, allow_nan=False, allow_infinity=False)),
            min_size=n_workloads,
            max_size=n_workloads,
        ),
        min_size=1,
        max_size=5,
    )
)


def as_frame(values: list[list[float]]) -> pd.DataFrame:
    columns = [f"w{j}" for j in range(len(values[0]))]
    return frame({f"s{i}": row for i, row in enumerate(values)}, columns)


def scores_of(times: pd.DataFrame, integration: str, held_out: dict[str, str] | None = None) -> pd.Series:
    held_out = held_out or {}
    bases = [c for c in times.columns if c not in held_out]
    ratios = performance_ratios(effective_times(times, bases, held_out, TAU), TAU)
    return benchmark_scores(ratios, TAU, integration)


INTEGRATIONS = st.sampled_from(["exact", "trapezoid"])


@settings(max_examples=60, deadline=None)
@given(values=times_strategy, integration=INTEGRATIONS)
def test_score_in_unit_interval_and_ratios_at_least_one(values: list[list[float]], integration: str) -> None:
    times = as_frame(values)
    ratios = performance_ratios(effective_times(times, list(times.columns), {}, TAU), TAU)
    assert (ratios.to_numpy() >= 1.0).all()
    scores = benchmark_scores(ratios, TAU, integration)
    assert ((scores >= 0.0) & (scores <= 1.0 + 1e-12)).all()


@settings(max_examples=60, deadline=None)
@given(values=times_strategy)
def test_rho_non_decreasing(values: list[list[float]]) -> None:
    times = as_frame(values)
    ratios = performance_ratios(effective_times(times, list(times.columns), {}, TAU), TAU)
    rho = performance_profiles(ratios, tau_grid(TAU, 301)).to_numpy()
    assert (np.diff(rho, axis=1) >= 0).all()
    assert ((rho >= 0) & (rho <= 1)).all()


@settings(max_examples=60, deadline=None)
@given(values=times_strategy, integration=INTEGRATIONS, data=st.data())
def test_order_of_workloads_and_submissions_does_not_matter(values, integration, data) -> None:
    times = as_frame(values)
    columns = data.draw(st.permutations(list(times.columns)))
    rows = data.draw(st.permutations(list(times.index)))
    shuffled = times.loc[rows, columns]
    before = scores_of(times, integration)
    after = scores_of(shuffled, integration)
    assert after.reindex(before.index).tolist() == before.tolist()  # bit for bit


@settings(max_examples=60, deadline=None)
@given(values=times_strategy, integration=INTEGRATIONS, factor=st.floats(min_value=0.1, max_value=1.0))
def test_fastest_everywhere_scores_one(values: list[list[float]], integration: str, factor: float) -> None:
    times = as_frame(values)
    best = times.replace(INF, np.nan).min(axis=0).fillna(100.0)
    times.loc["champion"] = (best * factor).to_numpy()
    assert scores_of(times, integration)["champion"] == pytest.approx(1.0, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(values=times_strategy, extra=st.data(), with_variant=st.booleans())
def test_adding_a_submission_never_lowers_others_ratios(values, extra, with_variant: bool) -> None:
    times = as_frame(values)
    held_out = {}
    if with_variant and times.shape[1] > 1:
        held_out = {times.columns[-1]: times.columns[0]}
    bases = [c for c in times.columns if c not in held_out]
    before = performance_ratios(effective_times(times, bases, held_out, TAU), TAU)
    newcomer = extra.draw(
        st.lists(
            st.one_of(st.just(INF), st.floats(min_value=0.5, max_value=1e4)),
            min_size=times.shape[1], max_size=times.shape[1],
        )
    )  # fmt: skip
    grown = pd.concat([times, frame({"new": newcomer}, list(times.columns))])
    after = performance_ratios(effective_times(grown, bases, held_out, TAU), TAU)
    assert (after.loc[before.index].to_numpy() >= before.to_numpy()).all()
    assert (after.to_numpy() >= 1.0).all()
    assert (
        benchmark_scores(after, TAU).loc[before.index].to_numpy() <= benchmark_scores(before, TAU).to_numpy() + 1e-12
    ).all()
