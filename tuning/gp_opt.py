"""GP-Opt that evaluates few unique candidates many times (Calandriello et al., ICML 2022).

A Gaussian-process bandit over a fixed set of candidate points (``arms``: scrambled Halton points
of the search space's unit cube, so log-scaled ranges are searched in log space) that sticks to a
candidate and switches rarely:

1. the posterior is computed on the q unique candidates evaluated so far, with their counts
   (``algobench.tuning.gp_posterior``: exact, O(q³), whatever the number T of evaluations);
2. the next candidate x is the best by UCB (lowest ``mean - beta * sd``: the objective is
   minimised) or by expected improvement over the best posterior mean seen;
3. x is evaluated b = ⌈(C - 1) λ / σ²(x)⌉ times, fresh seeds of the same configuration (in
   parallel where the executor allows): after b repeats its posterior variance has shrunk from
   σ²(x) to σ²(x) / (1 + b σ²(x) / λ) ≤ σ²(x) / C. An uncertain candidate is repeated a few
   times, a well-known one many times. Then back to 1 (a *switch*).

λ is the pooled within-candidate variance of the repeats (``initial_noise`` until there is a
repeat; the first candidate is run ``first_repeats`` times to give one). The kernel (Matérn-5/2,
one length scale per dimension, an amplitude) is fitted by scikit-learn at each switch, from the
same starting point every time, so the same evaluations give the same decision.

The output is the candidate with the best posterior mean, not the best single noisy run.
``GPOptBandit`` is the algorithm on its own (the benchmark drives it on a synthetic function);
``GPOptTuner`` puts it behind the tuner interface, with the surrogate of time-to-target
(``algobench.tuning.objective``) as the objective and each evaluation one algobench trial.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from algobench.errors import AlgobenchError
from algobench.results import read_summary, write_json
from algobench.tuning.base import Summary, TrialRequest, Tuner
from algobench.tuning.events import append_lines, events_path, read_lines
from algobench.tuning.gp_posterior import UniquePoints, fit_posterior, make_kernel, posterior
from algobench.tuning.objective import trial_value
from algobench.tuning.search_space import Range
from algobench.tuning.tuners import Settings, TuningTask, setting

ACQUISITIONS = ("ucb", "ei")
RESULT_FILE = "gp_opt.json"  # the output: best posterior mean, T, q, switches, GP seconds
TIMING_FILE = "gp_opt_seconds.jsonl"  # the GP's seconds per switch


@dataclass(frozen=True)
class Decision:
    """One switch: the candidate chosen, how many times to evaluate it, and why."""

    arm: int
    repeats: int
    variance: float  # σ²(x) before the repeats
    noise: float  # λ used
    gp_sec: float  # seconds spent fitting and predicting
    unique: int  # q at the time of the decision
    evaluations: int  # T at the time of the decision


@dataclass
class GPOptBandit:
    """The bandit over ``arms`` (rows in [0, 1]^d); ``observe`` results, ``decide`` the next batch."""

    arms: np.ndarray
    acquisition: str = "ucb"
    ratio: float = 2.0  # C: the variance shrink factor before a switch
    beta: float = 2.0  # UCB's width, in posterior standard deviations
    initial_noise: float = 0.01
    first_repeats: int = 2
    fit_kernel: bool = True
    seed: int = 0
    values: dict[int, list[float]] = field(default_factory=dict)
    gp_sec: float = 0.0
    switches: int = 0

    def observe(self, arm: int, value: float) -> None:
        self.values.setdefault(arm, []).append(float(value))

    @property
    def evaluations(self) -> int:
        return sum(len(v) for v in self.values.values())

    def data(self) -> tuple[list[int], UniquePoints]:
        arms = sorted(self.values)
        counts = np.array([len(self.values[a]) for a in arms], dtype=float)
        sums = np.array([sum(self.values[a]) for a in arms])
        squares = np.array([sum(v * v for v in self.values[a]) for a in arms])
        return arms, UniquePoints(self.arms[arms], counts, sums, squares)

    def noise(self, data: UniquePoints) -> float:
        pooled = data.pooled_noise()
        return max(self.initial_noise if pooled is None else pooled, 1e-10)

    def fit(self) -> tuple[Any, float, float]:
        """(regressor, prior mean offset, λ) on the current evaluations."""
        _, data = self.data()
        noise = self.noise(data)
        offset = float(data.sums.sum() / data.counts.sum())
        amplitude = max(float(np.var(data.means)), noise, 1e-6)
        kernel = make_kernel(self.arms.shape[1], amplitude=amplitude)
        fit = self.fit_kernel and len(data.counts) >= 3
        return fit_posterior(data, noise, kernel, offset, fit_kernel=fit, seed=self.seed), offset, noise

    def decide(self) -> Decision:
        """The next candidate and its number of repeats (one switch)."""
        started = time.perf_counter()
        if not self.values:
            decision = Decision(0, max(self.first_repeats, 1), math.nan, self.initial_noise, 0.0, 0, 0)
            self.switches += 1
            return decision
        regressor, offset, noise = self.fit()
        mean, variance = posterior(regressor, self.arms, offset)
        sd = np.sqrt(np.maximum(variance, 1e-300))
        if self.acquisition == "ucb":
            arm = int(np.argmin(mean - self.beta * sd))
        else:
            from scipy.stats import norm

            observed = sorted(self.values)
            best = float(np.min(mean[observed]))
            z = (best - mean) / sd
            arm = int(np.argmax((best - mean) * norm.cdf(z) + sd * norm.pdf(z)))
        var = float(max(variance[arm], 1e-300))
        repeats = repeats_needed(var, noise, self.ratio)
        if not any(len(v) >= 2 for v in self.values.values()):
            repeats = max(repeats, self.first_repeats)
        seconds = time.perf_counter() - started
        self.gp_sec += seconds
        self.switches += 1
        return Decision(arm, repeats, var, noise, seconds, len(self.values), self.evaluations)

    def best(self) -> tuple[int, float, float]:
        """(arm, posterior mean, posterior sd) of the observed candidate with the best posterior mean."""
        observed = sorted(self.values)
        if len(observed) == 1 and len(self.values[observed[0]]) == 1:
            return observed[0], self.values[observed[0]][0], math.nan
        regressor, offset, _ = self.fit()
        mean, variance = posterior(regressor, self.arms[observed], offset)
        index = int(np.argmin(mean))
        return observed[index], float(mean[index]), float(np.sqrt(max(variance[index], 0.0)))


def repeats_needed(variance: float, noise: float, ratio: float) -> int:
    """Evaluations of a candidate with posterior variance ``variance`` until it shrinks by ``ratio``:
    after b evaluations with noise λ it is (1/σ² + b/λ)⁻¹, so b = ⌈(C - 1) λ / σ²⌉ (at least 1)."""
    return max(1, math.ceil((ratio - 1.0) * noise / variance - 1e-9))


@dataclass
class StickyCandidate:
    """GP-Opt's switching rule for slots that come one at a time (PBT's replaced members, with
    ``--explore gp-opt``): every slot gets the current candidate until the candidate has had
    ``repeats`` evaluations since it was chosen (observed, plus handed out and not yet observed:
    a planned evaluation shrinks the variance as much as a done one, since the variance does not
    depend on the values), then the bandit recomputes its posterior and switches.

    Its whole state follows from the sequence of ``observe_round``, ``restore`` (a switch) and
    ``take`` calls, so a caller that logs them rebuilds it exactly by replaying the log."""

    bandit: GPOptBandit
    arm: int | None = None
    repeats: int = 0
    observed: int = 0  # evaluations of the candidate since it was chosen
    handed: int = 0  # slots given the candidate since the last observations
    decided_at: int = 0  # the bandit's evaluations when the candidate was chosen

    def observe_round(self, observations: list[tuple[int, float]]) -> None:
        """(arm, value) evaluations of the slots handed out before (and of those that kept their arm)."""
        self.handed = 0
        for arm, value in observations:
            self.bandit.observe(arm, value)
            if arm == self.arm:
                self.observed += 1

    def take(self) -> tuple[int, Decision | None]:
        """The arm for the next slot, and the decision when this slot made the bandit switch. With
        no evaluation since the last decision the posterior would be the same, and so would the
        candidate: it is handed out again without a new decision."""
        decision = None
        due = self.arm is None or self.observed + self.handed >= self.repeats
        if due and (self.arm is None or self.bandit.evaluations > self.decided_at):
            decision = self.bandit.decide()
            self.restore(decision.arm, decision.repeats, self.bandit.switches)
        self.hand()
        return int(self.arm), decision  # type: ignore[arg-type]

    def hand(self) -> None:
        """One more slot was given the current candidate."""
        self.handed += 1

    def restore(self, arm: int, repeats: int, switches: int) -> None:
        """Make ``arm`` the current candidate, as the ``switches``-th decision did."""
        self.arm, self.repeats, self.observed, self.handed = arm, repeats, 0, 0
        self.decided_at = self.bandit.evaluations
        self.bandit.switches = switches


def unit_of(dimension: Any, value: Any) -> float:
    """Where ``value`` lies in ``dimension``'s unit interval (the inverse of ``value_at``): log
    ranges in log space, a choice at the middle of its cell; outside the range, clipped."""
    if isinstance(dimension, Range):
        if dimension.high <= dimension.low or not isinstance(value, int | float) or isinstance(value, bool):
            return 0.5
        if dimension.scaling == "log":
            if value <= 0:
                return 0.0
            u = (math.log(value) - math.log(dimension.low)) / (math.log(dimension.high) - math.log(dimension.low))
        else:
            u = (value - dimension.low) / (dimension.high - dimension.low)
        return float(min(max(u, 0.0), 1.0))
    points = list(dimension.feasible_points)
    return (points.index(value) + 0.5) / len(points) if value in points else 0.5


def point_at(dimensions: list[Any], u: np.ndarray) -> dict[str, Any]:
    """The hyperparameters at unit coordinates ``u`` of ``dimensions`` (plain Python numbers)."""
    point = {}
    for dim, coordinate in zip(dimensions, u, strict=True):
        value = dim.value_at(float(coordinate))
        point[dim.name] = value.item() if hasattr(value, "item") else value
    return point


def _varies(dimension: Any) -> bool:
    if isinstance(dimension, Range):
        return dimension.high > dimension.low
    return len(dimension.feasible_points) > 1


def halton_arms(dimensions: int, count: int, seed: int) -> np.ndarray:
    from scipy.stats import qmc

    return qmc.Halton(d=max(dimensions, 1), scramble=True, seed=seed).random(count)


# --- behind the tuner interface --------------------------------------------------------------------


@dataclass(frozen=True)
class GPOptSettings(Settings):
    trials: int = setting(20, "int", "evaluations (trials) in all, repeats included")
    acquisition: str = setting("ucb", "str", "ucb (lowest mean - beta sd) or ei (expected improvement)")
    ratio: float = setting(2.0, "float", "C: repeat a candidate until its posterior variance shrinks by this factor")
    beta: float = setting(2.0, "float", "ucb: width of the confidence bound, in posterior sds")
    initial_noise: float = setting(0.01, "float", "noise variance of the objective until repeats measure it")
    arms: int = setting(1024, "int", "candidate points (scrambled Halton points of the search space)")

    def check(self, task: TuningTask, where: Callable[..., str]) -> None:
        super().check(task, where)
        if self.trials < 1:
            raise AlgobenchError(f"{where('trials')}: trials must be at least 1, got {self.trials}")
        if self.acquisition not in ACQUISITIONS:
            raise AlgobenchError(
                f"{where('acquisition')}: acquisition must be one of {', '.join(ACQUISITIONS)}, "
                f"got {self.acquisition!r}"
            )
        if self.ratio <= 1:
            raise AlgobenchError(f"{where('ratio')}: ratio must be above 1 (C = 1 never repeats), got {self.ratio}")
        if self.beta < 0 or self.initial_noise <= 0 or self.arms < 1:
            raise AlgobenchError(
                f"{where('beta', 'initial_noise', 'arms')}: needs beta >= 0, initial_noise > 0, arms >= 1"
            )
        if task.search_space.fixed_points is not None:
            raise AlgobenchError(
                f"{task.search_space.source} lists fixed points: a model-based tuner needs ranges or feasible points"
            )


class GPOptTuner(Tuner):
    """GP-Opt (Calandriello et al. 2022): few unique candidates, each repeated on fresh seeds, switching rarely."""

    name = "gp-opt"
    Settings = GPOptSettings

    def __init__(self, task: TuningTask, settings: GPOptSettings) -> None:
        self.task = task
        self.settings = settings
        space = task.search_space.dimensions
        self.searched = [d for d in space if _varies(d)]  # single points stay out of the GP's coordinates
        self.fixed = {d.name: d.low if isinstance(d, Range) else d.feasible_points[0] for d in space if not _varies(d)}
        arms = halton_arms(len(self.searched), settings.arms, task.study_seed())
        self.bandit = GPOptBandit(
            arms, acquisition=settings.acquisition, ratio=settings.ratio, beta=settings.beta,
            initial_noise=settings.initial_noise, seed=task.study_seed(),
        )  # fmt: skip
        self._events = events_path(task.tuning_dir)
        self._member_arm: dict[int, int] = {}
        self._pending: list[TrialRequest] = []
        self._in_flight: set[int] = set()
        self._resume()

    @property
    def eval_every_steps(self) -> int | None:
        return self.settings.eval_every_steps

    @property
    def max_steps(self) -> int | None:
        return self.settings.max_steps

    def hyperparameters(self, arm: int) -> dict[str, Any]:
        return {**self.fixed, **point_at(self.searched, self.bandit.arms[arm][: len(self.searched)])}

    # --- the Tuner interface -----------------------------------------------------------------------
    def ask(self) -> TrialRequest | None:
        if not self._pending and not self._in_flight and len(self._member_arm) < self.settings.trials:
            self._switch()
        if not self._pending:
            return None
        request = self._pending.pop(0)
        self._in_flight.add(request.trial)
        return request

    def tell(self, request: TrialRequest, summary: Summary) -> None:
        self._in_flight.discard(request.trial)
        self._observe(request.trial, summary)
        if self.finished:
            self._write_result()

    @property
    def finished(self) -> bool:
        return not self._pending and not self._in_flight and len(self._member_arm) >= self.settings.trials

    # --- inside ------------------------------------------------------------------------------------
    def _observe(self, member: int, summary: Summary) -> None:
        value = trial_value(summary)
        if value is not None:  # a trial whose result says nothing still counts in T
            self.bandit.observe(self._member_arm[member], value)

    def _switch(self) -> None:
        decision = self.bandit.decide()
        first = len(self._member_arm) + 1
        repeats = min(decision.repeats, self.settings.trials - len(self._member_arm))
        members = list(range(first, first + repeats))
        record = {
            "event": "switch",
            "switch": self.bandit.switches,
            "arm": decision.arm,
            "members": members,
            "repeats_rule": decision.repeats,
            "hyperparameters": self.hyperparameters(decision.arm),
            "variance": decision.variance,
            "noise": decision.noise,
            "unique": decision.unique,
            "evaluations": decision.evaluations,
        }
        append_lines(self._events, [record])
        # Timings apart from the decisions: the same seed gives the same events.jsonl.
        append_lines(self.task.tuning_dir / TIMING_FILE, [{"switch": self.bandit.switches, "gp_sec": decision.gp_sec}])
        self._assign(decision.arm, members)

    def _assign(self, arm: int, members: list[int]) -> None:
        for member in members:
            self._member_arm[member] = arm
            self._pending.append(TrialRequest(trial=member, hyperparameters=self.hyperparameters(arm)))

    def _resume(self) -> None:
        """The switches made so far (``events.jsonl``) and the results in the trial directories:
        finished evaluations are observed, the others asked for again."""
        for record in read_lines(self._events):
            if record.get("event") != "switch":
                continue
            self.bandit.switches = record["switch"]
            self._assign(record["arm"], record["members"])
        self.bandit.gp_sec = sum(r.get("gp_sec") or 0.0 for r in read_lines(self.task.tuning_dir / TIMING_FILE))
        still = []
        for request in self._pending:
            summary = read_summary(self.task.member_dir(request.trial))
            if summary is None:
                still.append(request)
            else:
                self._observe(request.trial, summary)
        self._pending = still

    def _write_result(self) -> None:
        if not self.bandit.values:
            return
        arm, mean, sd = self.bandit.best()
        result = {
            "evaluations": len(self._member_arm),
            "unique": len(self.bandit.values),
            "switches": self.bandit.switches,
            "gp_sec": self.bandit.gp_sec,
            "best": {
                "arm": arm,
                "hyperparameters": self.hyperparameters(arm),
                "posterior_mean": mean,
                "posterior_sd": sd,
                "runs": len(self.bandit.values[arm]),
                "members": sorted(m for m, a in self._member_arm.items() if a == arm),
            },
        }
        write_json(self.task.tuning_dir / RESULT_FILE, result)
        from algobench.tuning.lineage import write_output

        # Every run of the best candidate has the same configuration: its first run stands for it.
        write_output(
            self.task.tuning_dir, result["best"]["members"][0], "best posterior mean",
            arm=arm, hyperparameters=result["best"]["hyperparameters"], posterior_mean=mean,
        )  # fmt: skip
