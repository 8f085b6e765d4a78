"""The timed training loop (DESIGN.md contract 3), runnable in segments, resumable and forkable.

Only the submission's own work is on the clock: ``data_selection`` + ``update_params`` (and
``prepare_for_eval``), with the device synchronised before the clock is read. The clock is the
wall clock or the trial process's CPU time (``RunConfig.clock``, see ``algobench.clock``); the
budget, the evaluation period and time-to-target are all read on it. Evaluation,
logging and checkpointing are timed on separate clocks, all read from ``algobench.clock``,
which a submission patching the ``time`` module cannot reach.

A trial's state is two parts: the *learner* (model, optimizer state, input position, RNG,
random-stream seed) and the *bookkeeping* (clocks, eval history, status, the hyperparameter
schedule actually used). ``state_dict`` returns copies that share nothing with the live trial,
so a trial run in segments, killed and resumed, or forked into another member of a population,
logs the evaluations it would have logged running straight through.

The submission is handed its own shallow copy of the workload; the runner evaluates and judges
targets with what it captured before the submission saw anything (the targets file's values),
so a submission that rewrites the workload object it receives cannot change its own verdict.
"""

from __future__ import annotations

import copy
import math
import random
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from algobench import spec
from algobench.checkpoint import load_checkpoint, save_checkpoint
from algobench.clock import DEFAULT_CLOCK, ClockName, Stopwatch
from algobench.errors import DivergedError, SubmissionError
from algobench.hyperparameters import ChangePoint, Hyperparameters
from algobench.layout import CHECKPOINT_FILE, EVAL_FILE, Direction, TrialStatus
from algobench.results import EvalLog
from algobench.submission import Submission, error_line, one_line
from algobench.workload import Workload

# Per-step random keys for AlgoPerf's rng arguments: two uint32 words, one purpose each.
DATA_SELECTION, UPDATE, PREPARE_FOR_EVAL, EVAL = range(4)
# The submission's code, as opposed to algobench's: a process that dies in these phases died of
# the submission (its failure is recorded); one that dies elsewhere died of algobench (retried).
PHASE_ALGOBENCH, PHASE_SUBMISSION = 0, 1


@dataclass(frozen=True)
class RunConfig:
    """How one trial runs. ``budget_sec`` is final (calibrated, ×1.5 for self-tuning), in seconds
    of ``clock``: wall seconds, or CPU seconds of the trial's process."""

    budget_sec: float
    eval_period_sec: float
    seed: int = 0
    eval_every_steps: int | None = None  # a step schedule instead of a time one (exact replays)
    max_steps: int | None = None
    stop_on_target: bool = True
    checkpoint_period_sec: float = 30.0  # wall seconds between checkpoints (and at every eval)
    schedule: tuple[ChangePoint, ...] = ()  # hyperparameter changes after step 0 (replay, PBT)
    clock: ClockName = DEFAULT_CLOCK  # what submission time is measured on


@dataclass
class Clocks:
    """Accumulated times; all of them survive a checkpoint."""

    submission: float = 0.0  # on the trial's clock (RunConfig.clock)
    eval: float = 0.0
    logging: float = 0.0
    wall: float = 0.0  # total_duration over all segments
    process_cpu: float = 0.0  # CPU time of the submission's work, whatever the clock


@dataclass
class Progress:
    """What a progress display needs, handed to the ``on_progress`` callback."""

    global_step: int
    submission_time: float
    budget_sec: float
    last_metric: float | None
    target: float
    metric_name: str


@dataclass
class TrialState:
    """The bookkeeping: what a forked trial inherits from its donor's lineage, but not its learner."""

    global_step: int = 0
    examples_seen: int = 0
    preemption_count: int = 0
    last_eval_submission_time: float = 0.0
    training_complete: bool = False
    status: str | None = None  # a final TrialStatus once the trial has ended
    error: str | None = None
    time_to_target: float | None = None
    clocks: Clocks = field(default_factory=Clocks)
    eval_history: list[dict[str, Any]] = field(default_factory=list)
    schedule: list[ChangePoint] = field(default_factory=list)  # as applied, the first at step 0
    notes: list[str] = field(default_factory=list)  # recoveries and other things a reader should know
    paused: bool = False  # stopped at the end of a segment (until_step): resuming is no preemption


