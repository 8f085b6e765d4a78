"""The timed training loop (DESIGN.md contract 3), runnable in segments and resumable exactly.

Only the submission's own work is on the clock: ``data_selection`` + ``update_params`` (and
``prepare_for_eval``), with the device synchronised before the clock is read. Evaluation,
logging and checkpointing are timed on separate clocks. The whole trial state (model,
optimizer state, input position, RNG, clocks, eval history) round-trips through
``state_dict``, so a trial run in segments, or killed and resumed, logs the same evaluations
as one run straight through.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from algobench import spec
from algobench.errors import DivergedError
from algobench.hyperparameters import Hyperparameters
from algobench.results import CHECKPOINT_FILE, EVAL_FILE, EvalLog, load_checkpoint, save_checkpoint
from algobench.submission import Submission, error_line
from algobench.workloads.base import Workload

# Per-step random keys for AlgoPerf's rng arguments: two uint32 words, one purpose each.
DATA_SELECTION, UPDATE, PREPARE_FOR_EVAL, EVAL = range(4)


@dataclass(frozen=True)
class RunConfig:
    """How one trial runs. ``budget_sec`` is final (calibrated, ×1.5 for self-tuning)."""

    budget_sec: float
    eval_period_sec: float
    seed: int = 0
    eval_every_steps: int | None = None  # a step schedule instead of a time one (exact replays)
    max_steps: int | None = None
    stop_on_target: bool = True
    checkpoint_period_sec: float = 30.0  # wall seconds between checkpoints (and at every eval)


@dataclass
class Clocks:
    """Accumulated times; all of them survive a checkpoint."""

    submission: float = 0.0
    eval: float = 0.0
    logging: float = 0.0
    wall: float = 0.0  # total_duration over all segments
    process_cpu: float = 0.0


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
    global_step: int = 0
    examples_seen: int = 0
    preemption_count: int = 0
    last_eval_submission_time: float = 0.0
    training_complete: bool = False
    status: str | None = None  # a final status once the trial has ended
    error: str | None = None
    time_to_target: float | None = None
    clocks: Clocks = field(default_factory=Clocks)
    eval_history: list[dict[str, Any]] = field(default_factory=list)


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
    ) -> None:
        self.workload = workload
        self.submission = submission
        self.hyperparameters = hyperparameters
        self.config = config
        self.trial_dir = trial_dir
        self.on_progress = on_progress
        self.state = TrialState()
        self.eval_log = EvalLog(trial_dir / EVAL_FILE) if trial_dir else None
        self._sync = torch.cuda.synchronize if workload.device.type == "cuda" else _no_sync

        torch.manual_seed(config.seed)
        self.model, self.model_state = workload.init_model_fn(step_key(config.seed, 0, EVAL))
        self.batch_size = submission.batch_size(workload, hyperparameters)
        self.input_queue = workload._build_input_queue(
            step_key(config.seed, 0, DATA_SELECTION), "train", workload.data_dir, self.batch_size
        )
        self.optimizer_state = submission.init_optimizer_state(
            workload=workload,
            model_params=self.model,
            model_state=self.model_state,
            hyperparameters=hyperparameters,
            rng=step_key(config.seed, 0, UPDATE),
        )
        self._rng_states = _capture_rng_states()
        self._wall_origin = (time.perf_counter(), 0.0)
        self._eval_results_cache: list[tuple[int, dict[str, Any]]] = []

    # --- the loop -------------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return self.state.status is not None

    def run(self, until_step: int | None = None) -> str | None:
        """Train until the trial ends or ``global_step`` reaches ``until_step``.

        Returns the final status, or None when the segment ended first (call again to go on).
        """
        _restore_rng_states(self._rng_states)
        segment_start = time.perf_counter()
        self._wall_origin = (segment_start, self.state.clocks.wall)
        last_checkpoint = segment_start
        last_progress = -math.inf
        state, clocks, config = self.state, self.state.clocks, self.config
        try:
            while not self.finished and (until_step is None or state.global_step < until_step):
                self._timed_step()
                if self.finished:
                    break
                now = self._update_wall()
                if self._eval_due():
                    self.evaluate()
                    last_checkpoint = time.perf_counter()
                elif clocks.submission >= config.budget_sec:
                    self.evaluate()  # the end-of-run evaluation
                    last_checkpoint = time.perf_counter()
                elif now - last_checkpoint >= config.checkpoint_period_sec:
                    self.checkpoint()
                    last_checkpoint = time.perf_counter()
                if self.on_progress and clocks.submission - last_progress >= 0.5:
                    last_progress = clocks.submission
                    self.on_progress(self.progress())
        finally:
            self._rng_states = _capture_rng_states()
        if not self.finished:
            self.checkpoint()
        return state.status

    def _update_wall(self) -> float:
        """Bring ``total_duration`` up to now: wall time over all segments so far."""
        now = time.perf_counter()
        segment_start, wall_before = self._wall_origin
        self.state.clocks.wall = wall_before + (now - segment_start)
        return now

    def _timed_step(self) -> None:
        state, clocks = self.state, self.state.clocks
        step, seed = state.global_step, self.config.seed
        start, cpu_start = time.perf_counter(), time.process_time()
        try:
            batch = self.submission.data_selection(
                self.workload, self.input_queue, self.optimizer_state, self.model,
                self.model_state, self.hyperparameters, step, step_key(seed, step, DATA_SELECTION),
            )  # fmt: skip
            extra = (
                {"train_state": MappingProxyType(self._train_state())}
                if self.submission.update_params_takes_train_state
                else {}
            )
            self.optimizer_state, self.model, self.model_state = self.submission.update_params(
                workload=self.workload,
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
        except spec.TrainingCompleteError:
            state.training_complete = True
        except DivergedError as error:
            self._end("diverged", str(error))
        except Exception as error:  # the submission's fault: record it, keep the sweep going
            self._end("failed", self._describe_error("update_params", error))
        self._sync()
        clocks.submission += time.perf_counter() - start
        clocks.process_cpu += time.process_time() - cpu_start
        state.global_step += 1
        state.examples_seen += self.batch_size

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
        step, seed = state.global_step, self.config.seed
        if self.submission.prepare_for_eval is not None and not self.finished:
            start = time.perf_counter()
            try:
                self.optimizer_state, self.model, self.model_state = self.submission.prepare_for_eval(
                    workload=workload,
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
            except Exception as error:
                self._end("failed", self._describe_error("prepare_for_eval", error))
            self._sync()
            clocks.submission += time.perf_counter() - start

        start = time.perf_counter()
        metrics = workload.eval_model(
            workload.eval_batch_size, self.model, self.model_state,
            step_key(seed, step, EVAL), workload.data_dir, None, step,
        )  # fmt: skip
        self._sync()
        clocks.eval += time.perf_counter() - start
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

        start = time.perf_counter()
        if self.eval_log is not None:
            self.eval_log.append(row)
        self.checkpoint()
        clocks.logging += time.perf_counter() - start
        return row

    def _judge(self, row: dict[str, Any]) -> None:
        """Decide, after an evaluation, whether the trial has reached its target or ended."""
        state, config, workload = self.state, self.config, self.workload
        within_budget = row["score"] <= config.budget_sec
        if state.time_to_target is None and within_budget and workload.has_reached_validation_target(row):
            state.time_to_target = row["score"]
        losses = [v for k, v in row.items() if k.endswith("/loss")]
        if self.finished:
            return
        if any(not math.isfinite(v) for v in losses):
            self._end("diverged", f"evaluation loss is not finite at step {row['global_step']}")
        elif state.time_to_target is not None and config.stop_on_target:
            self._end("target_reached")
        elif not within_budget or row["score"] >= config.budget_sec:
            self._end("target_reached" if state.time_to_target is not None else "out_of_time")
        elif state.training_complete or (config.max_steps is not None and state.global_step >= config.max_steps):
            self._end("target_reached" if state.time_to_target is not None else "ok")

    def _end(self, status: str, error: str | None = None) -> None:
        self.state.status = status
        self.state.error = error

    def _describe_error(self, where: str, error: Exception) -> str:
        line = error_line(error, self.submission.path)
        return f"{where} raised {type(error).__name__}: {error} ({self.submission.path}:{line})"

    def _eval_results(self) -> list[tuple[int, dict[str, Any]]]:
        """AlgoPerf's (step, metrics) list, rebuilt only when the history has grown."""
        history = self.state.eval_history
        if len(self._eval_results_cache) != len(history):
            self._eval_results_cache = [(row["global_step"], row) for row in history]
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
        metric_key = f"validation/{self.workload.target_metric_name}"
        return Progress(
            global_step=self.state.global_step,
            submission_time=self.state.clocks.submission,
            budget_sec=self.config.budget_sec,
            last_metric=history[-1].get(metric_key) if history else None,
            target=self.workload.validation_target_value,
            metric_name=self.workload.target_metric_name,
        )

    def set_hyperparameters(self, hyperparameters: Hyperparameters) -> None:
        """Change hyperparameters between steps (PBT): native submissions get them written
        into their optimizer's ``param_groups``; AlgoPerf-form ones see them in update_params."""
        self.hyperparameters = hyperparameters
        self.submission.apply_hyperparameters(self.optimizer_state, hyperparameters)

    # --- saving and restoring the whole trial -----------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "model_state": self.model_state,
            "optimizer_state": {
                key: ("state_dict", value.state_dict()) if hasattr(value, "state_dict") else ("value", value)
                for key, value in (self.optimizer_state or {}).items()
            },
            "input_queue": self.input_queue.state_dict(),
            "rng": self._rng_states,
            "hyperparameters": dict(self.hyperparameters),
            "trial": self.state,
        }

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        self.model.load_state_dict(saved["model"])
        self.model_state = saved["model_state"]
        for key, (kind, value) in saved["optimizer_state"].items():
            if kind == "state_dict":
                self.optimizer_state[key].load_state_dict(value)
            else:
                self.optimizer_state[key] = value
        self.input_queue.load_state_dict(saved["input_queue"])
        self._rng_states = saved["rng"]
        if dict(self.hyperparameters) != saved["hyperparameters"]:
            self.set_hyperparameters(Hyperparameters(saved["hyperparameters"]))
        self.state = saved["trial"]
        self._wall_origin = (time.perf_counter(), self.state.clocks.wall)

    def checkpoint(self) -> None:
        if self.trial_dir is None:
            return
        start = time.perf_counter()
        save_checkpoint(self.trial_dir / CHECKPOINT_FILE, self.state_dict())
        self.state.clocks.logging += time.perf_counter() - start

    def resume(self) -> bool:
        """Restore from the trial directory's checkpoint, if any; the eval log is rewritten to
        the checkpoint's history so rows written after it are neither lost nor duplicated."""
        if self.trial_dir is None:
            return False
        saved = load_checkpoint(self.trial_dir / CHECKPOINT_FILE)
        if saved is None:
            return False
        self.load_state_dict(saved)
        self.state.preemption_count += 1
        if self.eval_log is not None:
            self.eval_log.rewrite(self.state.eval_history)
        return True


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
