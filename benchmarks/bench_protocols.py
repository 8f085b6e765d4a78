"""How does the ranking of submissions change between external tuning and the transfer protocol?
Each submission runs under ``--ruleset external`` and ``--ruleset transfer`` (same seeds, same
points, the suite by default, the CPU clock), each protocol into its own experiment directory;
both are scored as ``algobench score`` scores them, Kendall's tau compares the two rankings (by
benchmark score and by targets reached), and the learning-rate factor the transfer protocol found
is listed per submission and workload.

    nice -n 10 python benchmarks/bench_protocols.py --out DIR \\
        --submissions nadamw,adamw,adam,sgd_momentum,nesterov,PATH/schedule_free_adamw/submission.py

A name is a folder under ``submissions/``; anything else is a submission file's path (AlgoPerf's
v0.5 submissions, from a checkout of mlcommons/submissions_algorithms, run unchanged; pass
``--import-root`` for those that import themselves by their path there). Resumable: finished
trials are skipped, so rerunning continues where it stopped.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from pathlib import Path

from bench_rank_agreement import BASELINES, agreement

REPO = Path(__file__).resolve().parent.parent
PROTOCOLS = ("external", "transfer")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", default=",".join(BASELINES), help="baseline names or submission paths")
    parser.add_argument("--workloads", default="suite")
    parser.add_argument("--studies", type=int, default=1)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--clock", choices=("wall", "cpu"), default="cpu")
    parser.add_argument(
        "--protocols", default=",".join(PROTOCOLS), help="only these (one process each can run side by side)"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads per trial (the CPU clock counts all)")
    parser.add_argument("--import-root", default=None)
    parser.add_argument("--out", required=True, help="one experiment directory per protocol goes here")
    parser.add_argument("--no-nice", dest="nice", action="store_false")
    parser.add_argument("--report-only", action="store_true", help="score what has run; run nothing")
    args = parser.parse_args(argv)
    if args.nice:
        os.nice(10)
    from algobench.cli import main as algobench

    out = Path(args.out).resolve()
    paths = [_submission_path(name) for name in args.submissions.split(",") if name]
    extra = ["--import-root", args.import_root] if args.import_root else []
    protocols = [p for p in args.protocols.split(",") if p]
    if unknown := sorted(set(protocols) - set(PROTOCOLS)):
        parser.error(f"--protocols: unknown {unknown}; choose from {list(PROTOCOLS)}")
    for path, protocol in itertools.product(paths, [] if args.report_only else protocols):
        code = algobench(["submit", str(path), "--ruleset", protocol, "--workloads", args.workloads,
                          "--studies", str(args.studies), "--trials", str(args.trials), "--clock", args.clock,
                          "--threads", str(args.threads),
                          "--experiment-dir", str(out / protocol), "--quiet", *extra])  # fmt: skip
        if code not in (0, 1):
            return code
    report = agreement([out / protocol for protocol in PROTOCOLS], "external")
    report["transfer_factors"] = factors(out / "transfer")
    report["intervals"] = {protocol: intervals(out / protocol) for protocol in PROTOCOLS}
    (out / "protocols.json").write_text(json.dumps(report, indent=1))
    print(side_by_side(report))
    return 0


def intervals(experiment: Path) -> dict[str, dict[str, list[float]]]:
    """{submission: {"score" or "time/<workload>": [point, low, high]}}: ``algobench score``'s
    numbers with its bootstrap intervals over studies (its defaults: 1000 resamples, 95 %, seed 0)."""
    import warnings

    from algobench.scoring.intervals import bootstrap
    from algobench.scoring.pipeline import score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fewer studies than the protocol's: said in the README
        result = score(experiment)
    spread = bootstrap(result)
    (score_low, score_high), (time_low, time_high) = spread.scores, spread.times
    table: dict[str, dict[str, list[float]]] = {}
    for name in result.scores.index:
        row = {"score": [result.scores.at[name, "score"], score_low[name], score_high[name]]}
        for workload in result.times.columns:
            bounds = (time_low.at[name, workload], time_high.at[name, workload])
            row[f"time/{workload}"] = [result.times.at[name, workload], *bounds]
        table[name] = {key: [float(v) for v in values] for key, values in row.items()}
    return table


def side_by_side(report: dict) -> str:
    """A markdown table: per submission, each protocol's score and times with their intervals."""
    columns = sorted({key for rows in report["intervals"].values() for row in rows.values() for key in row})
    names = sorted({name for rows in report["intervals"].values() for name in rows})
    header = ["submission", *(f"{p} {c}" for p in PROTOCOLS for c in columns), "transfer factors"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in names:
        cells = [name]
        for protocol in PROTOCOLS:
            row = report["intervals"][protocol].get(name, {})
            cells += [_interval(row[c]) if c in row else "not run" for c in columns]
        found = report["transfer_factors"].get(name, {})
        cells.append(", ".join(f"{w} x{f:.3g}" for w, f in sorted(found.items())) or "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _interval(values: list[float]) -> str:
    point, low, high = values
    return f"{point:.3g} [{low:.3g}, {high:.3g}]"


def factors(experiment: Path) -> dict[str, dict[str, float]]:
    """{submission: {workload: learning-rate factor}} from the transfer runs' ``factor.json`` files."""
    from algobench.layout import TUNING_DIR
    from algobench.tuning.transfer import FACTOR_FILE, PROTOCOL

    found: dict[str, dict[str, float]] = {}
    for path in sorted(experiment.glob(f"{TUNING_DIR}/*/{PROTOCOL}/*/{FACTOR_FILE}")):
        record = json.loads(path.read_text())
        found.setdefault(path.parent.name, {})[record["workload"]] = record["factor"]
    return found


def _submission_path(name: str) -> Path:
    path = Path(name)
    return path.resolve() if path.suffix == ".py" else REPO / "submissions" / name / "submission.py"


if __name__ == "__main__":
    sys.exit(main())
