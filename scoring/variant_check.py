"""Do variants earn their place? Per submission and variant: of the studies that reached the base
workload's target, how many missed the variant's (AlgoPerf's reason for variants: a submission
tuned to the base alone should not carry over for free).

Computed for every variant in the logs whose base is scored, whether or not the protocol's
variant rule counts it, from the same per-trial and per-study times as the score (best trial per
study, the protocol's trial rules). Trials of variants the score does not use are read as they
are: the integrity checks that drop untrustworthy trials run only on scored workloads.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from algobench.scoring.protocols import ScoringRules
from algobench.scoring.time_to_target import study_times, trial_times

COLUMNS = [
    "submission", "base", "variant", "studies", "base_reached", "variant_reached",
    "base_only", "base_time", "variant_time", "verdict",
]  # fmt: skip


def variant_outcomes(
    trials: pd.DataFrame, evals: pd.DataFrame, rules: ScoringRules, bases: Sequence[str]
) -> pd.DataFrame:
    """One row per (submission, variant of a scored base): counts of studies that reached the base,
    the variant, and the base only (``base_only``), the median times, and a verdict."""
    variants = trials.loc[trials["is_variant"] & trials["base_workload"].isin(list(bases))]
    if variants.empty:
        return pd.DataFrame(columns=COLUMNS)
    pairs = dict(zip(variants["workload"], variants["base_workload"], strict=True))
    involved = trials.loc[trials["workload"].isin(set(pairs) | set(pairs.values()))]
    per_study = study_times(trial_times(involved, evals, rules), rules)
    grid = per_study.pivot_table(
        index=["submission", "study"], columns="workload", values="time_to_target", aggfunc="first"
    )
    rows = []
    for variant, base in sorted(pairs.items()):
        for submission in sorted(involved["submission"].unique()):
            if submission not in grid.index.get_level_values(0):
                continue
            mine = grid.loc[submission].reindex(columns=[base, variant])
            if mine[variant].isna().all():
                continue  # this submission never ran the variant
            base_times = mine[base].fillna(np.inf).to_numpy(dtype=float)
            variant_times = mine[variant].fillna(np.inf).to_numpy(dtype=float)
            base_hit, variant_hit = np.isfinite(base_times), np.isfinite(variant_times)
            base_only = int((base_hit & ~variant_hit).sum())
            rows.append(
                {
                    "submission": submission, "base": base, "variant": variant, "studies": len(mine),
                    "base_reached": int(base_hit.sum()), "variant_reached": int(variant_hit.sum()),
                    "base_only": base_only, "base_time": float(np.median(base_times)),
                    "variant_time": float(np.median(variant_times)),
                    "verdict": _verdict(int(base_hit.sum()), base_only),
                }
            )  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS)


def _verdict(base_reached: int, base_only: int) -> str:
    if base_reached == 0:
        return "missed the base"
    if base_only == base_reached:
        return "reaches the base, misses the variant"
    if base_only:
        return "misses the variant in some studies"
    return "reaches both"
