"""Population Based Training (Jaderberg et al. 2017, arXiv:1711.09846) behind the tuner interface.

N members start from Halton points of the submission's search space (the same points as N
trials of quasi-random search) and train in segments of ``interval`` steps. At each barrier
(step r x interval) every live member's fitness is the mean of its last ``fitness_evals``
validation evaluations (direction-aware); then:

- *exploit*: truncation selection (the bottom ``quantile`` copies a random member of the top
  ``quantile``) or binary tournament (each member meets a random other and copies it if it is
  strictly better). Copying is a fork on disk: the recipient takes the donor's checkpoint, eval
  log and hyperparameters at the barrier (``algobench.fork``); its random streams are re-keyed so
  that donor and clone do not train on the same batches.
- *explore*: each explored hyperparameter of the copy is resampled from the search space with
  probability ``resample_probability``, else perturbed by a factor drawn from
  ``perturbation_factors`` (x0.8 / x1.2): log-scaled ranges in log space (a multiplication),
  linear ones multiplied as well, both clipped to the range's bounds; a choice moves to a
  neighbouring feasible point.

``mode: sync`` (default) runs rounds: every live member reaches the barrier before anyone is
compared, so members are compared only at equal steps. ``mode: async`` lets each member decide
when it reaches a barrier, against the members that have reached the same step (their fitness
at that step is recorded, and their checkpoint at that step kept as a snapshot to fork from),
so fast members need not wait; its decisions depend on the order in which members arrive.

Only hyperparameters the runner can change mid-run are explored (``changeable_names``): by
default the search space's ranges and multi-point choices, less ``FIXED_BY_DEFAULT`` and less
what the submission cannot change (a warm-up length is baked into its schedule); ``explore``
names them explicitly, ``fixed`` removes some.

Every random choice comes from a generator seeded by (seed, study, round) (and the member, in
async mode), so the same seed gives the same event log. The state resumes from the members'
trial directories and the committed lines of ``events.jsonl``: a killed run continues at the
round where it stopped, re-making a fork whose files were never copied, and never re-making
one that was (see ``_resume``).
"""

from __future__ import annotations

import ast
import contextlib
import math
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from algobench import layout
from algobench.errors import AlgobenchError
from algobench.fork import FORK_FILE
from algobench.layout import CHECKPOINT_FILE, EVAL_FILE, Direction, TrialStatus
from algobench.results import read_json, read_summary
from algobench.seeds import derive_seed
from algobench.tuning.base import Summary, TrialRequest, Tuner
from algobench.tuning.events import append_lines, events_path, read_committed, read_eval_rows, read_schedule
from algobench.tuning.halton import sample
from algobench.tuning.search_space import Choice, Dimension, Range
from algobench.tuning.tuners import Settings, TuningTask, setting

# Hyperparameters that shape what is built once (the model, the batch size, the length of a warm-up
# baked into the learning-rate schedule): PBT keeps them at their starting values unless ``explore``
# names them (and the submission can change them, which the runner checks).
FIXED_BY_DEFAULT = ("warmup_factor", "warmup_steps", "batch_size", "dropout_rate", "aux_dropout_rate")
MODES = ("sync", "async")
SELECTIONS = ("truncation", "tournament")
EXPLORERS = ("perturb", "gp-opt")
# The settings of ``explorer: gp-opt`` (GP-Opt's, see ``algobench.tuning.gp_opt``): left out of the
# settings record of a perturbing run, so that its settings.json is what it was before they existed.
GP_SETTINGS = ("acquisition", "ratio", "beta", "arms")
MAX_FITNESS_SPLIT = 0.5  # a held-out tuning split larger than this would starve training


