"""``algobench score``: score experiment directories and print submissions with their score and ratios.

The lead's ``algobench/cli.py`` calls ``register(subparsers)``; ``run_score(args)`` returns the
exit code: 0 scored, 2 bad input (one line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings

from algobench.scoring.errors import ScoringError, ScoringWarning
from algobench.scoring.intervals import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, DEFAULT_SEED
from algobench.scoring.protocols import DEFAULT_PROTOCOL, PROTOCOL_NAMES, RULES, RULESETS


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``score`` subcommand."""
    parser = subparsers.add_parser(
        "score",
        help="score experiment directories (algobench's or AlgoPerf's layout)",
        description=(
            "Time-to-target per trial, best trial per study, median over studies, ratios to the best "
            "submission per workload, performance profiles and the benchmark score (AlgoPerf's method)."
        ),
    )
    parser.add_argument("experiment_dirs", nargs="+", metavar="EXPERIMENT_DIR", help="directories to score")
    parser.add_argument(
        "--protocol", choices=PROTOCOL_NAMES, default=DEFAULT_PROTOCOL,
        help="named, versioned scoring protocol (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--rules", choices=tuple(RULES), default=None,
        help="where AlgoPerf's code and written rules differ, follow its code (reproduces its published "
        "leaderboards; default for algoperf-*) or its docs (default for algobench-v1)",
    )  # fmt: skip
    parser.add_argument(
        "--variant-rule", dest="variant_rule", action=argparse.BooleanOptionalAction, default=None,
        help="count a base workload only if its held-out variants also reached their targets "
        "(default: as the protocol says)",
    )  # fmt: skip
    parser.add_argument("--reference", metavar="SUBMISSION", help="also report geometric-mean speedups against it")
    parser.add_argument("--out", metavar="DIR", help="write CSV tables, plots and report.html here")
    parser.add_argument("--no-plots", dest="plots", action="store_false", help="with --out: tables only")
    parser.add_argument(
        "--ruleset", choices=RULESETS, default="external",
        help="for logs that do not record their ruleset (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument("--strict", action="store_true", help="stop at the first problem in the logs")
    parser.add_argument(
        "--bootstrap", type=int, default=DEFAULT_RESAMPLES, metavar="N",
        help="bootstrap resamples over studies for the intervals beside every number; 0: none "
        "(default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--confidence", type=float, default=DEFAULT_CONFIDENCE, help="of the intervals (default: %(default)s)"
    )
    parser.add_argument(
        "--bootstrap-seed", type=int, default=DEFAULT_SEED, help="the resampling's seed (default: %(default)s)"
    )
    parser.set_defaults(func=run_score)


def _cell(value: float) -> str:
    if math.isnan(value):
        return "-"
    return "inf" if math.isinf(value) else f"{value:.3f}"


def _with_interval(value: float, low: float, high: float, digits: int = 3) -> str:
    """``value [low, high]``, the bootstrap interval over studies beside the point estimate."""
    cell = _cell if digits == 3 else (lambda v: "-" if math.isnan(v) else f"{v:.{digits}f}")
    if math.isnan(value):
        return "-"
    return f"{cell(value)} [{cell(low)}, {cell(high)}]"


def format_table(result, intervals=None) -> str:
    """Submissions, best first: score, speedup (with a reference), then the ratio per workload;
    with ``intervals`` (``scoring.intervals.bootstrap``), each with its interval over studies."""
    table = result.scores.drop(columns=["reference"], errors="ignore").join(result.ratios)
    table = table.sort_values("score", ascending=False, kind="stable")
    import pandas as pd

    shown = pd.DataFrame(index=table.index)
    if intervals is None:
        shown["score"] = table["score"].map(lambda v: f"{v:.4f}")
        for column in table.columns.drop("score"):
            shown[column] = table[column].map(_cell)
        return shown.to_string()
    low, high = intervals.scores
    shown["score"] = [_with_interval(table.at[s, "score"], low[s], high[s], 4) for s in table.index]
    if "speedup" in table:
        speed_low, speed_high = intervals.speedups
        shown["speedup"] = [
            _with_interval(table.at[s, "speedup"], speed_low.at[s, "speedup"], speed_high.at[s, "speedup"])
            for s in table.index
        ]
    ratio_low, ratio_high = intervals.ratios
    for column in result.ratios.columns:
        shown[column] = [
            _with_interval(table.at[s, column], ratio_low.at[s, column], ratio_high.at[s, column]) for s in table.index
        ]
    return shown.to_string()


def format_times(result, intervals) -> str:
    """Time-to-target per submission and workload (median over studies) with its interval."""
    import pandas as pd

    low, high = intervals.times
    times = result.times
    shown = pd.DataFrame(index=times.index)
    for column in times.columns:
        shown[column] = [
            _with_interval(times.at[s, column], low.at[s, column], high.at[s, column]) for s in times.index
        ]
    return shown.to_string()


def format_speedups(result, intervals) -> str:
    """Each speed-up against the reference with its interval, and whether it stands out of the noise."""
    import pandas as pd

    low, high = intervals.speedups
    verdicts = intervals.verdicts()
    marks = {"faster": "faster", "slower": "slower", "indistinguishable": "noise"}
    speed = result.speedups
    shown = pd.DataFrame(index=speed.index)
    for column in speed.columns:
        shown[column.removeprefix("speedup/") if column != "speedup" else "overall"] = [
            f"{_with_interval(speed.at[s, column], low.at[s, column], high.at[s, column])} "
            f"{marks[verdicts.at[s, column]]}"
            for s in speed.index
        ]
    return shown.drop(index=result.reference).to_string()


def format_variants(variants) -> str:
    """Per submission and variant: studies reaching the base, and of those, missing the variant."""
    shown = variants.assign(
        **{
            "base reached": variants["base_reached"].astype(str) + "/" + variants["studies"].astype(str),
            "variant missed where base reached": variants["base_only"].astype(str)
            + "/"
            + variants["base_reached"].astype(str),
        }
    )
    columns = ["submission", "base", "variant", "base reached", "variant missed where base reached", "verdict"]
    return shown[columns].to_string(index=False)


def run_score(args: argparse.Namespace) -> int:
    from algobench.scoring.outputs import write_outputs
    from algobench.scoring.pipeline import score

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ScoringWarning)
        try:
            result = score(
                args.experiment_dirs, args.protocol, rules=args.rules, variant_rule=args.variant_rule,
                reference=args.reference, strict=args.strict, default_ruleset=args.ruleset,
            )  # fmt: skip
            paths = write_outputs(result, args.out, plots=args.plots) if args.out else {}
            intervals = None
            if args.bootstrap:
                from algobench.scoring.intervals import bootstrap

                intervals = bootstrap(result, args.bootstrap, args.confidence, args.bootstrap_seed)
        except ScoringError as error:
            _print_warnings(caught)
            print(f"algobench score: error: {error}", file=sys.stderr)
            return 2
    _print_warnings(caught)
    protocol = result.protocol
    print(
        f"protocol {protocol.name} (rules: {protocol.rules.name}), times on the {result.clock} clock; "
        "ratios to the best submission per workload"
    )
    if intervals is not None:
        print(
            f"[low, high]: {intervals.confidence:.0%} bootstrap intervals over studies "
            f"({intervals.n_resamples} resamples, seed {intervals.seed})"
        )
    print(format_table(result, intervals))
    if intervals is not None:
        print(f"\ntime-to-target (median over studies, seconds on the {result.clock} clock):")
        print(format_times(result, intervals))
        if result.speedups is not None:
            print(f"\nspeed-ups against {result.reference} (noise: the interval holds 1):")
            print(format_speedups(result, intervals))
    if result.variants is not None and not result.variants.empty:
        print("\nvariants: studies that reached the base target but missed the variant's")
        print(format_variants(result.variants))
    if args.out:
        print(f"wrote {len(paths)} files to {args.out} (report: {paths.get('report', '-')})")
    _print_tuner_views(args.experiment_dirs)
    return 0


def _print_tuner_views(experiment_dirs: list[str]) -> None:
    """Experiments that hold tuner runs are also scored per tuner, in the three views."""
    from pathlib import Path

    from algobench.scoring.tuners import format_tuner_scores, score_tuners
    from algobench.tuning.lineage import tuning_dirs

    tuned = [path for path in experiment_dirs if tuning_dirs(Path(path))]
    if tuned:
        print("\ntuners (algobench tune score for the details):")
        print(format_tuner_scores(score_tuners(tuned)))


def _print_warnings(caught: list[warnings.WarningMessage]) -> None:
    messages = [str(w.message) for w in caught if issubclass(w.category, ScoringWarning)]
    for message in messages:
        print(f"warning: {message}", file=sys.stderr)
    if messages:
        print(f"{len(messages)} warning(s); --strict turns them into errors", file=sys.stderr)
