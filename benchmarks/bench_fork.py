"""The cost of forking a trial (PBT's exploit): a deep copy of the whole trial state, loaded into
another trial, for each suite workload at its CPU scale, against one evaluation period.

A trial is built and stepped a few times so that the optimizer holds its moments; the fork is
``clone.load_state_dict(donor.state_dict())`` (what ``TrialRunner.fork_from`` does before it
re-keys the random streams), timed over repeats, median reported.

    python benchmarks/bench_fork.py [--workloads suite] [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch

from algobench.hyperparameters import Hyperparameters
from algobench.runner import RunConfig, TrialRunner
from algobench.submission import load_submission
from algobench.workloads import get_workload
from algobench.workloads.registry import expand_workload_names

ADAMW = Path(__file__).resolve().parent.parent / "submissions" / "adamw" / "submission.py"


def fork_cost(name: str, repeats: int) -> tuple[int, float, float]:
    """(parameters, median fork ms, the workload's evaluation period in s)."""
    submission = load_submission(ADAMW)
    config = RunConfig(budget_sec=1e9, eval_period_sec=1e9, max_steps=10**9, stop_on_target=False)

    def trial(seed: int) -> TrialRunner:
        return TrialRunner(get_workload(name), submission, Hyperparameters({}), replace(config, seed=seed))

    donor, clone = trial(1), trial(2)
    donor.run(until_step=3)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        clone.load_state_dict(donor.state_dict())
        times.append(time.perf_counter() - start)
    parameters = sum(p.numel() for p in donor.model.parameters())
    return parameters, 1000 * statistics.median(times), donor.workload.eval_period_time_sec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="suite")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(f"torch threads {torch.get_num_threads()}")
    print(f"{'workload':<16} {'parameters':>11} {'fork ms':>9} {'eval period s':>14} {'fraction':>9}")
    for name in expand_workload_names(args.workloads.split(",")):
        parameters, ms, period = fork_cost(name, args.repeats)
        print(f"{name:<16} {parameters:>11,} {ms:>9.2f} {period:>14.1f} {ms / 1000 / period:>9.2%}")


if __name__ == "__main__":
    main()
