"""The learned rules in the shapes submissions use: a ``torch.optim.Optimizer`` for the MLP and
LSTM rules, and an AdamW whose learning rate and weight decay the learned schedule sets.

A non-finite update raises ``DivergedError``, so the runner records the trial as ``diverged``
exactly as it does for a non-finite loss.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from algobench.errors import DivergedError
from algobench.l2o.flat import FlatState
from algobench.l2o.rules import Rule, ScheduleRule


class LearnedOptimizer(torch.optim.Optimizer):
    """Applies a per-coordinate rule (``MLPRule``, ``LSTMRule``) to every parameter with a gradient;
    ``lr_scale`` (1 under self-tuning) multiplies every update, the one knob external tuning gets.

    Each step runs the rule once over all coordinates (``Rule.step_flat`` on a ``FlatState``), not
    once per tensor. The rule's state lives in ``self.state[p]`` so ``state_dict`` checkpoints it
    like Adam's; those tensors are views into the ``FlatState``, which is rebuilt by copying them
    whenever they are not (``load_state_dict`` copies at once; a change in the parameters with
    gradients copies at the next step). As in torch's optimizers the state changes in place (a
    ``state_dict`` is live until saved or copied), and it has already moved when a non-finite
    update raises ``DivergedError`` (the parameters have not).
    """

    def __init__(self, params: Any, rule: Rule, step_hint: int, lr_scale: float = 1.0) -> None:
        super().__init__(params, {"lr_scale": float(lr_scale)})
        self.rule = rule.requires_grad_(False)
        self.step_hint = int(step_hint)
        self._flat: FlatState | None = None

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        params = [p for group in self.param_groups for p in group["params"] if p.grad is not None]
        if not params:
            return loss
        flat = self._flat_state(params)
        step = int(self.state[params[0]]["step"])
        update = flat.scratch("update", flat.numel)
        self.rule.step_flat([p.grad for p in params], params, flat, step, self.step_hint, out=update)
        if not bool(update.sum().isfinite()):
            raise DivergedError(f"the learned {self.rule.kind} rule produced a non-finite update at step {step}")
        torch._foreach_add_(params, flat.pieces("update", shaped=True), alpha=self.param_groups[0]["lr_scale"])
        counts = torch._foreach_add([self.state[p]["step"] for p in params], 1)  # new tensors: a loaded
        for p, count in zip(params, counts, strict=True):  # state_dict may share the old ones
            self.state[p]["step"] = count
        return loss

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """torch's loading, then the loaded state copied into this optimizer's own flat buffers at
        once: torch keeps the given tensors, which may be another live optimizer's, and this
        optimizer's steps change its state in place."""
        super().load_state_dict(state_dict)
        params = [p for group in self.param_groups for p in group["params"] if self.state.get(p)]
        self._flat = FlatState(params, self.state) if params else None

    def _flat_state(self, params: list[torch.Tensor]) -> FlatState:
        """The cached ``FlatState`` while ``self.state`` still holds its views, else a new one
        made by copying ``self.state`` (a parameter without state starts fresh)."""
        if self._flat is not None and self._flat.serves(params, self.state):
            return self._flat
        for p in params:
            if not self.state[p]:
                self.state[p] = {"step": torch.tensor(0.0), **self.rule.init_state(p)}
        self._flat = FlatState(params, self.state)
        return self._flat


class PerTensorOptimizer(torch.optim.Optimizer):
    """A rule applied tensor by tensor through its functional ``step`` (new tensors each step), as
    ``LearnedOptimizer`` did before its step was fused: the reference the tests pin the fused step
    to, and the "before" of ``benchmarks/bench_l2o.py --per-tensor``. Slower; not for submissions."""

    def __init__(self, params: Any, rule: Rule, step_hint: int, lr_scale: float = 1.0) -> None:
        super().__init__(params, {})
        self.rule, self.step_hint, self.lr_scale = rule.requires_grad_(False), int(step_hint), float(lr_scale)

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:
        params = [p for group in self.param_groups for p in group["params"] if p.grad is not None]
        for p in params:
            if not self.state[p]:
                self.state[p] = {"step": 0, **self.rule.init_state(p)}
        step = self.state[params[0]]["step"]
        states = [{k: v for k, v in self.state[p].items() if k != "step"} for p in params]
        new_params, new_states = self.rule.step(params, [p.grad for p in params], states, step, self.step_hint)
        for p, q, state in zip(params, new_params, new_states, strict=True):
            p.copy_(q) if self.lr_scale == 1.0 else p.add_(q - p, alpha=self.lr_scale)
            self.state[p].update(state)
            self.state[p]["step"] += 1


class ScheduledAdamW:
    """torch's AdamW whose learning rate and weight decay a ``ScheduleRule`` sets from the
    progress and the loss trend. ``step(loss)`` takes the step's training loss."""

    def __init__(self, params: Any, rule: ScheduleRule, step_hint: int, lr_scale: float = 1.0) -> None:
        self.rule = rule.requires_grad_(False)
        self.step_hint = int(step_hint)
        self.lr_scale = float(lr_scale)
        self.optimizer = torch.optim.AdamW(params, lr=rule.base_lr, weight_decay=rule.base_weight_decay)
        self.schedule_state = rule.init_state()
        self.steps = 0
        self.trace: list[tuple[int, float, float]] = []  # (step, lr, weight decay) at each decision

    def step(self, loss: float) -> tuple[float, float]:
        if not math.isfinite(loss):
            raise DivergedError(f"training loss is {loss} at step {self.steps}")
        decides = self.steps % self.rule.interval(self.step_hint) == 0
        lr, wd = self.rule.observe(self.schedule_state, self.steps, self.step_hint, loss)
        if decides:
            self.trace.append((self.steps, lr * self.lr_scale, wd))
        for group in self.optimizer.param_groups:
            group["lr"], group["weight_decay"] = lr * self.lr_scale, wd
        self.optimizer.step()
        self.steps += 1
        return lr, wd

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer.state_dict(),
            "schedule_state": dict(self.schedule_state),
            "steps": self.steps,
            "trace": list(self.trace),
        }

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(saved["optimizer"])
        self.schedule_state = dict(saved["schedule_state"])
        self.steps = int(saved["steps"])
        self.trace = [tuple(t) for t in saved["trace"]]
