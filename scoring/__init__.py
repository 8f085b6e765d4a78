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

from __future__ import annotations

import importlib
from typing import Any

# Public names and the module each lives in: resolved on first use, so that importing the
# package (the CLI does, for --help) loads neither pandas nor numpy.
_EXPORTS = {
    "Problems": "algobench.scoring.errors",
    "ScoringError": "algobench.scoring.errors",
    "ScoringWarning": "algobench.scoring.errors",
    "TrialSet": "algobench.scoring.logs",
    "load_trials": "algobench.scoring.logs",
    "read_eval_log": "algobench.scoring.logs",
    "write_outputs": "algobench.scoring.outputs",
    "ScoreResult": "algobench.scoring.pipeline",
    "score": "algobench.scoring.pipeline",
    "score_trials": "algobench.scoring.pipeline",
    "scored_workloads": "algobench.scoring.pipeline",
    "benchmark_scores": "algobench.scoring.profiles",
    "effective_times": "algobench.scoring.profiles",
    "performance_profiles": "algobench.scoring.profiles",
    "performance_ratios": "algobench.scoring.profiles",
    "profile_steps": "algobench.scoring.profiles",
    "speedups": "algobench.scoring.profiles",
    "tau_grid": "algobench.scoring.profiles",
    "DEFAULT_PROTOCOL": "algobench.scoring.protocols",
    "PROTOCOL_NAMES": "algobench.scoring.protocols",
    "RULES": "algobench.scoring.protocols",
    "Protocol": "algobench.scoring.protocols",
    "ScoringRules": "algobench.scoring.protocols",
    "WorkloadSpec": "algobench.scoring.protocols",
    "get_protocol": "algobench.scoring.protocols",
    "get_rules": "algobench.scoring.protocols",
    "study_times": "algobench.scoring.time_to_target",
    "submission_times": "algobench.scoring.time_to_target",
    "trial_times": "algobench.scoring.time_to_target",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
