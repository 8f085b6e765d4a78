"""Plots: the performance profiles, and each workload's validation metric against submission time.

matplotlib is imported here, when a plot is asked for, and drawn on the Agg canvas of a
standalone ``Figure`` (no pyplot, so no global figure state and no display needed). Files are
written byte-for-byte reproducibly (no creation date in the PDF).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from algobench.layout import Direction
from algobench.scoring.profiles import profile_steps

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from algobench.scoring.pipeline import ScoreResult

STYLES = ("-", "--", "-.", ":")
DPI = 110


def _figure(width: float = 9.0, height: float = 5.0) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _colour(index: int) -> tuple:
    """Ten distinct colours; the line style changes every ten (see ``STYLES``)."""
    from matplotlib import colormaps

    return colormaps["tab10"](index % 10)


def _style(index: int) -> str:
    return STYLES[(index // 10) % len(STYLES)]


def _palette(submissions: Sequence[str]) -> dict[str, int]:
    """Each submission keeps its colour and style across all plots: by name, alphabetically."""
    return {name: i for i, name in enumerate(sorted(submissions))}


def save(figure: Figure, stem: Path, formats: Sequence[str] = ("png",)) -> dict[str, bytes]:
    """Write ``stem.<format>`` for each format; return the bytes written, by format."""
    written = {}
    for fmt in formats:
        buffer = io.BytesIO()
        metadata = {"CreationDate": None} if fmt == "pdf" else {"Software": None}
        figure.savefig(buffer, format=fmt, dpi=DPI, metadata=metadata)
        data = buffer.getvalue()
        stem.with_suffix(f".{fmt}").write_bytes(data)
        written[fmt] = data
    return written


def performance_profile_figure(ratios: pd.DataFrame, scores: pd.Series, max_tau: float) -> Figure:
    """rho(tau) of each submission as the exact step function, best score first in the legend."""
    figure = _figure()
    axes = figure.subplots()
    order = scores.sort_values(ascending=False, kind="stable").index
    palette = _palette(ratios.index)
    for submission in order:
        i = palette[submission]
        x, y = profile_steps(ratios.loc[submission], max_tau)
        axes.step(
            x, y, where="post", color=_colour(i), linestyle=_style(i), linewidth=2,
            label=f"{submission} ({scores[submission]:.4f})",
        )  # fmt: skip
    axes.set_xlim(1.0, max_tau)
    axes.set_ylim(-0.02, 1.02)
    axes.set_xlabel("τ: ratio of runtime to the best submission's")
    axes.set_ylabel("ρ(τ): share of workloads")
    axes.set_title(f"Performance profiles ({ratios.shape[1]} workloads; score in brackets)")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    return figure


def _value_limits(values: np.ndarray, target: float) -> tuple[float, float]:
    """Show the bulk of the curves and the target, not the first evaluations' outliers."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return target - 1.0, target + 1.0
    low, high = np.quantile(finite, [0.02, 0.98])
    low, high = min(low, target), max(high, target)
    pad = 0.05 * (high - low) or 0.05 * abs(target) or 1.0
    return low - pad, high + pad


def workload_figure(result: ScoreResult, workload: str) -> Figure:
    """Validation metric against submission time, one line per trial, the target drawn."""
    from matplotlib.collections import LineCollection

    trials = result.trials.loc[result.trials["workload"] == workload]
    evals = result.evals.loc[result.evals["trial_id"].isin(trials.index)]
    figure = _figure()
    axes = figure.subplots()
    submissions = sorted(trials["submission"].unique())
    palette = _palette(result.scores.index)
    by_trial = {tid: group for tid, group in evals.groupby("trial_id", sort=True)}
    for submission in submissions:
        i = palette[submission]
        mine = trials.loc[trials["submission"] == submission]
        segments = [
            np.column_stack([by_trial[tid]["time"].to_numpy(), by_trial[tid]["value"].to_numpy()])
            for tid in mine.index
            if tid in by_trial
        ]
        colour = _colour(i)
        lines = LineCollection(segments, colors=[colour], linestyles=_style(i), linewidths=1.0, alpha=0.6)
        lines.set_label(submission)
        axes.add_collection(lines)
        hit = mine.loc[np.isfinite(mine["time_to_target"])]
        axes.plot(hit["time_to_target"], hit["target"], "o", color=colour, markersize=4)
    target = float(trials["target"].iloc[0])
    axes.axhline(target, color="black", linestyle="--", linewidth=1.2, label=f"target {target:g}")
    budget = float(trials["budget_sec"].max())
    if np.isfinite(budget):
        axes.axvline(budget, color="grey", linestyle=":", linewidth=1.2, label=f"budget {budget:g} s")
    axes.autoscale_view()
    axes.set_ylim(*_value_limits(evals["value"].to_numpy(), target))
    axes.set_xlabel("submission time (s)")
    axes.set_ylabel(str(trials["metric"].iloc[0]))
    direction = "higher" if Direction(trials["direction"].iloc[0]) is Direction.MAX else "lower"
    axes.set_title(f"{workload}: {direction} is better; dots: first evaluation at the target")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    return figure
