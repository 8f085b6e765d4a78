"""The results layout's names (DESIGN.md contract 4), in one torch-free module.

Every part that reads or writes a trial directory (runner, executors, scoring, SLURM status,
tuners) takes its file names, statuses and the metric direction from here, so that each of these
facts is written down once.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable
from pathlib import Path

FRAMEWORK = "pytorch"

EVAL_FILE = "eval_measurements.csv"
SUMMARY_FILE = "summary.json"
HPARAMS_FILE = "hparams.json"
META_FILE = "meta_data.json"
CHECKPOINT_FILE = "checkpoint.pt"
ERROR_FILE = "error.txt"
LOCK_FILE = ".algobench.lock"
TUNING_DIR = "tuning"  # <experiment>/tuning/<workload>/study_<k>/: a tuner's state and events
EVENTS_FILE = "events.jsonl"


def trial_dir(experiment_dir: str | Path, submission: str, study: int, workload: str, trial: int) -> Path:
    """``<experiment>/<submission>/study_<k>/<workload>_pytorch/trial_<j>`` (AlgoPerf's layout)."""
    return Path(experiment_dir) / submission / f"study_{study}" / f"{workload}_{FRAMEWORK}" / f"trial_{trial}"


class TrialStatus(enum.StrEnum):
    """How a trial ended. Every status here is final: a rerun skips the trial (``--retry-failed``
    reruns the retryable ones). A crash of algobench's own machinery has no status: it writes
    ``error.txt`` but no summary, so a rerun retries it."""

    OK = "ok"  # ran to its end (max steps or TrainingCompleteError) without reaching the target
    TARGET_REACHED = "target_reached"
    OUT_OF_TIME = "out_of_time"
    DIVERGED = "diverged"
    FAILED = "failed"  # the submission raised, exited or crashed
    TIMEOUT = "timeout"  # killed by the trial timeout (a hang, or far past its budget)
    INVALID = "invalid"  # the trial's clock or results cannot be trusted; never scored

    @property
    def retryable(self) -> bool:
        return self in (TrialStatus.FAILED, TrialStatus.TIMEOUT)

    @classmethod
    def parse(cls, value: object) -> TrialStatus | None:
        """The status named by ``value``, or None for anything else (an unfinished trial)."""
        try:
            return cls(value)
        except ValueError:
            return None


class Direction(enum.StrEnum):
    """Whether a metric improves upwards (accuracy) or downwards (loss, WER): the one place the
    max/min rule is written."""

    MAX = "max"
    MIN = "min"

    def reached(self, value: float, target: float) -> bool:
        """True when ``value`` is at or past ``target``; NaN never reaches."""
        return value >= target if self is Direction.MAX else value <= target

    def better(self, a: float, b: float) -> bool:
        """True when ``a`` is strictly better than ``b``."""
        return a > b if self is Direction.MAX else a < b

    def best(self, values: Iterable[float]) -> float | None:
        """The best finite value, or None when there is none."""
        finite = [v for v in values if v is not None and math.isfinite(v)]
        if not finite:
            return None
        return max(finite) if self is Direction.MAX else min(finite)

    def worst(self, values: Iterable[float]) -> float | None:
        finite = [v for v in values if v is not None and math.isfinite(v)]
        if not finite:
            return None
        return min(finite) if self is Direction.MAX else max(finite)

    def sign(self) -> float:
        """+1 for max, -1 for min: ``sign * value`` is larger when better (for tuners)."""
        return 1.0 if self is Direction.MAX else -1.0
