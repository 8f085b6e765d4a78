"""The workload subcommands of ``algobench``: ``workloads``, ``targets`` and ``calibrate``.

``register(subparsers)`` adds them to the main parser; each sets ``func(args) -> exit code``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from algobench.errors import AlgobenchError


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    listing = subparsers.add_parser(
        "workloads",
        help="list workloads and variants with metric, targets, budget and where the targets came from",
    )
    listing.add_argument("--base-only", action="store_true", help="hide variants")
    listing.add_argument(
        "--scale", default=None, help="add each workload's problem sizes at this scale (cpu, gpu, tiny; imports them)"
    )
    listing.set_defaults(func=run_workloads)

    targets = subparsers.add_parser(
        "targets",
        help="set workload targets the AlgoPerf way (resumable; hours for the whole suite)",
        description="Tune AdamW, NAdamW, heavy-ball and Nesterov by quasi-random search, rerun each best "
        "point over seeds, and write the winner's median as the target (variants rerun the base "
        "winner instead). Rerunning the same command resumes where it stopped. The targets files "
        "are written to --out; a maintainer copies them into the source tree's workloads/targets/ "
        "to make them the benchmark's targets (the installed package is never written to).",
    )
    targets.add_argument("workloads", nargs="+", help="workload names, or 'all' (bases first, then variants)")
    targets.add_argument("--trials", type=_positive_int, default=None, help="search trials per optimizer (default: 6)")
    targets.add_argument(
        "--seeds", type=_positive_int, default=None, help="reruns of each optimizer's best point (default: 3)"
    )
    targets.add_argument(
        "--target-seeds", type=_positive_int, default=None, help="reruns of the winner, or of a variant (default: 5)"
    )
    targets.add_argument(
        "--out",
        metavar="DIR",
        default="targets",
        help="folder for the <workload>.json targets files; a maintainer copies them into workloads/targets/ "
        "(default: ./targets). A variant reads its base's file here, else the installed one",
    )
    targets.add_argument("--dir", default=None, help="trial directories (default: $ALGOBENCH_CACHE_DIR/targets)")
    targets.add_argument(
        "--reseed-winner",
        action="store_true",
        help="a base workload reruns the winner its targets file records over --target-seeds seeds, without "
        "searching again (AlgoPerf's 20 seeds: --target-seeds 20)",
    )
    targets.add_argument(
        "--check-seeds",
        type=_positive_int,
        default=None,
        help="then run the winner on this many fresh seeds and record how many reach the new target "
        "(the median rule implies about half)",
    )
    targets.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    targets.set_defaults(func=run_targets)

    calibrate = subparsers.add_parser(
        "calibrate",
        help="time each workload's reference step and scale budgets to this machine",
    )
    calibrate.add_argument(
        "--workloads",
        default=None,
        help="comma-separated names, or 'suite' (default: every base workload that needs no --data-dir)",
    )
    calibrate.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    calibrate.add_argument(
        "--threads",
        default=None,
        help="comma-separated torch thread counts per trial to calibrate for (default: 1 and every core)",
    )
    calibrate.add_argument(
        "--write-reference", action="store_true", help="make this machine the reference (maintainers only)"
    )
    calibrate.set_defaults(func=run_calibrate)


def run_workloads(args: argparse.Namespace) -> int:
    """The listing reads the registry and the targets files only: no torch, no workload module
    (``--scale`` adds each workload's sizes, which needs its class)."""
    from algobench.workloads.calibration import calibration_factor, calibration_path
    from algobench.workloads.registry import describe, workload_class, workload_names

    rows = []
    for name in workload_names():
        facts = describe(name)
        if args.base_only and facts["variant"]:
            continue
        row = [
            name if not facts["variant"] else f"  {name}",
            facts["mirrors"],
            facts["metric"],
            f"{facts['validation_target']:g}",
            f"{facts['test_target']:g}",
            f"{facts['budget_sec'] * calibration_factor(name):g}",
            facts["targets_from"],
        ]
        if args.scale:
            sizes = workload_class(name).sizes
            if args.scale not in sizes:
                raise AlgobenchError(f"workload {name!r} has no scale {args.scale!r}; choose one of {', '.join(sizes)}")
            row.append(" ".join(f"{k}={_compact(v)}" for k, v in sizes[args.scale].items()))
        rows.append(tuple(row))
    header = ("workload", "mirrors", "metric", "valid target", "test target", "budget s", "targets from")
    if args.scale:
        header += (f"{args.scale} sizes",)
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    if not calibration_path().exists():
        print("\nbudgets are reference-machine seconds: this machine is uncalibrated (run `algobench calibrate`)")
    return 0


def _compact(value: object) -> str:
    if isinstance(value, tuple | list):
        return "x".join(str(v) for v in value)
    return f"{value:_}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def run_targets(args: argparse.Namespace) -> int:
    from algobench.tuning.target_setting import DEFAULT_SEEDS, DEFAULT_TARGET_SEEDS, DEFAULT_TRIALS, set_targets
    from algobench.workloads.registry import workload_info, workload_names

    names = args.workloads
    if names == ["all"]:
        everything = workload_names()
        names = [n for n in everything if workload_info(n).variant is None]
        names += [n for n in everything if workload_info(n).variant is not None]
    for name in names:
        workload_info(name)  # fail early on an unknown name
    command = " ".join(["algobench", *sys.argv[1:]]) if sys.argv else ""
    out_dir = Path(args.out)
    for name in names:
        print(f"setting targets for {name}", file=sys.stderr)
        document = set_targets(
            name,
            trials=args.trials or DEFAULT_TRIALS,
            seeds=args.seeds or DEFAULT_SEEDS,
            target_seeds=args.target_seeds or DEFAULT_TARGET_SEEDS,
            root=Path(args.dir) if args.dir else None,
            device=args.device,
            command=command,
            out_dir=out_dir,
            reseed_winner=args.reseed_winner,
            check_seeds=args.check_seeds or 0,
        )
        check = document["provenance"].get("fresh_seed_check")
        if check:
            print(f"{name}: {check['reached']} of {check['seeds']} fresh seeds reached the new target", file=sys.stderr)
        print(
            f"{name}: validation target {document['validation_target_value']}, "
            f"test target {document['test_target_value']} "
            f"({document['provenance'].get('winner')}) -> {out_dir / f'{name}.json'}"
        )
    return 0


def run_calibrate(args: argparse.Namespace) -> int:
    from algobench.workloads.calibration import calibrate, calibration_path
    from algobench.workloads.registry import expand_workload_names, workload_class, workload_info, workload_names

    if args.workloads:
        names = expand_workload_names(args.workloads.split(","))
    else:
        names = [n for n in workload_names() if not workload_class(n).needs_data_dir]
    names = [n for n in names if workload_info(n).variant is None]
    threads = None if args.threads is None else _thread_counts(args.threads)
    record = calibrate(names, device=args.device, write_reference=args.write_reference, threads=threads)
    if args.write_reference:
        for name, seconds in sorted(record["step_seconds"].items()):
            print(f"{name:16s} {seconds * 1000:8.1f} ms/step  reference ({record['threads']} thread(s))")
        return 0
    for count, measured in sorted(record["by_threads"].items(), key=lambda item: int(item[0])):
        for name, seconds in sorted(measured["step_seconds"].items()):
            factor = measured["factors"].get(name)
            shown = f"factor {factor:.2f}" if factor is not None else "no reference"
            print(f"{name:16s} {count} thread(s) {seconds * 1000:8.1f} ms/step  {shown}")
    if record.get("uncalibrated"):
        print(f"no reference step for: {', '.join(record['uncalibrated'])} (their factor stays 1.0)")
    print(f"written to {calibration_path()}")
    return 0


def _thread_counts(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise AlgobenchError(f"--threads must be comma-separated whole numbers, got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    """``python -m algobench.workloads.cli …``: these subcommands on their own."""
    parser = argparse.ArgumentParser(prog="algobench")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
