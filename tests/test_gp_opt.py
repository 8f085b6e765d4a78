"""GP-Opt: the unique-point posterior is the exact GP on every evaluation, the switch rule repeats
uncertain candidates less than well-known ones and shrinks the variance by C, λ comes from the
repeats, and the bandit finds a noisy function's optimum with few unique candidates; each tuner family's
output member (what replays rerun) is its own: GP-Opt's best posterior mean, Optuna's lowest
objective, PBT's first lineage to the target."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.gaussian_process import GaussianProcessRegressor

from algobench.results import write_json
from algobench.tuning.gp_opt import GPOptBandit, halton_arms, repeats_needed
from algobench.tuning.gp_posterior import UniquePoints, fit_posterior, make_kernel, posterior
from algobench.tuning.lineage import best_member, write_output


def history(seed: int, q: int = 15, t: int = 240, d: int = 3):
    rng = np.random.default_rng(seed)
    points = rng.random((q, d))
    which = rng.integers(q, size=t)
    x = points[which]
    y = np.sin(3 * x.sum(axis=1)) + x[:, 0] ** 2 + rng.normal(0, 0.3, size=t)
    return x, y


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_unique_point_posterior_equals_the_exact_gp_on_all_evaluations(seed):
    x, y = history(seed)
    noise, offset = 0.09, float(y.mean())
    kernel = make_kernel(3, amplitude=1.7, length_scale=0.4, fixed=True)
    data = UniquePoints.from_history(x, y)
    assert data.total == len(y) and len(data.counts) <= 15
    unique = fit_posterior(data, noise, kernel, offset)
    exact = GaussianProcessRegressor(kernel=kernel, alpha=noise, optimizer=None).fit(x, y - offset)
    queries = np.vstack([np.random.default_rng(seed + 10).random((40, 3)), data.points])
    mean, variance = posterior(unique, queries, offset)
    exact_mean, exact_sd = exact.predict(queries, return_std=True)
    np.testing.assert_allclose(mean, exact_mean + offset, rtol=0, atol=1e-8)
    np.testing.assert_allclose(variance, exact_sd**2, rtol=0, atol=1e-8)
    # Fitting the kernel on the means finds the kernel the exact GP finds: the two log marginal
    # likelihoods differ by a constant that does not depend on the kernel.
    free = make_kernel(3)
    thetas = [np.log([1.0, 0.3, 0.3, 0.3]), np.log([2.5, 0.1, 0.8, 2.0]), np.log([0.2, 1.0, 0.05, 0.5])]
    on_means = fit_posterior(data, noise, free, offset)
    on_all = GaussianProcessRegressor(kernel=free, alpha=noise, optimizer=None).fit(x, y - offset)
    gaps = [on_means.log_marginal_likelihood(t) - on_all.log_marginal_likelihood(t) for t in thetas]
    np.testing.assert_allclose(gaps, gaps[0], rtol=0, atol=1e-7)


def test_noise_is_the_pooled_within_candidate_variance():
    x = np.array([[0.1], [0.1], [0.1], [0.5], [0.5], [0.9]])
    y = np.array([1.0, 2.0, 3.0, 10.0, 14.0, 7.0])
    # Within: (1 + 0 + 1) + (4 + 4) = 10 over (3 - 1) + (2 - 1) + 0 = 3 degrees of freedom.
    assert UniquePoints.from_history(x, y).pooled_noise() == pytest.approx(10 / 3)
    assert UniquePoints.from_history(x[[0, 3, 5]], y[[0, 3, 5]]).pooled_noise() is None


def test_the_switch_rule_repeats_an_uncertain_candidate_less_than_a_well_known_one():
    arms = np.linspace(0, 1, 101)[:, None]
    bandit = GPOptBandit(arms, fit_kernel=False, initial_noise=0.05)
    rng = np.random.default_rng(0)
    for _ in range(30):
        bandit.observe(50, 1.0 + rng.normal(0, 0.2))  # the middle, known well
    bandit.observe(45, 1.3)
    regressor, offset, noise = bandit.fit()
    _, variance = posterior(regressor, arms, offset)
    known, uncertain = variance[50], variance[100]  # far from every evaluation
    assert uncertain > 20 * known
    ratio = 2.0
    b_known, b_uncertain = repeats_needed(known, noise, ratio), repeats_needed(uncertain, noise, ratio)
    assert b_uncertain < b_known and b_uncertain >= 1 and b_known >= 10
    # Exactly enough: b more evaluations of the arm shrink its variance by C, b - 1 do not.
    for arm, b in ((50, b_known), (100, b_uncertain)):
        _, data = bandit.data()
        for extra, shrunk in ((b, True), (b - 1, False)):
            points = np.vstack([data.points, arms[arm]])
            counts = np.append(data.counts, extra) if extra else data.counts
            points = points if extra else data.points
            grown = UniquePoints(points, counts, np.zeros(len(counts)), np.zeros(len(counts)))
            kernel = make_kernel(1, amplitude=max(float(np.var(data.means)), noise, 1e-6), fixed=True)
            _, after = posterior(fit_posterior(grown, noise, kernel), arms[[arm]])
            assert bool(after[0] <= variance[arm] / ratio * (1 + 1e-9)) is shrunk


@pytest.mark.parametrize("acquisition", ["ucb", "ei"])
def test_the_bandit_finds_a_noisy_optimum_with_few_unique_candidates(acquisition):
    arms = halton_arms(2, 256, seed=0)
    optimum = np.array([0.3, 0.7])
    rng = np.random.default_rng(1)

    def f(u):
        return float(np.sum((u - optimum) ** 2) * 10)

    bandit = GPOptBandit(arms, acquisition=acquisition, seed=0)
    budget, decisions = 80, []
    while bandit.evaluations < budget:
        decision = bandit.decide()
        decisions.append(decision)
        for _ in range(min(decision.repeats, budget - bandit.evaluations)):
            bandit.observe(decision.arm, f(arms[decision.arm]) + rng.normal(0, 0.3))
    assert decisions[0].repeats == 2  # the first candidate twice: the noise needs a repeat
    assert abs(decisions[-1].noise - 0.09) < 0.06  # λ measured from the repeats (true 0.3² = 0.09)
    assert len(bandit.values) <= budget / 2 and bandit.switches == len(decisions)
    arm, _, _ = bandit.best()
    assert f(arms[arm]) - min(f(a) for a in arms) < 0.25


# --- the tuner's output: what `tune replay --member best` and the replay view rerun ------------------


def finished(root: Path, member: int, **summary) -> Path:
    directory = root / f"trial_{member}"
    directory.mkdir(parents=True)
    base = {"status": "ok", "time_to_target": None, "metric_direction": "max", "validation_target_value": 0.95,
            "max_allowed_runtime_sec": 100.0, "target_metric_name": "accuracy"}  # fmt: skip
    write_json(directory / "summary.json", {**base, **summary})
    return directory


def test_each_tuner_family_has_its_own_output_member(tmp_path):
    dirs = [
        finished(tmp_path, 1, best_validation_metric=0.93, stopped_by="pruner"),  # the best metric, pruned
        finished(tmp_path, 2, best_validation_metric=0.90),
        finished(tmp_path, 3, best_validation_metric=0.70),
    ]
    settings = {"name": "x", "workload": "digits_mlp"}
    # PBT, Halton (AlgoPerf's rule): first to the target, else the best metric, pruned or not.
    assert best_member(dirs, {**settings, "tuner": "pbt"}) == 1
    # Optuna's samplers: the lowest objective among completed trials, as study.best_trial.
    assert best_member(dirs, {**settings, "tuner": "tpe"}) == 2
    # A declared output wins: GP-Opt's best posterior mean, even over a run that reached the target.
    reached = [*dirs, finished(tmp_path, 4, best_validation_metric=0.96, time_to_target=3.0)]
    assert best_member(reached, {**settings, "tuner": "gp-opt"}, tmp_path) == 4  # nothing declared yet
    write_output(tmp_path, 3, "best posterior mean")
    assert best_member(reached, {**settings, "tuner": "gp-opt"}, tmp_path) == 3


def test_gp_opt_declares_its_best_posterior_mean_and_replays_it(tmp_path, capsys):
    from algobench.cli import main
    from algobench.tuning.lineage import find_lineage
    from tests.conftest import SUBMISSIONS

    experiment = tmp_path / "exp"
    args = ["tune", str(SUBMISSIONS / "adamw" / "submission.py"), "--tuner", "gp-opt", "--trials", "4",
            "--max-steps", "20", "--eval-every", "20", "--experiment-dir", str(experiment), "--workloads",
            "digits_mlp", "--scale", "tiny", "--threads", "1", "--quiet", "--executor", "inprocess"]  # fmt: skip
    assert main(args) == 0
    tuning = experiment / "tuning/digits_mlp/study_0"
    result = json.loads((tuning / "gp_opt.json").read_text())
    declared = json.loads((tuning / "output.json").read_text())
    assert declared["member"] == result["best"]["members"][0] and declared["rule"] == "best posterior mean"
    assert declared["hyperparameters"] == result["best"]["hyperparameters"]
    lineage = find_lineage(experiment, "best")
    assert lineage.member == declared["member"]
    assert lineage.schedule[0].hyperparameters == result["best"]["hyperparameters"]
    capsys.readouterr()
    assert main(["tune", "score", str(experiment)]) == 0  # the replay view looks for that member's replays
    assert f"no replays of its best member (m{declared['member']})" in capsys.readouterr().out