class Verdict:
    """What decides a trial's outcome, captured from the workload before any submission code runs
    (its import included): the target and direction from the targets file, the evaluation, and a
    snapshot of the workload classes, so that a submission that replaces a method of theirs (to
    forge its metrics) is caught before the next evaluation counts."""

    def __init__(self, workload: Workload) -> None:
        self.target = float(workload.targets.validation_target_value)
        self.test_target = float(workload.targets.test_target_value)
        self.direction = Direction(workload.metric_direction)
        self.metric_name = str(workload.target_metric_name)
        self.metric_key = f"validation/{self.metric_name}"
        self.evaluate_model = workload.eval_model
        self._classes = {
            (cls, name): value
            for cls in type(workload).__mro__
            if cls is not object
            for name, value in vars(cls).items()
        }

    def reached(self, row: dict[str, Any]) -> bool:
        value = row.get(self.metric_key, math.nan)
        return isinstance(value, int | float) and math.isfinite(value) and self.direction.reached(value, self.target)

    def tampering(self) -> str | None:
        """The first workload attribute a submission replaced since the capture, or None."""
        for (cls, name), value in self._classes.items():
            if vars(cls).get(name, _MISSING) is not value:
                return f"{cls.__name__}.{name}"
        return None


_MISSING = object()


def step_key(seed: int, step: int, purpose: int) -> np.ndarray:
    """A cheap, stateless key per (seed, step, purpose), shaped like a JAX PRNG key."""
    return np.array([seed & 0xFFFFFFFF, (step * 4 + purpose) & 0xFFFFFFFF], dtype=np.uint32)


