"""Optuna's samplers and pruners behind the tuner interface (``--tuner tpe | gp | cmaes | qmc``).

algobench's runner trains; Optuna only decides, through its ask-and-tell interface:

- ``ask`` takes a trial from the study (``study.ask``, which also hands out enqueued trials) and
  returns it as trial ``number + 1`` of the AlgoPerf layout, with the seed ``algobench submit``'s
  trial of that index would get;
- each evaluation is reported at its ``global_step`` (never at seconds) with the surrogate of
  time-to-target (``algobench.tuning.objective``), which the study minimises;
- with a pruner (``--pruner median | sha | hyperband | wilcoxon``) a trial runs in segments of
  ``prune_interval`` steps, evaluating at the segment ends, and after each the pruner decides; a
  pruned trial is finished where it stands (its ``summary.json`` says ``stopped_by: pruner``), and
  the compute it used stays in ``segments.jsonl`` for the equal-compute view.

Startup trials are explicit: ``startup_trials`` (default ⌈trials / 3⌉) random trials, then the
model. Optuna's own default (10) would make TPE and the GP sampler plain random search at
AlgoPerf's 5 trials per study. The sampler is rebuilt for each ask with the seed
``(seed, study, trials so far)``, so a resumed run asks for what the straight run asked for.

The study (``<name>/<workload>/study_<k>``) lives in the storage (``algobench.tuning.optuna_storage``):
a killed run resumes its own RUNNING trials from their checkpoints (it is the one worker writing
its experiment directory), tells those whose summary was written after the last tell, and other
workers' trials whose heartbeat stopped are marked FAIL and replaced. ``trials`` counts every trial
of the study except those.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from algobench.errors import AlgobenchError
from algobench.layout import SUMMARY_FILE, Direction
from algobench.results import read_summary, write_json
from algobench.seeds import derive_seed
from algobench.tuning.base import Summary, TrialRequest, Tuner
from algobench.tuning.events import read_eval_rows
from algobench.tuning.objective import running_values, trial_value
from algobench.tuning.optuna_storage import STALE, WORKER, Heartbeat, fail_stale_trials, open_storage
from algobench.tuning.search_space import Choice, Range, SearchSpace
from algobench.tuning.tuners import Settings, TuningTask, setting

PRUNERS = ("none", "median", "sha", "hyperband", "wilcoxon")
STOPPED_BY = "stopped_by"


@dataclass(frozen=True)
class OptunaSettings(Settings):
    trials: int = setting(20, "int", "trials in the study, all workers together")
    startup_trials: int | None = setting(
        None, "int?", "random trials before the sampler's model is used (default: ceil(trials / 3))"
    )
    pruner: str = setting("none", "str", f"{', '.join(PRUNERS)}")
    prune_interval: int | None = setting(
        None, "int?", "with a pruner: steps between pruning decisions (default: step_hint // 20)"
    )
    storage: str | None = setting(
        None, "str?", "a journal file or an Optuna storage URL (default: <experiment>/tuning/optuna.journal)"
    )
    heartbeat_sec: float = setting(60.0, "float", "seconds between a worker's heartbeats on its running trials")
    popsize: int | None = setting(None, "int?", "cmaes: trials per generation (default: Optuna's, 4 + 3 ln d)")

    def check(self, task: TuningTask, where: Callable[..., str]) -> None:
        super().check(task, where)
        if self.trials < 1:
            raise AlgobenchError(f"{where('trials')}: trials must be at least 1, got {self.trials}")
        if self.startup_trials is not None and self.startup_trials < 0:
            raise AlgobenchError(
                f"{where('startup_trials')}: startup_trials must be at least 0, got {self.startup_trials}"
            )
        if self.pruner not in PRUNERS:
            raise AlgobenchError(
                f"{where('pruner')}: unknown pruner {self.pruner!r}; known pruners: {', '.join(PRUNERS)}"
            )
        if self.heartbeat_sec <= 0:
            raise AlgobenchError(f"{where('heartbeat_sec')}: heartbeat_sec must be positive, got {self.heartbeat_sec}")
        if self.popsize is not None and self.popsize < 2:
            raise AlgobenchError(f"{where('popsize')}: popsize must be at least 2, got {self.popsize}")
        if self.pruner != "none":
            interval = self.resolved_interval(task)
            if interval < 1:
                raise AlgobenchError(f"{where('prune_interval')}: prune_interval must be at least 1, got {interval}")
            if self.eval_every_steps is not None and interval % self.eval_every_steps:
                raise AlgobenchError(
                    f"{where('prune_interval', 'eval_every_steps')}: prune_interval {interval} is not a multiple of "
                    f"eval_every_steps {self.eval_every_steps}: the pruner must see an evaluation at each decision"
                )
        if task.search_space.fixed_points is not None:
            raise AlgobenchError(
                f"{task.search_space.source} lists fixed points: a model-based tuner needs ranges or feasible points"
            )

    def resolved_interval(self, task: TuningTask) -> int:
        if self.prune_interval is not None:
            return self.prune_interval
        if task.step_hint is None:
            raise AlgobenchError("prune_interval is not set and the workload's step_hint is unknown")
        return max(task.step_hint // 20, 1)

    def resolved_startup(self) -> int:
        return math.ceil(self.trials / 3) if self.startup_trials is None else self.startup_trials


def distributions(space: SearchSpace) -> dict[str, Any]:
    """The search space as Optuna distributions: log ranges as ``log=True``, choices as categoricals."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    found: dict[str, Any] = {}
    for dim in space.dimensions:
        if isinstance(dim, Range):
            found[dim.name] = FloatDistribution(dim.low, dim.high, log=dim.scaling == "log")
        else:
            assert isinstance(dim, Choice)
            found[dim.name] = CategoricalDistribution(list(dim.feasible_points))
    return found


