"""GP-Opt against an exact GP-UCB, Optuna's TPE and random search (numbers in benchmarks/README.md).

1. Cost per decision: the posterior over A = 1024 arms from T evaluations on q <= 50 unique points,
   as GP-Opt computes it (q x q, ``gp_posterior``) and as an exact GP-UCB refit on every evaluation
   does (T x T), same kernel (fixed hyperparameters: the algebra, not the optimiser, is compared).
2. Simple regret on a cheap noisy objective with a known optimum, at equal evaluations:
   f(u) = 10 * ||u - (0.3, 0.7, 0.5)||² + sin(8 u_0) / 2 on [0, 1]³, plus N(0, 0.3²) seed noise;
   regret = f(output) - min over the arm set of f, the output being the candidate with the best
   posterior mean (GP methods) or the best noisy value seen (TPE, random). Unique candidates and
   switches are counted.
3. The switching factor C (2, 4, 8; UCB and EI) against GP-UCB that switches every evaluation, on
   the same objective and seeds: regret and switches, and switches as a share of GP-UCB's (the
   goal: <= 10 % of its switches at no worse regret).
4. When Optuna's samplers stop being random search: the first trial at which a sampler's proposal
   differs from RandomSampler's with the same seed, at Optuna's defaults and at algobench's.

    nice -n 10 .venv/bin/python benchmarks/bench_gp_opt.py [--seeds 5] [--evaluations 200] [--parts ...]

(--parts: a comma-separated subset of cost, regret, ratio, optuna; default all.)
"""

from __future__ import annotations

import argparse
import math
import time
import warnings

import numpy as np

from algobench.tuning.gp_opt import GPOptBandit, halton_arms
from algobench.tuning.gp_posterior import UniquePoints, fit_posterior, make_kernel, posterior

NOISE_SD = 0.3
OPTIMUM = np.array([0.3, 0.7, 0.5])


def objective(u: np.ndarray) -> float:
    return float(10 * np.sum((u - OPTIMUM) ** 2) + 0.5 * math.sin(8 * u[0]))


def cost_per_decision(t_values: list[int], q: int = 50, arms: int = 1024, repeats: int = 3) -> list[dict]:
    from sklearn.gaussian_process import GaussianProcessRegressor

    rng = np.random.default_rng(0)
    grid = rng.random((arms, 3))
    kernel = make_kernel(3, amplitude=1.0, length_scale=0.3, fixed=True)
    rows = []
    for t in t_values:
        points = rng.random((q, 3))
        x = points[rng.integers(q, size=t)]
        y = np.array([objective(u) for u in x]) + rng.normal(0, NOISE_SD, t)
        unique, exact = [], []
        for _ in range(repeats):  # side by side, alternating, so both see the same machine load
            start = time.perf_counter()
            data = UniquePoints.from_history(x, y)
            posterior(fit_posterior(data, NOISE_SD**2, kernel, float(y.mean())), grid, float(y.mean()))
            unique.append(time.perf_counter() - start)
            start = time.perf_counter()
            regressor = GaussianProcessRegressor(kernel=kernel, alpha=NOISE_SD**2, optimizer=None).fit(x, y - y.mean())
            regressor.predict(grid, return_std=True)
            exact.append(time.perf_counter() - start)
        rows.append({"T": t, "q": q, "gp_opt_sec": min(unique), "exact_sec": min(exact)})
    return rows


def run_bandit(acquisition: str, ratio: float, budget: int, seed: int, arms: np.ndarray) -> dict:
    rng = np.random.default_rng(seed)
    bandit = GPOptBandit(arms, acquisition=acquisition, ratio=ratio, seed=seed)
    while bandit.evaluations < budget:
        decision = bandit.decide()
        repeats = 1 if ratio is None else decision.repeats
        for _ in range(min(repeats, budget - bandit.evaluations)):
            bandit.observe(decision.arm, objective(arms[decision.arm]) + rng.normal(0, NOISE_SD))
    arm, _, _ = bandit.best()
    return {"value": objective(arms[arm]), "unique": len(bandit.values), "switches": bandit.switches}


