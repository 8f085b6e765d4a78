"""PBT's explore step by GP-Opt (``--tuner pbt --explore gp-opt``): a replaced member's new values
come from a Gaussian-process bandit that switches rarely, instead of perturbing its donor's.

As PB2 (Parker-Holder et al. 2020) does with a plain GP-UCB, the bandit models how much a
member's fitness improves over one interval as a function of the hyperparameters it trained
with; here it is GP-Opt's bandit (``algobench.tuning.gp_opt``, Calandriello et al. 2022), so
the replaced members get the *same* candidate until that candidate's posterior variance has
shrunk by C (its repeats are the members handed it, and the intervals they and it train on),
and only then is the posterior recomputed and a new candidate chosen.

- *Where it searches*: the explored hyperparameters' unit cube (log-scaled ranges in log space),
  at the members' starting points and ``arms`` scrambled Halton points; the other values are the
  donor's, as in PBT.
- *What it observes*: at each barrier, every live member's improvement since the last barrier
  (direction-aware: larger is better), from the fitness of the weights it trained from (its
  donor's, if it was replaced there; at the first barrier, from a common untrained start),
  minus the barrier's mean improvement. Centring each barrier removes the common trend
  (improvements shrink as training goes on) that PB2 models with a time-varying kernel; what is
  left compares hyperparameters trained side by side over the same steps. The bandit minimises,
  so it is told the negated value.
- *What is logged*: a ``gp_observe`` line per barrier (the fitness and the observations), a
  ``gp_switch`` line when a replacement makes the bandit switch, and the candidate's ``arm`` on
  each exploit line, all before the round's commit line. Replaying those lines in order
  (``replay``) rebuilds the bandit exactly, so a resumed run continues as the straight run did;
  the GP's seconds go to ``gp_opt_seconds.jsonl``, not to the event log, which stays the same for
  a seed.

A member that diverged ends its trial and is observed no more (as in PB2): the bandit learns
that a region is bad only from the members that trained there and fell behind.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from algobench.errors import AlgobenchError
from algobench.tuning.events import append_lines
from algobench.tuning.gp_opt import TIMING_FILE, GPOptBandit, StickyCandidate, halton_arms, point_at, unit_of
from algobench.tuning.search_space import Dimension

OBSERVE, SWITCH = "gp_observe", "gp_switch"


class GPExplorer:
    """The bandit, which arm each member trains at, and the fitness each member trains from."""

    def __init__(
        self, dimensions: Sequence[Dimension], starts: Mapping[int, Mapping[str, Any]], *, acquisition: str,
        ratio: float, beta: float, arms: int, seed: int, sign: float, timing_dir: Any,
    ) -> None:  # fmt: skip
        if not dimensions:
            raise AlgobenchError("pbt --explore gp-opt: no hyperparameter to explore (explore names none)")
        self.dimensions = list(dimensions)
        self.sign = sign
        self._timing_dir = timing_dir
        rows: list[tuple[float, ...]] = []
        self.arm_of: dict[int, int] = {}
        for member, point in sorted(starts.items()):
            row = tuple(unit_of(d, point.get(d.name)) for d in self.dimensions)
            if row not in rows:
                rows.append(row)
            self.arm_of[member] = rows.index(row)
        grid = np.vstack([np.array(rows, dtype=float), halton_arms(len(self.dimensions), arms, seed)])
        bandit = GPOptBandit(grid, acquisition=acquisition, ratio=ratio, beta=beta, seed=seed)
        self.candidate = StickyCandidate(bandit)
        self.trained_from: dict[int, float] = {}  # the fitness of the weights a member trains on from

    @property
    def bandit(self) -> GPOptBandit:
        return self.candidate.bandit

    def values(self, arm: int) -> dict[str, Any]:
        return point_at(self.dimensions, self.bandit.arms[arm])

    # --- at a barrier ---------------------------------------------------------------------------
    def observe(self, round_: int, step: int, fitness: Mapping[int, float]) -> dict[str, Any]:
        """Observe the barrier's improvements; the ``gp_observe`` line to log."""
        improvement = {}
        for member, value in sorted(fitness.items()):
            before = self.trained_from.get(member, 0.0)  # absent: a fresh start, common to all
            if math.isfinite(value) and math.isfinite(before):
                improvement[member] = self.sign * (value - before)
        centre = float(np.mean(list(improvement.values()))) if improvement else 0.0
        observations = [[m, self.arm_of[m], -(gain - centre)] for m, gain in improvement.items()]
        record = {
            "event": OBSERVE,
            "round": round_,
            "step": step,
            "fitness": {str(m): v for m, v in sorted(fitness.items())},
            "observations": observations,
        }
        self.replay(record)
        return record

    def choose(self, round_: int, step: int, member: int, donor_fitness: float) -> tuple[dict[str, Any], list]:
        """The replaced ``member``'s new explored values (the candidate's), and the lines to log
        before its exploit line (a ``gp_switch`` when this replacement made the bandit switch); the
        member goes on from its donor's weights, whose fitness was ``donor_fitness``."""
        arm, decision = self.candidate.take()
        records = []
        if decision is not None:
            records.append(
                {
                    "event": SWITCH,
                    "round": round_,
                    "step": step,
                    "switch": self.bandit.switches,
                    "arm": arm,
                    "repeats": decision.repeats,
                    "variance": decision.variance,
                    "noise": decision.noise,
                    "unique": decision.unique,
                    "evaluations": decision.evaluations,
                    "hyperparameters": self.values(arm),
                }
            )
            append_lines(self._timing_dir / TIMING_FILE, [{"switch": self.bandit.switches, "gp_sec": decision.gp_sec}])
        self.arm_of[member] = arm
        self.trained_from[member] = donor_fitness
        return self.values(arm), records

    # --- resuming -------------------------------------------------------------------------------
    def replay(self, record: Mapping[str, Any]) -> None:
        """Apply one logged line: what ``observe`` and ``choose`` did when they wrote it."""
        event = record.get("event")
        if event == OBSERVE:
            fitness = {int(m): _number(v) for m, v in record["fitness"].items()}
            self.trained_from.update(fitness)
            self.candidate.observe_round([(int(arm), float(value)) for _, arm, value in record["observations"]])
        elif event == SWITCH:
            self.candidate.restore(int(record["arm"]), int(record["repeats"]), int(record["switch"]))
        elif event == "exploit" and "arm" in record:
            self.candidate.hand()
            self.arm_of[int(record["member"])] = int(record["arm"])
            self.trained_from[int(record["member"])] = _number(record["donor_fitness"])


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)
