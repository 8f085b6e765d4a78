"""Optuna's samplers and GP-Opt against quasi-random (Halton) search on the suite, at equal
compute: every tuner runs N trials of the workload's budget per study, S studies per workload,
its output replayed on fresh seeds; the three views of the tuner scoring side by side.

    nice -n 10 python benchmarks/bench_model_tuners.py --workloads image_cnn,image_vit,lm &   # hours
    python benchmarks/bench_model_tuners.py --workloads digits_mlp --scale tiny --studies 1     # minutes

Resumable, like ``bench_pbt.py``. Its Halton runs are bench_pbt's commands (same trials, seeds and
evaluation grid): ``--halton-from`` scores bench_pbt's (``<its root>/halton``) instead of running
them again (and, unlike sharing its root, works while bench_pbt is running). Every tuner
evaluates on PBT's grid (``tuner_runs.eval_every``). Prints, and writes to
``<root>/bench_model_tuners.json``, per view each tuner's median time-to-target per workload and
on how many workloads it beats Halton search. Tuners run workload by workload, GP-Opt and TPE
first: CMA-ES cannot leave random search within a few trials (see ``benchmarks/README.md``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from tuner_runs import eval_every, run_tuner, sayer, wins_against

REPO = Path(__file__).resolve().parent.parent
TUNERS = ("gp-opt", "tpe", "gp", "cmaes")
say = sayer("bench_model_tuners")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submission", default=str(REPO / "submissions" / "adamw" / "submission.py"))
    parser.add_argument("--workloads", default="image_cnn,image_vit,lm")
    parser.add_argument("--tuners", default=",".join(TUNERS), help=f"from {', '.join(TUNERS)}")
    parser.add_argument("--studies", type=int, default=3)
    parser.add_argument("--trials", type=int, default=4, help="trials per study, every tuner (default: 4)")
    parser.add_argument("--replay-seeds", type=int, default=1)
    parser.add_argument("--scale", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--clock", choices=("wall", "cpu"), default="cpu", help="cpu (default): load-robust")
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--root", default=str(REPO / "benchmarks" / "results" / "model_tuners"))
    parser.add_argument("--halton-from", default=None, help="an experiment directory of bench_pbt's Halton runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-nice", dest="nice", action="store_false", help="do not lower this process's priority")
    args = parser.parse_args(argv)
    tuners = [t for t in args.tuners.split(",") if t]
    unknown = sorted(set(tuners) - set(TUNERS))
    if unknown:
        parser.error(f"--tuners: unknown {', '.join(unknown)} (choose from {', '.join(TUNERS)})")
    if args.nice:
        os.nice(10)

    from algobench.cli import main as algobench
    from algobench.scoring.tuners import format_tuner_scores, score_tuners
    from algobench.workloads.registry import expand_workload_names

    root = Path(args.root).resolve()
    workloads = expand_workload_names(args.workloads.split(","))
    common = ["--studies", str(args.studies), "--seed", str(args.seed), "--scale", args.scale, "--threads",
              str(args.threads), "--clock", args.clock, "--parallel", str(args.parallel), "--quiet"]  # fmt: skip
    started = time.perf_counter()
    for workload in workloads:
        grid = ["--trials", str(args.trials), "--eval-every", str(eval_every(workload))]
        for tuner in tuners if args.halton_from else ["halton", *tuners]:
            experiment = root / tuner
            say(f"{workload}: {tuner} -> {experiment}")
            stop = run_tuner(algobench, args.submission, workload, experiment, [*common, "--tuner", tuner, *grid],
                             args.studies, args.replay_seeds, args.threads, say)  # fmt: skip
            if stop is not None:
                return stop
    halton = Path(args.halton_from).resolve() if args.halton_from else root / "halton"
    result = score_tuners([halton, *(root / t for t in tuners)], workloads=workloads)
    print(format_tuner_scores(result))
    report = {
        "workloads": workloads,
        "wins": {tuner: wins_against(result, tuner, "halton") for tuner in tuners},
        "notes": result.notes,
        "wall_sec": time.perf_counter() - started,
        "settings": vars(args),
    }
    (root / "bench_model_tuners.json").write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps({k: v for k, v in report.items() if k != "settings"}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
