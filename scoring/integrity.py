"""Whether a trial's files can be trusted, before its time counts towards a score.

A trial's time-to-target is read from its evaluation log, but a log can carry rows that do not
belong to the run it is scored as, and algobench's runner also writes down in ``summary.json``
how the trial ended and when it reached its target. These checks catch logs and summaries that
contradict themselves or each other. Each problem goes through ``Problems``, naming the file: a
warning by default (the trial is dropped, or, for an unscored status, counted as never reaching
its target), a ``ScoringError`` with ``strict``. AlgoPerf's logs have no ``summary.json``: only the
first check applies to them.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from algobench.layout import EVAL_FILE, SUMMARY_FILE, TrialStatus
from algobench.scoring.errors import Problems

# A trial that ended with one of these never counts as reaching its target, whatever its log
# says: the submission crashed or hung (its last rows may be half-written, or follow a restart),
# or the runner found its clock or results untrustworthy.
UNSCORED_STATUSES = frozenset({TrialStatus.FAILED, TrialStatus.TIMEOUT, TrialStatus.INVALID})

RELATIVE_TOLERANCE = 1e-6  # between summary.json's time_to_target and the log's first hit


def is_unscored(status: object) -> bool:
    """True for a summary status (failed, timeout, invalid) whose trial never counts."""
    return TrialStatus.parse(status) in UNSCORED_STATUSES


def _step(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _time(value: float) -> str:
    return "never" if not np.isfinite(value) else f"{value:g} s"


def step_order_problems(trials: pd.DataFrame, evals: pd.DataFrame, problems: Problems) -> pd.Index:
    """The trials whose ``global_step`` repeats or goes backwards, each reported; to be dropped.

    Why: one run's steps only increase. A step that repeats or goes backwards means the log
    holds rows of two runs, typically a dead run's rows followed by a rerun's from step 0 (or
    from a checkpoint); its times then belong to neither run and its first hit may be the dead
    run's. Such a trial is not scored. Logs without a ``global_step`` column (NaN) pass.
    """
    mine = evals.loc[evals["trial_id"].isin(trials.index)]
    if mine.empty:
        return trials.index[:0]
    ids = mine["trial_id"].to_numpy()
    if not (np.diff(ids) >= 0).all():
        mine = mine.sort_values(["trial_id", "eval_index"], kind="stable")
        ids = mine["trial_id"].to_numpy()
    steps = mine["global_step"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        bad = np.flatnonzero((ids[1:] == ids[:-1]) & (steps[1:] <= steps[:-1])) + 1  # NaN compares False
    bad_ids, first = np.unique(ids[bad], return_index=True)
    eval_index = mine["eval_index"].to_numpy()
    for trial_id, row in zip(bad_ids, bad[first], strict=True):
        step, previous = steps[row], steps[row - 1]
        how = "repeats" if step == previous else "goes backwards"
        problems.report(
            f"global_step {how} at evaluation {eval_index[row] + 1} (step {_step(step)} after "
            f"{_step(previous)}): rows of an earlier, dead run followed by a rerun's? trial not scored",
            os.path.join(trials.at[trial_id, "path"], EVAL_FILE),
        )
    return pd.Index(bad_ids, name=trials.index.name)


def discount_unscored(trial_table: pd.DataFrame, problems: Problems) -> pd.DataFrame:
    """``trial_table`` with every failed, timed-out or invalid trial set to never reaching its target.

    Why: a crashed, killed or untrustworthy run is not a result (DESIGN.md, contract 4), even
    when its log crossed the target, e.g. a run that crashed after its target row was written,
    or whose clock the runner rejected. Where the log does reach the target, the log and the
    summary disagree, and that is reported.
    """
    unscored = trial_table["status"].map(is_unscored).to_numpy(dtype=bool)
    if not unscored.any():
        return trial_table
    reached = np.isfinite(trial_table["time_to_target"].to_numpy(dtype=float))
    for position in np.flatnonzero(unscored & reached):
        row = trial_table.iloc[position]
        problems.report(
            f"status {row['status']}, but its evaluation log reaches the target at {_time(row['time_to_target'])}: "
            f"the log and the summary disagree; a {row['status']} trial never counts (time to target: infinity)",
            os.path.join(row["path"], SUMMARY_FILE),
        )
    out = trial_table.copy()
    out.loc[unscored, "time_to_target"] = np.inf
    out.loc[unscored, "reached_eval_index"] = -1
    return out


def summary_disagreements(trial_table: pd.DataFrame, problems: Problems) -> pd.Index:
    """The trials whose ``summary.json`` contradicts their log, each reported; to be dropped.

    Why: the runner writes ``time_to_target`` (the ``score`` of the first evaluation that
    reached the target within the budget) from the same rows it appends to the log, so the two
    agree to the last digit for an intact trial. When a recorded time differs from the log's
    first hit (relative tolerance 1e-6), or the status says ``target_reached`` and the log never
    reaches the target, one of the files was edited, overwritten by another run or truncated,
    and neither can be trusted. A summary that records no hit where the log reaches the target
    within the budget is reported too, but the trial is kept with the log's time (the runner may
    not have been told to stop there; the log is what is scored). Trials without a summary
    (AlgoPerf's logs) or without a log (the protocol's rule for a missing log applies) are not
    compared, nor are unscored statuses (see ``discount_unscored``).
    """
    status = trial_table["status"]
    compared = ((status != "") & ~status.map(is_unscored) & trial_table["has_eval_log"]).to_numpy(dtype=bool)
    recorded = trial_table["summary_time_to_target"].to_numpy(dtype=float)  # NaN: null
    # the runner counts a target only within the budget, whatever the scoring rules
    computed = np.where(trial_table["past_budget"], np.inf, trial_table["time_to_target"].to_numpy(dtype=float))
    says_reached = (status == TrialStatus.TARGET_REACHED.value).to_numpy()
    has_time = ~np.isnan(recorded)
    with np.errstate(invalid="ignore"):
        same_time = (recorded == computed) | np.isclose(recorded, computed, rtol=RELATIVE_TOLERANCE, atol=0.0)
    wrong_time = compared & has_time & ~same_time
    never_reached = compared & says_reached & ~has_time & ~np.isfinite(computed)
    unrecorded_hit = compared & ~says_reached & ~has_time & np.isfinite(computed)
    for position in np.flatnonzero(wrong_time | never_reached | unrecorded_hit):
        row = trial_table.iloc[position]
        if np.isfinite(computed[position]):
            log = f"its evaluation log first reaches the target at {_time(computed[position])}"
        else:
            log = "its evaluation log never reaches the target within the budget"
        if has_time[position]:
            summary = f"summary.json says time_to_target {float(recorded[position])}"
        else:
            summary = f"summary.json says status {row['status']} and time_to_target null"
        outcome = "scoring uses the log" if unrecorded_hit[position] else "trial not scored"
        problems.report(f"{summary}, {log}: the summary and the log disagree; {outcome}",
                        os.path.join(row["path"], SUMMARY_FILE))  # fmt: skip
    return trial_table.index[wrong_time | never_reached]
