"""Tuners scored three ways (DESIGN.md contract 6), from the experiments ``algobench tune`` writes.

Per tuner (the submission folder a tuner run writes, e.g. ``adamw_pbt``) and workload, over
its studies:

- **algoperf** — AlgoPerf-compatible: a population of N members for budget B each is one study
  of N trials; the study's time is its fastest lineage's time-to-target on the lineage clock
  (the submission time a clone inherits from its donor). This is the existing scoring
  (``scoring.pipeline``) run on the member directories: min over a study's trials, median over
  studies.
- **equal_compute** — the total submission time every member spent, forked-over and stopped
  members included, until the first target hit. Members are taken to run side by side in step
  (PBT's rounds make this literal): the first hit is the smallest step at which any member's
  evaluation reached the target within its budget, and each member is charged its *own* compute
  up to that step, read from the segments it ran (``segments.jsonl``: a clone's inherited clock
  is not its work, so nothing is counted twice). Median over studies.
- **replay** — the tuner's frozen output (the member ``tuning.lineage.best_member`` chooses per
  tuner: GP-Opt's best posterior mean, the Optuna samplers' lowest objective, else the first
  lineage to reach the target) rerun by ``algobench tune replay`` on fresh seeds: median
  over seeds of the time-to-target, then median over studies. NaN until replays exist.

Each view gets performance ratios, profiles and a benchmark score (``scoring.profiles``, max_tau
4) when several tuners are present, and Kendall's tau says how much the views' rankings of the
tuners agree.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from algobench.layout import Direction
from algobench.results import read_json, read_summary
from algobench.scoring.errors import ScoringError
from algobench.scoring.profiles import benchmark_scores, performance_profiles, performance_ratios, tau_grid
from algobench.scoring.protocols import DEFAULT_PROTOCOL, MAX_TAU, get_protocol

VIEWS = ("algoperf", "equal_compute", "replay")


@dataclass(frozen=True)
class TunerScores:
    """Every table of a tuner scoring run.

    - ``runs``: one row per tuner run (tuner, workload, study): the three views' times, members,
      forks, own compute in all, and the tuner's overhead as a share of the run's slot time
    - ``times``: per view, tuners x workloads (median over studies; inf: never reached)
    - ``ratios``, ``profiles``, ``scores``: per view, as ``algobench score`` computes them
    - ``kendall``: views x views, Kendall's tau between the rankings of tuners by score
    """

    runs: pd.DataFrame
    times: dict[str, pd.DataFrame]
    ratios: dict[str, pd.DataFrame]
    profiles: dict[str, pd.DataFrame]
    scores: pd.DataFrame
    kendall: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def score_tuners(
    paths: str | PathLike[str] | Iterable[str | PathLike[str]],
    max_tau: float = MAX_TAU,
    workloads: Iterable[str] | None = None,
) -> TunerScores:
    """Score every tuner run under the experiment directories ``paths``; with ``workloads``, only
    the runs of those (a comparison over the workloads every tuner ran, when one directory holds more)."""
    from algobench.tuning.lineage import tuning_dirs

    if isinstance(paths, str | PathLike):
        paths = [paths]
    chosen = None if workloads is None else set(workloads)
    notes: list[str] = []
    runs = []
    for path in paths:
        found = tuning_dirs(Path(path))
        if not found:
            raise ScoringError(f"{path}: no tuner runs (expected tuning/<workload>/study_<k>/settings.json)")
        for tuning_dir in found:
            if chosen is None or Path(tuning_dir).parent.name in chosen:
                runs.append(_run_row(tuning_dir, notes))
    if not runs:
        raise ScoringError(f"no tuner runs of {', '.join(sorted(chosen or ()))} under {', '.join(map(str, paths))}")
    table = pd.DataFrame(runs)
    algoperf = _algoperf_times(table, notes)
    table["algoperf"] = [algoperf.get((r.tuner, r.workload, r.study), math.inf) for r in table.itertuples()]
    times = {
        view: table.pivot_table(index="tuner", columns="workload", values=view, aggfunc=_median).astype(float)
        for view in VIEWS
    }
    ratios, profiles, scores = {}, {}, {}
    for view, view_times in times.items():
        filled = view_times.fillna(np.inf) if view != "replay" else view_times
        if view == "replay" and view_times.isna().all().all():
            ratios[view] = view_times * np.nan
            profiles[view] = pd.DataFrame(index=view_times.index)
            scores[view] = pd.Series(np.nan, index=view_times.index)
            continue
        ratios[view] = performance_ratios(filled.fillna(np.inf), max_tau)
        profiles[view] = performance_profiles(ratios[view], tau_grid(max_tau, 100))
        scores[view] = benchmark_scores(ratios[view], max_tau)
    score_table = pd.DataFrame(scores).reindex(columns=list(VIEWS))
    score_table.index.name = "tuner"
    return TunerScores(table, times, ratios, profiles, score_table, _kendall(score_table), notes)


def _median(values: pd.Series) -> float:
    finite_or_inf = values.dropna()
    return float(np.median(finite_or_inf)) if len(finite_or_inf) else math.nan


def _run_row(tuning_dir: Path, notes: list[str]) -> dict[str, Any]:
    from algobench.tuning.events import OVERHEAD_FILE, SEGMENTS_FILE, events_path, read_lines, read_settings

    settings = read_settings(tuning_dir)
    experiment = tuning_dir.parents[2]
    members = range(1, int(settings["members"]) + 1)
    member_dirs = [experiment / settings["name"] / f"study_{settings['study']}" / f"{settings['workload']}_pytorch"
                   / f"trial_{m}" for m in members]  # fmt: skip
    summaries = [read_summary(d) for d in member_dirs]
    known = next((s for s in summaries if s and "validation_target_value" in s), None)
    segments = read_lines(tuning_dir / SEGMENTS_FILE)
    compute = sum(s["own_compute"] for s in segments)
    overhead = read_json(tuning_dir / OVERHEAD_FILE) or {}
    where = f"{settings['name']} {settings['workload']} study {settings['study']}"
    if known is None:
        notes.append(f"{where}: no member has finished; not scored")
        equal = math.nan
    else:
        equal = equal_compute_time(
            segments, float(known["validation_target_value"]), Direction(known["metric_direction"]),
            float(known["max_allowed_runtime_sec"]),
        )  # fmt: skip
    replay, replayed = _replay_time(tuning_dir, settings, member_dirs, notes)
    exploits = sum(r.get("event") == "exploit" for r in read_lines(events_path(tuning_dir)))
    overhead_sec = tuner_overhead_sec(overhead)
    return {
        "tuner": settings["name"],
        "kind": settings["tuner"],
        "workload": settings["workload"],
        "study": settings["study"],
        "members": len(member_dirs),
        "finished": sum(s is not None for s in summaries),
        "exploits": exploits,
        "equal_compute": equal,
        "replay": replay,
        "replay_runs": replayed,
        "compute_sec": compute,
        "overhead_sec": overhead_sec,
        "overhead_fraction": overhead_fraction(overhead),
        "path": str(tuning_dir),
    }


def tuner_overhead_sec(overhead: dict[str, float]) -> float:
    """What the tuner cost its run beyond the trials: decisions, fork copies, slots idle at barriers."""
    return overhead.get("decision_sec", 0.0) + overhead.get("fork_sec", 0.0) + overhead.get("idle_sec", 0.0)


def overhead_fraction(overhead: dict[str, float]) -> float:
    """The tuner's overhead as a share of the run's slot time (slots x wall time): both on the
    driver's wall clock, so that a loaded machine, which stretches the wall seconds of a fork
    copy but not a trial's CPU-clock compute, does not inflate the share."""
    slots = overhead.get("slot_sec", 0.0)
    return tuner_overhead_sec(overhead) / slots if slots > 0 else math.nan