def make_pruner(settings: OptunaSettings, max_steps: int | None, interval: int) -> Any:
    import optuna

    startup = settings.resolved_startup()
    if settings.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=max(startup, 1), n_warmup_steps=0)
    if settings.pruner == "sha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=interval, reduction_factor=3)
    if settings.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=interval, max_resource=max_steps or "auto")
    if settings.pruner == "wilcoxon":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.pruners.WilcoxonPruner(p_threshold=0.1)
    return optuna.pruners.NopPruner()


class OptunaTuner(Tuner):
    """An Optuna sampler (and pruner) driving algobench trials through ask-and-tell."""

    name = "optuna"
    Settings = OptunaSettings

    def __init__(self, task: TuningTask, settings: OptunaSettings) -> None:
        import optuna

        self.task = task
        self.settings = settings
        self.pruning = settings.pruner != "none"
        self.interval = settings.resolved_interval(task) if self.pruning else None
        self._eval_every = settings.eval_every_steps or self.interval
        self.worker = str(Path(task.experiment_dir).resolve())
        self.study_name = f"{task.submission_name}/{task.workload_name}/study_{task.study}"
        self._storage = open_storage(settings.storage, task.experiment_dir)
        self.study = optuna.create_study(
            storage=self._storage, study_name=self.study_name, direction="minimize", load_if_exists=True,
            pruner=make_pruner(settings, settings.max_steps, self.interval or 1),
        )  # fmt: skip
        self._distributions = distributions(task.search_space)
        self._trials: dict[int, Any] = {}  # member index -> optuna Trial, for the trials this worker runs
        self._reported: dict[int, int] = {}  # member index -> last step reported
        self._queue: list[TrialRequest] = []
        self._in_flight: set[int] = set()
        self._full = False
        self._started = False
        self._heartbeat = Heartbeat(self._storage, settings.heartbeat_sec, self._running_ids)

    # --- what the driver reads ---------------------------------------------------------------------
    @property
    def eval_every_steps(self) -> int | None:
        return self._eval_every

    @property
    def max_steps(self) -> int | None:
        return self.settings.max_steps

    def settings_record(self) -> dict[str, Any]:
        return {
            **self.settings.to_json(),
            "sampler": self.name,
            "startup_trials": self.settings.resolved_startup(),
            "prune_interval": self.interval,
            "eval_every_steps": self._eval_every,
            "study_name": self.study_name,
        }

    def make_sampler(self, seed: int) -> Any:
        """The study's sampler for one ask (subclasses name theirs)."""
        raise NotImplementedError

    # --- the Tuner interface -----------------------------------------------------------------------
    def ask(self) -> TrialRequest | None:
        from optuna.trial import TrialState

        if not self._started:
            self._resume()
        if self._queue:
            return self._send(self._queue.pop(0))
        fail_stale_trials(self.study, self.settings.heartbeat_sec, self._mine)
        # Every trial counts but a dead worker's (replaced) and an enqueued one (``study.ask`` takes it next).
        counted = [
            t
            for t in self.study.get_trials(deepcopy=False)
            if STALE not in t.system_attrs and t.state != TrialState.WAITING
        ]
        if len(counted) >= self.settings.trials:
            self._full = True
            return None
        self.study.sampler = self.make_sampler(derive_seed(self.task.seed, self.task.study, len(counted)))
        trial = self.study.ask(self._distributions)
        self._storage.set_trial_system_attr(trial._trial_id, WORKER, self.worker)
        member = trial.number + 1
        self._trials[member] = trial
        params = {name: _plain(value) for name, value in trial.params.items()}
        return self._send(TrialRequest(trial=member, hyperparameters=params, until_step=self.interval))

    def tell(self, request: TrialRequest, summary: Summary) -> None:
        self._in_flight.discard(request.trial)
        trial = self._trials[request.trial]
        self._report(request.trial, trial, summary)
        if summary.get("status") is not None:
            self._finish(request.trial, summary)
        elif trial.should_prune():
            stopped = {**summary, "status": "ok", STOPPED_BY: "pruner", "notes": [*summary.get("notes", []),
                       f"pruned by the {self.settings.pruner} pruner at step {summary.get('steps')}"]}  # fmt: skip
            write_json(self.task.member_dir(request.trial) / SUMMARY_FILE, stopped)
            self._finish(request.trial, stopped)
        else:
            step = int(summary.get("steps") or 0)
            self._queue.append(self._continuation(request.trial, step))
        if not self._in_flight and self.finished:
            self._heartbeat.stop()

    @property
    def finished(self) -> bool:
        return self._started and self._full and not self._queue and not self._in_flight

    # --- inside ------------------------------------------------------------------------------------
    def _send(self, request: TrialRequest) -> TrialRequest:
        self._in_flight.add(request.trial)
        self._heartbeat.beat()
        self._heartbeat.start()
        return request

    def _mine(self, trial: Any) -> bool:
        return trial.system_attrs.get(WORKER) == self.worker

    def _running_ids(self) -> list[int]:
        return [self._trials[m]._trial_id for m in list(self._in_flight) if m in self._trials]

    def _continuation(self, member: int, step: int) -> TrialRequest:
        trial = self._trials[member]
        params = {name: _plain(value) for name, value in trial.params.items()}
        until = None if self.interval is None else (step // self.interval + 1) * self.interval
        return TrialRequest(trial=member, hyperparameters=params, until_step=until, round=step // (self.interval or 1))

    def _report(self, member: int, trial: Any, summary: Summary) -> None:
        """Every evaluation not yet reported, at its global_step."""
        target, budget = summary.get("validation_target_value"), summary.get("max_allowed_runtime_sec")
        if target is None or budget is None:
            return  # a process that died before the runner started: nothing was evaluated
        key = f"validation/{summary['target_metric_name']}"
        direction = Direction(summary["metric_direction"])
        rows = read_eval_rows(self.task.member_dir(member))
        last = self._reported.get(member, -1)
        for step, value in running_values(rows, key, float(target), direction, float(budget)):
            if step > last:
                trial.report(value, step)
                last = step
        self._reported[member] = last

    def _finish(self, member: int, summary: Summary) -> None:
        from optuna.trial import TrialState

        trial = self._trials.pop(member)
        for key in ("status", "time_to_target", "steps", "best_validation_metric"):
            trial.set_user_attr(key, summary.get(key))
        if summary.get(STOPPED_BY) == "pruner":
            self.study.tell(trial, state=TrialState.PRUNED)
            return
        value = trial_value(summary)
        if value is None:
            self.study.tell(trial, state=TrialState.FAIL)
        else:
            self.study.tell(trial, value)

    def _resume(self) -> None:
        """This worker's RUNNING trials (a killed run of the same experiment directory): told when
        their summary is there, else continued from their checkpoints."""
        from optuna.trial import Trial, TrialState

        self._started = True
        for frozen in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if not self._mine(frozen):
                continue
            member = frozen.number + 1
            trial = Trial(self.study, frozen._trial_id)
            self._trials[member] = trial
            self._reported[member] = max(frozen.intermediate_values, default=-1)
            summary = read_summary(self.task.member_dir(member))
            if summary is not None:
                self._report(member, trial, summary)
                self._finish(member, summary)
                continue
            step = max(frozen.intermediate_values, default=0) if self.pruning else 0
            self._queue.append(self._continuation(member, step))


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


class TPETuner(OptunaTuner):
    """Optuna's TPE sampler (constant liar for parallel trials), with an optional pruner."""

    name = "tpe"

    def make_sampler(self, seed: int) -> Any:
        import optuna

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(
                n_startup_trials=self.settings.resolved_startup(), seed=seed, constant_liar=True
            )


class GPTuner(OptunaTuner):
    """Optuna's Gaussian-process sampler (log-EI), with an optional pruner."""

    name = "gp"

    def make_sampler(self, seed: int) -> Any:
        import optuna

        return optuna.samplers.GPSampler(
            n_startup_trials=self.settings.resolved_startup(), seed=seed, warn_independent_sampling=False
        )


class CmaEsTuner(OptunaTuner):
    """Optuna's CMA-ES sampler (needs the cmaes package), with an optional pruner."""

    name = "cmaes"

    def make_sampler(self, seed: int) -> Any:
        import optuna

        return optuna.samplers.CmaEsSampler(
            n_startup_trials=self.settings.resolved_startup(), seed=seed, popsize=self.settings.popsize,
            warn_independent_sampling=False,
        )  # fmt: skip


class QMCTuner(OptunaTuner):
    """Optuna's quasi-Monte Carlo sampler (scrambled Halton), with an optional pruner."""

    name = "qmc"

    def make_sampler(self, seed: int) -> Any:
        import optuna

        # One scrambling for the whole study: the sequence continues across asks and resumes.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.QMCSampler(qmc_type="halton", scramble=True, seed=self.task.study_seed())
