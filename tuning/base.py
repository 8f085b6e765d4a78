"""The tuner interface (DESIGN.md contract 6), in the manner of Optuna's samplers.

A tuner proposes work and hears results; the driver loop (``algobench.tuning.driver``) turns its
requests into trials, hands them to an executor and reports back. Three methods matter:

- ``ask()`` returns the next ``TrialRequest`` to run, or None when nothing can start until a
  running trial reports (a synchronous population waiting at its round barrier);
- ``tell(request, summary)`` hears how a request ended (its ``summary.json``, including the eval
  history's last values), and is where a tuner decides: continue a member, stop it, or fork it
  from a donor with new hyperparameters (its next ``ask``);
- ``finished`` says the tuner will ask for nothing more.

A request names a trial index, the hyperparameters it starts from, optionally the step at which
its segment ends (``until_step``: populations train in segments) and a donor to fork from. A
tuner's state resumes from the trial directories: ``tell`` replays finished trials on a rerun,
as Optuna's ``add_trial`` does.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

Summary = dict[str, Any]


@dataclass(frozen=True)
class TrialRequest:
    """One unit of work: a trial (or a segment of one) with its hyperparameters.

    ``changes`` are hyperparameter changes applied at ``change_step`` (a fork's new values, or a
    replayed schedule); ``fork_from`` is the donor's trial index, whose state at ``change_step``
    the trial takes over before it runs on.
    """

    trial: int
    hyperparameters: dict[str, Any] | None
    until_step: int | None = None
    fork_from: int | None = None
    change_step: int | None = None
    changes: dict[str, Any] = field(default_factory=dict)
    round: int = 0


class Tuner(abc.ABC):
    """Asks for trials and hears their outcomes. See the module docstring for the protocol."""

    name: str = "tuner"
    # The fraction of the training data each of its trials holds out and evaluates as the
    # ``tuning`` split, for a fitness other than the validation metric the targets judge (0: none).
    tuning_split: float = 0.0

    @abc.abstractmethod
    def ask(self) -> TrialRequest | None:
        """The next request to run, or None when the tuner must first hear a result."""

    @abc.abstractmethod
    def tell(self, request: TrialRequest, summary: Summary) -> None:
        """The outcome of ``request``: the trial's summary (status, metrics, steps)."""

    @property
    @abc.abstractmethod
    def finished(self) -> bool:
        """True once the tuner will ask for nothing more."""


class FixedTrials(Tuner):
    """A planned list of trials, handed out in order (quasi-random search's plan, replays)."""

    name = "fixed"

    def __init__(self, requests: Sequence[TrialRequest]) -> None:
        self._pending = list(requests)
        self.results: list[tuple[TrialRequest, Summary]] = []

    def ask(self) -> TrialRequest | None:
        return self._pending.pop(0) if self._pending else None

    def tell(self, request: TrialRequest, summary: Summary) -> None:
        self.results.append((request, summary))

    @property
    def finished(self) -> bool:
        return not self._pending