def equal_compute_time(
    segments: Sequence[dict[str, Any]], target: float, direction: Direction, budget_sec: float = math.inf
) -> float:
    """The members' own submission time up to the first step at which any of them reached the
    target (within its lineage's budget); infinity when none did."""
    hits = [
        step
        for segment in segments
        for step, clock, value in segment["evals"]
        if value is not None and math.isfinite(value) and direction.reached(value, target) and clock <= budget_sec
    ]
    if not hits:
        return math.inf
    first = min(hits)
    total = 0.0
    for segment in segments:
        if segment["start_step"] >= first:
            continue
        total += _clock_at(segment, min(segment["end_step"], first)) - segment["start_clock"]
    return total


def _clock_at(segment: dict[str, Any], step: int) -> float:
    """The segment's lineage clock at ``step``, interpolated between its evaluations by step."""
    points = [(segment["start_step"], segment["start_clock"])]
    points += [(s, c) for s, c, _ in segment["evals"] if c is not None]
    points.append((segment["end_step"], segment["end_clock"]))
    points.sort()
    steps = [p[0] for p in points]
    clocks = [p[1] for p in points]
    return float(np.interp(step, steps, clocks))


def _algoperf_times(table: pd.DataFrame, notes: list[str]) -> dict[tuple[str, str, int], float]:
    """Per (tuner, workload, study): the existing scoring's study time on the member directories."""
    from algobench.scoring.errors import Problems, ScoringWarning
    from algobench.scoring.logs import load_trials
    from algobench.scoring.pipeline import score_trials

    if table.empty:
        return {}
    protocol = get_protocol(DEFAULT_PROTOCOL)
    paths = sorted({str(Path(p).parents[2] / name) for p, name in zip(table["path"], table["tuner"], strict=True)})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ScoringWarning)
        problems = Problems()
        trial_set = load_trials(paths, protocol, problems, workloads=set(table["workload"]))
        result = score_trials(trial_set, protocol, problems=problems)
    for warning in caught:
        message = str(warning.message)
        if "protocol algobench-v1 expects" not in message:  # a population is not AlgoPerf's 3 x 5, by design
            notes.append(message)
    study = result.study_times
    return {(row.submission, row.workload, int(row.study)): float(row.time_to_target) for row in study.itertuples()}


