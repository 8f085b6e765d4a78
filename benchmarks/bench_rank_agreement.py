"""Do two complete runs of the baselines rank them the same? Each run is every submission under
the same protocol (self-tuning by default, the suite, the CPU clock, the same seeds), into its own
experiment directory; each is scored as ``algobench score`` scores it, and Kendall's tau compares
the rankings by benchmark score (and by targets reached). The runs differ only by what the
machine does to them: this measures whether the benchmark's rankings survive its own noise.

    nice -n 10 python benchmarks/bench_rank_agreement.py --runs 2 --studies 1 --out DIR   # ~30 min a run

Resumable: a run's finished trials are skipped, so rerunning continues where it stopped.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BASELINES = ("nadamw", "adamw", "adam", "sgd_momentum", "nesterov")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", default=",".join(BASELINES), help="folders under submissions/")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--studies", type=int, default=1)
    parser.add_argument("--workloads", default="suite")
    parser.add_argument("--ruleset", default="self")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="cpu")
    parser.add_argument("--out", required=True, help="run_<k> experiment directories go here")
    parser.add_argument("--no-nice", dest="nice", action="store_false")
    args = parser.parse_args(argv)
    if args.nice:
        os.nice(10)
    from algobench.cli import main as algobench

    out = Path(args.out).resolve()
    names = [n for n in args.submissions.split(",") if n]
    for run, name in itertools.product(range(1, args.runs + 1), names):
        code = algobench(["submit", str(REPO / "submissions" / name / "submission.py"), "--ruleset", args.ruleset,
                          "--workloads", args.workloads, "--studies", str(args.studies), "--clock", args.clock,
                          "--experiment-dir", str(out / f"run_{run}"), "--quiet"])  # fmt: skip
        if code not in (0, 1):
            return code
    report = agreement([out / f"run_{run}" for run in range(1, args.runs + 1)], args.ruleset)
    print(json.dumps(report, indent=1))
    (out / "rank_agreement.json").write_text(json.dumps(report, indent=1))
    return 0


def agreement(runs: list[Path], ruleset: str) -> dict:
    """Each run's benchmark scores and targets reached per submission, and Kendall's tau between
    every two runs' rankings by each."""
    import math

    from scipy.stats import kendalltau

    from algobench.scoring.pipeline import score

    per_run = {}
    for run in runs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # one study is fewer than the protocol's: said in the report
            result = score(run, default_ruleset=ruleset)
        reached = result.times.apply(lambda row: int(sum(math.isfinite(v) for v in row)), axis=1)
        per_run[run.name] = {
            "score": {k: float(v) for k, v in result.scores["score"].items()},
            "targets_reached": {k: int(v) for k, v in reached.items()},
        }
    taus = {}
    for (a, x), (b, y) in itertools.combinations(per_run.items(), 2):
        common = sorted(set(x["score"]) & set(y["score"]))
        taus[f"{a} vs {b}"] = {
            view: float(kendalltau([x[view][n] for n in common], [y[view][n] for n in common]).statistic)
            for view in ("score", "targets_reached")
        }
    return {"runs": per_run, "kendall_tau": taus}


if __name__ == "__main__":
    sys.exit(main())
