"""Performance ratios, performance profiles rho(tau), the benchmark score and speedups.

Definitions (AlgoPerf's, after Dolan and Moré): with t[s, w] the runtime of submission s on
workload w, the ratio is r[s, w] = t[s, w] / min_s' t[s', w], infinite when above ``max_tau``;
rho_s(tau) = |{w : r[s, w] <= tau}| / n; the score is the area under rho_s on [1, max_tau]
divided by (max_tau - 1), so it lies in [0, 1] and is 1 exactly for a submission fastest on
every workload.

The held-out variant rule (AlgoPerf v0.5): a base workload's time counts only if the submission
also reached the target on each of the base's held-out variants within ``max_tau`` times the
fastest submission on that variant, where "fastest" considers only submissions that reached the
base workload's target. The steps are applied in AlgoPerf's order: variants of submissions that
missed the base become infinite; every time past ``max_tau`` x the fastest becomes infinite; a
base time becomes infinite where a variant is infinite; then ratios are taken.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd


def effective_times(
    times: pd.DataFrame,
    base_workloads: Sequence[str],
    held_out: Mapping[str, str],
    max_tau: float,
) -> pd.DataFrame:
    """The base workloads' runtimes after the variant rule and the cut at ``max_tau``.

    ``times`` is submissions by workloads (NaN: no runs, treated as never reaching the target);
    ``held_out`` maps each held-out variant to its base workload (empty: no variant rule).
    """
    columns = list(dict.fromkeys([*base_workloads, *held_out]))
    t = times.reindex(columns=columns).astype(float).fillna(np.inf)
    for variant, base in held_out.items():
        t[variant] = t[variant].where(np.isfinite(t[base]), np.inf)
    best = t.min(axis=0)
    t = t.mask(t > max_tau * best, np.inf)
    for variant, base in held_out.items():
        t[base] = t[base].where(np.isfinite(t[variant]), np.inf)
    result = t[list(base_workloads)]
    result.columns.name = "workload"
    return result


def performance_ratios(effective: pd.DataFrame, max_tau: float) -> pd.DataFrame:
    """r[s, w] = t[s, w] / min over submissions; infinity past ``max_tau`` or where unreached."""
    t = effective.to_numpy(dtype=float)
    best = t.min(axis=0, initial=np.inf) if t.size else np.full(t.shape[1], np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(best > 0, t / best, np.where(t == 0, 1.0, np.inf))
    ratios[~np.isfinite(ratios) | (ratios > max_tau)] = np.inf
    return pd.DataFrame(ratios, index=effective.index, columns=effective.columns)


def tau_grid(max_tau: float, num_points: int) -> np.ndarray:
    """The tau values at which rho is tabulated (AlgoPerf: 100 points, linear, from 1)."""
    return np.linspace(1.0, max_tau, num_points)


def performance_profiles(ratios: pd.DataFrame, taus: np.ndarray) -> pd.DataFrame:
    """rho_s(tau) = share of workloads with ratio <= tau; rows: submissions, columns: tau."""
    r = ratios.to_numpy(dtype=float)
    n = r.shape[1]
    counts = (r[:, :, None] <= taus[None, None, :]).sum(axis=1)
    rho = counts / n if n else np.zeros_like(counts, dtype=float)
    profiles = pd.DataFrame(rho, index=ratios.index, columns=pd.Index(taus, name="tau"))
    return profiles


def profile_steps(ratios: pd.Series, max_tau: float) -> tuple[np.ndarray, np.ndarray]:
    """The exact step function rho(tau) of one submission on [1, max_tau], for plotting."""
    r = ratios.to_numpy(dtype=float)
    x = np.unique(np.concatenate([[1.0, max_tau], r[np.isfinite(r) & (r <= max_tau)]]))
    y = (r[None, :] <= x[:, None]).sum(axis=1) / max(len(r), 1)
    return x, y


def benchmark_scores(
    ratios: pd.DataFrame,
    max_tau: float,
    integration: str = "exact",
    num_points: int = 100,
) -> pd.Series:
    """Area under rho on [1, max_tau] / (max_tau - 1), per submission.

    "exact" integrates the step function: a workload with ratio r <= max_tau contributes
    (max_tau - r) / n. "trapezoid" applies the trapezoid rule to rho on ``tau_grid`` (AlgoPerf's
    scoring code, 100 points); it differs from the exact area by at most the grid step.
    """
    r = ratios.to_numpy(dtype=float)
    n = r.shape[1]
    if n == 0:
        return pd.Series(0.0, index=ratios.index, name="score", dtype=float)
    if integration == "exact":
        credit = np.where(np.isfinite(r), max_tau - np.maximum(r, 1.0), 0.0)
        area = np.sort(credit, axis=1).sum(axis=1) / n  # sorted: the same bits whatever the workload order
    elif integration == "trapezoid":
        taus = tau_grid(max_tau, num_points)
        area = np.trapezoid(performance_profiles(ratios, taus).to_numpy(), x=taus, axis=1)
    else:
        raise ValueError(f"unknown integration {integration!r}")
    return pd.Series(area / (max_tau - 1.0), index=ratios.index, name="score")


def speedups(times: pd.DataFrame, reference: str, budgets: Mapping[str, float]) -> pd.DataFrame:
    """Per workload t[reference] / t[s], and their geometric mean (AlgoPerf's alternative score).

    Runtimes are the submissions' medians before the variant rule, on base workloads only. A
    target never reached counts as the workload's budget plus one second, as in AlgoPerf's
    ``compute_speedups.py`` (the written rules say nothing about infinities). Above 1: faster
    than the reference.
    """
    workloads = [w for w in times.columns if w in budgets]
    t = times[workloads].astype(float).fillna(np.inf)
    caps = pd.Series({w: budgets[w] + 1.0 for w in workloads}, dtype=float)
    t = t.where(np.isfinite(t), caps, axis=1)
    per_workload = t.loc[reference] / t
    out = per_workload.add_prefix("speedup/")
    out.insert(0, "speedup", geometric_means(per_workload))
    return out


def geometric_means(per_workload: pd.DataFrame) -> pd.Series:
    """The geometric mean of each row's per-workload speedups: the overall speedup."""
    return np.exp(np.log(per_workload).mean(axis=1))
