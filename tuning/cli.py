"""``algobench tune``: run a tuner on a submission, and rerun, export or score what it found.

    algobench tune SUBMISSION [--tuner pbt|halton] [selection options] [--config FILE.yaml] [--population N] ...
    algobench tune replay DIR [--member M|best] [--seeds S] [--workloads ...] [--variants]
    algobench tune export DIR [--member M|best] --out FILE.py
    algobench tune score DIR...
    algobench tune plot DIR [--out FILE.png]

``algobench/cli.py`` calls ``register(subparsers)``. Each study of each workload is one tuner
run: the driver keeps as many trial segments in flight as the cores allow, the tuner decides
between them, and a rerun of the same command resumes from the trial directories and the event
log (the experiment lock keeps two runs out of one directory).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from algobench.errors import AlgobenchError

SUBCOMMANDS = ("replay", "export", "score", "plot")
# Command-line flags that set tuner settings: (flag, setting, type, help).
SETTING_FLAGS = (
    ("--population", "population", int, "pbt: members (default 8)"),
    ("--interval", "interval", int, "pbt: steps between decisions (default: step_hint // 20)"),
    ("--burn-in", "burn_in", int, "pbt: no exploit before this step"),
    ("--mode", "mode", str, "pbt: sync (rounds, default) or async"),
    ("--selection", "selection", str, "pbt: truncation (default) or tournament"),
    ("--quantile", "quantile", float, "pbt: truncation's bottom/top fraction (default 0.25)"),
    ("--explore", "explorer", str, "pbt: a copy's new values: perturb (default) or gp-opt (a GP bandit)"),
    ("--trials", "trials", int, "halton: trials per study (default 5); optuna tuners, gp-opt: default 20"),
    ("--startup-trials", "startup_trials", int, "tpe/gp/cmaes: random trials first (default: ceil(trials / 3))"),
    ("--pruner", "pruner", str, "tpe/gp/cmaes/qmc: none (default), median, sha, hyperband or wilcoxon"),
    ("--prune-interval", "prune_interval", int, "with a pruner: steps between decisions (default step_hint // 20)"),
    ("--storage", "storage", str, "tpe/gp/cmaes/qmc: journal file or Optuna URL (default <exp>/tuning/optuna.journal)"),
    ("--acquisition", "acquisition", str, "gp-opt, pbt --explore gp-opt: ucb (default) or ei"),
    ("--max-steps", "max_steps", int, "stop every trial at this step (default: the budget ends it)"),
    ("--eval-every", "eval_every_steps", int, "evaluate every this many steps (pbt default: interval / 2)"),
)


class _TuneParser(argparse.ArgumentParser):
    """``tune SUBMISSION ...`` and ``tune replay|export|score|plot ...`` under one command name."""

    subcommands: dict[str, argparse.ArgumentParser]

    def parse_known_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:
        args = list(sys.argv[1:] if args is None else args)
        if args and args[0] in self.subcommands:
            return self.subcommands[args[0]].parse_known_args(args[1:], namespace)
        return super().parse_known_args(args, namespace)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``tune`` (and its replay/export/score/plot subcommands)."""
    from algobench.cli import DEFAULT_EXPERIMENT_DIR
    from algobench.tuning.tuners import describe_tuners

    parser = subparsers.add_parser(
        "tune",
        help="tune a submission's hyperparameters (PBT, Halton); replay, export, score what a tuner found",
        description="Run a tuner on SUBMISSION's search space: each study of each workload is one tuner run "
        "(a PBT population, or N Halton trials), its members written as AlgoPerf trial directories under "
        "EXPERIMENT_DIR/<submission>_<tuner>/, its decisions to EXPERIMENT_DIR/tuning/<workload>/study_<k>/. "
        "A rerun of the same command resumes. Also: `algobench tune replay|export|score|plot --help`.",
        epilog=f"tuners:\n{describe_tuners()}\n\nsubcommands:\n"
        "  replay   rerun a member's hyperparameter schedule on fresh seeds (or its own, exactly)\n"
        "  export   write a submission file that runs a member's schedule\n"
        "  score    the three views of tuner experiments (AlgoPerf, equal compute, replay)\n"
        "  plot     a PNG of a PBT run: each member's hyperparameters and fitness over steps",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.__class__ = _TuneParser
    parser.add_argument("submission", help="path of the submission file (AlgoPerf or native form)")
    parser.add_argument("--tuner", default="pbt", help="pbt (default) or halton; see the list below")
    parser.add_argument(
        "--workloads", default="mnist1d", help="comma-separated workloads, or suite (default: %(default)s)"
    )
    parser.add_argument(
        "--studies", type=int, default=1, help="independent tuner runs per workload (default: %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the starting points and every tuner decision")
    parser.add_argument("--experiment-dir", default=DEFAULT_EXPERIMENT_DIR, help="default: %(default)s")
    parser.add_argument(
        "--name", default=None, help="the submission's folder in the experiment (default: <submission>_<tuner>)"
    )
    parser.add_argument(
        "--search-space", default=None, help="default: the tuning_search_space.json next to the submission"
    )
    parser.add_argument(
        "--config", default=None, metavar="FILE.yaml", help="tuner settings (flags below override them)"
    )
    for flag, name, kind, text in SETTING_FLAGS:
        parser.add_argument(flag, dest=f"setting_{name}", type=kind, default=None, help=text, metavar=name.upper())
    _add_run_options(parser)
    parser.add_argument(
        "--backend", choices=("native", "ray"), default="native",
        help="native (default: algobench's own driver) or ray (pbt on Ray Tune's scheduler; pb2 always runs there)",
    )  # fmt: skip
    parser.add_argument(
        "--ray-address", default=None, metavar="ADDR",
        help="the Ray cluster for --backend ray and pb2 (default: $RAY_ADDRESS, else a local Ray for the run)",
    )  # fmt: skip
    parser.set_defaults(func=run_tune)
    parser.subcommands = {
        "replay": _replay_parser(DEFAULT_EXPERIMENT_DIR),
        "export": _export_parser(),
        "score": _score_parser(),
        "plot": _plot_parser(),
    }


def _add_run_options(parser: argparse.ArgumentParser, tuning: bool = True) -> None:
    from algobench.cli import add_clock_argument

    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="default: %(default)s")
    if tuning:
        parser.add_argument(
            "--scale", choices=("cpu", "gpu", "tiny"), default="cpu", help="problem size (default: %(default)s)"
        )
        parser.add_argument("--data-dir", default=None, help="dataset folder, for workloads that read one from disk")
        parser.add_argument(
            "--no-stop-on-target", dest="stop_on_target", action="store_false",
            help="members train to the budget even after reaching the target",
        )  # fmt: skip
    parser.add_argument("--threads", type=int, default=1, help="torch threads per trial (default: %(default)s)")
    add_clock_argument(parser)
    parser.add_argument("--parallel", type=int, default=None, help="segments at once (default: the cores / --threads)")
    parser.add_argument("--trial-timeout", type=float, default=None, help="kill a segment after this many seconds")
    parser.add_argument(
        "--executor", choices=("process", "inprocess"), default="process",
        help="process (default: each segment in its own process) or inprocess (debugging)",
    )  # fmt: skip
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def _replay_parser(default_experiment_dir: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="algobench tune replay",
        description="Rerun a member's recorded hyperparameter schedule as single trials: on fresh seeds (and "
        "the workload's variants), or on the lineage's own seed (--own-seed), which reproduces its eval log. "
        "DIR is an experiment directory, a tuning/<workload>/study_<k> directory or a member's trial directory. "
        "Results are a normal experiment (default: <tuning dir>/replay), scored by `algobench score`.",
    )
    parser.add_argument("dir", metavar="DIR")
    _lineage_arguments(parser)
    parser.add_argument("--seeds", type=int, default=3, help="fresh seeds (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=None, help="where the fresh seeds come from (default: the run's)")
    parser.add_argument("--own-seed", action="store_true", help="replay on the lineage's own seed and reseeds")
    parser.add_argument("--workloads", default=None, help="comma-separated workloads (default: the tuned one)")
    parser.add_argument("--variants", action="store_true", help="also the tuned workload's variants")
    parser.add_argument("--experiment-dir", default=None, help="where the replays go (default: <tuning dir>/replay)")
    _add_run_options(parser, tuning=False)
    parser.set_defaults(func=run_replay)
    return parser


def _export_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="algobench tune export",
        description="Write a submission file (AlgoPerf form) that runs a member's hyperparameter schedule on top of "
        "the original submission; score it with `algobench submit FILE --ruleset self`.",
    )
    parser.add_argument("dir", metavar="DIR")
    _lineage_arguments(parser)
    parser.add_argument("--out", required=True, metavar="FILE.py", help="the submission file to write")
    parser.add_argument("--copy", action="store_true", help="copy the original submission beside it (else by path)")
    parser.set_defaults(func=run_export)
    return parser


def _score_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="algobench tune score",
        description="Score tuner experiments three ways per tuner and workload: AlgoPerf-compatible (a population "
        "of N is one study of N trials, lineage clock), equal compute (every member's own submission time "
        "until the first target hit) and replay (median time-to-target of `tune replay` runs), each with "
        "performance profiles and a benchmark score, and Kendall's tau between the views' rankings.",
    )
    parser.add_argument("dirs", nargs="+", metavar="EXPERIMENT_DIR")
    parser.add_argument("--out", default=None, metavar="DIR", help="write the tables as CSV here")
    parser.add_argument(
        "--workloads", default=None, help="comma-separated: score only these workloads' runs (default: every one found)"
    )
    parser.set_defaults(func=run_score)
    return parser


