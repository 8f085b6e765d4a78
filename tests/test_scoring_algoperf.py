"""Scoring AlgoPerf's own logs reproduces AlgoPerf's published leaderboards (rules="code").

The fixture holds, for each of the 4,540 trials behind AlgoPerf's v0.5 (external and self-
tuning) and v0.6 (external) leaderboards, where it first reached its target (see
``scoring_fixtures/make_algoperf_fixture.py``). With ``ALGOPERF_V05_LOGS`` (and
``ALGOPERF_V06_LOGS``) pointing at the leaderboard repository's log folders, the raw logs are
scored too.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pandas as pd
import pytest

from algobench.scoring import get_protocol, score, score_trials
from tests.scoring_fixtures.logs import trial_set_from_first_hits

FIXTURE = Path(__file__).parent / "scoring_fixtures" / "algoperf_published_trials.csv.gz"

# github.com/mlcommons/submissions_algorithms: previous_leaderboards/algoperf_v05/README.md and README.md (v0.6)
PUBLISHED = {
    "v05_external": {
        "shampoo_submission": 0.7784, "schedule_free_adamw": 0.7077, "generalized_adam": 0.6383,
        "cyclic_lr": 0.6301, "nadamp": 0.5909, "baseline": 0.5707, "amos": 0.4918,
        "caspr_adaptive": 0.4722, "lawa_queue": 0.3699, "lawa_ema": 0.3384, "schedule_free_prodigy": 0.0,
    },
    "v05_self": {
        "schedule_free_adamw": 0.8542, "baseline": 0.8194, "nadamw_sequential": 0.3308,
        "sinv6_75": 0.1420, "sinv6": 0.0903, "adamg": 0.0,
    },
    "v06_external": {"shampoo": 0.6244, "baseline": 0.4590},
}  # fmt: skip
# What AlgoPerf's written rules give on the same logs (fastest trial, budget enforced, exact
# integral, a missing log is a miss): computed by this package, kept to catch regressions.
WRITTEN_RULES = {
    "v05_external": {
        "shampoo_submission": 0.7785, "schedule_free_adamw": 0.7062, "generalized_adam": 0.6370,
        "cyclic_lr": 0.6289, "nadamp": 0.5899, "baseline": 0.5693, "amos": 0.4915,
        "caspr_adaptive": 0.4722, "lawa_queue": 0.3704, "lawa_ema": 0.3431, "schedule_free_prodigy": 0.0,
    },
    "v06_external": {"shampoo": 0.6239, "baseline": 0.4580},
}  # fmt: skip
PROTOCOL = {"v05_external": "algoperf-v0.5", "v05_self": "algoperf-v0.5", "v06_external": "algoperf-v0.6"}


@pytest.fixture(scope="module")
def first_hits() -> pd.DataFrame:
    # A committed per-trial extract of AlgoPerf's published logs (first target hit of each of its
    # 4,488 trials), derived by tests/scoring_fixtures/make_algoperf_fixture.py: CI checks the
    # reproduction of the published scores on every run.
    return pd.read_csv(FIXTURE, dtype={"time_to_target": float})


def _scores(first_hits: pd.DataFrame, name: str, rules: str) -> pd.Series:
    protocol = get_protocol(PROTOCOL[name], rules=rules)
    trial_set = trial_set_from_first_hits(first_hits.loc[first_hits["set"] == name], protocol)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # AlgoPerf's logs miss some trials: warned about, as they should be
        return score_trials(trial_set, protocol).scores["score"]


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_code_rules_reproduce_the_published_leaderboard(first_hits: pd.DataFrame, name: str) -> None:
    scores = _scores(first_hits, name, "code")
    assert sorted(scores.index) == sorted(PUBLISHED[name])
    for submission, published in PUBLISHED[name].items():
        assert round(scores[submission], 4) == pytest.approx(published, abs=1e-12), submission


@pytest.mark.parametrize("name", sorted(WRITTEN_RULES))
def test_written_rules_differ_from_the_leaderboard(first_hits: pd.DataFrame, name: str) -> None:
    scores = _scores(first_hits, name, "docs")
    for submission, expected in WRITTEN_RULES[name].items():
        assert round(scores[submission], 4) == pytest.approx(expected, abs=1e-12), submission
    assert any(round(scores[s], 4) != PUBLISHED[name][s] for s in PUBLISHED[name])


def test_published_numbers_are_the_default_for_algoperf_protocols() -> None:
    assert get_protocol("algoperf-v0.5").rules.name == "code"
    assert get_protocol("algoperf-v0.6").rules.name == "code"
    assert get_protocol("algobench-v1").rules.name == "docs"


@pytest.mark.parametrize(
    ("variable", "subdir", "name"),
    [
        ("ALGOPERF_V05_LOGS", "external_tuning", "v05_external"),
        ("ALGOPERF_V05_LOGS", "self_tuning", "v05_self"),
        ("ALGOPERF_V06_LOGS", "external_tuning", "v06_external"),
    ],
)
def test_raw_algoperf_logs(variable: str, subdir: str, name: str) -> None:
    root = os.environ.get(variable)
    if not root:
        pytest.skip(f"set {variable} to the leaderboard repository's logs folder to score AlgoPerf's raw logs")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = score(Path(root) / subdir, PROTOCOL[name]).scores["score"]
    assert {s: round(v, 4) for s, v in scores.items()} == PUBLISHED[name]
