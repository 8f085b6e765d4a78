"""Named, versioned scoring protocols, and the two readings of AlgoPerf's scoring rules.

A protocol fixes everything that turns logs into a score besides the logs themselves: how many
studies and trials count, the budgets and the self-tuning multiplier, the targets, the held-out
variants, the integration limit ``max_tau``, and which of two readings of AlgoPerf's rules is
applied where its scoring code departs from its written rules (``ScoringRules``):

- best trial of a study: ``code`` takes the trial that reached the target at the earliest
  *evaluation index*, and its time (on ties, the faster one; AlgoPerf's code takes the first in
  directory-listing order); ``docs`` the trial with the smallest time to target.
- budget: ``code`` does not check it (an evaluation logged past the budget still counts);
  ``docs`` counts a time past the trial's budget as not reached.
- score integral: ``code`` applies the trapezoid rule to rho on ``linspace(1, max_tau, 100)``;
  ``docs`` takes the exact area under the step function.
- missing evaluation log: ``code`` drops the trial (a study with none left drops out of the
  median); ``docs`` counts it as not reached.

``rules="code"`` reproduces AlgoPerf's published leaderboards from their logs (all 19 published
v0.5 and v0.6 scores, to 4 decimals; see ``tests/test_scoring_algoperf.py``); ``rules="docs"``
is what their documentation specifies. The variant rule, the ratio cut at ``max_tau`` and the
median over studies are the same in both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from importlib import resources
from types import MappingProxyType
from typing import Literal

from algobench.scoring.errors import ScoringError
from algobench.tuning.rulesets import RULESETS as TUNING_RULESETS

RulesName = Literal["code", "docs"]
RULESETS = tuple(TUNING_RULESETS)  # external, transfer (scored as external), self
MAX_TAU = 4.0  # AlgoPerf's r_max, for every protocol here


@dataclass(frozen=True)
class ScoringRules:
    """Where AlgoPerf's scoring code and its written rules disagree, which one to follow."""

    name: RulesName
    trial_selection: Literal["earliest_eval", "fastest"]
    enforce_budget: bool
    integration: Literal["trapezoid", "exact"]
    num_tau_points: int  # grid of the reported profile (and of the integral when "trapezoid")
    missing_eval_log: Literal["drop_trial", "not_reached"]


RULES: MappingProxyType[str, ScoringRules] = MappingProxyType(
    {
        "code": ScoringRules("code", "earliest_eval", False, "trapezoid", 100, "drop_trial"),
        "docs": ScoringRules("docs", "fastest", True, "exact", 1001, "not_reached"),
    }
)


@dataclass(frozen=True)
class WorkloadSpec:
    """What scoring needs to know about one workload: its target and its budget."""

    name: str
    base: str
    metric: str  # e.g. "accuracy": the column is f"validation/{metric}"
    direction: Literal["max", "min"]
    validation_target: float
    test_target: float | None = None
    budget_sec: float | None = None  # external-tuning budget, before any self-tuning multiplier

    @property
    def is_variant(self) -> bool:
        return self.name != self.base

    @property
    def column(self) -> str:
        return f"validation/{self.metric}"


@dataclass(frozen=True)
class Protocol:
    """One named, versioned way of scoring.

    ``workloads`` empty means targets come from each trial's ``summary.json`` (algobench's own
    protocol); ``base_workloads`` None means "the base workloads found in the logs".
    ``held_out`` None (with ``variant_rule``) means every variant found in the logs is held out
    for its base workload.
    """

    name: str
    description: str
    studies: int
    trials_per_study: int
    self_tuning_multiplier: float
    rules: ScoringRules
    variant_rule: bool
    max_tau: float = MAX_TAU
    base_workloads: tuple[str, ...] | None = None
    held_out: tuple[str, ...] | None = ()
    workloads: MappingProxyType[str, WorkloadSpec] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def targets_from_logs(self) -> bool:
        return not self.workloads

    def scores_workload(self, spec: WorkloadSpec) -> bool:
        """Whether trials of this workload count: a base workload, or a held-out variant under the variant rule."""
        if not spec.is_variant:
            return self.base_workloads is None or spec.name in self.base_workloads
        return self.variant_rule and (self.held_out is None or spec.name in self.held_out)

    def expected_trials(self, ruleset: str) -> int:
        """Trials per study: one under self-tuning, as in AlgoPerf."""
        return 1 if ruleset == "self" else self.trials_per_study

    def budget_multiplier(self, ruleset: str) -> float:
        return self.self_tuning_multiplier if ruleset == "self" else 1.0

    def with_options(self, rules: str | None = None, variant_rule: bool | None = None) -> Protocol:
        """The same protocol with the other reading of the rules, or the variant rule on/off."""
        changes: dict = {}
        if rules is not None:
            changes["rules"] = get_rules(rules)
        if variant_rule is not None:
            changes["variant_rule"] = variant_rule
        return replace(self, **changes)


