"""Read experiment directories, algobench's and AlgoPerf's, into two flat tables.

Both projects write ``<submission>/study_<k>/<workload>_<framework>/trial_<j>/eval_measurements.csv``;
algobench adds a ``summary.json`` per trial (targets, budget, status, calibration), AlgoPerf a
``flags_0.json`` (ruleset). A submission directory is any directory holding ``study_<k>``
folders, found at any depth under the paths given (AlgoPerf's leaderboard nests them by team).
As in AlgoPerf, ``<name>-YYYY-MM-DD-HH-MM-SS`` directories are runs of submission ``<name>``.

The result is a ``TrialSet``: one row per trial (who, what, where, target, budget, provenance)
and one row per evaluation (trial, time, value of the target metric), ready for vectorised
scoring. Reading is tolerant and loud: every oddity is reported through ``Problems`` with the
file's path, and nothing is ever turned into a number it was not (NaN stays NaN).
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from os import PathLike
from typing import Any

import numpy as np
import pandas as pd

from algobench.clock import DEFAULT_CLOCK
from algobench.layout import EVAL_FILE, HPARAMS_FILE, META_FILE, SUMMARY_FILE, TUNING_DIR, Direction
from algobench.scoring.errors import Problems, ScoringError
from algobench.scoring.protocols import RULESETS, Protocol, WorkloadSpec

ALGOPERF_FLAGS_FILE = "flags_0.json"  # AlgoPerf's own file (its ruleset), not part of algobench's layout
TIME_COLUMNS = ("score", "accumulated_submission_time")  # AlgoPerf's submission time; the first one found

STUDY_RE = re.compile(r"^study_(\d+)$")
TRIAL_RE = re.compile(r"^trial_(\d+)$")
WORKLOAD_DIR_RE = re.compile(r"^(.+)_(jax|pytorch)$")
TIMESTAMP_RE = re.compile(r"-\d{4}(?:-\d{2}){5}$")
MAX_SEARCH_DEPTH = 6

TRIAL_COLUMNS = (
    "submission", "study", "workload", "base_workload", "is_variant", "trial", "framework", "path",
    "ruleset", "clock", "metric", "direction", "target", "budget_sec", "calibration_factor", "machine", "status",
    "summary_time_to_target", "has_eval_log", "num_evals", "hparams",
)  # fmt: skip


@dataclass(frozen=True)
class TrialDir:
    """Where one trial's files are, and who/what it belongs to (from the directory names)."""

    submission: str
    study: int
    workload: str
    framework: str
    trial: int
    path: str


@dataclass(frozen=True)
class TrialSet:
    """The logs, flattened: ``trials`` (one row per trial, indexed by trial id) and ``evals``
    (columns ``trial_id, eval_index, time, value, global_step``, in log order)."""

    trials: pd.DataFrame
    evals: pd.DataFrame


# ---------------------------------------------------------------------------------------------
# Finding trials


def submission_name(directory: str) -> str:
    """AlgoPerf appends a timestamp to re-run experiment directories; they belong together."""
    return TIMESTAMP_RE.sub("", os.path.basename(directory))


def _subdirs(directory: str) -> list[tuple[str, str]]:
    """(name, path) of the visible subdirectories, sorted by name (plain strings: this is the hot loop)."""
    try:
        with os.scandir(directory) as entries:
            found = [(e.name, e.path) for e in entries if not e.name.startswith(".") and e.is_dir()]
    except OSError:
        return []
    return sorted(found)


def _submission_dirs(directory: str, depth: int) -> Iterator[str]:
    children = _subdirs(directory)
    if any(STUDY_RE.match(name) for name, _ in children):
        yield directory
        return
    if depth < MAX_SEARCH_DEPTH:
        for name, child in children:
            if name != TUNING_DIR:  # a tuner's state and events, not a submission's trials
                yield from _submission_dirs(child, depth + 1)


def find_trials(
    paths: Iterable[str | PathLike[str]], problems: Problems, workloads: Collection[str] | None = None
) -> list[TrialDir]:
    """Every ``trial_<j>`` directory under ``paths`` (of ``workloads`` only, when given), in a
    deterministic order."""
    trials: list[TrialDir] = []
    seen: dict[str, str] = {}
    for raw in paths:
        root = os.fspath(raw)
        if not os.path.isdir(root):
            raise ScoringError(f"{root}: no such directory")
        found = list(_submission_dirs(root, 0))
        if not found:
            problems.report("no results here (expected <submission>/study_<k>/<workload>_<framework>/trial_<j>/)", root)
        for sub_dir in found:
            name = submission_name(sub_dir)
            first = seen.setdefault(name, sub_dir)
            if first != sub_dir and os.path.basename(first) == os.path.basename(sub_dir) == name:
                problems.report(f"submission {name!r} is also in {first}; their trials are scored together", sub_dir)
            trials.extend(_trials_of_submission(name, sub_dir, problems, workloads))
    return trials


