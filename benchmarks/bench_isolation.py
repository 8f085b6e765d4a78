"""What isolation costs: README's main job with every trial in its own process (the default)
against all trials in this process (``--executor inprocess``), side by side.

Runs alternate (inprocess, process, inprocess, ...) into fresh experiment directories, so that
the machine's drift hits both alike. Two numbers per run: the wall time of the whole command,
and its time outside the trials (the command's wall time less every trial's own wall time,
``total_duration``): start-up, planning, process starts, loading data and models, the closing
table. Trials stop at their target, and when a trial reaches it varies from run to run by more
than the isolation costs, so the second number is the one that isolates the executors' cost.
The data cache is warmed first (both executors read the same cache).

    python benchmarks/bench_isolation.py [--repeats 3] [--workloads mnist1d] [--submission ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NADAMW = Path(__file__).resolve().parent.parent / "submissions" / "nadamw" / "submission.py"


def run(executor: str, args: argparse.Namespace) -> tuple[float, float]:
    """(wall time of the command, its time outside the trials)."""
    with tempfile.TemporaryDirectory() as root:
        command = [
            sys.executable, "-m", "algobench.cli", "submit", args.submission, "--workloads", args.workloads,
            "--experiment-dir", root, "--quiet", "--executor", executor, *args.extra,
        ]  # fmt: skip
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        wall = time.perf_counter() - start
        trials = sum(json.loads(p.read_text())["total_duration"] for p in Path(root).glob("*/*/*/*/summary.json"))
        return wall, wall - trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workloads", default="mnist1d")
    parser.add_argument("--submission", default=str(NADAMW))
    parser.add_argument("extra", nargs="*", help="more `algobench submit` options, after --")
    args = parser.parse_args()
    warm = argparse.Namespace(**{**vars(args), "extra": [*args.extra, "--studies", "1", "--trials", "1"]})
    run("inprocess", warm)  # generates and caches the data both executors then read
    times: dict[str, list[tuple[float, float]]] = {"inprocess": [], "process": []}
    for repeat in range(args.repeats):
        for executor in ("inprocess", "process"):
            times[executor].append(run(executor, args))
            wall, outside = times[executor][-1]
            print(
                f"repeat {repeat + 1}: {executor:<9} wall {wall:7.1f} s, outside the trials {outside:6.2f} s",
                flush=True,
            )
    walls = {name: statistics.median(w for w, _ in runs) for name, runs in times.items()}
    outside = {name: statistics.median(o for _, o in runs) for name, runs in times.items()}
    extra = outside["process"] - outside["inprocess"]
    print(
        f"median wall: inprocess {walls['inprocess']:.1f} s, process {walls['process']:.1f} s "
        f"(ratio {walls['process'] / walls['inprocess']:.3f}); outside the trials: inprocess "
        f"{outside['inprocess']:.2f} s, process {outside['process']:.2f} s; isolation costs {extra:.2f} s, "
        f"{extra / walls['inprocess']:.1%} of the main job's wall time"
    )


if __name__ == "__main__":
    main()
