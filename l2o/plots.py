"""Figures of meta-training and of a learned schedule (matplotlib's Agg backend, files only)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_meta_loss(history: dict[str, list[float]], path: Path, title: str = "") -> None:
    """Each outer step's meta-loss (faint, and a moving average) and the evaluation tasks' mean
    episode meta-loss (markers): mean training loss over a run, relative to the initial loss."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    steps, losses = np.asarray(history["outer_step"]), np.asarray(history["meta_loss"], dtype=float)
    if len(steps):
        ax.plot(steps, losses, color="0.8", lw=0.8, label="outer step (truncated unrolls)")
        window = max(len(losses) // 20, 1)
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
        ax.plot(steps[window - 1 :], smooth, color="C0", label=f"moving average ({window})")
    if history["eval_step"]:
        ax.plot(history["eval_step"], history["eval_loss"], "o-", color="C3", label="fixed evaluation tasks")
    ax.set_xlabel("outer step")
    ax.set_ylabel("meta-loss (mean loss / initial loss)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_schedules(
    panels: Sequence[tuple[str, Sequence[tuple[float, float]], str]], path: Path, title: str = ""
) -> None:
    """Learning rate over training progress, one curve per (label, [(progress, lr)], style)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for label, points, style in panels:
        xs, ys = zip(*points, strict=True) if points else ((), ())
        ax.step(xs, ys, style, where="post", label=label)
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("learning rate")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
