"""The ``algobench`` command line: one subcommand per job, errors as one clear line."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import warnings
from collections.abc import Iterator, Sequence

from algobench.errors import AlgobenchError

DEFAULT_EXPERIMENT_DIR = "experiments"


def add_selection_arguments(parser: argparse.ArgumentParser) -> None:
    """What to run: shared by ``submit`` and ``slurm submit``."""
    parser.add_argument("submission", help="path of the submission file (AlgoPerf or native form)")
    parser.add_argument(
        "--workloads",
        default="mnist1d",
        help="comma-separated workload names (see `algobench workloads`), or suite for the eight AlgoPerf mirrors; "
        "default: %(default)s",
    )
    from algobench.tuning.rulesets import RULESETS

    parser.add_argument(
        "--ruleset",
        choices=tuple(RULESETS),
        default="external",
        help="external: hyperparameters from the search space; transfer: the same, after five trials per workload "
        "rescale the learning rates to this suite (protocol transfer-v1); self: none, 1.5x budget "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--trials", type=int, default=5, help="trials per study (external tuning; default: %(default)s)"
    )
    parser.add_argument("--studies", type=int, default=3, help="independent studies (default: %(default)s)")
    parser.add_argument(
        "--search-space",
        default=None,
        help="tuning_search_space.json (default: the one next to the submission)",
    )
    parser.add_argument(
        "--experiment-dir",
        default=DEFAULT_EXPERIMENT_DIR,
        help="where results go; rerunning the same command resumes there (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for hyperparameter sampling and trials")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="default: %(default)s")
    parser.add_argument(
        "--scale",
        choices=("cpu", "gpu", "tiny"),
        default="cpu",
        help="problem size: cpu (default; targets are set at this size), gpu (larger models and data) "
        "or tiny (seconds-long smoke runs; targets are not meaningful there)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (cores) per trial, recorded with its results (default: every core this process may use)",
    )
    parser.add_argument(
        "--trial-timeout",
        type=float,
        default=None,
        help="kill a trial after this many seconds (default: 2 x its budget + 120 s)",
    )
    parser.add_argument("--data-dir", default=None, help="dataset folder, for workloads that read one from disk")
    parser.add_argument(
        "--no-stop-on-target",
        dest="stop_on_target",
        action="store_false",
        help="train to the budget even after the target is reached",
    )
    add_clock_argument(parser)
    parser.add_argument(
        "--import-root",
        default=None,
        metavar="DIR",
        help="put DIR first on the trial processes' sys.path, for a submission that imports its own package "
        "by its path in another repository (recorded in each trial's meta_data.json)",
    )


def add_clock_argument(parser: argparse.ArgumentParser) -> None:
    """``--clock``: what budgets and time-to-target are measured on (shared by submit and tune)."""
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall: elapsed time (AlgoPerf's; moves with the machine's load); cpu: the trial process's CPU "
        "time over its --threads threads (default 1 on this clock), which other processes' load hardly "
        "moves. Evaluation is off either clock; scoring refuses to mix them (default: %(default)s)",
    )


def with_run_options(specs: list, args: argparse.Namespace) -> list:
    """The trials with the options every executor carries in the spec: clock and import root."""
    import dataclasses
    from pathlib import Path

    root = getattr(args, "import_root", None)
    if root is not None:
        if not Path(root).is_dir():
            raise AlgobenchError(f"--import-root {root}: not a directory")
        root = str(Path(root).resolve())
    # Idle OpenMP workers spin for a while before they sleep, and the CPU clock counts the spinning:
    # on that clock a trial gets one thread unless --threads says otherwise.
    threads = {"threads": 1} if args.clock == "cpu" and getattr(args, "threads", None) is None else {}
    return [dataclasses.replace(spec, clock=args.clock, import_root=root, **threads) for spec in specs]


def plan_from_args(args: argparse.Namespace) -> list:
    """The trials selected by ``add_selection_arguments``' options."""
    from algobench.submission_check import check_submission_file

    check_submission_file(args.submission)  # a broken file is reported before anything heavy loads
    from algobench.tuning.planning import plan_trials
    from algobench.workloads.registry import expand_workload_names

    workloads = expand_workload_names([w.strip() for w in args.workloads.split(",") if w.strip()])
    if not workloads:
        raise AlgobenchError("--workloads is empty")
    specs = plan_trials(
        args.submission,
        workloads=workloads,
        ruleset=args.ruleset,
        num_trials=args.trials,
        num_studies=args.studies,
        experiment_dir=args.experiment_dir,
        seed=args.seed,
        device=args.device,
        search_space_path=args.search_space,
        stop_on_target=args.stop_on_target,
        data_dir=args.data_dir,
        scale=args.scale,
        threads=args.threads,
        trial_timeout_sec=args.trial_timeout,
    )
    refuse_other_rulesets(specs)
    return with_run_options(specs, args)