def get_rules(name: str) -> ScoringRules:
    try:
        return RULES[name]
    except KeyError:
        raise ScoringError(f"unknown scoring rules {name!r}; choose one of {', '.join(RULES)}") from None


def _algoperf_data() -> dict:
    return json.loads(resources.files("algobench.scoring").joinpath("data/algoperf.json").read_text())


def _algoperf_protocol(version: str, studies: int, multiplier: float, description: str) -> Protocol:
    data = _algoperf_data()
    facts = data["versions"][version]
    budgets = facts["budgets_sec"]
    workloads = {
        name: WorkloadSpec(
            name=name,
            base=w["base"],
            metric=w["metric"],
            direction=w["direction"],
            validation_target=float(w["validation_target"]),
            test_target=float(w["test_target"]),
            budget_sec=float(budgets[w["base"]]),
        )
        for name, w in data["workloads"].items()
    }
    held_out = tuple(facts["held_out"])
    return Protocol(
        name=f"algoperf-{version}",
        description=description,
        studies=studies,
        trials_per_study=5,
        self_tuning_multiplier=multiplier,
        rules=RULES["code"],
        variant_rule=bool(held_out),
        base_workloads=tuple(budgets),
        held_out=held_out,
        workloads=MappingProxyType(workloads),
    )


def _algobench_v1() -> Protocol:
    return Protocol(
        name="algobench-v1",
        description=(
            "algobench's suite: targets, budgets and variants from each trial's summary.json; 3 studies x 5 "
            "trials; self-tuning budget x1.5; AlgoPerf's written rules (fastest trial, budget enforced, exact "
            "integral); variant rule off unless asked for"
        ),
        studies=3,
        trials_per_study=5,
        self_tuning_multiplier=TUNING_RULESETS["self"].budget_multiplier,
        rules=RULES["docs"],
        variant_rule=False,
        held_out=None,
    )


_BUILDERS = {
    "algoperf-v0.5": lambda: _algoperf_protocol(
        "v0.5", studies=5, multiplier=3.0,
        description=(
            "AlgoPerf's first competition (2024): 8 base workloads, 6 held-out variants that a submission must "
            "also train for its base workload to count, 5 studies x 5 trials, self-tuning budget x3"
        ),
    ),
    "algoperf-v0.6": lambda: _algoperf_protocol(
        "v0.6", studies=3, multiplier=1.5,
        description=(
            "AlgoPerf v0.6 (2025): 8 base workloads with revised budgets, no held-out variants, 3 studies x 5 "
            "trials, self-tuning budget x1.5"
        ),
    ),
    "algobench-v1": _algobench_v1,
}  # fmt: skip
PROTOCOL_NAMES = tuple(_BUILDERS)
DEFAULT_PROTOCOL = "algobench-v1"


def get_protocol(name: str = DEFAULT_PROTOCOL, rules: str | None = None, variant_rule: bool | None = None) -> Protocol:
    """The protocol called ``name``, optionally with the other reading of the rules."""
    try:
        builder = _BUILDERS[name]
    except KeyError:
        raise ScoringError(f"unknown scoring protocol {name!r}; choose one of {', '.join(PROTOCOL_NAMES)}") from None
    return builder().with_options(rules=rules, variant_rule=variant_rule)
