"""The Ray Tune trainable: one population member, trained in segments by algobench's own trial code.

Each ``step`` runs one segment (to the next multiple of the interval) through the child-process
executor, exactly as a native PBT segment runs: the trial resumes from its checkpoint in the
member's AlgoPerf trial directory, trains, evaluates every ``eval_every_steps``, checkpoints, and
its process is watched (timeout, clock check). It reports at the segment's last evaluation:
``global_step`` (Ray's ``time_attr``, so time is counted in steps, never in Ray's wall clock,
which includes evaluation and checkpointing), the submission time, the validation metric and
``fitness`` (the native tuner's: the mean of the last ``fitness_evals`` evaluations, signed so
that larger is better; only while the member is live, so that Ray never compares one that ended).

Checkpoints are the member's own files (its torch checkpoint, eval log and schedule) plus
``ray_state.json`` (member, step, hyperparameters, fitness). Restoring one is either

- the member's own (Ray paused it at a barrier, or restarts it after a crash): its files come
  back if its directory has moved on since; or
- a donor's (an exploit): the member's directory becomes a fork of the donor's checkpoint with
  ``algobench.fork`` — the same files native PBT writes — and the new config's values are the
  fork's changes. The next segment applies them *after* the donor's optimizer state is loaded,
  so the restored state never overwrites the perturbed values (a known Ray Tune pitfall), and the
  change point lands in the lineage's schedule (``hparams.json``) with its reseed.

Every segment is appended to ``segments.jsonl`` through the same ``RecordingTuner`` as native
runs, so the equal-compute view and the plot read a Ray run as they read a native one.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from ray import tune

from algobench.executors.base import InfrastructureError
from algobench.fork import fork_trial_dir
from algobench.layout import CHECKPOINT_FILE, EVAL_FILE, HPARAMS_FILE, SUMMARY_FILE, TrialStatus
from algobench.results import read_json, write_json
from algobench.seeds import derive_seed
from algobench.trial_spec import TrialSpec
from algobench.tuning.base import FixedTrials, TrialRequest
from algobench.tuning.events import RecordingTuner, read_eval_rows, read_schedule, values_at
from algobench.tuning.ray_space import RaySpace
from algobench.tuning.tuners import TuningTask

STATE_FILE = "ray_state.json"  # in a Ray checkpoint and in the member's directory: where it stands
MEMBER_FILES = (CHECKPOINT_FILE, EVAL_FILE, HPARAMS_FILE)


@dataclass(frozen=True)
class MemberContext:
    """What every member's actor needs, passed once through ``tune.with_parameters``."""

    task: TuningTask
    template: TrialSpec  # the run's trial spec; member, seed, values and until_step are filled in
    space: RaySpace
    interval: int
    fitness_evals: int
    metric_key: str  # the fitness's eval column (validation, or a held-out tuning split)
    validation_key: str  # the target's eval column: what the segments record, for scoring
    sign: float  # +1 when a larger metric is better, -1 when smaller is
    preload: tuple[str, ...]


def member_name(trial: Any) -> str:
    """Ray's name (and directory) for a trial: fixed at creation from its grid value, so it names
    the member for good even after an exploit copies another member's config into it."""
    return f"member_{trial.config['member']}"


def fitness_at(rows: list[dict[str, float]], step: int, metric_key: str, evals: int) -> float:
    """The native tuner's fitness: the mean of the last ``evals`` values of the metric at or before ``step``."""
    values = [r.get(metric_key, math.nan) for r in rows if r["global_step"] <= step][-evals:]
    return float(np.mean(values)) if values else math.nan


