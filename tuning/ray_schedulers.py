"""Ray Tune's PBT and PB2 schedulers, with one gap of their synchronous mode closed: a member that
ends while the others wait at a barrier no longer stalls the population.

Ray's synchronous PBT decides a barrier when the last live member *reports* there (in
``on_trial_result``). A member that ends instead — its last result says ``done`` (the submission
failed, diverged, timed out), which Ray hands to ``on_trial_complete`` and never to
``on_trial_result``, or its actor failed for good (``on_trial_error``) — reports nothing more, and
the members paused at the barrier wait for it for ever (Ray's controller spinning meanwhile).
Here, when a member leaves, the barrier is decided without it if every other live member is
waiting there: the leaving member is marked as arrived with no score (NaN, which Ray's quantiles
skip, so it is neither cloned nor revived as a clone), and Ray's own decision runs on a waiting
member's last result — the same decision Ray would have made had the leaving member arrived.
"""

from __future__ import annotations

import math
from typing import Any

from ray.tune.experiment import Trial
from ray.tune.schedulers import PopulationBasedTraining
from ray.tune.schedulers.pb2 import PB2
from ray.tune.utils import flatten_dict


class _BarrierWithoutLeavers:
    """Mixed into Ray's PBT and PB2 (see the module docstring); uses their synchronous state."""

    _synch: bool
    _trial_state: dict[Trial, Any]
    _next_perturbation_sync: float

    def on_trial_complete(self, tune_controller: Any, trial: Trial, result: dict) -> None:
        super().on_trial_complete(tune_controller, trial, result)  # type: ignore[misc]
        self._decide_barrier_without(tune_controller, trial)

    def on_trial_error(self, tune_controller: Any, trial: Trial) -> None:
        super().on_trial_error(tune_controller, trial)  # type: ignore[misc]
        self._decide_barrier_without(tune_controller, trial)

    def _decide_barrier_without(self, tune_controller: Any, leaving: Trial) -> None:
        if not self._synch:
            return  # asynchronous: nobody waits for anybody
        barrier = self._next_perturbation_sync
        others = [t for t in tune_controller.get_live_trials() if t is not leaving]
        if any(self._trial_state[t].last_train_time < barrier for t in others):
            return  # someone is still on the way: its report will decide the barrier
        waiting = [t for t in others if t.status == Trial.PAUSED and t.last_result]
        if not waiting:
            return
        gone = self._trial_state[leaving]
        gone.last_score, gone.last_train_time = math.nan, barrier
        trigger = waiting[0]
        self.on_trial_result(tune_controller, trigger, flatten_dict(trigger.last_result))  # type: ignore[attr-defined]


class AlgobenchPBT(_BarrierWithoutLeavers, PopulationBasedTraining):
    """Ray Tune's ``PopulationBasedTraining``; a member that ends does not stall a barrier."""


class AlgobenchPB2(_BarrierWithoutLeavers, PB2):
    """Ray Tune's ``PB2``; a member that ends does not stall a barrier."""