def _trials_of_submission(
    name: str, sub_dir: str, problems: Problems, workloads: Collection[str] | None = None
) -> Iterator[TrialDir]:
    for study_name, study_dir in _subdirs(sub_dir):
        study = STUDY_RE.match(study_name)
        if not study:
            continue
        for workload_name, workload_dir in _subdirs(study_dir):
            match = WORKLOAD_DIR_RE.match(workload_name)
            if not match:
                problems.report("not a <workload>_<jax|pytorch> directory; skipped", workload_dir)
                continue
            workload, framework = match.groups()
            if workloads is not None and workload not in workloads:
                continue
            for trial_name, trial_dir in _subdirs(workload_dir):
                trial = TRIAL_RE.match(trial_name)
                if trial:
                    yield TrialDir(name, int(study.group(1)), workload, framework, int(trial.group(1)), trial_dir)


# ---------------------------------------------------------------------------------------------
# Reading one trial's files


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _read_json(path: str, problems: Problems) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        problems.report(f"cannot read: {error}", path)
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        problems.report(f"not valid JSON ({error}); ignored", path)
        return None
    if not isinstance(value, dict):
        problems.report("not a JSON object; ignored", path)
        return None
    return value


def _floats(cells: list[str]) -> tuple[list[float], int]:
    """CSV cells to floats, and how many were not numbers (read as NaN).

    An empty cell is how pandas writes NaN: it stays NaN, never zero. ``map(float)`` does the
    common all-numeric case at C speed; only files with empty or bad cells take the slow path.
    """
    try:
        return list(map(float, cells)), 0
    except ValueError:
        pass
    values, bad = [], 0
    for cell in cells:
        try:
            values.append(float(cell) if cell.strip() else math.nan)
        except ValueError:
            values.append(math.nan)
            bad += 1
    return values, bad


@dataclass
class EvalLog:
    times: list[float]
    values: list[float]
    steps: list[float]


def read_eval_log(path: str | PathLike[str], column: str, problems: Problems) -> EvalLog | None:
    """The submission time and ``column`` of each evaluation; None when the file is missing.

    A line without its newline is what a run killed while writing leaves behind: it is dropped
    (its last number may be cut short). Rows with the wrong number of fields, or without a
    submission time, are dropped. NaN values are kept as NaN, so they never reach a target.
    """
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except FileNotFoundError:
        return None
    except OSError as error:
        problems.report(f"cannot read: {error}", path)
        return EvalLog([], [], [])
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    elif text:
        problems.report("last line is incomplete (was the run killed while writing?); dropped it", path)
        lines.pop()
    lines = [line for line in lines if line.strip()]
    if not lines:
        problems.report("no evaluations (empty file)", path)
        return EvalLog([], [], [])
    rows = list(csv.reader(lines)) if '"' in text else [line.split(",") for line in lines]
    header = [name.strip() for name in rows[0]]
    time_index = next((header.index(c) for c in TIME_COLUMNS if c in header), None)
    if time_index is None:
        problems.report(f"no submission-time column ({' or '.join(TIME_COLUMNS)}); trial not scored", path)
        return EvalLog([], [], [])
    value_index = header.index(column) if column in header else None
    if value_index is None:
        problems.report(f"no {column} column: the target metric was never evaluated", path)
    step_index = header.index("global_step") if "global_step" in header else None

    body = [row for row in rows[1:] if len(row) == len(header)]
    if len(body) < len(rows) - 1:
        problems.report(f"{len(rows) - 1 - len(body)} row(s) with the wrong number of fields; dropped", path)
    times, bad_times = _floats([row[time_index] for row in body])
    if value_index is None:
        values, bad_values = [math.nan] * len(body), 0
    else:
        values, bad_values = _floats([row[value_index] for row in body])
    steps = _floats([row[step_index] for row in body])[0] if step_index is not None else [math.nan] * len(body)
    if bad_times or bad_values:
        problems.report(f"{bad_times + bad_values} value(s) that are not numbers; read as NaN", path)
    if any(t != t for t in times):  # NaN: no time, no place in the run
        keep = [t == t for t in times]
        problems.report(f"{keep.count(False)} row(s) without a submission time; dropped", path)
        times, values, steps = ([x for x, k in zip(xs, keep, strict=True) if k] for xs in (times, values, steps))
    if value_index is not None:
        nans = sum(1 for v in values if v != v)
        if nans:
            what = f"{column} is NaN in {nans} of {len(values)} evaluations"
            problems.report(f"{what} (kept as NaN: never reached)", path)
    if any(b < a for a, b in zip(times, times[1:], strict=False)):
        problems.report("submission time goes backwards between evaluations", path)
    return EvalLog(times, values, steps)


