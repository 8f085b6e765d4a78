"""Checks that the logs are what the protocol expects, each problem naming a file or directory.

These do not change any number; they say when a number rests on incomplete or incomparable
logs: missing workloads or variants, unequal numbers of studies or trials, runs from machines
with different calibration, and mixed rulesets. Times on different clocks (wall, cpu) are not
merely incomparable but different quantities: ``check_one_clock`` refuses them. Checks that a
trial's own files can be trusted (steps in order, status and summary against the log) are in
``integrity``: those change numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from algobench.scoring.errors import Problems, ScoringError
from algobench.scoring.protocols import Protocol


def _workload_dir(trial_path: str) -> Path:
    return Path(trial_path).parent


def check_workloads(
    trials: pd.DataFrame,
    base_workloads: Sequence[str],
    held_out: Mapping[str, str],
    problems: Problems,
) -> None:
    """Every submission ran every scored workload and held-out variant; a missing one is a miss."""
    present = trials.groupby("submission")["workload"].agg(set)
    for submission, workloads in present.items():
        where = Path(trials.loc[trials["submission"] == submission, "path"].iloc[0]).parents[2]
        for workload in base_workloads:
            if workload not in workloads:
                problems.report(f"no runs of workload {workload!r} (counts as never reaching its target)", where)
        for variant, base in held_out.items():
            if variant not in workloads:
                problems.report(
                    f"no runs of held-out variant {variant!r}, so its base workload {base!r} counts as not reached",
                    where,
                )


def check_counts(trials: pd.DataFrame, protocol: Protocol, problems: Problems) -> None:
    """Studies per workload and trials per study, against the protocol (and so between submissions)."""
    if trials.empty:
        return
    studies = trials.groupby(["submission", "workload"]).agg(studies=("study", "nunique"), path=("path", "first"))
    for (_, workload), row in studies.loc[studies["studies"] != protocol.studies].iterrows():
        problems.report(
            f"{row['studies']} studies of workload {workload!r}, protocol {protocol.name} expects {protocol.studies}",
            Path(row["path"]).parents[2],
        )
    per_study = trials.groupby(["submission", "workload", "study"]).agg(
        trials=("trial", "size"), path=("path", "first"), ruleset=("ruleset", "first")
    )
    per_study["expected"] = per_study["ruleset"].map(protocol.expected_trials)
    for _, row in per_study.loc[per_study["trials"] != per_study["expected"]].iterrows():
        problems.report(
            f"{row['trials']} trials, protocol {protocol.name} expects {row['expected']} ({row['ruleset']} tuning)",
            _workload_dir(row["path"]),
        )


def check_comparable(trials: pd.DataFrame, problems: Problems) -> None:
    """Times from differently calibrated machines, or from different rulesets, do not compare."""
    if trials.empty:
        return
    for column, what in (("calibration_factor", "calibration factor"), ("ruleset", "ruleset")):
        firsts = trials.drop_duplicates(column)
        if len(firsts) > 1:
            listing = ", ".join(f"{row[column]} ({row['path']})" for _, row in firsts.iterrows())
            problems.report(f"runs with different {what}s are compared: {listing}", firsts["path"].iloc[1])


def check_one_clock(trials: pd.DataFrame) -> str | None:
    """The one clock all ``trials`` were timed on (None when there are none); a ``ScoringError``
    naming a trial on each clock when they differ, since wall and CPU seconds do not compare."""
    if trials.empty:
        return None
    clocks = trials["clock"].fillna("wall") if "clock" in trials else pd.Series("wall", index=trials.index)
    if clocks.nunique() == 1:
        return str(clocks.iloc[0])
    groups = trials.groupby(clocks, sort=True)["path"]
    listing = "; ".join(f"{clock}: {len(paths)} trial(s), e.g. {paths.iloc[0]}" for clock, paths in groups)
    raise ScoringError(
        f"trials timed on different clocks cannot be scored together ({listing}); score each clock apart"
    )
