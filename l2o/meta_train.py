"""Meta-training: PES for the MLP rule and the schedule, truncated backpropagation for the LSTM.

The whole run state (rule weights, meta-optimizer, every particle's task, parameters, rule state,
accumulated perturbation and batch generator, the random generators, the curves and the
compute spent) is one checkpoint written every ``checkpoint_every`` outer steps, so a run killed
at any moment and started again with the same command continues bit-identically from its last
checkpoint. Beside it: ``weights.pt`` (the current rule), ``meta_training.json`` (settings,
compute: CPU-seconds, outer steps, tasks seen, inner steps; the curves) and ``meta_loss.png``.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from algobench.errors import AlgobenchError
from algobench.l2o.inner import init_inner_state, inner_step
from algobench.l2o.pes import draw_perturbations, pes_gradient
from algobench.l2o.rules import RULES, Rule
from algobench.l2o.tasks import Task, TaskSpec, sample_task
from algobench.l2o.weights import atomic_torch_save, save_rule

CHECKPOINT = "checkpoint.pt"
WEIGHTS = "weights.pt"
RECORD = "meta_training.json"
CURVE = "meta_loss.png"
LOSS_CAP = 5.0  # a step's normalised loss counts at most this (a diverging perturbation is penalised, not fatal)
FAMILIES = ("default", "toy")


@dataclass(frozen=True)
class MetaTrainConfig:
    """Settings of one meta-training run (all saved with it; a resume must use the same)."""

    optimizer: str
    outer_steps: int = 300
    particles: int = 8  # PES: antithetic pairs; LSTM: tasks trained side by side
    unroll: int = 10
    sigma: float = 0.01
    meta_lr: float = 3e-3
    seed: int = 0
    family: str = "default"
    eval_every: int = 25
    eval_tasks: int = 4
    checkpoint_every: int = 5

    def check(self) -> None:
        if self.optimizer not in RULES:
            raise AlgobenchError(f"--optimizer {self.optimizer!r}: choose one of {', '.join(RULES)}")
        if self.family not in FAMILIES:
            raise AlgobenchError(f"--family {self.family!r}: choose one of {', '.join(FAMILIES)}")
        for name in ("outer_steps", "particles", "unroll", "eval_every", "eval_tasks", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise AlgobenchError(f"meta-train: {name} must be at least 1, got {getattr(self, name)}")
        if not (self.sigma > 0 and self.meta_lr > 0):
            raise AlgobenchError("meta-train: --sigma and --meta-lr must be positive")

    @property
    def estimator(self) -> str:
        return "truncated backpropagation" if self.optimizer == "lstm" else "antithetic PES"


def draw_task(rng: np.random.Generator, family: str, held_out: bool = False) -> TaskSpec:
    """A task of the family; ``toy`` is one-hidden-layer MLPs on short runs (for tests, seconds)."""
    if family == "toy":
        spec = sample_task(rng, held_out=held_out, lengths=(20, 40), cnn_share=0.0)
        return replace(spec, widths=spec.widths[:1], input_dim=8, batch_size=32, num_examples=256)
    return sample_task(rng, held_out=held_out)


@dataclass
class Particle:
    """One task in flight: for PES a pair (+eps, -eps) with its accumulated perturbation."""

    spec: TaskSpec
    step: int
    params: list[list[torch.Tensor]]
    states: list[dict[str, Any]]
    generator_state: torch.Tensor
    initial_loss: float
    xi: torch.Tensor | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "spec": self.spec.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Particle:
        return cls(**{**d, "spec": TaskSpec.from_dict(d["spec"])})


@dataclass
class RunState:
    outer_step: int
    rule_state: dict[str, torch.Tensor]
    meta_optimizer: dict[str, Any]
    particles: list[dict[str, Any]]
    task_rng: dict[str, Any]
    noise_generator: torch.Tensor
    history: dict[str, list[float]] = field(default_factory=dict)
    compute: dict[str, float] = field(default_factory=dict)


def new_particle(spec: TaskSpec, rule: Rule, sides: int, dim: int | None) -> Particle:
    task = Task(spec)
    params = task.initial_params()
    with torch.no_grad():
        initial_loss = float(task.loss(params))
    return Particle(
        spec=spec,
        step=0,
        params=[[p.clone() for p in params] for _ in range(sides)],
        states=[init_inner_state(rule, params) for _ in range(sides)],
        generator_state=task.batch_generator().get_state(),
        initial_loss=max(initial_loss, 1e-8),
        xi=None if dim is None else torch.zeros(dim),
    )


def normalised(loss: torch.Tensor, initial: float) -> torch.Tensor:
    """A step's loss relative to the task's initial loss, capped (NaN counts as the cap)."""
    value = torch.nan_to_num(loss / initial, nan=LOSS_CAP, posinf=LOSS_CAP)
    return value.clamp(max=LOSS_CAP)


def run_task(rule: Rule, spec: TaskSpec, record_every: int = 0) -> dict[str, Any]:
    """Train ``spec`` for its whole length with ``rule`` (no meta-gradient): the mean normalised
    training loss over the run (the meta-loss of a whole episode), the final full-data loss and,
    every ``record_every`` steps, the full-data loss curve."""
    task = Task(spec)
    params = task.initial_params()
    state = init_inner_state(rule, params)
    generator = task.batch_generator()
    with torch.no_grad():
        initial = max(float(task.loss(params)), 1e-8)
    total, curve = 0.0, []
    for step in range(spec.length):
        if record_every and step % record_every == 0:
            with torch.no_grad():
                curve.append((step, float(task.loss(params))))
        loss, grads = task.loss_and_grads(params, task.batch_indices(generator))
        total += float(normalised(loss, initial))
        with torch.no_grad():
            params, state = inner_step(rule, params, grads, state, step, spec.length, float(loss))
    with torch.no_grad():
        final = float(task.loss(params))
    if record_every:
        curve.append((spec.length, final))
    return {"meta_loss": total / spec.length, "final_loss": final, "initial_loss": initial, "curve": curve}


def evaluation_tasks(config: MetaTrainConfig) -> list[TaskSpec]:
    """Fixed tasks of the training family (their own seed stream) for the evaluation curve."""
    rng = np.random.default_rng([config.seed, 7919])
    return [draw_task(rng, config.family) for _ in range(config.eval_tasks)]


def evaluate(rule: Rule, tasks: list[TaskSpec]) -> float:
    return float(np.mean([run_task(rule, spec)["meta_loss"] for spec in tasks]))


class MetaTrainer:
    """One meta-training run in ``out``; ``run()`` resumes from the checkpoint there if any."""

    def __init__(self, config: MetaTrainConfig, out: str | Path, command: str = "", show_progress: bool = True):
        config.check()
        self.config, self.out, self.command, self.show_progress = config, Path(out), command, show_progress
        self.rule = RULES[config.optimizer]()
        self.pes = config.optimizer != "lstm"
        self.dim = sum(p.numel() for p in self.rule.parameters())
        self.eval_specs = evaluation_tasks(config)

    # --- state -----------------------------------------------------------------------------
    def _fresh_state(self) -> RunState:
        with torch.random.fork_rng(devices=[]):  # the rule's initial weights, without touching the caller's RNG
            torch.manual_seed(self.config.seed)
            self.rule = RULES[self.config.optimizer]()
        rng = np.random.default_rng(self.config.seed)
        sides = 2 if self.pes else 1
        particles = [
            new_particle(draw_task(rng, self.config.family), self.rule, sides, self.dim if self.pes else None)
            for _ in range(self.config.particles)
        ]
        meta_optimizer = torch.optim.Adam(self.rule.parameters(), lr=self.config.meta_lr)
        return RunState(
            outer_step=0,
            rule_state=self.rule.state_dict(),
            meta_optimizer=meta_optimizer.state_dict(),
            particles=[p.to_dict() for p in particles],
            task_rng=rng.bit_generator.state,
            noise_generator=torch.Generator().manual_seed(self.config.seed + 1).get_state(),
            history={"outer_step": [], "meta_loss": [], "eval_step": [], "eval_loss": []},
            compute={"cpu_seconds": 0.0, "wall_seconds": 0.0, "outer_steps": 0, "tasks_seen": len(particles),
                     "inner_steps": 0},
        )  # fmt: skip

    def _load_checkpoint(self) -> RunState | None:
        path = self.out / CHECKPOINT
        if not path.exists():
            return None
        try:
            saved = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as error:
            raise AlgobenchError(
                f"{path}: cannot be read ({type(error).__name__}); move it away to start over"
            ) from None
        mine = {k: v for k, v in asdict(self.config).items() if k != "outer_steps"}
        theirs = {k: v for k, v in saved["config"].items() if k != "outer_steps"}
        if mine != theirs:
            diff = ", ".join(f"{k}: {theirs.get(k)!r} there, {v!r} here" for k, v in mine.items() if theirs.get(k) != v)
            raise AlgobenchError(f"{path}: made with other settings ({diff}); use another --out or the same settings")
        return RunState(**saved["state"])

    def _save(self, state: RunState) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_torch_save({"config": asdict(self.config), "state": asdict(state)}, self.out / CHECKPOINT)
        save_rule(self.rule, self.out / WEIGHTS)
        record = {
            "optimizer": self.config.optimizer,
            "estimator": self.config.estimator,
            "command": self.command,
            "settings": asdict(self.config),
            "compute": state.compute,
            "history": state.history,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        }
        _atomic_write_text(self.out / RECORD, json.dumps(record, indent=1))
        from algobench.l2o.plots import plot_meta_loss

        plot_meta_loss(state.history, self.out / CURVE, title=f"{self.config.optimizer} rule, {self.config.estimator}")

    # --- the loop ----------------------------------------------------------------------------
    def run(self, on_step: Callable[[int, float], None] | None = None) -> RunState:
        state = self._load_checkpoint() or self._fresh_state()
        self.rule.load_state_dict(state.rule_state)
        meta_optimizer = torch.optim.Adam(self.rule.parameters(), lr=self.config.meta_lr)
        meta_optimizer.load_state_dict(state.meta_optimizer)
        particles = [Particle.from_dict(p) for p in state.particles]
        rng = np.random.default_rng()
        rng.bit_generator.state = state.task_rng
        noise = torch.Generator()
        noise.set_state(state.noise_generator)
        progress = _progress(self.config, state, self.show_progress)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        spent = dict(state.compute)
        try:
            while state.outer_step < self.config.outer_steps:
                if state.outer_step % self.config.eval_every == 0 and (
                    not state.history["eval_step"] or state.history["eval_step"][-1] != state.outer_step
                ):
                    state.history["eval_step"].append(state.outer_step)
                    state.history["eval_loss"].append(evaluate(self.rule, self.eval_specs))
                step = self._pes_step if self.pes else self._tbptt_step
                meta_loss, inner, new_tasks = step(particles, meta_optimizer, rng, noise)
                state.outer_step += 1
                state.history["outer_step"].append(state.outer_step)
                state.history["meta_loss"].append(meta_loss)
                spent["inner_steps"] += inner
                spent["tasks_seen"] += new_tasks
                spent["outer_steps"] = state.outer_step
                progress(state, meta_loss)
                if on_step is not None:
                    on_step(state.outer_step, meta_loss)
                done = state.outer_step >= self.config.outer_steps
                if done or state.outer_step % self.config.checkpoint_every == 0:
                    if done:
                        state.history["eval_step"].append(state.outer_step)
                        state.history["eval_loss"].append(evaluate(self.rule, self.eval_specs))
                    spent["cpu_seconds"] = state.compute["cpu_seconds"] + time.process_time() - cpu0
                    spent["wall_seconds"] = state.compute["wall_seconds"] + time.perf_counter() - wall0
                    state.rule_state = self.rule.state_dict()
                    state.meta_optimizer = meta_optimizer.state_dict()
                    state.particles = [p.to_dict() for p in particles]
                    state.task_rng = rng.bit_generator.state
                    state.noise_generator = noise.get_state()
                    state.compute = dict(spent)
                    cpu0, wall0 = time.process_time(), time.perf_counter()
                    self._save(state)
        finally:
            progress(None, 0.0)
        return state

    def _pes_step(self, particles, meta_optimizer, rng, noise) -> tuple[float, int, int]:
        config = self.config
        theta = self.rule.flat()
        eps = draw_perturbations(len(particles), self.dim, config.sigma, noise)
        rules = [RULES[config.optimizer](**self.rule.config()) for _ in range(2)]
        losses = torch.zeros(2, len(particles))
        inner, new_tasks = 0, 0
        for i, particle in enumerate(particles):
            particle.xi = particle.xi + eps[i]
            rules[0].load_flat(theta + eps[i])
            rules[1].load_flat(theta - eps[i])
            task = Task(particle.spec)
            generator = torch.Generator()
            generator.set_state(particle.generator_state)
            totals, count = [0.0, 0.0], 0
            with torch.no_grad():
                for _ in range(config.unroll):
                    if particle.step >= particle.spec.length:
                        break
                    indices = task.batch_indices(generator)
                    for side in (0, 1):
                        loss, grads = task.loss_and_grads(particle.params[side], indices)
                        totals[side] += float(normalised(loss, particle.initial_loss))
                        particle.params[side], particle.states[side] = inner_step(
                            rules[side], particle.params[side], grads, particle.states[side],
                            particle.step, particle.spec.length, float(loss),
                        )  # fmt: skip
                    particle.step += 1
                    count += 1
            inner += 2 * count
            particle.generator_state = generator.get_state()
            losses[:, i] = torch.tensor(totals) / max(count, 1)
        gradient = pes_gradient(losses[0], losses[1], torch.stack([p.xi for p in particles]), config.sigma)
        self._apply(gradient, meta_optimizer)
        for i, particle in enumerate(particles):
            if particle.step >= particle.spec.length:
                particles[i] = new_particle(draw_task(rng, config.family), self.rule, 2, self.dim)
                new_tasks += 1
        return float(losses.mean()), inner, new_tasks

    def _apply(self, flat_gradient: torch.Tensor, meta_optimizer: torch.optim.Optimizer) -> None:
        offset = 0
        for p in self.rule.parameters():
            n = p.numel()
            p.grad = flat_gradient[offset : offset + n].reshape(p.shape).clone()
            offset += n
        meta_optimizer.step()
        meta_optimizer.zero_grad(set_to_none=True)

    def _tbptt_step(self, particles, meta_optimizer, rng, noise) -> tuple[float, int, int]:
        config = self.config
        meta_losses = []
        inner, new_tasks = 0, 0
        for particle in particles:
            task = Task(particle.spec)
            generator = torch.Generator()
            generator.set_state(particle.generator_state)
            params = [p.detach().requires_grad_(True) for p in particle.params[0]]
            state = {"per_param": [{k: v.detach() for k, v in s.items()} for s in particle.states[0]["per_param"]]}
            terms = []
            for _ in range(config.unroll):
                if particle.step >= particle.spec.length:
                    break
                loss, grads = task.loss_and_grads(params, task.batch_indices(generator), keep_graph=True)
                terms.append(normalised(loss, particle.initial_loss))
                params, state = inner_step(self.rule, params, grads, state, particle.step, particle.spec.length, 0.0)
                particle.step += 1
            inner += len(terms)
            if terms:
                meta_loss = torch.stack(terms).mean()
                (meta_loss / len(particles)).backward()
                meta_losses.append(float(meta_loss.detach()))
            particle.params[0] = [p.detach() for p in params]
            particle.states[0] = {"per_param": [{k: v.detach() for k, v in s.items()} for s in state["per_param"]]}
            particle.generator_state = generator.get_state()
        for p in self.rule.parameters():
            if p.grad is not None:
                p.grad = torch.nan_to_num(p.grad, nan=0.0, posinf=0.0, neginf=0.0)
        torch.nn.utils.clip_grad_norm_(self.rule.parameters(), 1.0)
        meta_optimizer.step()
        meta_optimizer.zero_grad(set_to_none=True)
        for i, particle in enumerate(particles):
            if particle.step >= particle.spec.length:
                particles[i] = new_particle(draw_task(rng, config.family), self.rule, 1, None)
                new_tasks += 1
        return float(np.mean(meta_losses)) if meta_losses else math.nan, inner, new_tasks


def _progress(config: MetaTrainConfig, state: RunState, show: bool) -> Callable[[RunState | None, float], None]:
    """A tqdm bar on stderr (outer steps, meta-loss, latest evaluation); a no-op when not shown."""
    if not show:
        return lambda s, m: None
    from tqdm import tqdm

    bar = tqdm(
        total=config.outer_steps, initial=state.outer_step, desc=f"meta-train {config.optimizer}", file=sys.stderr
    )

    def update(current: RunState | None, meta_loss: float) -> None:
        if current is None:
            bar.close()
            return
        evals = current.history["eval_loss"]
        bar.set_postfix(meta_loss=f"{meta_loss:.3f}", eval=f"{evals[-1]:.3f}" if evals else "-", refresh=False)
        bar.update(1)

    return update


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
