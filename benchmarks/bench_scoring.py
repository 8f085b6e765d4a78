"""Benchmark: score 10,000 trials of generated logs (goal: under 5 s).

    python benchmarks/bench_scoring.py [--submissions 20] [--workloads 10] [--studies 10]
                                       [--trials 5] [--evals 20] [--repeat 3] [--logs DIR]

Writes an experiment directory in algobench's layout (``eval_measurements.csv``,
``summary.json``, ``hparams.json`` per trial; default 20 x 10 x 10 x 5 = 10,000 trials of 20
evaluations, some diverging to NaN) and times:

- ``score()``: reading every trial from disk and scoring it (what ``algobench score`` does
  before writing its outputs), and
- ``score_trials()``: the scoring computation alone on trials already in memory.

The logs are generated once per run (into ``--logs`` if given, kept; else a temporary directory)
and read from a warm page cache.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

from algobench.scoring import get_protocol, load_trials, score, score_trials
from algobench.scoring.errors import Problems

HEADER = (
    "global_step,preemption_count,score,total_duration,accumulated_submission_time,accumulated_eval_time,"
    "accumulated_logging_time,examples_seen,process_cpu_time,train/loss,validation/accuracy,validation/loss\n"
)


def generate(root: Path, submissions: int, workloads: int, studies: int, trials: int, evals: int, seed: int = 0) -> int:
    """Saturating accuracy curves with per-trial speed and noise; about one trial in 50 diverges."""
    rng = np.random.default_rng(seed)
    budget, target = 600.0, 0.9
    count = 0
    for s in range(submissions):
        skill = rng.uniform(0.5, 2.0)
        for w in range(workloads):
            workload = f"synth{w:02d}"
            for k in range(studies):
                for j in range(1, trials + 1):
                    path = root / f"sub{s:02d}" / f"study_{k}" / f"{workload}_pytorch" / f"trial_{j}"
                    path.mkdir(parents=True)
                    rate = skill * rng.lognormal(0.0, 0.4) / 150.0
                    times = np.sort(rng.uniform(0.9, 1.1, evals)).cumsum() * (budget / evals)
                    accuracy = 0.97 * (1.0 - np.exp(-rate * times)) + rng.normal(0.0, 0.005, evals)
                    if rng.random() < 0.02:
                        accuracy[evals // 2 :] = math.nan
                    lines = [HEADER]
                    for i, (t, a) in enumerate(zip(times.tolist(), accuracy.tolist(), strict=True), start=1):
                        a_text = "" if math.isnan(a) else repr(a)
                        times_text = f"{t!r},{t + 2 * i!r},{t!r},{2.0 * i},0.01"
                        lines.append(f"{i * 100},0,{times_text},{i * 12800},{t!r},0.5,{a_text},0.4\n")
                    (path / "eval_measurements.csv").write_text("".join(lines))
                    hit = np.flatnonzero(accuracy >= target)
                    ttt = float(times[hit[0]]) if hit.size and times[hit[0]] <= budget else None
                    summary = {
                        "status": "target_reached" if ttt is not None else "out_of_time", "error": None,
                        "time_to_target": ttt, "steps": evals * 100, "workload": workload,
                        "base_workload": workload, "variant": None, "target_metric_name": "accuracy",
                        "metric_direction": "max", "validation_target_value": target, "test_target_value": target,
                        "max_allowed_runtime_sec": budget, "calibration_factor": 1.0, "machine": "bench",
                        "ruleset": "external",
                    }  # fmt: skip
                    (path / "summary.json").write_text(json.dumps(summary))
                    (path / "hparams.json").write_text(json.dumps({"learning_rate": float(rate)}))
                    count += 1
    return count


def timed(function, repeat: int) -> tuple[list[float], object]:
    seconds, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - start)
    return seconds, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=20)
    parser.add_argument("--workloads", type=int, default=10)
    parser.add_argument("--studies", type=int, default=10)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--evals", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--logs", type=Path, default=None, help="generate the logs here and keep them")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        root = args.logs or Path(scratch) / "experiment"
        start = time.perf_counter()
        count = generate(root, args.submissions, args.workloads, args.studies, args.trials, args.evals)
        print(f"generated {count} trials x {args.evals} evaluations in {time.perf_counter() - start:.1f} s -> {root}")

        protocol = replace(get_protocol("algobench-v1"), studies=args.studies, trials_per_study=args.trials)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the diverged trials' NaN warnings
            end_to_end, result = timed(lambda: score(root, protocol), args.repeat)
            trial_set = load_trials([root], protocol, Problems())
            compute, _ = timed(lambda: score_trials(trial_set, protocol), args.repeat)

    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}")
    print(f"{'step':<40}{'best':>9}{'median':>9}")
    for name, seconds in (("score(): read from disk + score", end_to_end), ("score_trials(): scoring only", compute)):
        print(f"{name:<40}{min(seconds):>8.2f}s{statistics.median(seconds):>8.2f}s")
    print(f"{len(result.trials)} trials, {len(result.evals)} evaluations, {len(result.scores)} submissions; "
          f"best score {result.scores['score'].max():.4f}")  # fmt: skip


if __name__ == "__main__":
    main()