def _plot_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="algobench tune plot",
        description="A PNG of a PBT run: each member's explored hyperparameters and fitness over steps, forks marked.",
    )
    parser.add_argument("dir", metavar="DIR", help="an experiment directory or a tuning/<workload>/study_<k> directory")
    parser.add_argument("--workload", default=None)
    parser.add_argument("--study", type=int, default=None)
    parser.add_argument("--out", default=None, metavar="FILE.png", help="default: <tuning dir>/pbt.png")
    parser.set_defaults(func=run_plot)
    return parser


def _lineage_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--member", default="best", help="member number, or best (the tuner's output; see README)")
    parser.add_argument("--workload", default=None, help="the tuned workload, when DIR holds several")
    parser.add_argument("--study", type=int, default=None, help="the study, when DIR holds several")


# --- algobench tune ------------------------------------------------------------------------------


def run_tune(args: argparse.Namespace) -> int:
    from algobench.layout import TrialStatus
    from algobench.lock import experiment_lock
    from algobench.scoring.closing_table import format_table, summarize_workloads
    from algobench.submission_check import check_submission_file
    from algobench.tuning.events import check_settings
    from algobench.tuning.planning import SEARCH_SPACE_FILE, submission_name
    from algobench.tuning.search_space import load_search_space
    from algobench.tuning.tuners import TuningTask, make_settings, tuner_class
    from algobench.workloads.registry import expand_workload_names

    path = check_submission_file(args.submission)
    tuner_cls = tuner_class(args.tuner)
    workloads = expand_workload_names([w.strip() for w in args.workloads.split(",") if w.strip()])
    if not workloads:
        raise AlgobenchError("--workloads is empty")
    if args.studies < 1:
        raise AlgobenchError(f"--studies must be at least 1, got {args.studies}")
    if args.threads < 1:
        raise AlgobenchError(f"--threads must be at least 1, got {args.threads}")
    space = load_search_space(args.search_space or path.parent / SEARCH_SPACE_FILE)
    layers = _setting_layers(args, tuner_cls)
    experiment_dir = Path(args.experiment_dir).resolve()
    name = args.name or f"{submission_name(path)}_{args.tuner}"
    needs_hint = not any("interval" in layer for _, layer in layers)

    runs = []  # every (task, settings) checked before anything runs
    for workload in workloads:
        step_hint = _step_hint(workload) if needs_hint else None
        for study in range(args.studies):
            task = TuningTask(
                submission_path=str(path), submission_name=name, workload_name=workload, study=study,
                seed=args.seed, experiment_dir=experiment_dir, search_space=space, step_hint=step_hint,
            )  # fmt: skip
            runs.append((task, make_settings(tuner_cls.Settings, args.tuner, layers, task)))

    summaries: list[dict[str, Any]] = []
    tuners = []
    for task, settings in runs:
        tuner = tuner_cls(task, settings)
        check_settings(task.tuning_dir, settings_record(task, tuner, args))
        tuners.append((task, tuner))
    run_one, session = tune_one, _make_executor
    if on_ray(args, tuner_cls):  # Ray Tune drives the population; Ray is imported only then
        from algobench.tuning.ray_tune import ray_session, tune_on_ray

        run_one, session = tune_on_ray, lambda args, workloads: ray_session(args.ray_address)
    with experiment_lock(experiment_dir), session(args, workloads) as executor:
        for task, tuner in tuners:
            summaries += run_one(task, tuner, executor, args)
    print(format_table(summarize_workloads(summaries), experiment_dir))
    failed = (TrialStatus.FAILED, TrialStatus.TIMEOUT, TrialStatus.INVALID)
    if summaries and all(TrialStatus.parse(s.get("status")) in failed for s in summaries):
        print("algobench: no member produced a result; causes are in each trial's summary.json", file=sys.stderr)
        return 1
    return 0


def tune_one(task: Any, tuner: Any, executor: Any, args: argparse.Namespace) -> list[dict]:
    """One tuner run (one workload, one study) to its end; the final summaries of its members."""
    from algobench.tuning.driver import drive
    from algobench.tuning.events import RecordingTuner, TimedExecutor, check_settings

    record = settings_record(task, tuner, args)
    check_settings(task.tuning_dir, record, write=True)
    recorder = RecordingTuner(tuner, task.tuning_dir, task.member_dir, validation_key(task.workload_name))
    timed = TimedExecutor(executor, recorder)
    where = f"{task.workload_name} study {task.study}"
    say = (lambda line: None) if args.quiet else (lambda line: print(line, file=sys.stderr))
    say(f"{where}: {tuner.name} with {record['members']} members -> {task.tuning_dir}")
    if getattr(tuner, "kept_fixed", ()):
        kept = ", ".join(tuner.kept_fixed)
        say(f"{where}: kept fixed (the runner cannot change them mid-run, or listed as fixed): {kept}")
    if hasattr(tuner, "observer"):
        tuner.observer = lambda report: say(f"{where} {format_report(report)}")
    failures: list[str] = []

    def on_result(spec, summary, error) -> None:
        if summary is None:
            failures.append(f"{spec.trial_dir()}: {str(error).splitlines()[0]}")
            say(f"{where} trial {spec.trial}: not finished, retried on rerun: {str(error).splitlines()[0]}")
        elif summary.get("status") is not None and (tuner.name == "halton" or summary.get("status") != "ok"):
            say(f"{where} trial {spec.trial}: {_outcome(summary)}")

    def make_spec(request):
        return trial_spec(task, tuner, request, args)

    import time

    started = time.perf_counter()
    try:
        drive(recorder, timed, make_spec, on_result=on_result)
    except RuntimeError as error:
        if not failures:
            raise
        raise AlgobenchError(
            f"{where}: {len(failures)} segment(s) failed in algobench ({failures[0]}); the population cannot go "
            f"on without them: rerun the same command to resume"
        ) from error
    finally:
        recorder.ledger.wall_sec = time.perf_counter() - started
        recorder.ledger.save(task.tuning_dir)
    from algobench.results import read_summary

    finals = [read_summary(task.member_dir(m)) for m in range(1, record["members"] + 1)]
    return [s for s in finals if s is not None]


def settings_record(task: Any, tuner: Any, args: argparse.Namespace) -> dict[str, Any]:
    """``settings.json``: what a resumed run must match, and what replay and scoring read."""
    import algobench

    settings = tuner.settings_record() if hasattr(tuner, "settings_record") else tuner.settings.to_json()
    members = getattr(tuner.settings, "population", None) or getattr(tuner.settings, "trials", None)
    return {
        "format": 1,
        "tuner": tuner.name,
        "name": task.submission_name,
        "submission_path": task.submission_path,
        "workload": task.workload_name,
        "study": task.study,
        "seed": task.seed,
        "members": members,
        "search_space": task.search_space.source,
        "scale": args.scale,
        "device": args.device,
        "data_dir": None if args.data_dir is None else str(Path(args.data_dir).resolve()),
        "stop_on_target": args.stop_on_target,
        "clock": args.clock,  # replays run on the clock their tuner run was scored on
        "max_steps": tuner.max_steps,
        "eval_every_steps": tuner.eval_every_steps,
        **({"tuning_split": tuner.tuning_split} if tuner.tuning_split else {}),
        **({"backend": "ray"} if on_ray(args, type(tuner)) else {}),
        "settings": settings,
        "algobench_version": algobench.__version__,
    }


def on_ray(args: argparse.Namespace, tuner_cls: type) -> bool:
    """Whether this tuner run goes to Ray Tune: ``--backend ray``, or a tuner that only runs there (pb2)."""
    return getattr(args, "backend", "native") == "ray" or getattr(tuner_cls, "ray_only", False)


def trial_spec(task: Any, tuner: Any, request: Any, args: argparse.Namespace) -> Any:
    """The trial (segment) a request names; a donor looked up for a fork may live in a snapshot."""
    from algobench.trial_spec import TrialSpec
    from algobench.workloads import get_workload
    from algobench.workloads.calibration import calibration_factor

    root = task.experiment_dir
    if request.fork_from is None and request.change_step is not None and hasattr(tuner, "donor_root"):
        root = tuner.donor_root(request) or root  # the driver asking where the donor's state is
    return TrialSpec(
        submission_path=task.submission_path,
        submission_name=task.submission_name,
        workload_name=task.workload_name,
        study=task.study,
        trial=request.trial,
        hyperparameters=request.hyperparameters,
        seed=task.member_seed(request.trial),
        experiment_dir=str(root),
        make_workload=get_workload,
        device=args.device,
        stop_on_target=args.stop_on_target,
        calibration_factor=calibration_factor(task.workload_name, args.threads),
        max_steps=tuner.max_steps,
        eval_every_steps=tuner.eval_every_steps,
        data_dir=None if args.data_dir is None else str(Path(args.data_dir).resolve()),
        scale=args.scale,
        threads=args.threads,
        timeout_sec=args.trial_timeout,
        until_step=request.until_step,
        clock=args.clock,
        tuning_split=tuner.tuning_split,
    )


def format_report(report: Any) -> str:
    """One line per decision: each member's step, fitness, key hyperparameters, and whom it copied."""
    shown = _key_names(report.explored)
    parts = [f"round {report.round} step {report.step} ({report.metric})"]
    for member in sorted(report.members, key=lambda m: m.index):
        if member.status is not None:
            parts.append(f"m{member.index} {member.status}")
            continue
        fitness = member.fitness.get(report.step)
        text = f"m{member.index} " + ("-" if fitness is None or math.isnan(fitness) else f"{fitness:.4f}")
        text += "".join(f" {_short(n)}={_value(member.hyperparameters.get(n))}" for n in shown)
        if member.donor is not None:
            text += f" <-m{member.donor}"
        parts.append(text)
    return " | ".join(parts)


def _key_names(explored: Sequence[str]) -> list[str]:
    if "learning_rate" in explored:
        return ["learning_rate", *[n for n in explored if n != "learning_rate"][:1]]
    return list(explored[:2])


def _short(name: str) -> str:
    return {"learning_rate": "lr", "weight_decay": "wd", "one_minus_beta1": "1-b1"}.get(name, name)


def _value(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _outcome(summary: dict[str, Any]) -> str:
    ttt = summary.get("time_to_target")
    outcome = f"target in {ttt:.1f} s" if ttt is not None else str(summary.get("status"))
    error = summary.get("error")
    return outcome + (f": {error.splitlines()[0]}" if error else "")


def _setting_layers(args: argparse.Namespace, tuner_cls: type) -> list[tuple[str, dict[str, Any]]]:
    layers: list[tuple[str, dict[str, Any]]] = []
    if args.config:
        layers.append((args.config, read_config(args.config)))
    flags = {}
    for _, name, _, _ in SETTING_FLAGS:
        value = getattr(args, f"setting_{name}")
        if value is not None:
            flags[name] = value
    from dataclasses import fields

    known = {f.name for f in fields(tuner_cls.Settings)}
    for name in flags:
        if name not in known:
            flag = next(f for f, n, _, _ in SETTING_FLAGS if n == name)
            raise AlgobenchError(f"{flag} is not a setting of the {tuner_cls.name} tuner ({', '.join(sorted(known))})")
    layers.append(("the command line", flags))
    return layers


def read_config(path: str | Path) -> dict[str, Any]:
    """A YAML file of tuner settings: a mapping, or an error naming the file."""
    import yaml

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise AlgobenchError(f"--config {path}: file not found") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise AlgobenchError(f"{path}{where}: not valid YAML: {getattr(error, 'problem', error)}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise AlgobenchError(f"{path}: expected a mapping of tuner settings, got {type(raw).__name__}")
    return raw


def _step_hint(workload: str) -> int:
    from algobench.workloads import workload_class

    return int(workload_class(workload).step_hint)


def validation_key(workload: str) -> str:
    """The eval column the workload's target judges: what segments record and scoring reads."""
    from algobench.workloads.registry import workload_info

    return f"validation/{workload_info(workload).target_metric_name}"


def _make_executor(args: argparse.Namespace, workloads: Sequence[str] = ()) -> Any:
    """The process executor with as many segments at once as the cores allow (or in-process)."""
    from algobench.cli import make_executor

    return make_executor(args.executor, parallel=args.parallel, threads=args.threads, workloads=workloads)


# --- algobench tune replay / export / score / plot ----------------------------------------------------


def _lineage(args: argparse.Namespace) -> Any:
    from algobench.tuning.lineage import find_lineage

    member = args.member if args.member == "best" else _member_number(args.member)
    return find_lineage(args.dir, member, workload=args.workload, study=args.study)


def _member_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise AlgobenchError(f"--member must be a member number or best, got {text!r}") from None
    if value < 1:
        raise AlgobenchError(f"--member must be at least 1, got {value}")
    return value


def run_replay(args: argparse.Namespace) -> int:
    from algobench.lock import experiment_lock
    from algobench.scoring.closing_table import format_table, summarize_workloads
    from algobench.tuning.driver import drive_specs
    from algobench.tuning.lineage import REPLAY_DIR, replay_seeds, replay_specs, variants_of
    from algobench.workloads.registry import expand_workload_names

    lineage = _lineage(args)
    if args.seeds < 1:
        raise AlgobenchError(f"--seeds must be at least 1, got {args.seeds}")
    names = [w.strip() for w in (args.workloads or lineage.workload).split(",") if w.strip()]
    workloads = expand_workload_names(names)
    if args.variants:
        workloads += [v for w in list(workloads) for v in variants_of(w) if v not in workloads]
    seeds = None if args.own_seed else replay_seeds(lineage, args.seeds, args.seed)
    experiment_dir = Path(args.experiment_dir or lineage.tuning_dir / REPLAY_DIR).resolve()
    specs = replay_specs(
        lineage, seeds=seeds, workloads=workloads, experiment_dir=experiment_dir,
        threads=args.threads, timeout_sec=args.trial_timeout,
    )  # fmt: skip
    changes = len(lineage.schedule) - 1
    print(
        f"replaying member {lineage.member} of {lineage.settings['name']} ({lineage.workload} study "
        f"{lineage.settings['study']}; {changes} change point(s)) on {len(specs)} run(s) -> {experiment_dir}",
        file=sys.stderr,
    )

    def report(spec, summary, error) -> None:
        if args.quiet:
            return
        where = f"  {spec.workload_name} seed {spec.seed}"
        print(
            f"{where}: {_outcome(summary) if summary else 'not finished: ' + str(error).splitlines()[0]}",
            file=sys.stderr,
        )

    with experiment_lock(experiment_dir), _make_executor(args, workloads) as executor:
        results = drive_specs(specs, executor, on_result=report)
    summaries = [s for _, s in results if s is not None]
    print(format_table(summarize_workloads(summaries), experiment_dir))
    return 0 if summaries else 1


def run_export(args: argparse.Namespace) -> int:
    from algobench.tuning.lineage import write_export

    lineage = _lineage(args)
    out = write_export(lineage, args.out, copy=args.copy)
    print(
        f"wrote {out}: member {lineage.member}'s schedule ({len(lineage.schedule)} point(s)) on "
        f"{lineage.settings['submission_path']}; run it with: algobench submit {out} --ruleset self"
    )
    return 0


def run_score(args: argparse.Namespace) -> int:
    from algobench.scoring.tuners import format_tuner_scores, score_tuners, write_tuner_scores

    workloads = None if args.workloads is None else [w.strip() for w in args.workloads.split(",") if w.strip()]
    result = score_tuners(args.dirs, workloads=workloads)
    print(format_tuner_scores(result))
    if args.out:
        paths = write_tuner_scores(result, args.out)
        print(f"wrote {len(paths)} files to {args.out}")
    return 0


def run_plot(args: argparse.Namespace) -> int:
    from algobench.tuning.lineage import find_lineage
    from algobench.tuning.plots import plot_pbt_run

    tuning_dir = find_lineage(args.dir, member=1, workload=args.workload, study=args.study).tuning_dir
    out = plot_pbt_run(tuning_dir, args.out or tuning_dir / "pbt.png")
    print(f"wrote {out}")
    return 0
