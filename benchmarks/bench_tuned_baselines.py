"""Per base workload with targets from `algobench targets`: the tuned baseline's time-to-target
on this machine, as a Markdown table.

The tuned baseline is the winner of target setting with its best configuration (both recorded
in the targets file), run on fresh seeds until it reaches the validation target or the budget
runs out. A validation target is the median of the winner's best values over its
target-setting seeds (AlgoPerf's rule), so one fresh seed reaches it about half the time, and
near the end of its schedule. Run it on an otherwise idle machine: time-to-target is
submission time.

    python benchmarks/bench_tuned_baselines.py [--workloads suite] [--seeds 1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from algobench.trial import run_trial
from algobench.trial_spec import TrialSpec
from algobench.tuning.rulesets import get_ruleset
from algobench.tuning.target_setting import RULESET, baseline_file
from algobench.workloads.calibration import calibration_factor
from algobench.workloads.registry import expand_workload_names, get_workload, load_targets

SEED_OFFSET = 2000  # seeds unused by target setting (search: 0..trials-1, reruns: 1001..)


def measure(name: str, seeds: int, experiment_dir: str) -> dict[str, object] | None:
    targets = load_targets(name)
    provenance = targets.provenance
    if provenance.get("method") != "target_setting":
        return None
    winner = provenance["winner"]
    times, steps, bests = [], [], []
    start = time.perf_counter()
    for k in range(seeds):
        with baseline_file(winner, "submission.py") as submission:
            spec = TrialSpec(
                submission_path=str(submission), submission_name=winner, workload_name=name, study=k, trial=0,
                hyperparameters=provenance["hyperparameters"], seed=SEED_OFFSET + k, experiment_dir=experiment_dir,
                make_workload=get_workload, ruleset=RULESET, budget_multiplier=get_ruleset(RULESET).budget_multiplier,
                calibration_factor=calibration_factor(name),
            )  # fmt: skip
            summary = run_trial(spec)
        times.append(summary["time_to_target"])
        steps.append(summary["steps"])
        bests.append(summary["best_validation_metric"])
    wall = time.perf_counter() - start
    reached = [t for t in times if t is not None]
    return {
        "winner": winner,
        "budget": targets.max_allowed_runtime_sec * calibration_factor(name),
        "reached": f"{len(reached)}/{seeds}",
        "median": statistics.median(reached) if reached else None,
        "times": times,
        "target": targets.validation_target_value,
        "bests": bests,
        "steps": steps,
        "wall": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="suite", help="comma-separated names, or suite (default)")
    parser.add_argument("--seeds", type=int, default=1)
    args = parser.parse_args()
    names = expand_workload_names([n.strip() for n in args.workloads.split(",") if n.strip()])
    print(
        "| workload | tuned baseline | budget s | reached | time-to-target s (median) | per seed | steps "
        "| validation target | best validation per seed | wall s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as experiment_dir:
        for name in names:
            row = measure(name, args.seeds, str(Path(experiment_dir)))
            if row is None:
                print(f"| {name} | targets still provisional | | | | | | | | |", flush=True)
                continue
            median = f"{row['median']:.1f}" if row["median"] is not None else "not reached"
            per_seed = ", ".join("-" if t is None else f"{t:.1f}" for t in row["times"])
            bests = ", ".join("-" if b is None else f"{b:.4g}" for b in row["bests"])
            print(
                f"| {name} | {row['winner']} | {row['budget']:.0f} | {row['reached']} | {median} | {per_seed} "
                f"| {', '.join(map(str, row['steps']))} | {row['target']:.4g} | {bests} | {row['wall']:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
