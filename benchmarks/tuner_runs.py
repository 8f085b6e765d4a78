"""What the tuner benchmarks share: one tuner's studies on one workload and the replays of their
outputs (each an ``algobench tune`` / ``tune replay`` run, so a rerun resumes), the evaluation
grid every tuner of a comparison uses, and the wins of a tuner against a baseline per view."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

INTERRUPTED = (130, 143)  # algobench's exit codes after Ctrl-C and SIGTERM: the benchmark stops too


def eval_every(workload: str, interval: int | None = None) -> int:
    """PBT's evaluation grid (for its default interval unless one is given): every tuner of a
    comparison evaluates on it, so their times-to-target have the same resolution."""
    from algobench.tuning.pbt import default_eval_every, default_interval
    from algobench.workloads.registry import workload_class

    return default_eval_every(interval or default_interval(workload_class(workload).step_hint))


def run_tuner(
    algobench: Callable[[list[str]], int],
    submission: str,
    workload: str,
    experiment: Path,
    tune_args: Sequence[str],
    studies: int,
    replay_seeds: int,
    threads: int,
    say: Callable[[str], None],
) -> int | None:
    """Tune ``workload`` into ``experiment`` and replay each study's output; an exit code that
    must stop the benchmark (interrupted, or a usage error), else None."""
    code = algobench(["tune", submission, "--workloads", workload, "--experiment-dir", str(experiment), *tune_args])
    if code not in (0, 1):
        return code
    for study in range(studies):
        replay = ["tune", "replay", str(experiment), "--workload", workload, "--study", str(study)]
        code = algobench([*replay, "--seeds", str(replay_seeds), "--threads", str(threads), "--quiet"])
        if code in INTERRUPTED:
            return code
        if code != 0:
            say(f"{workload} study {study}: no replay of {experiment.name}'s output (exit {code})")
    return None


def wins_against(result, tuner: str, baseline: str) -> dict:
    """Per view: on how many workloads ``tuner``'s median time-to-target beats ``baseline``'s,
    and both times per workload (tuners are named by the suffix of their submission folder)."""
    import pandas as pd

    wins = {}
    for view, times in result.times.items():
        ours = times.loc[[t for t in times.index if t.endswith(f"_{tuner}")]].min()
        theirs = times.loc[[t for t in times.index if t.endswith(f"_{baseline}")]].min()
        both = pd.DataFrame({tuner: ours, baseline: theirs})
        faster, slower = int((both[tuner] < both[baseline]).sum()), int((both[baseline] < both[tuner]).sum())
        wins[view] = {
            f"{tuner}_faster": faster,
            f"{baseline}_faster": slower,
            "ties_or_missing": len(both) - faster - slower,
            "times": {w: {k: _plain(v) for k, v in row.items()} for w, row in both.iterrows()},
        }
    return wins


def _plain(value: float) -> float | str:
    return "inf" if isinstance(value, float) and math.isinf(value) else value


def sayer(name: str) -> Callable[[str], None]:
    def say(line: str) -> None:
        print(f"[{name} {time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)

    return say