def refuse_other_rulesets(specs: list) -> None:
    """A finished trial is never run again, so a trial directory finished under another ruleset
    (``external`` then ``transfer`` into one experiment directory) would pass for this run's."""
    from algobench.results import read_summary

    for spec in specs:
        summary = read_summary(spec.trial_dir())
        if summary is not None and summary.get("ruleset") not in (None, spec.ruleset):
            raise AlgobenchError(
                f"{spec.trial_dir()} finished under --ruleset {summary['ruleset']}, and this run is --ruleset "
                f"{spec.ruleset}: give each ruleset its own --experiment-dir"
            )


def make_executor(
    executor: str, *, parallel: int | None, threads: int, workloads: Sequence[str], show_progress: bool = False,
    ray_address: str | None = None,
):  # fmt: skip
    """The executor named ``executor``, with at most as many trials at once as the cores allow
    (``parallel`` None: as many as they allow), its trial processes started with the workloads'
    modules already imported."""
    from algobench.executors.base import available_cores
    from algobench.executors.inprocess import InProcessExecutor
    from algobench.executors.process import ProcessExecutor

    if executor == "ray":  # Ray is imported only here: nothing else pays for it
        from algobench.executors.ray_executor import RayExecutor

        return RayExecutor(address=ray_address, parallel=parallel, preload=preload_modules(workloads))
    if executor == "inprocess":
        if parallel not in (None, 1):
            raise AlgobenchError("--executor inprocess runs one trial at a time; drop --parallel")
        return InProcessExecutor(show_progress=show_progress)
    fair = max(available_cores() // threads, 1)
    if parallel is not None and parallel > fair:
        warnings.warn(
            f"--parallel {parallel} with {threads} thread(s) per trial needs {parallel * threads} cores; "
            f"this machine gives {available_cores()}: running {fair} at a time so that trials measure what "
            f"they would alone",
            stacklevel=2,
        )
    parallel = fair if parallel is None else max(min(parallel, fair), 1)
    return ProcessExecutor(
        parallel=parallel, show_progress=show_progress and parallel == 1, preload=preload_modules(workloads)
    )


def preload_modules(workloads: Sequence[str]) -> tuple[str, ...]:
    """What the trial processes' fork server imports once, so that no trial (nor each of a
    population's many short segments) pays for it: the workloads' modules, and scikit-learn's
    datasets, which the digits workloads import when they load their data (1-3 s a process)."""
    from algobench.workloads.registry import workload_info

    modules = [workload_info(name).class_path.split(":")[0] for name in workloads]
    return ("algobench.workloads.registry", "sklearn.datasets", *dict.fromkeys(modules))


def run_submit(args: argparse.Namespace) -> int:
    specs = plan_from_args(args)  # first: a broken submission is reported before anything heavy loads
    from algobench.layout import TrialStatus
    from algobench.lock import experiment_lock
    from algobench.scoring.closing_table import format_table, summarize_workloads
    from algobench.tuning.driver import drive_specs
    from algobench.tuning.transfer import rescale_label

    print(f"{len(specs)} trials -> {args.experiment_dir}", file=sys.stderr)

    def report(spec, summary, error) -> None:
        where = f"  {spec.workload_name} {rescale_label(spec) or f'study {spec.study} trial {spec.trial}'}"
        if summary is None:
            print(f"{where}: not finished, retried on rerun: {str(error).splitlines()[0]}", file=sys.stderr)
            return
        ttt = summary.get("time_to_target")
        outcome = f"target in {ttt:.1f} s" if ttt is not None else summary["status"]
        cause = f": {summary['error'].splitlines()[0]}" if summary.get("error") else ""
        print(f"{where}: {outcome}{cause}", file=sys.stderr)
        for note in summary.get("notes") or []:
            print(f"{where}: note: {note}", file=sys.stderr)

    with experiment_lock(args.experiment_dir):
        workloads = list(dict.fromkeys(spec.workload_name for spec in specs))
        executor = make_executor(
            args.executor, parallel=args.parallel, threads=specs[0].threads, workloads=workloads,
            show_progress=not args.quiet, ray_address=args.ray_address,
        )  # fmt: skip

        def run_batch(batch: list) -> list:
            if args.retry_failed:
                _forget_failures(batch)
            return drive_specs(batch, executor, on_result=report)

        with executor:
            if args.ruleset == "transfer":
                specs = rescaled_for_transfer(specs, args, run_batch)
            results = run_batch(specs)
    summaries = [summary for _, summary in results if summary is not None]
    print(format_table(summarize_workloads(summaries), args.experiment_dir))
    failed = [TrialStatus.FAILED, TrialStatus.TIMEOUT, TrialStatus.INVALID]
    produced = [s for s in summaries if TrialStatus.parse(s.get("status")) not in failed]
    if not produced:
        counts = ", ".join(
            f"{sum(TrialStatus.parse(s.get('status')) == status for s in summaries)} {status}" for status in failed
        )
        unfinished = len(results) - len(summaries)
        print(
            f"algobench: no trial produced a result ({counts}, {unfinished} not finished); "
            f"causes are in each trial's summary.json and error.txt",
            file=sys.stderr,
        )
        return 1
    return 0


def rescaled_for_transfer(specs: list, args: argparse.Namespace, run) -> list:
    """``--ruleset transfer``: run (or reuse) each workload's rescale trials through ``run`` (a batch of
    specs -> (spec, summary) pairs), then return the studies' trials with their learning rates rescaled."""
    from algobench.tuning.planning import search_space_of
    from algobench.tuning.transfer import PROTOCOL, RESCALE_TRIALS, apply_factors, reference_point, search_factors

    reference = reference_point(search_space_of(args.submission, args.search_space))
    print(f"{PROTOCOL}: rescale trials first ({RESCALE_TRIALS} per workload)", file=sys.stderr)
    choices = search_factors(specs, reference, args.seed, run)
    for choice in choices.values():
        print(f"{PROTOCOL}: {choice.workload}: learning rates x{choice.factor:.3g}", file=sys.stderr)
    return apply_factors(specs, choices)


def _forget_failures(specs: list) -> None:
    """``--retry-failed``: drop the summaries of failed and timed-out trials so they run again."""
    from algobench.layout import SUMMARY_FILE, TrialStatus
    from algobench.results import read_summary

    for spec in specs:
        summary = read_summary(spec.trial_dir())
        if summary is not None and TrialStatus(summary["status"]).retryable:
            (spec.trial_dir() / SUMMARY_FILE).unlink()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="algobench",
        description="Time-to-result benchmark of neural-network training algorithms "
        "(AlgoPerf's rules, sized for a CPU).",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    submit = commands.add_parser(
        "submit",
        help="run a submission on workloads and print time-to-target per workload",
        description="Run SUBMISSION on the chosen workloads under a tuning ruleset; prints a "
        "progress bar per trial and, at the end, the time-to-target of each workload. "
        "Results go to EXPERIMENT_DIR/<submission>/study_<k>/<workload>_pytorch/trial_<j>/.",
    )
    add_selection_arguments(submit)
    submit.add_argument(
        "--executor",
        choices=("process", "inprocess", "ray"),
        default="process",
        help="process (default: each trial in its own process, so an exit, crash, hang or clock "
        "tampering is only that trial's outcome), inprocess (debugging: tracebacks, breakpoints) or ray "
        "(each trial a Ray task, in its own process there, on a local Ray or the cluster at --ray-address)",
    )
    submit.add_argument(
        "--ray-address",
        default=None,
        metavar="ADDR",
        help="--executor ray: the Ray cluster to join (default: $RAY_ADDRESS, else a local Ray started for the run)",
    )
    submit.add_argument(
        "--parallel",
        type=int,
        default=1,
        help="trials at once (process executor), capped at cores / --threads (default: %(default)s)",
    )
    submit.add_argument("--retry-failed", action="store_true", help="rerun trials that failed or timed out")
    submit.add_argument("--quiet", action="store_true", help="no progress bars")
    submit.set_defaults(func=run_submit)

    from algobench.l2o.cli import register as register_meta_train
    from algobench.scoring.cli import register as register_score
    from algobench.slurm.cli import register as register_slurm
    from algobench.tuning.cli import register as register_tune
    from algobench.workloads.cli import register as register_workloads

    register_workloads(commands)
    register_score(commands)
    register_slurm(commands)
    register_tune(commands)
    register_meta_train(commands)
    return parser


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"algobench: warning: {message}", file=sys.stderr)


class _Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, ``scancel``, a container stopping): the same orderly stop as Ctrl-C."""


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """While a command runs, SIGTERM stops it as Ctrl-C does (trial processes killed, checkpoints
    kept) instead of ending algobench at once and leaving its trial processes running."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: object) -> None:
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings(), _sigterm_as_interrupt():
            if not args.debug:
                warnings.showwarning = _one_line_warning
            return args.func(args)
    except AlgobenchError as error:
        if args.debug:
            raise
        print(f"algobench: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:
        print(
            "algobench: interrupted; finished trials and checkpoints are kept. Run the same command again to resume.",
            file=sys.stderr,
        )
        return 128 + (signal.SIGTERM if isinstance(stop, _Terminated) else signal.SIGINT)


if __name__ == "__main__":
    sys.exit(main())
