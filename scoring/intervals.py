"""Bootstrap intervals over studies for every number ``algobench score`` prints.

Studies are the benchmark's independent repetitions (each reruns the whole tuning procedure), so
they are what is resampled: one bootstrap replicate draws, for every submission and workload
independently, as many studies as it has, with replacement, from that submission's own studies
of that workload, and recomputes everything downstream exactly as the point estimate is
computed (median over studies, the variant rule and the cut at ``max_tau``, ratios, the score,
speed-ups against the reference), with the pipeline's own functions. An interval is the
percentile interval of the replicates: the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2``
quantiles, taken as the nearest replicate values outward (numpy's ``lower`` and ``higher``
methods), since times may be infinite and interpolating towards infinity is undefined.

The draws come from ``numpy.random.default_rng(seed)``, so a given seed gives the same
intervals on every machine. scipy's ``stats.bootstrap`` is not used: its statistic would be
the whole table (every submission's score depends on every other's times), and its default
BCa method needs finite values, which unreached targets are not.

A speed-up is *distinguishable from noise* when its interval lies wholly above 1 (faster than
the reference) or wholly below 1 (slower); otherwise the studies cannot tell it from 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from algobench.scoring.errors import ScoringError

if TYPE_CHECKING:  # numpy and pandas are imported where used: the CLI reads the defaults for --help
    import numpy as np
    import pandas as pd

    from algobench.scoring.pipeline import ScoreResult

DEFAULT_RESAMPLES = 1000
DEFAULT_CONFIDENCE = 0.95
DEFAULT_SEED = 0


@dataclass(frozen=True)
class Intervals:
    """Lower and upper bounds, each table shaped like the point estimate it bounds.

    ``times`` and ``ratios``: submissions x workloads; ``scores``: per submission; ``speedups``:
    submissions x (``speedup`` and ``speedup/<workload>``), None without a reference.
    """

    confidence: float
    n_resamples: int
    seed: int
    times: tuple[pd.DataFrame, pd.DataFrame]
    ratios: tuple[pd.DataFrame, pd.DataFrame]
    scores: tuple[pd.Series, pd.Series]
    speedups: tuple[pd.DataFrame, pd.DataFrame] | None

    def verdicts(self) -> pd.DataFrame | None:
        """Per submission and speed-up column: ``faster``, ``slower`` or ``indistinguishable``."""
        import pandas as pd

        if self.speedups is None:
            return None
        low, high = self.speedups
        verdict = pd.DataFrame("indistinguishable", index=low.index, columns=low.columns)
        verdict = verdict.mask(low > 1.0, "faster").mask(high < 1.0, "slower")
        return verdict


def resampled_medians(values: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """The median of ``n_resamples`` resamples (with replacement, same size) of ``values``."""
    import numpy as np

    draws = rng.integers(0, len(values), size=(n_resamples, len(values)))
    return np.median(values[draws], axis=1)


def replicate_times(study_times: pd.DataFrame, n_resamples: int, seed: int) -> np.ndarray:
    """Bootstrap replicates of the submissions x workloads table of medians over studies.

    Returns an array (n_resamples, submissions, workloads) laid out like
    ``submission_times(study_times)``: NaN where a submission has no runs of a workload. Cells
    are drawn in that table's order (sorted submissions, then sorted workloads), so the result
    depends on the seed and the data only.
    """
    import numpy as np

    from algobench.scoring.time_to_target import SUBMISSION_KEYS

    rng = np.random.default_rng(seed)
    submissions = sorted(study_times["submission"].unique())
    workloads = sorted(study_times["workload"].unique())
    out = np.full((n_resamples, len(submissions), len(workloads)), np.nan)
    row = {name: i for i, name in enumerate(submissions)}
    column = {name: j for j, name in enumerate(workloads)}
    for (submission, workload), cell in study_times.groupby(SUBMISSION_KEYS, sort=True):
        values = cell["time_to_target"].to_numpy(dtype=float)
        out[:, row[submission], column[workload]] = resampled_medians(values, n_resamples, rng)
    return out


def bootstrap(
    result: ScoreResult,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = DEFAULT_SEED,
) -> Intervals:
    """Intervals over studies for ``result``'s times, ratios, scores and (with a reference) speed-ups."""
    if n_resamples < 1:
        raise ScoringError(f"bootstrap resamples must be at least 1, got {n_resamples}")
    if not 0.0 < confidence < 1.0:
        raise ScoringError(f"bootstrap confidence must be between 0 and 1, got {confidence}")
    import numpy as np
    import pandas as pd

    from algobench.scoring.pipeline import _budgets
    from algobench.scoring.profiles import (
        benchmark_scores,
        effective_times,
        geometric_means,
        performance_ratios,
        speedups,
    )

    protocol, rules = result.protocol, result.protocol.rules
    bases = list(result.ratios.columns)
    replicates = replicate_times(result.study_times, n_resamples, seed)  # (B, submissions, workloads)
    submissions = sorted(result.study_times["submission"].unique())
    workloads = sorted(result.study_times["workload"].unique())
    index = result.times.index

    # All replicates at once: replicate b's workload w is column "w@b" of one wide table, so each
    # pipeline function (column-wise: best per workload, variant rule by name) runs once.
    def wide(names: list[str]) -> list[str]:
        return [f"{name}@{b}" for b in range(n_resamples) for name in names]

    stacked = replicates.transpose(1, 0, 2).reshape(len(submissions), -1)
    table = pd.DataFrame(stacked, index=submissions, columns=wide(workloads)).reindex(index=index)
    held_out = {f"{v}@{b}": f"{base}@{b}" for b in range(n_resamples) for v, base in result.held_out.items()}
    ratio = performance_ratios(effective_times(table, wide(bases), held_out, protocol.max_tau), protocol.max_tau)

    def per_replicate(frame: pd.DataFrame, names: list[str]) -> np.ndarray:
        """(B, submissions, names) from a wide table's columns."""
        values = frame.reindex(columns=wide(names)).to_numpy(dtype=float)
        return values.reshape(len(index), n_resamples, len(names)).transpose(1, 0, 2)

    ratios = per_replicate(ratio, bases)
    # Each row of the score's input is one (replicate, submission): its score needs that row only.
    rows = pd.DataFrame(ratios.reshape(-1, len(bases)), columns=bases)
    scores = benchmark_scores(rows, protocol.max_tau, rules.integration, rules.num_tau_points)
    scores = scores.to_numpy().reshape(n_resamples, len(index))
    speed_frames = None
    if result.speedups is not None:
        budgets = {f"{w}@{b}": cap for w, cap in _budgets(result.trials).items() for b in range(n_resamples)}
        factors = speedups(table.reindex(columns=wide(bases)), result.reference, budgets)
        factors = factors.drop(columns="speedup")
        factors.columns = [name.removeprefix("speedup/") for name in factors.columns]
        per_workload = per_replicate(factors, bases)
        rows = pd.DataFrame(per_workload.reshape(-1, len(bases)), columns=bases)
        overall = geometric_means(rows).to_numpy().reshape(n_resamples, len(index), 1)
        speed_frames = frames(np.concatenate([overall, per_workload], axis=2), result.speedups, confidence)
    low, high = bounds(scores, confidence)
    return Intervals(
        confidence=confidence,
        n_resamples=n_resamples,
        seed=seed,
        times=frames(per_replicate(table, list(result.times.columns)), result.times, confidence),
        ratios=frames(ratios, result.ratios, confidence),
        scores=(pd.Series(low, index=index, name="score"), pd.Series(high, index=index, name="score")),
        speedups=speed_frames,
    )


def bounds(values: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """The percentile interval over axis 0, outward to the nearest replicates (no interpolation)."""
    import numpy as np

    with np.errstate(invalid="ignore"):
        low = np.quantile(values, (1.0 - confidence) / 2.0, axis=0, method="lower")
        high = np.quantile(values, (1.0 + confidence) / 2.0, axis=0, method="higher")
    return low, high


def frames(values: np.ndarray, like: pd.DataFrame, confidence: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``bounds`` as two tables shaped like ``like``."""
    import pandas as pd

    low, high = bounds(values, confidence)
    return (
        pd.DataFrame(low, index=like.index, columns=like.columns),
        pd.DataFrame(high, index=like.index, columns=like.columns),
    )