@dataclass(frozen=True)
class PBTSettings(Settings):
    population: int = setting(8, "int", "members of the population")
    interval: int | None = setting(
        None, "int?", "steps between decisions (a multiple of eval_every_steps; default: step_hint // 20)"
    )
    burn_in: int = setting(0, "int", "no exploit before this step")
    mode: str = setting("sync", "str", "sync: rounds, members compared at equal steps; async: each decides when ready")
    selection: str = setting("truncation", "str", "truncation (bottom quantile copies the top) or tournament")
    quantile: float = setting(0.25, "float", "truncation: the bottom and top fractions, in (0, 0.5]")
    resample_probability: float = setting(0.25, "float", "explore: resample a value from the search space")
    perturbation_factors: tuple[float, ...] = setting((0.8, 1.2), "floats", "explore: multiply by one of these")
    fitness_evals: int = setting(2, "int", "fitness = mean of the last k validation evaluations")
    fitness_split: float = setting(
        0.0, "float",
        "fitness on this fraction of the training data, held out from training (at most the validation set's "
        "size); 0: on the validation set",
    )  # fmt: skip
    explore: tuple[str, ...] | None = setting(
        None, "names?", "hyperparameters to explore (default: ranges and multi-point choices the runner can change)"
    )
    fixed: tuple[str, ...] = setting((), "names", "hyperparameters never explored")
    initial_points: tuple[dict[str, Any], ...] | None = setting(
        None, "points?", "the members' starting hyperparameters (default: Halton points of the search space)"
    )
    explorer: str = setting(
        "perturb", "str",
        "how a copy's new values are chosen (--explore): perturb (resample or perturb the donor's) or gp-opt "
        "(a GP bandit over hyperparameters -> fitness improvement per interval, switching rarely; sync mode)",
    )  # fmt: skip
    acquisition: str = setting("ucb", "str", "explorer gp-opt: ucb (lowest mean - beta sd) or ei")
    ratio: float = setting(2.0, "float", "explorer gp-opt: C, keep a candidate until its variance shrinks by C")
    beta: float = setting(2.0, "float", "explorer gp-opt, ucb: width of the confidence bound, in posterior sds")
    arms: int = setting(1024, "int", "explorer gp-opt: candidate points (scrambled Halton points) besides the starts")

    def check(self, task: TuningTask, where: Callable[..., str]) -> None:
        super().check(task, where)

        def fail(keys: str | tuple[str, ...], message: str) -> None:
            raise AlgobenchError(f"{where(*((keys,) if isinstance(keys, str) else keys))}: {message}")

        if self.population < 2:
            fail("population", f"population must be at least 2 (one member has no one to copy), got {self.population}")
        if not 0 < self.quantile <= 0.5:
            fail("quantile", f"quantile must be in (0, 0.5], got {self.quantile}")
        if self.mode not in MODES:
            fail("mode", f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.selection not in SELECTIONS:
            fail("selection", f"selection must be one of {', '.join(SELECTIONS)}, got {self.selection!r}")
        if not 0 <= self.resample_probability <= 1:
            fail("resample_probability", f"resample_probability must be in [0, 1], got {self.resample_probability}")
        if not self.perturbation_factors or any(f <= 0 for f in self.perturbation_factors):
            fail(
                "perturbation_factors",
                f"perturbation_factors must be positive numbers, got {self.perturbation_factors}",
            )
        if self.fitness_evals < 1:
            fail("fitness_evals", f"fitness_evals must be at least 1, got {self.fitness_evals}")
        if not 0 <= self.fitness_split <= MAX_FITNESS_SPLIT:
            fail("fitness_split", f"fitness_split must be in [0, {MAX_FITNESS_SPLIT}], got {self.fitness_split}")
        self._check_explorer(fail)
        if self.burn_in < 0:
            fail("burn_in", f"burn_in must be at least 0, got {self.burn_in}")
        interval = self.resolved_interval(task)
        if interval < 1:
            fail("interval", f"interval must be at least 1 step, got {interval}")
        if self.eval_every_steps is not None and interval % self.eval_every_steps:
            fail(
                ("interval", "eval_every_steps"),
                f"interval {interval} is not a multiple of eval_every_steps {self.eval_every_steps}: fitness must be "
                f"measured at the barriers",
            )
        if self.max_steps is not None and interval > self.max_steps:
            fail(
                ("interval", "max_steps"), f"interval {interval} is longer than max_steps {self.max_steps}: no decision"
            )
        names = {d.name for d in task.search_space.dimensions}
        space = task.search_space.source
        for key in ("explore", "fixed"):
            unknown = [n for n in getattr(self, key) or () if n not in names]
            if unknown:
                known = ", ".join(sorted(names)) or "no ranges or choices"
                fail(key, f"{key} names {', '.join(map(repr, unknown))}, not a hyperparameter of {space} ({known})")
        if self.initial_points is not None:
            if len(self.initial_points) < self.population:
                count = len(self.initial_points)
                fail("initial_points", f"initial_points lists {count} points for a population of {self.population}")
            space_names = names | {k for p in task.search_space.fixed_points or () for k in p}
            for point in self.initial_points:
                unknown = sorted(set(point) - space_names)
                if unknown:
                    listed = ", ".join(map(repr, unknown))
                    fail("initial_points", f"initial_points names {listed}, not a hyperparameter of {space}")
        if self.explore is not None:
            changeable = changeable_names(task.submission_path)
            refused = [n for n in self.explore if n not in changeable]
            if refused:
                fail(
                    "explore",
                    f"explore names {', '.join(map(repr, refused))}, which the runner cannot change mid-run for "
                    f"{task.submission_path} (it can change: {', '.join(sorted(changeable))})",
                )

    def _check_explorer(self, fail: Callable[[str | tuple[str, ...], str], None]) -> None:
        from algobench.tuning.gp_opt import ACQUISITIONS

        if self.explorer not in EXPLORERS:
            fail("explorer", f"explore (explorer) must be one of {', '.join(EXPLORERS)}, got {self.explorer!r}")
        if self.explorer == "perturb":
            defaults = {f.name: f.default for f in fields(PBTSettings)}
            changed = [name for name in GP_SETTINGS if getattr(self, name) != defaults[name]]
            if changed:
                fail(tuple(changed), f"{', '.join(changed)}: settings of --explore gp-opt, not of perturb")
            return
        if self.mode != "sync":
            fail(("explorer", "mode"), "explore gp-opt needs mode sync (its bandit observes whole rounds)")
        if self.acquisition not in ACQUISITIONS:
            fail("acquisition", f"acquisition must be one of {', '.join(ACQUISITIONS)}, got {self.acquisition!r}")
        if self.ratio <= 1:
            fail("ratio", f"ratio must be above 1 (C = 1 switches at every replacement), got {self.ratio}")
        if self.beta < 0 or self.arms < 1:
            fail(("beta", "arms"), f"needs beta >= 0 and arms >= 1, got beta {self.beta}, arms {self.arms}")

    def resolved_interval(self, task: TuningTask) -> int:
        if self.interval is not None:
            return self.interval
        if task.step_hint is None:
            raise AlgobenchError("pbt: interval is not set and the workload's step_hint is unknown")
        return default_interval(task.step_hint)


def default_interval(step_hint: int) -> int:
    """PBT's steps between decisions when none are given: 20 rounds over ``step_hint``."""
    return max(step_hint // 20, 1)


def default_eval_every(interval: int) -> int:
    """Evaluations twice a round (once when the interval is odd), so fitness sits on the barriers."""
    return interval // 2 if interval % 2 == 0 else interval


def changeable_names(submission_path: str | Path) -> set[str]:
    """The hyperparameters the runner can change mid-run for this file, read without importing it:
    the learning rate, the torch optimizer fields algobench writes, and the names read at every step
    (the native training step's, or those an AlgoPerf-form file declares)."""
    from algobench.submission import NATIVE_PER_STEP, PARAM_GROUP_WRITERS, PER_STEP_DECLARATION

    tree = ast.parse(Path(submission_path).read_text(), filename=str(submission_path))
    top = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    names = {"learning_rate", *PARAM_GROUP_WRITERS}
    if {"update_params", "init_optimizer_state"} <= top:
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == PER_STEP_DECLARATION for t in node.targets
            ):
                with contextlib.suppress(ValueError):
                    names.update(ast.literal_eval(node.value))
    else:
        names.update(NATIVE_PER_STEP)
    return names


@dataclass
class Member:
    """One member of the population, as the tuner sees it between segments."""

    index: int
    hyperparameters: dict[str, Any]  # the lineage's current values
    step: int = 0  # the barrier it last reached
    status: str | None = None  # a final status once its trial has ended
    fitness: dict[int, float] = field(default_factory=dict)  # mean metric at each barrier it passed
    donor: int | None = None  # whom it copied at its last barrier (for the display)


@dataclass(frozen=True)
class Report:
    """What the progress display shows after a decision: a round (sync) or one member (async)."""

    round: int
    step: int
    members: list[Member]
    metric: str
    explored: tuple[str, ...]


class PBT(Tuner):
    """Population Based Training: members train in segments; the worst copy the best, then perturb what they copied."""

    name = "pbt"
    Settings = PBTSettings

    def __init__(self, task: TuningTask, settings: PBTSettings) -> None:
        from algobench.workloads.registry import workload_info

        self.task = task
        self.settings = settings
        self.interval = settings.resolved_interval(task)
        self._eval_every = settings.eval_every_steps or default_eval_every(self.interval)
        info = workload_info(task.workload_name)
        self.tuning_split = settings.fitness_split
        self.metric = f"{'tuning' if self.tuning_split else 'validation'}/{info.target_metric_name}"
        self.direction = Direction(info.metric_direction)
        self.dimensions: dict[str, Dimension] = {d.name: d for d in task.search_space.dimensions}
        self.explored, self.kept_fixed = self._explored_names()
        self.observer: Callable[[Report], None] | None = None
        self.sync = settings.mode == "sync"
        self.round = 1  # sync: the barrier the current segments end at
        self.members: dict[int, Member] = {
            index: Member(index, dict(point)) for index, point in enumerate(self._initial_points(), start=1)
        }
        self._queue: list[TrialRequest] = []
        self._in_flight: set[int] = set()
        self._events = events_path(task.tuning_dir)
        self._gp = self._gp_explorer() if settings.explorer == "gp-opt" else None
        self._resume()

    # --- what the driver reads ---------------------------------------------------------------------
    @property
    def eval_every_steps(self) -> int:
        return self._eval_every

    @property
    def max_steps(self) -> int | None:
        return self.settings.max_steps

    def donor_root(self, request: TrialRequest) -> Path | None:
        """Where the driver finds a donor's state at ``request.change_step``: async mode forks from
        the snapshot taken when the donor reached that barrier (it may have trained on since)."""
        if self.sync or request.change_step is None:
            return None
        return self._snapshot_root(request.change_step)

    def settings_record(self) -> dict[str, Any]:
        settings = self.settings.to_json()
        if self.settings.explorer == "perturb":
            for name in ("explorer", *GP_SETTINGS):
                settings.pop(name)
        if not self.settings.fitness_split:
            settings.pop("fitness_split")  # the record of a validation-fitness run stays what it was before
        return {
            **settings,
            "interval": self.interval,
            "eval_every_steps": self._eval_every,
            "explored": list(self.explored),
            "kept_fixed": list(self.kept_fixed),
        }

    # --- the Tuner interface -----------------------------------------------------------------------
    def ask(self) -> TrialRequest | None:
        if not self._queue:
            return None
        if not self.sync:  # the member furthest behind first (fair time-sharing of the slots)
            self._queue.sort(key=lambda r: (self.members[r.trial].step, r.trial))
        request = self._queue.pop(0)
        self._in_flight.add(request.trial)
        return request

    def tell(self, request: TrialRequest, summary: Summary) -> None:
        member = self.members[request.trial]
        self._in_flight.discard(member.index)
        if summary.get("error_phase") == "fork":
            raise AlgobenchError(
                f"pbt: member {member.index} could not take its new hyperparameters {request.changes}: "
                f"{summary.get('error')}. Keep such names out of exploration (`fixed: [name]` in --config) and "
                f"start again in another --experiment-dir"
            )
        status = TrialStatus.parse(summary.get("status"))
        if status is not None:
            member.status = str(status)
        if summary.get("steps") is not None:
            member.step = int(summary["steps"])
        if self.sync:
            if not self._queue and not self._in_flight:
                self._decide_round()
        else:
            self._decide_member(member)

    @property
    def finished(self) -> bool:
        return not self._queue and not self._in_flight and all(m.status is not None for m in self.members.values())

    # --- starting points and explored names ----------------------------------------------------------
    def _initial_points(self) -> list[dict[str, Any]]:
        n = self.settings.population
        if self.settings.initial_points is not None:
            return [dict(p) for p in self.settings.initial_points[:n]]
        return sample(self.task.search_space, n, self.task.study_seed())

    def _explored_names(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        if self.settings.explore is not None:
            chosen = [n for n in self.settings.explore if n not in self.settings.fixed]
            return tuple(sorted(chosen)), ()
        changeable = changeable_names(self.task.submission_path)
        candidates = [d.name for d in self.dimensions.values() if isinstance(d, Range) or len(d.feasible_points) > 1]
        explored, kept = [], []
        for name in candidates:
            fixed = name in self.settings.fixed or name in FIXED_BY_DEFAULT or name not in changeable
            (kept if fixed else explored).append(name)
        return tuple(sorted(explored)), tuple(sorted(kept))

    # --- fitness, selection, exploration --------------------------------------------------------
    def _fitness(self, member: Member, step: int) -> float:
        """The mean of the last k values of the validation metric at or before ``step`` (NaN: none)."""
        rows = [r for r in read_eval_rows(self.task.member_dir(member.index)) if r["global_step"] <= step]
        values = [r.get(self.metric, math.nan) for r in rows[-self.settings.fitness_evals :]]
        return float(np.mean(values)) if values else math.nan

    def _score(self, value: float) -> float:
        """Larger is better; NaN (diverged, no evaluation) is the worst."""
        return self.direction.sign() * value if math.isfinite(value) else -math.inf

    def _select(self, peers: list[Member], step: int, rng: np.random.Generator) -> list[tuple[Member, Member]]:
        """(recipient, donor) pairs among ``peers`` at ``step``: each donor strictly better."""
        score = {m.index: self._score(m.fitness[step]) for m in peers}
        pairs = []
        if self.settings.selection == "truncation":
            order = sorted(peers, key=lambda m: (-score[m.index], m.index))  # best first
            n = min(math.ceil(len(peers) * self.settings.quantile), len(peers) // 2)
            top, bottom = order[:n], order[len(order) - n :]
            for recipient in bottom:
                donor = top[int(rng.integers(len(top)))]
                if score[donor.index] > score[recipient.index]:
                    pairs.append((recipient, donor))
        else:
            for recipient in sorted(peers, key=lambda m: m.index):
                others = [m for m in peers if m.index != recipient.index]
                donor = others[int(rng.integers(len(others)))]
                if score[donor.index] > score[recipient.index]:
                    pairs.append((recipient, donor))
        # Forks are copied in this order: a recipient before anyone it gives to is overwritten.
        return sorted(pairs, key=lambda pair: (score[pair[0].index], pair[0].index))

    def _gp_explorer(self) -> Any:
        from algobench.tuning.pbt_gp_explore import GPExplorer

        if getattr(type(self), "ray_only", False):
            raise AlgobenchError(f"{self.name}: explore gp-opt is native PBT's; {self.name} has its own GP bandit")
        settings = self.settings
        return GPExplorer(
            [self.dimensions[name] for name in self.explored],
            {m.index: m.hyperparameters for m in self.members.values()},
            acquisition=settings.acquisition, ratio=settings.ratio, beta=settings.beta, arms=settings.arms,
            seed=self.task.study_seed(), sign=self.direction.sign(), timing_dir=self.task.tuning_dir,
        )  # fmt: skip

    def _explore(self, values: Mapping[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        """New values for the explored names, starting from ``values`` (the donor's)."""
        changes: dict[str, Any] = {}
        for name in self.explored:
            changes[name] = explore_value(
                self.dimensions[name], values.get(name), rng,
                self.settings.resample_probability, self.settings.perturbation_factors,
            )  # fmt: skip
        return changes

    # --- synchronous rounds -------------------------------------------------------------------
    def _decide_round(self) -> None:
        step = self.round * self.interval
        live = [m for m in self.members.values() if m.status is None]
        for member in live:
            member.donor = None
        if not live:
            return
        peers = [m for m in live if m.step == step]
        for member in peers:
            member.fitness[step] = self._fitness(member, step)
        rng = np.random.default_rng(derive_seed(self.task.seed, self.task.study, self.round))
        pairs = self._select(peers, step, rng) if step >= self.settings.burn_in and len(peers) >= 2 else []
        before = {m.index: dict(m.hyperparameters) for m in self.members.values()}
        records, forks = [], []
        if self._gp is not None:
            records.append(self._gp.observe(self.round, step, {m.index: m.fitness[step] for m in peers}))
        for recipient, donor in pairs:
            if self._gp is None:
                changes = self._explore(before[donor.index], rng)
            else:  # the bandit's candidate, not a perturbation of the donor's values
                changes, switch = self._gp.choose(self.round, step, recipient.index, donor.fitness[step])
                records += switch
            new = {**before[donor.index], **changes}
            records.append(self._exploit_record(self.round, step, recipient, donor, before, new, changes))
            if self._gp is not None:
                records[-1]["arm"] = self._gp.arm_of[recipient.index]
            forks.append(self._fork_request(recipient.index, donor.index, before[donor.index], step, changes))
            recipient.hyperparameters, recipient.donor = new, donor.index
        records.append(
            {
                "event": "round",
                "round": self.round,
                "step": step,
                "fitness": {str(m.index): m.fitness.get(step) for m in peers},
                "hyperparameters": {str(m.index): m.hyperparameters for m in live},
                "exploits": len(pairs),
            }
        )
        append_lines(self._events, records)
        forked = {request.trial for request in forks}
        self._queue = forks + [self._continue(m) for m in live if m.index not in forked]
        if self.observer is not None:
            self.observer(Report(self.round, step, list(self.members.values()), self.metric, self.explored))
        self.round += 1

    def _continue(self, member: Member) -> TrialRequest:
        barrier = member.step // self.interval
        return TrialRequest(
            trial=member.index, hyperparameters=dict(member.hyperparameters),
            until_step=(barrier + 1) * self.interval, round=barrier,
        )  # fmt: skip

    def _fork_request(
        self, member: int, donor: int, donor_values: dict[str, Any], step: int, changes: dict[str, Any]
    ) -> TrialRequest:
        barrier = step // self.interval
        # The clone is built with the donor's values (its batch size and schedule shape), then
        # takes the donor's checkpoint and the changes.
        return TrialRequest(
            trial=member, hyperparameters=dict(donor_values), until_step=step + self.interval,
            fork_from=donor, change_step=step, changes=dict(changes), round=barrier,
        )  # fmt: skip

    def _exploit_record(
        self, round_: int, step: int, recipient: Member, donor: Member, before: dict[int, dict[str, Any]],
        new: dict[str, Any], changes: dict[str, Any],
    ) -> dict[str, Any]:  # fmt: skip
        return {
            "event": "exploit",
            "round": round_,
            "step": step,
            "member": recipient.index,
            "donor": donor.index,
            "donor_step": step,
            "old_hyperparameters": before[recipient.index],
            "new_hyperparameters": new,
            "changes": changes,
            "fitness": recipient.fitness.get(step),
            "donor_fitness": donor.fitness.get(step),
            "metric": self.metric,
            "reseed": derive_seed(self.task.member_seed(recipient.index), step // self.interval),
        }

    # --- asynchronous decisions -------------------------------------------------------------------
    def _decide_member(self, member: Member) -> None:
        member.donor = None
        if member.status is not None:
            self._prune_snapshots()
            return
        step = member.step
        member.fitness[step] = self._fitness(member, step)
        self._snapshot(member.index, step)
        barrier = step // self.interval
        peers = [m for m in self.members.values() if step in m.fitness]
        rng = np.random.default_rng(derive_seed(self.task.seed, self.task.study, barrier, member.index))
        donor = None
        if step >= self.settings.burn_in and len(peers) >= 2:
            pairs = self._select(peers, step, rng)
            donor = next((d for r, d in pairs if r.index == member.index), None)
        records = []
        if donor is None:
            self._queue.append(self._continue(member))
        else:
            before = {member.index: dict(member.hyperparameters), donor.index: self._values_at(donor, step)}
            changes = self._explore(before[donor.index], rng)
            new = {**before[donor.index], **changes}
            records.append(self._exploit_record(barrier, step, member, donor, before, new, changes))
            self._queue.append(self._fork_request(member.index, donor.index, before[donor.index], step, changes))
            member.hyperparameters, member.donor = new, donor.index
        records.append(
            {
                "event": "ready",
                "round": barrier,
                "step": step,
                "member": member.index,
                "fitness": member.fitness[step],
                "hyperparameters": member.hyperparameters,
            }
        )
        append_lines(self._events, records)
        self._prune_snapshots()
        if self.observer is not None:
            self.observer(Report(barrier, step, [member], self.metric, self.explored))

    def _values_at(self, member: Member, step: int) -> dict[str, Any]:
        """A member's hyperparameters when it passed ``step`` (it may have forked since)."""
        return dict(self._history.get((member.index, step), member.hyperparameters))

    def _snapshot_root(self, step: int) -> Path:
        return self.task.tuning_dir / "snapshots" / f"step_{step}"

    def _snapshot(self, member: int, step: int) -> None:
        """Keep the member's checkpoint and eval log at this barrier, for clones decided later."""
        self._history[(member, step)] = dict(self.members[member].hyperparameters)
        source = self.task.member_dir(member)
        target = layout.trial_dir(
            self._snapshot_root(step), self.task.submission_name, self.task.study, self.task.workload_name, member
        )
        target.mkdir(parents=True, exist_ok=True)
        for name in (CHECKPOINT_FILE, EVAL_FILE):
            if (source / name).exists():
                shutil.copyfile(source / name, target / (name + ".tmp"))
                (target / (name + ".tmp")).replace(target / name)

    def _prune_snapshots(self) -> None:
        """Drop snapshots at steps every live member has passed: no one compares there any more."""
        live = [m.step for m in self.members.values() if m.status is None]
        oldest = min(live, default=math.inf)
        root = self.task.tuning_dir / "snapshots"
        if not root.exists():
            return
        for folder in root.iterdir():
            step = int(folder.name.removeprefix("step_"))
            if step < oldest:
                shutil.rmtree(folder, ignore_errors=True)

    # --- resuming -----------------------------------------------------------------------------
    def _resume(self) -> None:
        """Rebuild the state from the committed events and the members' directories.

        The last decision's forks are in one of three states: applied (the clone's schedule has
        the change point, with its reseed), copied but not applied (a ``fork.json`` is waiting in
        the clone's directory: its next segment applies it), or not copied (the fork is asked for
        again; its donor has not moved, since donors go on only after every fork was copied).
        """
        self._history: dict[tuple[int, int], dict[str, Any]] = {}
        records = read_committed(self._events, "round" if self.sync else "ready")
        for member in self.members.values():
            summary = read_summary(self.task.member_dir(member.index))
            if summary is not None:
                member.status = summary.get("status")
                member.step = int(summary.get("steps") or 0)
        last_exploit: dict[int, dict[str, Any]] = {}
        donor_values: dict[int, dict[str, Any]] = {}  # per recipient: its donor's values when copied
        old_values: dict[int, dict[str, Any]] = {}
        for record in records:
            if self._gp is not None:
                self._gp.replay(record)
            member = self.members.get(record.get("member"))
            if record["event"] == "exploit":
                donor = self.members[record["donor"]]
                if self.sync:  # within a round, a donor's own exploit line comes after its clones'
                    donor_values[member.index] = dict(donor.hyperparameters)
                else:
                    donor_values[member.index] = dict(self._history.get((donor.index, record["step"]), {}))
                old_values[member.index] = dict(record["old_hyperparameters"])
                member.hyperparameters = dict(record["new_hyperparameters"])
                last_exploit[member.index] = record
            elif record["event"] == "round":
                self.round = record["round"] + 1
                for index, value in record["fitness"].items():
                    self.members[int(index)].fitness[record["step"]] = _number(value)
            elif record["event"] == "ready":
                step = record["step"]
                member.fitness[step] = _number(record["fitness"])
                exploit = last_exploit.get(member.index)
                before = old_values[member.index] if exploit and exploit["step"] == step else record["hyperparameters"]
                self._history[(member.index, step)] = dict(before)
                if member.status is None:
                    member.step = step
        decided_at = (self.round - 1) * self.interval
        for member in self.members.values():
            if member.status is not None:
                continue
            if self.sync:
                member.step = decided_at
            exploit = last_exploit.get(member.index)
            if exploit is not None and exploit["step"] == member.step and not self._fork_taken(member, exploit):
                self._queue.append(
                    self._fork_request(
                        member.index, exploit["donor"], donor_values[member.index], exploit["step"], exploit["changes"]
                    )
                )
            else:
                self._queue.append(self._continue(member))
        # Forks first, in the order they were decided; then the members that go on as they are.
        order = {r["member"]: i for i, r in enumerate(records) if r["event"] == "exploit"}
        self._queue.sort(key=lambda r: (r.fork_from is None, order.get(r.trial, 0), r.trial))

    def _fork_taken(self, member: Member, exploit: Mapping[str, Any]) -> bool:
        """The fork's files were copied already (applied, or waiting in ``fork.json``)."""
        directory = self.task.member_dir(member.index)
        step, reseed = exploit["step"], exploit["reseed"]
        if any(p.global_step == step and p.reseed == reseed for p in read_schedule(directory)):
            return True
        pending = read_json(directory / FORK_FILE)
        # A fork.json without its checkpoint is a copy cut short (the core writes fork.json before it
        # renames the copied checkpoint into place): copy again.
        return pending is not None and pending.get("donor_step") == step and (directory / CHECKPOINT_FILE).exists()


def explore_value(
    dimension: Dimension, value: Any, rng: np.random.Generator, resample_probability: float,
    factors: tuple[float, ...],
) -> Any:  # fmt: skip
    """One hyperparameter's explored value: resampled, or perturbed and clipped to the space."""
    if isinstance(dimension, Range):
        resample = rng.random() < resample_probability
        factor = float(factors[int(rng.integers(len(factors)))])
        if (
            resample
            or not isinstance(value, int | float)
            or isinstance(value, bool)
            or value <= 0
            and dimension.scaling == "log"
        ):
            return float(dimension.value_at(float(rng.random())))
        # A log-scaled range moves by log(factor) in log space: the same multiplication, then clipped.
        moved = math.exp(math.log(value) + math.log(factor)) if dimension.scaling == "log" else value * factor
        return float(min(max(moved, dimension.low), dimension.high))
    assert isinstance(dimension, Choice)
    points = list(dimension.feasible_points)
    resample = rng.random() < resample_probability
    step = 1 if rng.random() < 0.5 else -1
    if resample or value not in points:
        return points[int(rng.integers(len(points)))]
    index = points.index(value)
    if not 0 <= index + step < len(points):
        step = -step
    return points[min(max(index + step, 0), len(points) - 1)]


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)
