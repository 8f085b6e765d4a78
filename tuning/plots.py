"""The picture of a PBT run, drawn from the run's own files (``segments.jsonl``, ``events.jsonl``,
``settings.json``): one panel per explored hyperparameter, each member's value over steps (a step
function, segment by segment), and a last panel with each member's validation metric. A fork is a
dashed line from the donor at the barrier to where the member goes on, so a reader sees which
lineages took over the population and what their schedules were."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from algobench.tuning.events import SEGMENTS_FILE, read_lines, read_settings


def plot_pbt_run(tuning_dir: str | Path, out: str | Path, *, dpi: int = 130) -> Path:
    """Write the PNG of the run in ``tuning_dir`` to ``out``; returns ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tuning_dir, out = Path(tuning_dir), Path(out)
    settings = read_settings(tuning_dir)
    segments = read_lines(tuning_dir / SEGMENTS_FILE)
    if not segments:
        from algobench.errors import AlgobenchError

        raise AlgobenchError(f"{tuning_dir}: no segments recorded yet ({SEGMENTS_FILE})")
    explored = list(settings["settings"].get("explored") or _varying(segments))
    log_scaled = _log_scaled(settings)
    target, metric = _target(tuning_dir, settings)
    members = sorted({s["member"] for s in segments})
    colors = {m: plt.get_cmap("tab10")(i % 10) for i, m in enumerate(members)}
    value_at = {(s["member"], step): value for s in segments for step, _, value in s["evals"]}

    panels = len(explored) + 1
    figure, axes = plt.subplots(panels, 1, figsize=(9, 2.1 * panels + 0.8), sharex=True, squeeze=False)
    axes = axes[:, 0]
    for axis, name in zip(axes, explored, strict=False):
        for segment in segments:
            value = segment["hyperparameters"].get(name)
            if not isinstance(value, int | float):
                continue
            color = colors[segment["member"]]
            axis.hlines(value, segment["start_step"], segment["end_step"], color=color, linewidth=2)
            donor = segment.get("fork_from")
            if donor is not None:
                before = _value_before(segments, donor, segment["start_step"], name)
                if before is not None:
                    axis.plot([segment["start_step"]] * 2, [before, value], color=color, linestyle="--", linewidth=1)
                axis.plot(segment["start_step"], value, marker="o", color=color, markersize=4)
        if log_scaled.get(name):
            axis.set_yscale("log")
        axis.set_ylabel(name.replace("_", " "))
        axis.grid(alpha=0.3)

    axis = axes[-1]
    for segment in segments:
        member, start = segment["member"], segment["start_step"]
        points = [(step, value) for step, _, value in segment["evals"] if value is not None and math.isfinite(value)]
        origin = segment.get("fork_from") or member
        first = value_at.get((origin, start)) if start > 0 else None
        if first is not None and points:
            style = "--" if segment.get("fork_from") is not None else "-"
            axis.plot([start, points[0][0]], [first, points[0][1]], color=colors[member], linestyle=style, linewidth=1)
        if points:
            axis.plot(*zip(*points, strict=True), color=colors[member], linewidth=1.5)
    if target is not None:
        axis.axhline(target, color="black", linestyle=":", linewidth=1, label=f"target {target:g}")
        axis.legend(loc="lower right", fontsize=8)
    axis.set_ylabel(metric)
    axis.set_xlabel("global step")
    axis.grid(alpha=0.3)
    handles = [plt.Line2D([], [], color=colors[m], linewidth=2, label=f"member {m}") for m in members]
    run = settings["settings"]
    figure.suptitle(
        f"PBT on {settings['workload']} ({settings['name']}, study {settings['study']}): population "
        f"{settings['members']}, interval {run.get('interval')} steps, {run.get('selection')} selection; "
        f"dashed: forks (donor -> member)",
        fontsize=9,
    )
    figure.tight_layout(rect=(0, 0, 1, 0.93))
    figure.legend(
        handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.955), ncol=min(len(members), 8), fontsize=8,
        frameon=False,
    )  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=dpi)
    plt.close(figure)
    return out


def _value_before(segments: list[dict[str, Any]], member: int, step: int, name: str) -> Any:
    """The hyperparameter ``name`` of ``member``'s segment that ended at ``step`` (a donor's value)."""
    for segment in segments:
        if segment["member"] == member and segment["end_step"] == step:
            return segment["hyperparameters"].get(name)
    return None


def _varying(segments: list[dict[str, Any]]) -> list[str]:
    names: dict[str, set] = {}
    for segment in segments:
        for key, value in segment["hyperparameters"].items():
            names.setdefault(key, set()).add(repr(value))
    return sorted(k for k, v in names.items() if len(v) > 1)


def _log_scaled(settings: dict[str, Any]) -> dict[str, bool]:
    from algobench.tuning.search_space import Range, load_search_space

    try:
        space = load_search_space(settings["search_space"])
    except Exception:  # noqa: BLE001 - the picture does without the scales
        return {}
    return {d.name: isinstance(d, Range) and d.scaling == "log" for d in space.dimensions}


def _target(tuning_dir: Path, settings: dict[str, Any]) -> tuple[float | None, str]:
    from algobench import layout
    from algobench.results import read_json

    experiment = tuning_dir.parents[2]
    for member in range(1, int(settings["members"]) + 1):
        trial = layout.trial_dir(experiment, settings["name"], settings["study"], settings["workload"], member)
        summary = read_json(trial / layout.SUMMARY_FILE)
        if summary and "validation_target_value" in summary:
            return float(summary["validation_target_value"]), f"validation {summary['target_metric_name']}"
    return None, "validation metric"
