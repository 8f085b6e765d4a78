"""Tuning rulesets: what a submission is allowed to know, and its budget (AlgoPerf's rules)."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from algobench.errors import AlgobenchError


@dataclass(frozen=True)
class Ruleset:
    name: str
    budget_multiplier: float
    uses_search_space: bool
    description: str


RULESETS: MappingProxyType[str, Ruleset] = MappingProxyType(
    {
        "external": Ruleset(
            "external", 1.0, True,
            "hyperparameters drawn from the submission's search space; best trial per study counts",
        ),
        "transfer": Ruleset(
            "transfer", 1.0, True,
            "external tuning with each workload's learning rates first rescaled by a fixed common search "
            "(protocol transfer-v1, tuning/transfer.py)",
        ),
        "self": Ruleset(
            "self", 1.5, False,
            "no hyperparameters; one trial per study with 1.5x the budget",
        ),
    }
)  # fmt: skip


def get_ruleset(name: str) -> Ruleset:
    try:
        return RULESETS[name]
    except KeyError:
        raise AlgobenchError(f"unknown ruleset {name!r}; choose one of {', '.join(RULESETS)}") from None