def run_gp_ucb(budget: int, seed: int, arms: np.ndarray) -> dict:
    """GP-UCB that switches at every evaluation: one evaluation per decision, whatever the variance."""
    rng = np.random.default_rng(seed)
    bandit = GPOptBandit(arms, acquisition="ucb", seed=seed, first_repeats=2)
    while bandit.evaluations < budget:
        decision = bandit.decide()
        for _ in range(decision.repeats if bandit.evaluations == 0 else 1):
            bandit.observe(decision.arm, objective(arms[decision.arm]) + rng.normal(0, NOISE_SD))
    arm, _, _ = bandit.best()
    return {"value": objective(arms[arm]), "unique": len(bandit.values), "switches": bandit.switches}


def run_optuna(sampler_name: str, budget: int, seed: int) -> dict:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # a script, not library code
    rng = np.random.default_rng(seed)
    if sampler_name == "tpe":
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(budget // 10, 5))
    else:
        sampler = optuna.samplers.RandomSampler(seed=seed)
    study = optuna.create_study(sampler=sampler)
    best_noisy, best_u = math.inf, None
    for _ in range(budget):
        trial = study.ask()
        u = np.array([trial.suggest_float(f"u{i}", 0, 1) for i in range(3)])
        value = objective(u) + rng.normal(0, NOISE_SD)
        study.tell(trial, value)
        if value < best_noisy:
            best_noisy, best_u = value, u
    return {"value": objective(best_u), "unique": budget, "switches": budget}


def first_model_trial(make_sampler, n: int = 40) -> int | None:
    """The first trial (1-based) whose proposal differs from RandomSampler's with the same seed."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    proposals = []
    for sampler in (make_sampler(), optuna.samplers.RandomSampler(seed=0)):
        study = optuna.create_study(sampler=sampler)
        seen = []
        for _ in range(n):
            trial = study.ask()
            u = [trial.suggest_float(f"u{i}", 0, 1) for i in range(3)] + [trial.suggest_float("lr", 1e-4, 1, log=True)]
            study.tell(trial, objective(np.array(u[:3])) + u[3])
            seen.append(u)
        proposals.append(seen)
    for index, (a, b) in enumerate(zip(*proposals, strict=True), start=1):
        if not np.allclose(a, b):
            return index
    return None


def cma_first_generation(popsize: int | None, startup: int, n: int = 60) -> int | None:
    """The first trial sampled from an updated CMA-ES distribution (after one full generation)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.CmaEsSampler(seed=0, popsize=popsize, n_startup_trials=startup)
    study = optuna.create_study(sampler=sampler)
    for index in range(1, n + 1):
        trial = study.ask()
        u = [trial.suggest_float(f"u{i}", 0, 1) for i in range(3)] + [trial.suggest_float("lr", 1e-4, 1, log=True)]
        study.tell(trial, objective(np.array(u[:3])) + u[3])
        attrs = study.trials[-1].system_attrs
        generation = next((v for k, v in attrs.items() if k.endswith(":generation")), None)
        if generation is not None and generation >= 1:
            return index
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--evaluations", type=int, default=200)
    parser.add_argument("--parts", default="cost,regret,ratio,optuna", help="which sections to run")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    warnings.simplefilter("ignore")
    started = time.perf_counter()
    if "cost" in parts:
        print_cost()
    arms = halton_arms(3, 1024, seed=0)
    best = min(objective(a) for a in arms)
    if "regret" in parts:
        print_regret(args, arms, best)
    if "ratio" in parts:
        print_ratio_sweep(args, arms, best)
    if "optuna" in parts:
        print_first_model_trials()
    print(f"\n(ran in {time.perf_counter() - started:.0f} s)")


def print_cost() -> None:
    print("## cost per decision (A = 1024 arms, q = 50 unique points, fixed kernel; best of 3)")
    print("| T | GP-Opt (q x q) s | exact GP-UCB (T x T) s | ratio |")
    print("|---|---|---|---|")
    for row in cost_per_decision([200, 1000, 5000]):
        ratio = row["exact_sec"] / row["gp_opt_sec"]
        print(f"| {row['T']} | {row['gp_opt_sec']:.4f} | {row['exact_sec']:.3f} | {ratio:.0f}x |")


def print_regret(args: argparse.Namespace, arms: np.ndarray, best: float) -> None:
    print(f"\n## simple regret at {args.evaluations} evaluations, {args.seeds} seeds (median [min, max])")
    methods = {
        "GP-Opt UCB (C=2)": lambda s: run_bandit("ucb", 2.0, args.evaluations, s, arms),
        "GP-Opt EI (C=2)": lambda s: run_bandit("ei", 2.0, args.evaluations, s, arms),
        "GP-UCB, switch every evaluation": lambda s: run_gp_ucb(args.evaluations, s, arms),
        "TPE (Optuna)": lambda s: run_optuna("tpe", args.evaluations, s),
        "random search": lambda s: run_optuna("random", args.evaluations, s),
    }
    print("| method | regret | unique candidates | switches |")
    print("|---|---|---|---|")
    for name, run in methods.items():
        results = [run(seed) for seed in range(args.seeds)]
        regret = [r["value"] - best for r in results]
        unique = [r["unique"] for r in results]
        switches = [r["switches"] for r in results]
        print(
            f"| {name} | {np.median(regret):.3f} [{min(regret):.3f}, {max(regret):.3f}] | "
            f"{np.median(unique):.0f} | {np.median(switches):.0f} |"
        )


def print_ratio_sweep(args: argparse.Namespace, arms: np.ndarray, best: float) -> None:
    print(f"\n## switching factor C at {args.evaluations} evaluations, {args.seeds} seeds (median [min, max])")
    baseline = [run_gp_ucb(args.evaluations, s, arms) for s in range(args.seeds)]
    base_regret = float(np.median([r["value"] - best for r in baseline]))
    base_switches = float(np.median([r["switches"] for r in baseline]))
    print(f"GP-UCB switching every evaluation: regret {base_regret:.3f}, {base_switches:.0f} switches")
    print("| method | C | regret | unique candidates | switches | switches / GP-UCB's |")
    print("|---|---|---|---|---|---|")
    for acquisition in ("ucb", "ei"):
        for ratio in (2.0, 4.0, 8.0):
            results = [run_bandit(acquisition, ratio, args.evaluations, s, arms) for s in range(args.seeds)]
            regret = [r["value"] - best for r in results]
            switches = float(np.median([r["switches"] for r in results]))
            print(
                f"| GP-Opt {acquisition.upper()} | {ratio:g} | {np.median(regret):.3f} [{min(regret):.3f}, "
                f"{max(regret):.3f}] | {np.median([r['unique'] for r in results]):.0f} | {switches:.0f} | "
                f"{100 * switches / base_switches:.0f} % |"
            )


def print_first_model_trials() -> None:
    import optuna

    print("\n## first trial that is not random search (4 parameters; 1-based)")
    print("| sampler | Optuna default | algobench (trials = 5 / 20) |")
    print("|---|---|---|")
    tpe = first_model_trial(lambda: optuna.samplers.TPESampler(seed=0))
    tpe5 = first_model_trial(lambda: optuna.samplers.TPESampler(seed=0, n_startup_trials=2))
    tpe20 = first_model_trial(lambda: optuna.samplers.TPESampler(seed=0, n_startup_trials=7))
    print(f"| TPE | {tpe} | {tpe5} / {tpe20} |")
    gp = first_model_trial(lambda: optuna.samplers.GPSampler(seed=0))
    gp5 = first_model_trial(lambda: optuna.samplers.GPSampler(seed=0, n_startup_trials=2))
    gp20 = first_model_trial(lambda: optuna.samplers.GPSampler(seed=0, n_startup_trials=7))
    print(f"| GP | {gp} | {gp5} / {gp20} |")
    cma = cma_first_generation(None, 1)
    cma5 = cma_first_generation(None, 2)
    cma20 = cma_first_generation(None, 7)
    print(f"| CMA-ES (first trial from an updated distribution) | {cma} | {cma5} / {cma20} |")


if __name__ == "__main__":
    main()
