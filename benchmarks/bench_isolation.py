"""What isolation costs: README's main job with every trial in its own process (the default)
against all trials in this process (``--executor inprocess``), side by side.

Runs alternate (inprocess, process, inprocess, ...) into fresh experiment directories, so that
the machine's drift hits both alike; the wall time of each whole command is measured and the
ratio of medians reported. The data cache is warmed first (both executors read the same cache).

    python benchmarks/bench_isolation.py [--repeats 3] [--workloads mnist1d] [--submission ...]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NADAMW = Path(__file__).resolve().parent.parent / "submissions" / "nadamw" / "submission.py"


def run(executor: str, args: argparse.Namespace) -> float:
    with tempfile.TemporaryDirectory() as root:
        command = [
            sys.executable, "-m", "algobench.cli", "submit", args.submission, "--workloads", args.workloads,
            "--experiment-dir", root, "--quiet", "--executor", executor, *args.extra,
        ]  # fmt: skip
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workloads", default="mnist1d")
    parser.add_argument("--submission", default=str(NADAMW))
    parser.add_argument("extra", nargs="*", help="more `algobench submit` options, after --")
    args = parser.parse_args()
    warm = argparse.Namespace(**{**vars(args), "extra": [*args.extra, "--studies", "1", "--trials", "1"]})
    run("inprocess", warm)  # generates and caches the data both executors then read
    times: dict[str, list[float]] = {"inprocess": [], "process": []}
    for repeat in range(args.repeats):
        for executor in ("inprocess", "process"):
            times[executor].append(run(executor, args))
            print(f"repeat {repeat + 1}: {executor:<9} {times[executor][-1]:7.1f} s", flush=True)
    inprocess, process = statistics.median(times["inprocess"]), statistics.median(times["process"])
    print(
        f"median wall: inprocess {inprocess:.1f} s, process {process:.1f} s, "
        f"process/inprocess {process / inprocess:.3f}"
    )


if __name__ == "__main__":
    main()
