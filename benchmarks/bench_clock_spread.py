"""Repeat spread of time-to-target on each clock, with and without a second process burning a core.

The same submission, workload and seed run ``--repeats`` times per (load, clock) cell, each trial
in its own child process (the process executor, with the parent's clock check). A cell's spread
is (max - min) / median of the repeats' time-to-target; the coefficient of variation is shown too.
Repeats of the two clocks are interleaved so that drift in the machine's background load falls
on both alike. The load is ``--burners`` processes spinning in a Python loop (default one core).

    nice -n 10 .venv/bin/python benchmarks/bench_clock_spread.py --workload digits_mlp --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BURN = "while True:\n    pass\n"


def trial_specs(args: argparse.Namespace, root: Path) -> dict[str, object]:
    from algobench.trial_spec import TrialSpec
    from algobench.workloads import get_workload

    base = TrialSpec(
        submission_path=str(Path(args.submission).resolve()), submission_name="spread", workload_name=args.workload,
        study=0, trial=1, hyperparameters=json.loads(args.hyperparameters) if args.hyperparameters else None,
        seed=args.seed, experiment_dir=str(root), make_workload=get_workload, ruleset=args.ruleset,
        budget_multiplier=1.5 if args.ruleset == "self" else 1.0, threads=args.threads, scale=args.scale,
        eval_every_steps=args.eval_every_steps,
    )  # fmt: skip
    return {clock: replace(base, clock=clock) for clock in ("wall", "cpu")}


def run_cell(executor, spec, load: str, repeat: int, root: Path) -> dict:
    spec = replace(spec, experiment_dir=str(root / load / spec.clock / f"repeat_{repeat}"))
    started = time.perf_counter()
    summary = executor.submit(spec).result()
    return {
        "load": load, "clock": spec.clock, "repeat": repeat, "status": summary.get("status"),
        "time_to_target": summary.get("time_to_target"), "steps": summary.get("steps"),
        "submission_time": summary.get("submission_time"), "process_cpu_time": summary.get("process_cpu_time"),
        "elapsed": time.perf_counter() - started, "loadavg_1min": os.getloadavg()[0],
        "error": summary.get("error"),
    }  # fmt: skip


def spread(values: list[float]) -> tuple[float, float]:
    """(max - min) / median and stdev / mean, as fractions."""
    middle = statistics.median(values)
    cv = statistics.stdev(values) / statistics.mean(values) if len(values) > 1 else 0.0
    return (max(values) - min(values)) / middle, cv


def table(rows: list[dict]) -> str:
    lines = [
        "| load | clock | time-to-target per repeat (s) | median | spread (max-min)/median | CV | load avg (1 min) |",
        "|---|---|---|---|---|---|---|",
    ]
    for load in dict.fromkeys(r["load"] for r in rows):
        for clock in ("wall", "cpu"):
            cell = [r for r in rows if r["load"] == load and r["clock"] == clock]
            times = [r["time_to_target"] for r in cell if r["time_to_target"] is not None]
            shown = ", ".join("miss" if r["time_to_target"] is None else f"{r['time_to_target']:.2f}" for r in cell)
            loads = [r["loadavg_1min"] for r in cell]
            loadavg = f"{min(loads):.1f}-{max(loads):.1f}"
            if len(times) < 2:
                lines.append(f"| {load} | {clock} | {shown} | - | - | - | {loadavg} |")
                continue
            rng, cv = spread(times)
            median = statistics.median(times)
            lines.append(f"| {load} | {clock} | {shown} | {median:.2f} | {rng:.1%} | {cv:.1%} | {loadavg} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submission", default=str(REPO / "submissions" / "adamw" / "submission.py"))
    parser.add_argument("--workload", default="digits_mlp")
    parser.add_argument("--scale", default="cpu")
    parser.add_argument("--ruleset", default="self", help="self: the submission's defaults (default)")
    parser.add_argument("--hyperparameters", default=None, help="JSON object, for --ruleset external")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--burners", type=int, default=1, help="processes spinning during the loaded runs")
    parser.add_argument("--loads", default="idle,loaded", help="which conditions, in order")
    parser.add_argument(
        "--eval-every-steps", type=int, default=None,
        help="evaluate at fixed steps, not on the workload's time grid (separates the clock's noise from the grid's)",
    )  # fmt: skip
    parser.add_argument("--json", default=None, help="also write the rows here")
    args = parser.parse_args()

    from algobench.executors.process import ProcessExecutor

    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp, ProcessExecutor(parallel=1) as executor:
        root = Path(tmp)
        specs = trial_specs(args, root)
        for load in args.loads.split(","):
            burners = []
            if load == "loaded":
                burners = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(args.burners)]
                time.sleep(1.0)
            try:
                for repeat in range(args.repeats):
                    for clock in ("wall", "cpu") if repeat % 2 == 0 else ("cpu", "wall"):
                        row = run_cell(executor, specs[clock], load, repeat, root)
                        rows.append(row)
                        print(json.dumps(row), file=sys.stderr, flush=True)
            finally:
                for burner in burners:
                    burner.kill()
                    burner.wait()
    grid = f"every {args.eval_every_steps} steps" if args.eval_every_steps else "on the time grid"
    what = f"{args.workload} ({args.scale}), {Path(args.submission).parent.name}, seed {args.seed}, evaluated {grid}"
    print(f"{what}, {args.threads} thread(s), {args.repeats} repeats, loaded = {args.burners} spinning process(es)")
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