def _replay_time(
    tuning_dir: Path, settings: dict[str, Any], member_dirs: list[Path], notes: list[str]
) -> tuple[float, int]:
    """The median over fresh seeds of the best member's replays on the tuned workload."""
    from algobench.tuning.lineage import REPLAY_DIR, best_member

    try:
        best = best_member(member_dirs, settings, tuning_dir)
    except Exception:  # noqa: BLE001 - no finished member: nothing to replay
        return math.nan, 0
    folder = tuning_dir / REPLAY_DIR / f"{settings['name']}_m{best}"
    runs = sorted(folder.glob(f"study_*/{settings['workload']}_pytorch/trial_1"))
    times = []
    for run in runs:
        summary = read_summary(run)
        if summary is None:
            continue
        ttt = summary.get("time_to_target")
        times.append(
            math.inf if ttt is None or summary.get("status") in ("failed", "timeout", "invalid") else float(ttt)
        )
    if not times:
        notes.append(
            f"{settings['name']} {settings['workload']} study {settings['study']}: no replays of its best member "
            f"(m{best}); run `algobench tune replay {tuning_dir}`"
        )
        return math.nan, 0
    return float(np.median(times)), len(times)


def _kendall(scores: pd.DataFrame) -> pd.DataFrame:
    from scipy.stats import kendalltau

    table = pd.DataFrame(np.nan, index=list(VIEWS), columns=list(VIEWS))
    for a in VIEWS:
        for b in VIEWS:
            x, y = scores[a], scores[b]
            both = x.notna() & y.notna()
            if both.sum() >= 2:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    table.loc[a, b] = kendalltau(x[both], y[both]).statistic
    return table


def format_tuner_scores(result: TunerScores) -> str:
    """The runs, then each view's times per tuner and workload, the scores and Kendall's tau."""
    lines = ["tuner runs (time-to-target in seconds of submission time; inf: not reached)"]
    shown = result.runs[["tuner", "workload", "study", "members", "exploits", "algoperf", "equal_compute", "replay",
                         "replay_runs", "compute_sec", "overhead_fraction"]]  # fmt: skip
    lines.append(shown.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    for view in VIEWS:
        lines.append("")
        lines.append(f"{view}: median over studies")
        lines.append(result.times[view].to_string(float_format=lambda v: f"{v:.3g}"))
    if len(result.scores) >= 2:
        lines.append("")
        lines.append("benchmark score per view (area under the performance profile, max_tau 4)")
        lines.append(result.scores.to_string(float_format=lambda v: f"{v:.4f}"))
        lines.append("")
        lines.append("Kendall's tau between the views' rankings of the tuners")
        lines.append(result.kendall.to_string(float_format=lambda v: f"{v:.2f}"))
    for note in result.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines)


def write_tuner_scores(result: TunerScores, out: str | Path) -> dict[str, Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"runs": out / "runs.csv", "times": out / "times.csv", "scores": out / "scores.csv",
             "kendall": out / "kendall.csv"}  # fmt: skip
    result.runs.to_csv(paths["runs"], index=False)
    long = pd.concat(
        [
            t.reset_index().melt(id_vars="tuner", var_name="workload", value_name="time_to_target").assign(view=view)
            for view, t in result.times.items()
        ]
    )
    long[["view", "tuner", "workload", "time_to_target"]].to_csv(paths["times"], index=False)
    result.scores.to_csv(paths["scores"])
    result.kendall.to_csv(paths["kendall"])
    return paths
