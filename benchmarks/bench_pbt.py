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
  round barriers, as a fraction of the members' total compute (goal: under 5 %); plus the
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

REPO = Path(__file__).resolve().parent.parent
INTERRUPTED = (130, 143)  # algobench's exit codes after Ctrl-C and SIGTERM: the benchmark stops too


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
    from algobench.workloads.registry import expand_workload_names, workload_class

    root = Path(args.root).resolve()
    workloads = expand_workload_names(args.workloads.split(","))
    common = ["--studies", str(args.studies), "--seed", str(args.seed), "--scale", args.scale,
              "--threads", str(args.threads), "--clock", args.clock, "--quiet"]  # fmt: skip
    if args.parallel:
        common += ["--parallel", str(args.parallel)]
    started = time.perf_counter()
    for workload in workloads:
        interval = args.interval or max(workload_class(workload).step_hint // 20, 1)
        eval_every = interval // 2 if interval % 2 == 0 else interval
        pbt = ["--tuner", "pbt", "--population", str(args.population), "--interval", str(interval)]
        halton = ["--tuner", "halton", "--trials", str(args.population), "--eval-every", str(eval_every)]
        for tuner, extra in (("pbt", pbt), ("halton", halton)):
            experiment = root / tuner
            say(f"{workload}: {tuner} -> {experiment}")
            code = algobench(["tune", args.submission, "--workloads", workload, "--experiment-dir", str(experiment),
                              *common, *extra])  # fmt: skip
            if code not in (0, 1):
                return code
            for study in range(args.studies):
                replay = ["tune", "replay", str(experiment), "--workload", workload, "--study", str(study)]
                code = algobench(
                    [*replay, "--seeds", str(args.replay_seeds), "--threads", str(args.threads), "--quiet"]
                )
                if code in INTERRUPTED:
                    return code
                if code != 0:
                    say(f"{workload} study {study}: no replay of {tuner}'s output (exit {code})")
    result = score_tuners([root / "pbt", root / "halton"])
    print(format_tuner_scores(result))
    report = summarize(result, workloads)
    report["wall_sec"] = time.perf_counter() - started
    report["settings"] = vars(args)
    (root / "bench_pbt.json").write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps({k: v for k, v in report.items() if k != "settings"}, indent=2, default=str))
    return 0


def summarize(result, workloads: list[str]) -> dict:
    """Wins per view, and PBT's overhead against its compute."""
    import pandas as pd

    wins = {}
    for view, times in result.times.items():
        pbt = times.loc[[t for t in times.index if t.endswith("_pbt")]].min()
        halton = times.loc[[t for t in times.index if t.endswith("_halton")]].min()
        both = pd.DataFrame({"pbt": pbt, "halton": halton})
        wins[view] = {
            "pbt_faster": int((both["pbt"] < both["halton"]).sum()),
            "halton_faster": int((both["halton"] < both["pbt"]).sum()),
            "ties_or_missing": int(
                len(both) - (both["pbt"] < both["halton"]).sum() - (both["halton"] < both["pbt"]).sum()
            ),
            "times": {w: {k: _plain(v) for k, v in row.items()} for w, row in both.iterrows()},
        }
    runs = result.runs
    overhead = {}
    for kind, rows in runs.groupby("kind"):
        totals = {"compute_sec": float(rows["compute_sec"].sum())}
        for name in ("decision_sec", "fork_sec", "idle_sec", "busy_sec", "eval_sec", "forks", "segments"):
            totals[name] = float(sum(_overhead(path).get(name, 0.0) for path in rows["path"]))
        compute = totals["compute_sec"] or math.nan
        totals["tuner_overhead_fraction"] = (totals["decision_sec"] + totals["fork_sec"] + totals["idle_sec"]) / compute
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


def _plain(value: float) -> float | str:
    return "inf" if isinstance(value, float) and math.isinf(value) else value


def say(line: str) -> None:
    print(f"[bench_pbt {time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