class AlgobenchTrainable(tune.Trainable):
    """One population member on Ray Tune (see the module docstring)."""

    def setup(self, config: dict[str, Any], context: MemberContext) -> None:
        self.context = context
        self._executor: Any = None
        self._start(config)

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        """Ray reuses this actor for another member, or for this one with a new config."""
        self._start(new_config)
        return True

    def _start(self, config: dict[str, Any]) -> None:
        self.values = self.context.space.to_values(config)
        self.member = int(self.trial_name.removeprefix("member_"))
        self.step_reached = _state(self.member_dir).get("step", 0) if self.member_dir.exists() else 0
        self.built_with = dict(self.values)  # the values the next segment's submission is built with
        self.fork: dict[str, Any] | None = None  # the exploit the next segment applies, as recorded

    @property
    def member_dir(self) -> Path:
        return self.context.task.member_dir(self.member)

    # --- one segment ------------------------------------------------------------------------
    def step(self) -> dict[str, Any]:
        context = self.context
        start = self.step_reached
        until = (start // context.interval + 1) * context.interval
        fork = self.fork
        request = TrialRequest(
            trial=self.member, hyperparameters=dict(self.built_with), until_step=until,
            fork_from=fork["donor"] if fork else None, change_step=start if fork else None,
            changes=dict(fork["changes"]) if fork else {}, round=start // context.interval,
        )  # fmt: skip
        recorder = RecordingTuner(
            FixedTrials([request]), context.task.tuning_dir, context.task.member_dir, context.validation_key
        )
        recorder.ask()
        spec = replace(
            context.template, trial=self.member, seed=context.task.member_seed(self.member),
            hyperparameters=dict(self.built_with), until_step=until,
        )  # fmt: skip
        began = time.perf_counter()
        summary = self._run(spec)
        elapsed = time.perf_counter() - began
        recorder.tell(request, summary)
        self.fork, self.built_with = None, dict(self.values)
        self.step_reached = int(summary.get("steps") or start)
        rows = read_eval_rows(self.member_dir)
        fitness = fitness_at(rows, self.step_reached, context.metric_key, context.fitness_evals)
        status = TrialStatus.parse(summary.get("status"))
        write_json(self.member_dir / STATE_FILE, self._record(fitness))
        result: dict[str, Any] = {
            "global_step": self.step_reached,
            "submission_time": summary.get("submission_time"),
            context.metric_key: rows[-1].get(context.metric_key) if rows else math.nan,
            "algobench_status": None if status is None else str(status),
            "algobench_member": self.member,
            "algobench_values": dict(self.values),
            "algobench_fitness": fitness,
            "algobench_segment_sec": elapsed,
            "algobench_exploit": fork,
            "done": status is not None,
            # Only a live member with a finite fitness is compared. One that ended here (failed,
            # diverged, timed out, finished) or has no finite metric reports NaN, which Ray's PBT
            # leaves out of its quantiles and PB2 out of its GP data, so it is neither cloned
            # nor revived as a clone. (Ray refuses a result without the metric: a missing one
            # would end the whole run.)
            "fitness": context.sign * fitness if status is None and math.isfinite(fitness) else math.nan,
        }
        return result

    def _run(self, spec: TrialSpec) -> dict[str, Any]:
        if self._executor is None:
            from algobench.executors.process import ProcessExecutor

            self._executor = ProcessExecutor(parallel=1, preload=self.context.preload)
        # An InfrastructureError ends this Ray trial in error; Ray restarts it from its last checkpoint.
        return self._executor.submit(spec).result()

    def _record(self, fitness: float) -> dict[str, Any]:
        return {"member": self.member, "step": self.step_reached, "hyperparameters": self.values, "fitness": fitness}

    # --- checkpoints --------------------------------------------------------------------------
    def save_checkpoint(self, checkpoint_dir: str) -> None:
        target = Path(checkpoint_dir)
        for name in MEMBER_FILES:
            if (self.member_dir / name).exists():
                shutil.copyfile(self.member_dir / name, target / name)
        state = _state(self.member_dir) or self._record(math.nan)
        write_json(target / STATE_FILE, state)

    def load_checkpoint(self, checkpoint_dir: str) -> None:
        source = Path(checkpoint_dir)
        saved = _state(source)
        if not saved or not (source / CHECKPOINT_FILE).exists():
            raise InfrastructureError(
                f"{source}: a Ray checkpoint without algobench's files ({STATE_FILE}, {CHECKPOINT_FILE})"
            )
        if saved["member"] == self.member:
            self._restore_own(source, saved)
        else:
            self._take_over(source, saved)

    def _restore_own(self, source: Path, saved: dict[str, Any]) -> None:
        """Paused at a barrier and resumed, or restarted after a crash: the member's files as saved."""
        if _state(self.member_dir).get("step") != saved["step"] or (self.member_dir / SUMMARY_FILE).exists():
            for name in MEMBER_FILES:
                if (source / name).exists():
                    shutil.copyfile(source / name, self.member_dir / name)
            (self.member_dir / f"{CHECKPOINT_FILE}.prev").unlink(missing_ok=True)
            (self.member_dir / SUMMARY_FILE).unlink(missing_ok=True)
            write_json(self.member_dir / STATE_FILE, saved)
        self.step_reached = int(saved["step"])
        self.built_with = dict(self.values)

    def _take_over(self, source: Path, saved: dict[str, Any]) -> None:
        """An exploit: fork the donor's checkpoint into this member's directory, with the new values as changes."""
        context = self.context
        began = time.perf_counter()
        step, donor, donor_values = int(saved["step"]), int(saved["member"]), dict(saved["hyperparameters"])
        old = values_at(read_schedule(self.member_dir), step)
        own_fitness = fitness_at(read_eval_rows(self.member_dir), step, context.metric_key, context.fitness_evals)
        changes = {name: value for name, value in self.values.items() if donor_values.get(name) != value}
        reseed = derive_seed(context.task.member_seed(self.member), step // context.interval)
        fork_trial_dir(source, self.member_dir, at_step=step, reseed=reseed, changes=changes)
        self.step_reached = step
        self.built_with = donor_values  # built as the donor was, then the changes are applied
        self.fork = {
            "event": "exploit",
            "round": step // context.interval,
            "step": step,
            "member": self.member,
            "donor": donor,
            "donor_step": step,
            "old_hyperparameters": old,
            "new_hyperparameters": {**donor_values, **changes},
            "changes": changes,
            "fitness": own_fitness,
            "donor_fitness": saved.get("fitness"),
            "metric": context.metric_key,
            "reseed": reseed,
            "fork_sec": time.perf_counter() - began,
        }

    def cleanup(self) -> None:
        if self._executor is not None:
            self._executor.close()


def _state(folder: Path) -> dict[str, Any]:
    return read_json(folder / STATE_FILE) or {}