# ---------------------------------------------------------------------------------------------
# Targets: from the protocol (AlgoPerf) or from each trial's summary.json (algobench)


_SUMMARY_FIELDS = ("target_metric_name", "metric_direction", "validation_target_value")


def spec_from_summary(workload: str, summary: dict[str, Any]) -> WorkloadSpec | None:
    """The target recorded by the runner; None if the summary lacks it."""
    try:
        if any(summary.get(k) is None for k in _SUMMARY_FIELDS):
            return None
        direction = Direction(summary["metric_direction"])
        budget = summary.get("max_allowed_runtime_sec")
        return WorkloadSpec(
            name=workload,
            base=summary.get("base_workload") or workload,
            metric=str(summary["target_metric_name"]),
            direction=direction.value,
            validation_target=float(summary["validation_target_value"]),
            test_target=None if summary.get("test_target_value") is None else float(summary["test_target_value"]),
            budget_sec=None if budget is None else float(budget),
        )
    except (KeyError, TypeError, ValueError):
        return None


def _same_target(a: WorkloadSpec, b: WorkloadSpec) -> bool:
    return (a.base, a.metric, a.direction, a.validation_target) == (b.base, b.metric, b.direction, b.validation_target)


def _resolve_specs(
    trials: Sequence[TrialDir], summaries: Sequence[dict | None], protocol: Protocol, problems: Problems
) -> list[WorkloadSpec | None]:
    """One WorkloadSpec per trial (None: not scored), reporting unknown and inconsistent workloads."""
    if not protocol.targets_from_logs:
        unknown: dict[str, str] = {}
        specs = []
        for trial in trials:
            spec = protocol.workloads.get(trial.workload)
            if spec is None:
                unknown.setdefault(trial.workload, os.path.dirname(trial.path))
            specs.append(spec)
        for name, where in unknown.items():
            problems.report(f"unknown workload {name!r} for protocol {protocol.name}; its trials are not scored", where)
        return specs

    own = [None if s is None else spec_from_summary(t.workload, s) for t, s in zip(trials, summaries, strict=True)]
    reference: dict[str, tuple[WorkloadSpec, str]] = {}
    for trial, spec in zip(trials, own, strict=True):
        if spec is None:
            continue
        first = reference.setdefault(trial.workload, (spec, trial.path))
        if not _same_target(first[0], spec):
            problems.report(
                f"target differs from {os.path.join(first[1], SUMMARY_FILE)} ({spec.metric} {spec.direction} "
                f"{spec.validation_target} vs {first[0].metric} {first[0].direction} {first[0].validation_target})",
                os.path.join(trial.path, SUMMARY_FILE),
            )
    specs: list[WorkloadSpec | None] = []
    unknown_dirs: dict[str, str] = {}
    for trial, summary, spec in zip(trials, summaries, own, strict=True):
        if spec is None and trial.workload in reference:
            what = "no summary.json (unfinished or killed run?)" if summary is None else "summary.json has no target"
            problems.report(f"{what}; using the target of the workload's other trials", trial.path)
            spec = reference[trial.workload][0]
        elif spec is None:
            unknown_dirs.setdefault(trial.workload, os.path.dirname(trial.path))
        specs.append(spec)
    for name, where in unknown_dirs.items():
        problems.report(
            f"workload {name!r}: no summary.json with its target in any trial, so it is not scored "
            "(AlgoPerf logs? pass --protocol algoperf-v0.6 or algoperf-v0.5)",
            where,
        )
    return specs


# ---------------------------------------------------------------------------------------------
# The whole experiment


def _ruleset(summary: dict | None, flags: dict | None, started: dict | None, default: str) -> str:
    for source, key in ((summary, "ruleset"), (flags, "tuning_ruleset"), ((started or {}).get("spec"), "ruleset")):
        if source and source.get(key) in RULESETS:
            return source[key]
    return default


def _clock(summary: dict[str, Any], started: dict | None) -> str:
    """The clock the trial ran on: its summary's; for an unfinished trial (no summary yet) the one
    ``meta_data.json`` recorded at its start; else the wall clock (AlgoPerf's logs)."""
    return str(summary.get("clock") or (started or {}).get("clock") or DEFAULT_CLOCK)