class TrialRunner:
    """One trial of one submission on one workload, with fixed or changing hyperparameters."""

    def __init__(
        self,
        workload: Workload,
        submission: Submission,
        hyperparameters: Hyperparameters,
        config: RunConfig,
        trial_dir: Path | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        on_eval: Callable[[dict[str, Any]], None] | None = None,
        phase: Any = None,
        verdict: Verdict | None = None,
    ) -> None:
        self.workload = workload
        self.submission = submission
        self.hyperparameters = hyperparameters
        self.config = config
        self.trial_dir = trial_dir
        self.on_progress = on_progress
        self.on_eval = on_eval
        self._phase = phase  # a shared value the parent reads when the process dies (or None)
        self._clock = Stopwatch()
        self.state = TrialState(schedule=[ChangePoint(0, dict(hyperparameters), config.seed)])
        self.seed = config.seed  # the random streams' seed: a fork re-keys it
        self.eval_log = EvalLog(trial_dir / EVAL_FILE) if trial_dir else None
        self._sync = torch.cuda.synchronize if workload.device.type == "cuda" else _no_sync
        self._pending = sorted(config.schedule, key=lambda point: point.global_step)

        # What the verdict rests on, captured before the submission ran (``trial.run_trial`` captures
        # it before importing the file; a runner built directly captures it here).
        self.verdict = verdict or Verdict(workload)
        self.error_traceback: str | None = None  # the full traceback of the submission's failure

        torch.manual_seed(config.seed)
        self.model, self.model_state = workload.init_model_fn(step_key(config.seed, 0, EVAL))
        self.submission_workload = copy.copy(workload)  # the submission's own view
        with self._in_submission():
            self.batch_size = submission.batch_size(self.submission_workload, hyperparameters)
        self.input_queue = self._new_input_queue(config.seed)
        with self._in_submission():
            self.optimizer_state = submission.init_optimizer_state(
                workload=self.submission_workload,
                model_params=self.model,
                model_state=self.model_state,
                hyperparameters=hyperparameters,
                rng=step_key(config.seed, 0, UPDATE),
            )
        self._rng_states = _capture_rng_states()
        self._running = False
        self._wall_origin = (self._clock.wall(), 0.0)
        self._eval_results_cache: list[tuple[int, dict[str, Any]]] = []

    def _new_input_queue(self, seed: int) -> Any:
        return self.workload._build_input_queue(
            step_key(seed, 0, DATA_SELECTION), "train", self.workload.data_dir, self.batch_size
        )

    # --- the loop -------------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return self.state.status is not None

    def run(self, until_step: int | None = None) -> str | None:
        """Train until the trial ends or ``global_step`` reaches ``until_step``.

        Returns the final status, or None when the segment ended first (call again to go on).
        """
        _restore_rng_states(self._rng_states)
        self._running = True
        segment_start = self._clock.wall()
        self._wall_origin = (segment_start, self.state.clocks.wall)
        last_checkpoint = segment_start
        last_progress = -math.inf
        state, clocks, config = self.state, self.state.clocks, self.config
        try:
            while not self.finished and (until_step is None or state.global_step < until_step):
                self._apply_due_changes()
                self._timed_step()
                if self.finished:
                    break
                now = self._update_wall()
                if self._eval_due():
                    self.evaluate()
                    last_checkpoint = self._clock.wall()
                elif clocks.submission >= config.budget_sec:
                    self.evaluate()  # the end-of-run evaluation
                    last_checkpoint = self._clock.wall()
                elif now - last_checkpoint >= config.checkpoint_period_sec:
                    self.checkpoint()
                    last_checkpoint = self._clock.wall()
                if self.on_progress and clocks.submission - last_progress >= 0.5:
                    last_progress = clocks.submission
                    self.on_progress(self.progress())
        finally:
            self._rng_states = _capture_rng_states()
            self._running = False
        if not self.finished:
            state.paused = True
            self.checkpoint()
            state.paused = False
        return state.status

    def _update_wall(self) -> float:
        """Bring ``total_duration`` up to now: wall time over all segments so far."""
        now = self._clock.wall()
        segment_start, wall_before = self._wall_origin
        self.state.clocks.wall = wall_before + (now - segment_start)
        return now

    def _in_submission(self) -> _Phase:
        return _Phase(self._phase)

    def _timed_step(self) -> None:
        state = self.state
        step, seed = state.global_step, self.seed
        start = self._clock.both()
        try:
            with self._in_submission():
                batch = self.submission.data_selection(
                    self.submission_workload, self.input_queue, self.optimizer_state, self.model,
                    self.model_state, self.hyperparameters, step, step_key(seed, step, DATA_SELECTION),
                )  # fmt: skip
                extra = (
                    {"train_state": MappingProxyType(self._train_state())}
                    if self.submission.update_params_takes_train_state
                    else {}
                )
                returned = self.submission.update_params(
                    workload=self.submission_workload,
                    current_param_container=self.model,
                    current_params_types=self.workload.model_params_types,
                    model_state=self.model_state,
                    hyperparameters=self.hyperparameters,
                    batch=batch,
                    loss_type=self.workload.loss_type,
                    optimizer_state=self.optimizer_state,
                    eval_results=self._eval_results(),
                    global_step=step,
                    rng=step_key(seed, step, UPDATE),
                    **extra,
                )
            self.optimizer_state, self.model, self.model_state = _unpack_update(returned, "update_params")
        except spec.TrainingCompleteError:
            state.training_complete = True
        except DivergedError as error:
            self._end(TrialStatus.DIVERGED, str(error))
        except BaseException as error:  # the submission's fault (exit and Ctrl-C of its own too)
            self._end(TrialStatus.FAILED, self._describe_error("update_params", error))
        self._sync()
        self._charge(start)
        state.global_step += 1
        state.examples_seen += self.batch_size

    def _charge(self, start: tuple[float, float]) -> None:
        """Put the submission's work since ``start`` (a ``Stopwatch.both`` reading) on its clock."""
        wall, cpu = self._clock.both()
        clocks = self.state.clocks
        clocks.submission += cpu - start[1] if self.config.clock == "cpu" else wall - start[0]
        clocks.process_cpu += cpu - start[1]

    def _eval_due(self) -> bool:
        state, config = self.state, self.config
        if state.training_complete:
            return True
        if config.max_steps is not None and state.global_step >= config.max_steps:
            return True
        if config.eval_every_steps is not None:
            return state.global_step % config.eval_every_steps == 0
        return state.clocks.submission - state.last_eval_submission_time >= config.eval_period_sec

    def evaluate(self) -> dict[str, Any]:
        """prepare_for_eval (timed), then the workload's evaluation (untimed), logged as a row."""
        state, clocks, workload = self.state, self.state.clocks, self.workload
        step, seed = state.global_step, self.seed
        if self.submission.prepare_for_eval is not None and not self.finished:
            start = self._clock.both()
            try:
                with self._in_submission():
                    returned = self.submission.prepare_for_eval(
                        workload=self.submission_workload,
                        current_param_container=self.model,
                        current_params_types=workload.model_params_types,
                        model_state=self.model_state,
                        hyperparameters=self.hyperparameters,
                        loss_type=workload.loss_type,
                        optimizer_state=self.optimizer_state,
                        eval_results=self._eval_results(),
                        global_step=step,
                        rng=step_key(seed, step, PREPARE_FOR_EVAL),
                    )
                self.optimizer_state, self.model, self.model_state = _unpack_update(returned, "prepare_for_eval")
            except BaseException as error:
                self._end(TrialStatus.FAILED, self._describe_error("prepare_for_eval", error))
            self._sync()
            self._charge(start)

        replaced = self.verdict.tampering()
        if replaced is not None and not self.finished:
            self._end(TrialStatus.INVALID, f"the submission replaced {replaced} of the workload; no evaluation counts")
        start = self._clock.wall()
        metrics = self.verdict.evaluate_model(
            workload.eval_batch_size, self.model, self.model_state,
            step_key(seed, step, EVAL), workload.data_dir, None, step,
        )  # fmt: skip
        self._sync()
        clocks.eval += self._clock.wall() - start
        self._update_wall()

        row = {
            "global_step": step,
            "preemption_count": state.preemption_count,
            "score": clocks.submission,
            "total_duration": clocks.wall,
            "accumulated_submission_time": clocks.submission,
            "accumulated_eval_time": clocks.eval,
            "accumulated_logging_time": clocks.logging,
            "examples_seen": state.examples_seen,
            "process_cpu_time": clocks.process_cpu,
            **metrics,
        }
        state.eval_history.append(row)
        state.last_eval_submission_time = clocks.submission
        self._judge(row)

        if self.on_eval is not None:  # first: the watcher's CPU reading is closest to the row's clocks
            self.on_eval(row)
        start = self._clock.wall()
        if self.eval_log is not None:
            self.eval_log.append(row)
        self.checkpoint()
        clocks.logging += self._clock.wall() - start
        return row

    def reached_target(self, row: dict[str, Any]) -> bool:
        """Judged from the targets file's value, captured before the submission ran."""
        return self.verdict.reached(row)

    def _judge(self, row: dict[str, Any]) -> None:
        """Decide, after an evaluation, whether the trial has reached its target or ended."""
        state, config = self.state, self.config
        within_budget = row["score"] <= config.budget_sec
        valid = state.status != TrialStatus.INVALID
        if state.time_to_target is None and within_budget and valid and self.reached_target(row):
            state.time_to_target = row["score"]
        losses = [v for k, v in row.items() if k.endswith("/loss")]
        if self.finished:
            return
        reached = TrialStatus.TARGET_REACHED if state.time_to_target is not None else None
        if any(not math.isfinite(v) for v in losses):
            self._end(TrialStatus.DIVERGED, f"evaluation loss is not finite at step {row['global_step']}")
        elif reached and config.stop_on_target:
            self._end(reached)
        elif not within_budget or row["score"] >= config.budget_sec:
            self._end(reached or TrialStatus.OUT_OF_TIME)
        elif state.training_complete or (config.max_steps is not None and state.global_step >= config.max_steps):
            self._end(reached or TrialStatus.OK)

    def _end(self, status: TrialStatus, error: str | None = None) -> None:
        self.state.status = str(status)
        self.state.error = error

    def _describe_error(self, where: str, error: BaseException) -> str:
        self.error_traceback = "".join(traceback.format_exception(error))
        line = error_line(error, self.submission.path)
        if isinstance(error, SystemExit):
            return f"{where} called sys.exit({error.code!r}) ({self.submission.path}:{line})"
        return f"{where} raised {one_line(error)} ({self.submission.path}:{line})"

    def _eval_results(self) -> list[tuple[int, dict[str, Any]]]:
        """AlgoPerf's (step, metrics) list, rebuilt only when the history has grown."""
        history = self.state.eval_history
        if len(self._eval_results_cache) != len(history):
            self._eval_results_cache = [(row["global_step"], dict(row)) for row in history]
        return self._eval_results_cache

    def _train_state(self) -> dict[str, Any]:
        clocks = self.state.clocks
        return {
            "accumulated_submission_time": clocks.submission,
            "accumulated_eval_time": clocks.eval,
            "accumulated_logging_time": clocks.logging,
            "last_eval_time": self.state.last_eval_submission_time,
            "training_complete": self.state.training_complete,
            "validation_goal_reached": self.state.time_to_target is not None,
            "max_allowed_runtime_sec": self.config.budget_sec,
        }

    def progress(self) -> Progress:
        history = self.state.eval_history
        return Progress(
            global_step=self.state.global_step,
            submission_time=self.state.clocks.submission,
            budget_sec=self.config.budget_sec,
            last_metric=history[-1].get(self.verdict.metric_key) if history else None,
            target=self.verdict.target,
            metric_name=self.verdict.metric_name,
        )

    # --- hyperparameters and their schedule ----------------------------------------------
    def set_hyperparameters(self, changes: dict[str, Any], reseed: int | None = None) -> None:
        """Change hyperparameters before the next step (PBT, replay), keeping the schedule's shape.

        ``changes`` may be partial; values equal to the current ones are no-ops. A learning-rate
        change scales the submission's schedule from this step on; a name the submission cannot
        apply is a ``SubmissionError``. ``reseed`` re-keys the data order and random streams.
        The change is recorded in the trial's schedule (``hparams.json``).
        """
        unknown_type = {k: v for k, v in changes.items() if not isinstance(v, int | float | str | bool | None)}
        if unknown_type:
            raise SubmissionError(f"hyperparameter values must be numbers or strings, got {unknown_type!r}")
        self.submission.apply_hyperparameters(self.optimizer_state, self.hyperparameters, changes)
        self.hyperparameters = Hyperparameters({**self.hyperparameters, **changes})
        if reseed is not None:
            self._reseed(reseed)
        point = ChangePoint(self.state.global_step, dict(changes), reseed)
        schedule = self.state.schedule
        if schedule and schedule[-1].global_step == point.global_step:  # merge changes at one step
            last = schedule.pop()
            point = ChangePoint(
                point.global_step, {**last.hyperparameters, **point.hyperparameters}, point.reseed or last.reseed
            )
        schedule.append(point)

    def _apply_due_changes(self) -> None:
        while self._pending and self._pending[0].global_step <= self.state.global_step:
            point = self._pending.pop(0)
            if point.global_step == self.state.global_step:
                self.set_hyperparameters(dict(point.hyperparameters), point.reseed)

    def _reseed(self, seed: int) -> None:
        """Re-key the data order (same position, new order) and the global random streams, so a
        clone and its donor do not train on identical batches or dropout masks."""
        position = self.input_queue.state_dict()
        self.input_queue = self._new_input_queue(seed)
        self.input_queue.load_state_dict(position)
        self.seed = seed
        torch.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)
        self._rng_states = _capture_rng_states()

    def fork_from(self, donor: TrialRunner, reseed: int, changes: dict[str, Any] | None = None) -> None:
        """Become a copy of ``donor`` (learner deep-copied, lineage clocks and history inherited),
        then re-key the random streams to ``reseed`` and apply ``changes``."""
        self.load_state_dict(donor.state_dict())
        self.state.status, self.state.error = None, None
        self.set_hyperparameters(changes or {}, reseed=reseed)

    # --- saving and restoring the whole trial -----------------------------------------------
    def _state_refs(self) -> dict[str, Any]:
        """The whole state, by reference (for checkpoints, which serialise it at once)."""
        if self._running:
            self._rng_states = _capture_rng_states()  # a checkpoint mid-run holds the RNG of now
        return {
            "learner": {
                "model": self.model.state_dict(),
                "model_state": self.model_state,
                "optimizer_state": {
                    key: ("state_dict", value.state_dict()) if hasattr(value, "state_dict") else ("value", value)
                    for key, value in (self.optimizer_state or {}).items()
                },
                "input_queue": self.input_queue.state_dict(),
                "rng": self._rng_states,
                "seed": self.seed,
                "hyperparameters": dict(self.hyperparameters),
            },
            "bookkeeping": self.state,
        }

    def state_dict(self) -> dict[str, Any]:
        """A deep copy of the whole state: mutating it, or the trial, leaves the other intact."""
        return copy.deepcopy(self._state_refs())

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        """Take over ``saved`` (copied, so that it stays independent of this trial)."""
        self._load(copy.deepcopy(saved))

    def _load(self, saved: dict[str, Any]) -> None:
        learner = saved["learner"]
        self.model.load_state_dict(learner["model"])
        self.model_state = learner["model_state"]
        for key, (kind, value) in learner["optimizer_state"].items():
            if kind == "state_dict":
                self.optimizer_state[key].load_state_dict(value)
            else:
                self.optimizer_state[key] = value
        saved_hp = learner["hyperparameters"]
        if dict(self.hyperparameters) != saved_hp:
            # The optimizer's own values came back with its state; only what is read each step
            # (the mapping handed to update_params) needs the saved values.
            self.hyperparameters = Hyperparameters(saved_hp)
        if learner["seed"] != self.seed:
            self.seed = learner["seed"]
            self.input_queue = self._new_input_queue(self.seed)
        self.input_queue.load_state_dict(learner["input_queue"])
        self._rng_states = learner["rng"]
        self.state = saved["bookkeeping"]
        applied = {point.global_step for point in self.state.schedule[1:]}  # changes already made
        self._pending = sorted(
            (
                p
                for p in self.config.schedule
                if p.global_step >= self.state.global_step and p.global_step not in applied
            ),
            key=lambda point: point.global_step,
        )
        self._wall_origin = (self._clock.wall(), self.state.clocks.wall)

    def checkpoint(self) -> None:
        if self.trial_dir is None:
            return
        start = self._clock.wall()
        save_checkpoint(self.trial_dir / CHECKPOINT_FILE, self._state_refs())
        elapsed = self._clock.wall() - start
        self.state.clocks.logging += elapsed
        if not self._running:  # outside a segment no wall window is open: the checkpoint is its own
            self.state.clocks.wall += elapsed

    def resume(self) -> bool:
        """Restore from the trial directory's checkpoint, if any; the eval log is rewritten to
        the checkpoint's history so rows written after it (or before a first checkpoint that never
        came) are neither lost nor duplicated. A corrupt checkpoint is set aside, the previous
        good one used (or the trial restarts), and the trial's notes say so."""
        if self.trial_dir is None:
            return False
        saved, note = load_checkpoint(self.trial_dir / CHECKPOINT_FILE)
        if note:
            warnings.warn(note, stacklevel=2)
        if saved is None:
            if note:
                self.state.notes.append(note)
            if self.eval_log is not None:
                self.eval_log.rewrite([])
            return False
        self._load(saved)
        if not self.state.paused:
            self.state.preemption_count += 1
        self.state.paused = False
        if note:
            self.state.notes.append(note)
        if self.eval_log is not None:
            self.eval_log.rewrite(self.state.eval_history)
        return True


def _unpack_update(returned: Any, where: str) -> tuple[Any, Any, Any]:
    """AlgoPerf's (optimizer_state, params, model_state), or a clear error naming the function."""
    if not isinstance(returned, tuple | list) or len(returned) != 3:
        shown = type(returned).__name__ if not isinstance(returned, tuple | list) else f"{len(returned)} values"
        raise SubmissionError(
            f"{where} must return (optimizer_state, current_param_container, model_state), got {shown}"
        )
    optimizer_state, model, model_state = returned
    if not isinstance(model, torch.nn.Module):
        raise SubmissionError(f"{where} returned a {type(model).__name__} as current_param_container, not the model")
    return optimizer_state, model, model_state


class _Phase:
    """Marks the submission's code in a shared value the parent process can read after a crash."""

    __slots__ = ("_value",)

    def __init__(self, value: Any) -> None:
        self._value = value

    def __enter__(self) -> None:
        if self._value is not None:
            self._value.value = PHASE_SUBMISSION

    def __exit__(self, *exc_info: object) -> None:
        if self._value is not None:
            self._value.value = PHASE_ALGOBENCH


def _no_sync() -> None:
    return None


def _capture_rng_states() -> dict[str, Any]:
    states = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _restore_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
