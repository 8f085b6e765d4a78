"""Scoring: time-to-target, performance profiles, the benchmark score, plots and a report.

Reads experiment directories in algobench's layout and in AlgoPerf's, and computes AlgoPerf's
benchmark score under a named, versioned protocol (``algoperf-v0.5``, ``algoperf-v0.6``,
``algobench-v1``). Every step returns pandas DataFrames::

    from algobench.scoring import score
    result = score("experiments/", protocol="algoperf-v0.6", reference="baseline")
    result.scores          # benchmark score (and speedup) per submission
    result.ratios          # per-workload time ratios to the best submission
    result.times           # per-workload runtimes (median over studies)

Nothing is computed or loaded at import time; plotting imports matplotlib when called.
"""

from algobench.scoring.errors import Problems, ScoringError, ScoringWarning
from algobench.scoring.logs import TrialSet, load_trials, read_eval_log
from algobench.scoring.outputs import write_outputs
from algobench.scoring.pipeline import ScoreResult, score, score_trials, scored_workloads
from algobench.scoring.profiles import (
    benchmark_scores,
    effective_times,
    performance_profiles,
    performance_ratios,
    profile_steps,
    speedups,
    tau_grid,
)
from algobench.scoring.protocols import (
    DEFAULT_PROTOCOL,
    PROTOCOL_NAMES,
    RULES,
    Protocol,
    ScoringRules,
    WorkloadSpec,
    get_protocol,
    get_rules,
)
from algobench.scoring.time_to_target import study_times, submission_times, trial_times

__all__ = [
    "DEFAULT_PROTOCOL",
    "PROTOCOL_NAMES",
    "RULES",
    "Problems",
    "Protocol",
    "ScoreResult",
    "ScoringError",
    "ScoringRules",
    "ScoringWarning",
    "TrialSet",
    "WorkloadSpec",
    "benchmark_scores",
    "effective_times",
    "get_protocol",
    "get_rules",
    "load_trials",
    "performance_profiles",
    "performance_ratios",
    "profile_steps",
    "read_eval_log",
    "score",
    "score_trials",
    "scored_workloads",
    "speedups",
    "study_times",
    "submission_times",
    "tau_grid",
    "trial_times",
    "write_outputs",
]
