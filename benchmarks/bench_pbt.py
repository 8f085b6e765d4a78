"""PBT against quasi-random (Halton) search at equal compute: the same N members/trials, each with
the workload's budget B, on the suite's workloads, S studies each; then each tuner's best output
replayed on fresh seeds, and the three views side by side (``algobench tune score``).

    nice -n 10 python benchmarks/bench_pbt.py --workloads suite --studies 3 --population 8 &   # hours
    python benchmarks/bench_pbt.py --workloads digits_mlp --studies 1 --population 4           # minutes

Resumable: every step is an ``algobench tune`` / ``tune replay`` run, which skips what is done,
so rerunning the same command after a kill goes on where it stopped. Both tuners evaluate at the
same steps (Halton trials get PBT's ``eval_every_steps``), so their time-to-target is measured at
the same resolution. Prints, and writes to ``<root>/bench_pbt.json``:

- per view (algoperf, equal_compute, replay), each tuner's median time-to-target per workload and
  on how many workloads PBT is faster than Halton search;
- PBT's overhead: the driver's time copying forks, the tuner's decisions, and slot time idle at
  round barriers, as a share of the run's slot time (goal: under 5 %); plus the
  per-segment process cost (busy slot time not spent in the runner), which PBT pays per segment
  and Halton once per trial.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

from tuner_runs import eval_every, run_tuner, sayer, wins_against

REPO = Path(__file__).resolve().parent.parent
say = sayer("bench_pbt")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submission", default=str(REPO / "submissions" / "adamw" / "submission.py"))
    parser.add_argument("--workloads", default="suite")
    parser.add_argument("--studies", type=int, default=3)
    parser.add_argument("--population", type=int, default=8, help="PBT members = Halton trials (default: 8)")
    parser.add_argument("--interval", type=int, default=None, help="PBT interval (default: step_hint // 20)")
    parser.add_argument("--replay-seeds", type=int, default=3)
    parser.add_argument("--scale", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--clock", choices=("wall", "cpu"), default="cpu", help="cpu (default): load-robust, for a shared machine"
    )
    parser.add_argument("--parallel", type=int, default=None)
    parser.add_argument("--root", default=str(REPO / "benchmarks" / "results" / "pbt"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-nice", dest="nice", action="store_false", help="do not lower this process's priority")
    args = parser.parse_args(argv)
    if args.nice:
        os.nice(10)

    from algobench.cli import main as algobench
    from algobench.scoring.tuners import format_tuner_scores, score_tuners
    from algobench.tuning.pbt import default_interval
    from algobench.workloads.registry import expand_workload_names, workload_class

    root = Path(args.root).resolve()
    workloads = expand_workload_names(args.workloads.split(","))
    common = ["--studies", str(args.studies), "--seed", str(args.seed), "--scale", args.scale,
              "--threads", str(args.threads), "--clock", args.clock, "--quiet"]  # fmt: skip
    if args.parallel:
        common += ["--parallel", str(args.parallel)]
    started = time.perf_counter()
    for workload in workloads:
        interval = args.interval or default_interval(workload_class(workload).step_hint)
        pbt = ["--tuner", "pbt", "--population", str(args.population), "--interval", str(interval)]
        every = str(eval_every(workload, interval))
        halton = ["--tuner", "halton", "--trials", str(args.population), "--eval-every", every]
        for tuner, extra in (("pbt", pbt), ("halton", halton)):
            experiment = root / tuner
            say(f"{workload}: {tuner} -> {experiment}")
            stop = run_tuner(algobench, args.submission, workload, experiment, [*common, *extra], args.studies,
                             args.replay_seeds, args.threads, say)  # fmt: skip
            if stop is not None:
                return stop
    result = score_tuners([root / "pbt", root / "halton"], workloads=workloads)
    print(format_tuner_scores(result))
    report = summarize(result, workloads)
    report["wall_sec"] = time.perf_counter() - started
    report["settings"] = vars(args)
    (root / "bench_pbt.json").write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps({k: v for k, v in report.items() if k != "settings"}, indent=2, default=str))
    return 0


def summarize(result, workloads: list[str]) -> dict:
    """Wins per view, and PBT's overhead against its slot time."""
    from algobench.scoring.tuners import overhead_fraction

    wins = wins_against(result, "pbt", "halton")
    runs = result.runs
    overhead = {}
    for kind, rows in runs.groupby("kind"):
        totals = {"compute_sec": float(rows["compute_sec"].sum())}
        ledgers = [_overhead(path) for path in rows["path"]]  # each run's files, read once
        for name in ("decision_sec", "fork_sec", "idle_sec", "busy_sec", "slot_sec", "eval_sec", "forks", "segments"):
            totals[name] = float(sum(ledger.get(name, 0.0) for ledger in ledgers))
        compute = totals["compute_sec"] or math.nan
        totals["tuner_overhead_fraction"] = overhead_fraction(totals)  # of slot time: both on the wall clock
        spent = totals["busy_sec"] - compute - totals["eval_sec"]
        totals["per_segment_process_sec"] = spent / max(totals["segments"], 1)
        overhead[kind] = totals
    return {"workloads": workloads, "wins": wins, "overhead": overhead, "notes": result.notes}


def _overhead(tuning_dir: str) -> dict:
    from algobench.tuning.events import OVERHEAD_FILE, SEGMENTS_FILE, read_lines

    path = Path(tuning_dir) / OVERHEAD_FILE
    data = json.loads(path.read_text()) if path.exists() else {}
    data["eval_sec"] = sum(s.get("eval_time", 0.0) for s in read_lines(Path(tuning_dir) / SEGMENTS_FILE))
    return data


if __name__ == "__main__":
    sys.exit(main())