def _trial_budget(spec: WorkloadSpec, protocol: Protocol, ruleset: str) -> float:
    """algobench's summaries record the budget actually used; AlgoPerf's comes from the protocol."""
    if spec.budget_sec is None:
        return math.inf
    if protocol.targets_from_logs:
        return spec.budget_sec
    return spec.budget_sec * protocol.budget_multiplier(ruleset)


def _reported_variant(spec: WorkloadSpec, protocol: Protocol) -> bool:
    """A variant of a scored base is read even where the score does not count it: the score's
    outputs say whether submissions that reach the base miss it (``variant_check``)."""
    return spec.is_variant and (protocol.base_workloads is None or spec.base in protocol.base_workloads)


def load_trials(
    paths: Iterable[str | PathLike[str]],
    protocol: Protocol,
    problems: Problems | None = None,
    default_ruleset: str = "external",
    workloads: Collection[str] | None = None,
) -> TrialSet:
    """Read every trial under ``paths`` that ``protocol`` can score (of ``workloads`` only, when given)."""
    problems = problems if problems is not None else Problems()
    found = find_trials(paths, problems, workloads)
    summaries = [_read_json(os.path.join(t.path, SUMMARY_FILE), problems) for t in found]
    specs = _resolve_specs(found, summaries, protocol, problems)

    ignored: dict[str, str] = {}
    records: list[dict[str, Any]] = []
    trial_ids: list[int] = []
    eval_index: list[int] = []
    times: list[float] = []
    values: list[float] = []
    steps: list[float] = []
    for trial, summary, spec in zip(found, summaries, specs, strict=True):
        if spec is None:
            continue
        if not protocol.scores_workload(spec):
            ignored.setdefault(trial.workload, os.path.dirname(trial.path))
            if not _reported_variant(spec, protocol):
                continue
        flags = started = None
        if summary is None:
            flags = _read_json(os.path.join(trial.path, ALGOPERF_FLAGS_FILE), problems)
            started = _read_json(os.path.join(trial.path, META_FILE), problems)  # written at its start
        ruleset = _ruleset(summary, flags, started, default_ruleset)
        log_path = os.path.join(trial.path, EVAL_FILE)
        log = read_eval_log(log_path, spec.column, problems)
        has_log = log is not None
        if log is None:
            problems.report("missing evaluation log", log_path)
            if protocol.rules.missing_eval_log == "drop_trial":
                continue
            log = EvalLog([], [], [])
        trial_id = len(records)
        n = len(log.times)
        trial_ids.extend([trial_id] * n)
        eval_index.extend(range(n))
        times.extend(log.times)
        values.extend(log.values)
        steps.extend(log.steps)
        summary = summary or {}
        hparams = _read_text(os.path.join(trial.path, HPARAMS_FILE))  # provenance, shown as written
        summary_ttt = summary.get("time_to_target")
        records.append(
            {
                "submission": trial.submission,
                "study": trial.study,
                "workload": trial.workload,
                "base_workload": spec.base,
                "is_variant": spec.is_variant,
                "trial": trial.trial,
                "framework": trial.framework,
                "path": trial.path,
                "ruleset": ruleset,
                "clock": _clock(summary, started),
                "metric": spec.column,
                "direction": spec.direction,
                "target": spec.validation_target,
                "budget_sec": _trial_budget(spec, protocol, ruleset),
                "calibration_factor": float(summary.get("calibration_factor") or 1.0),
                "machine": summary.get("machine") or "",
                "status": summary.get("status") or "",
                "summary_time_to_target": math.nan if summary_ttt is None else float(summary_ttt),
                "has_eval_log": has_log,
                "num_evals": n,
                "hparams": (hparams or "").strip(),
            }
        )
    reported = {r["workload"] for r in records if r["is_variant"]}
    for name, where in ignored.items():
        why = "variant rule off" if not protocol.variant_rule else "not one of its held-out variants"
        fate = "reported in the variants table only" if name in reported else "ignored"
        problems.report(f"workload {name!r} is not scored by protocol {protocol.name} ({why}); {fate}", where)
    trials = pd.DataFrame.from_records(records, columns=list(TRIAL_COLUMNS))
    trials.index.name = "trial_id"
    evals = pd.DataFrame(
        {
            "trial_id": np.asarray(trial_ids, dtype=np.int64),
            "eval_index": np.asarray(eval_index, dtype=np.int64),
            "time": np.asarray(times, dtype=np.float64),
            "value": np.asarray(values, dtype=np.float64),
            "global_step": np.asarray(steps, dtype=np.float64),
        }
    )
    return TrialSet(trials=trials, evals=evals)
