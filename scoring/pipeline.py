"""From experiment directories to scores: the steps of scoring, in order, as one call.

    logs ─▶ integrity (drop untrustworthy trials) ─▶ trial times ─▶ study times (best trial)
         ─▶ submission times (median over studies) ─▶ variant rule and cut at max_tau ─▶ ratios
         ─▶ rho(tau) ─▶ score (and speedups)

``score()`` returns every intermediate table, so a notebook can look at any step.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from os import PathLike

import pandas as pd

from algobench.scoring import checks, integrity
from algobench.scoring.errors import Problems, ScoringError
from algobench.scoring.logs import TrialSet, load_trials
from algobench.scoring.profiles import (
    benchmark_scores,
    effective_times,
    performance_profiles,
    performance_ratios,
    speedups,
    tau_grid,
)
from algobench.scoring.protocols import DEFAULT_PROTOCOL, Protocol, get_protocol
from algobench.scoring.time_to_target import study_times, submission_times, trial_times
from algobench.scoring.variant_check import variant_outcomes


@dataclass(frozen=True)
class ScoreResult:
    """Every table of one scoring run (pandas, for notebooks), and what was wrong with the logs.

    - ``trials``: one row per trial, with ``time_to_target`` and provenance (path, status, machine…)
    - ``evals``: one row per evaluation (``trial_id, eval_index, time, value, global_step``)
    - ``study_times``: per submission, workload and study: the best trial's time
    - ``times``: submissions x workloads, the median over studies (held-out variants included)
    - ``effective_times``: base workloads only, after the variant rule and the cut at max_tau
    - ``ratios``: submissions x base workloads, time / best (inf: beyond max_tau or not reached)
    - ``profiles``: submissions x tau, rho(tau)
    - ``scores``: per submission, ``score`` (and ``speedup`` against ``reference``)
    - ``speedups``: per submission, the geometric-mean speedup and its per-workload factors
    - ``clock``: the clock every time was measured on (``wall`` or ``cpu``)
    - ``variants``: per submission and variant of a scored base, the studies that reached the base
      target but missed the variant's (``variant_check``), whatever the variant rule
    """

    protocol: Protocol
    trials: pd.DataFrame
    evals: pd.DataFrame
    study_times: pd.DataFrame
    times: pd.DataFrame
    effective_times: pd.DataFrame
    ratios: pd.DataFrame
    profiles: pd.DataFrame
    scores: pd.DataFrame
    speedups: pd.DataFrame | None
    reference: str | None
    held_out: dict[str, str]
    problems: tuple[str, ...]
    clock: str = "wall"  # what every time in these tables was measured on (one clock per scoring run)
    variants: pd.DataFrame | None = None  # per submission and variant: base reached, variant missed


def scored_workloads(trials: pd.DataFrame, protocol: Protocol) -> tuple[list[str], dict[str, str]]:
    """The base workloads that count, and the held-out variants (mapped to their base) that gate them."""
    if protocol.base_workloads is not None:
        bases = list(protocol.base_workloads)
    else:
        bases = sorted(set(trials.loc[~trials["is_variant"], "workload"]))
    held_out: dict[str, str] = {}
    if protocol.variant_rule:
        if protocol.held_out is not None:
            held_out = {v: protocol.workloads[v].base for v in protocol.held_out}
        else:
            variants = trials.loc[trials["is_variant"] & trials["base_workload"].isin(bases)]
            held_out = dict(sorted(zip(variants["workload"], variants["base_workload"], strict=True)))
    return bases, held_out


def _budgets(trials: pd.DataFrame) -> dict[str, float]:
    """Per workload, the largest budget any of its trials had (for capping infinities in speedups)."""
    return trials.groupby("workload")["budget_sec"].max().to_dict()


def score_trials(
    trial_set: TrialSet,
    protocol: Protocol,
    reference: str | None = None,
    problems: Problems | None = None,
) -> ScoreResult:
    """Score trials already read (``load_trials``) or built in memory, e.g. for tests and benchmarks."""
    problems = problems if problems is not None else Problems()
    rules = protocol.rules
    trials = trial_set.trials
    bases, held_out = scored_workloads(trials, protocol)
    checks.check_workloads(trials, bases, held_out, problems)
    used = trials.loc[trials["workload"].isin(set(bases) | set(held_out))]
    checks.check_counts(used, protocol, problems)
    checks.check_comparable(used, problems)
    clock = checks.check_one_clock(used) or "wall"

    used = used.drop(integrity.step_order_problems(used, trial_set.evals, problems))
    per_trial = trial_times(used, trial_set.evals, rules)
    per_trial = integrity.discount_unscored(per_trial, problems)
    per_trial = per_trial.drop(integrity.summary_disagreements(per_trial, problems))
    evals = trial_set.evals.loc[trial_set.evals["trial_id"].isin(per_trial.index)]
    per_study = study_times(per_trial, rules)
    times = submission_times(per_study)
    if times.empty and not bases:
        raise ScoringError("no trials to score")
    submissions = sorted(set(trials["submission"]))
    times = times.reindex(index=submissions)
    times.index.name = "submission"
    effective = effective_times(times, bases, held_out, protocol.max_tau)
    ratios = performance_ratios(effective, protocol.max_tau)
    profiles = performance_profiles(ratios, tau_grid(protocol.max_tau, rules.num_tau_points))
    score = benchmark_scores(ratios, protocol.max_tau, rules.integration, rules.num_tau_points)
    scores = score.to_frame()
    speedup_table = None
    if reference is not None:
        if reference not in times.index:
            raise ScoringError(f"reference submission {reference!r} is not among {', '.join(submissions)}")
        speedup_table = speedups(times.reindex(columns=bases), reference, _budgets(used))
        scores["speedup"] = speedup_table["speedup"]
        scores["reference"] = reference
    scores.index.name = "submission"
    return ScoreResult(
        protocol=protocol,
        trials=per_trial,
        evals=evals,
        study_times=per_study,
        times=times,
        effective_times=effective,
        ratios=ratios,
        profiles=profiles,
        scores=scores,
        speedups=speedup_table,
        reference=reference,
        held_out=held_out,
        problems=tuple(problems.messages),
        clock=clock,
        variants=variant_outcomes(trials, trial_set.evals, rules, bases),
    )


def score(
    paths: str | PathLike[str] | Iterable[str | PathLike[str]],
    protocol: str | Protocol = DEFAULT_PROTOCOL,
    *,
    rules: str | None = None,
    variant_rule: bool | None = None,
    reference: str | None = None,
    strict: bool = False,
    default_ruleset: str = "external",
) -> ScoreResult:
    """Score the experiment directories ``paths`` under ``protocol``.

    Problems in the logs are ``ScoringWarning``s (also kept in ``result.problems``); with
    ``strict`` the first one raises ``ScoringError``. ``default_ruleset`` applies to trials whose
    files do not say (algobench's summary.json and AlgoPerf's flags_0.json do).
    """
    if isinstance(paths, str | PathLike):
        paths = [paths]
    chosen = get_protocol(protocol) if isinstance(protocol, str) else protocol
    chosen = chosen.with_options(rules=rules, variant_rule=variant_rule)
    problems = Problems(strict=strict)
    trial_set = load_trials(paths, chosen, problems, default_ruleset=default_ruleset)
    if trial_set.trials.empty:
        raise ScoringError(f"no trials to score under {', '.join(str(p) for p in paths)}")
    return score_trials(trial_set, chosen, reference=reference, problems=problems)
