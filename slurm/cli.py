"""``algobench slurm submit`` and ``algobench slurm status``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from algobench.errors import AlgobenchError


def run_slurm_submit(args: argparse.Namespace) -> int:
    """Submit the selected trials as jobs, wait (bounded) and print the time-to-target table.

    The trials go through the same driver loop as ``algobench submit`` (``launch``); only the
    executor differs.
    """
    from algobench.cli import plan_from_args, rescaled_for_transfer
    from algobench.results import read_summary
    from algobench.scoring.closing_table import format_table, summarize_workloads
    from algobench.slurm.launch import launch
    from algobench.slurm.profiles import load_profile
    from algobench.slurm.reachable import check_cluster

    profile = load_profile(args.profile).with_overrides(
        partition=args.partition, time_min=args.time, mem_gb=args.mem, cpus=args.cpus, gpus=args.gpus,
        array_parallelism=args.array_parallelism,
    )  # fmt: skip
    if args.ruleset == "transfer" and not args.wait:
        raise AlgobenchError("--ruleset transfer needs waiting (drop --no-wait): the studies are planned from the "
                             "results of the rescale trials")  # fmt: skip
    if not args.wait and args.cluster != "slurm":
        raise AlgobenchError("--no-wait needs --cluster slurm (local jobs are children of this command)")
    check_cluster(args.cluster, profile.partition)  # before planning: the commonest mistake first
    specs = plan_from_args(args)
    root = Path(args.experiment_dir).resolve()
    print(f"{len(specs)} trials on {args.cluster} -> {args.experiment_dir}", file=sys.stderr)

    def report(item) -> None:
        cause = f": {item.cause}" if item.cause and item.outcome in ("failed", "timeout") else ""
        print(f"  {item.spec.trial_dir().relative_to(root)}: {item.outcome}{cause}", file=sys.stderr)

    def run_batch(batch: list) -> list:
        launch(
            batch, cluster=args.cluster, profile=profile, retry_failed=args.retry_failed,
            wait=True, wait_timeout_sec=args.wait_timeout, on_finished=report,
        )  # fmt: skip
        return [(spec, read_summary(spec.trial_dir())) for spec in batch]

    if args.ruleset == "transfer":
        specs = rescaled_for_transfer(specs, args, run_batch)

    launched = launch(
        specs, cluster=args.cluster, profile=profile, retry_failed=args.retry_failed,
        wait=args.wait, wait_timeout_sec=args.wait_timeout, on_finished=report,
    )  # fmt: skip
    jobs = sorted({str(item.job.job_id).split("_")[0] for item in launched if item.job is not None})
    if not jobs:
        print("every trial has finished already (--retry-failed reruns failed ones)", file=sys.stderr)
    if not args.wait:
        print(f"submitted or still running: {sum(i.job is not None for i in launched)} trials, "
              f"SLURM job(s) {', '.join(jobs) or '-'}", file=sys.stderr)  # fmt: skip
        print(f"follow with: algobench slurm status {args.experiment_dir}")
        return 0
    summaries = [read_summary(item.spec.trial_dir()) for item in launched]
    print(format_table(summarize_workloads([s for s in summaries if s is not None]), args.experiment_dir))
    unfinished = sum(s is None for s in summaries)
    if unfinished:
        print(f"{unfinished} trials unfinished; rerun this command to wait for them, or follow them with "
              f"`algobench slurm status {args.experiment_dir}`", file=sys.stderr)  # fmt: skip
        return 1
    return 0


def run_slurm_status(args: argparse.Namespace) -> int:
    """Print one line per trial: its job, the job's state, its last evaluation."""
    from algobench.slurm.status import experiment_status, format_status

    if not Path(args.experiment_dir).is_dir():
        raise AlgobenchError(f"no experiment directory at {args.experiment_dir}")
    print(format_status(experiment_status(args.experiment_dir)))
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``slurm submit`` and ``slurm status`` to the ``algobench`` command line."""
    from algobench.cli import add_selection_arguments
    from algobench.slurm.profiles import ClusterProfile

    default = ClusterProfile()  # the defaults live there, once
    slurm = commands.add_parser("slurm", help="run trials as SLURM (or local) jobs through submitit")
    actions = slurm.add_subparsers(dest="slurm_command", required=True, metavar="ACTION")

    submit = actions.add_parser(
        "submit",
        help="one job per (study, workload, trial), as one job array",
        description="Submit every unfinished trial as a submitit job (one SLURM job array), wait for "
        "them (bounded) and print the time-to-target table. Rerunning submits only unfinished trials "
        "and waits for those still queued or running. A preempted or timed-out job is requeued and "
        "its trial resumes from its last checkpoint.",
    )
    add_selection_arguments(submit)
    submit.add_argument(
        "--cluster",
        choices=("slurm", "local", "debug"),
        default="slurm",
        help="slurm (default), local (processes on this machine), debug (one after another in this process)",
    )
    submit.add_argument(
        "--profile",
        default=None,
        help="cluster profile: a YAML file, or the name of one in slurm/profiles/ (see example.yaml)",
    )
    submit.add_argument("--partition", default=None, help="SLURM partition (default: the profile's, else SLURM's)")
    submit.add_argument("--time", type=int, default=None, help=f"minutes per trial job (default {default.time_min})")
    submit.add_argument(
        "--mem", type=float, default=None, help=f"GB of memory per trial job (default {default.mem_gb:g})"
    )
    submit.add_argument(
        "--cpus", type=int, default=None, help=f"CPUs per trial job, and its torch threads (default {default.cpus})"
    )
    submit.add_argument("--gpus", type=int, default=None, help=f"GPUs per trial job (default {default.gpus})")
    submit.add_argument(
        "--array-parallelism",
        type=int,
        default=None,
        help=f"trial jobs running at once (default {default.array_parallelism}); with --cluster local at most "
        "cores // --cpus, so that trials side by side measure what each would alone",
    )
    submit.add_argument("--retry-failed", action="store_true", help="also rerun failed or timed-out trials")
    submit.add_argument("--no-wait", dest="wait", action="store_false", help="submit and return (slurm only)")
    submit.add_argument("--wait-timeout", type=float, default=None, help="stop waiting after this many seconds")
    submit.set_defaults(func=run_slurm_submit)

    status = actions.add_parser("status", help="per trial: job id, job state, last step and validation metric")
    status.add_argument("experiment_dir", help="the experiment directory")
    status.set_defaults(func=run_slurm_status)
