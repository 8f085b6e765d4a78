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
from algobench.l2o.rules import Rule, ScheduleRule


class LearnedOptimizer(torch.optim.Optimizer):
    """Applies a per-coordinate rule (``MLPRule``, ``LSTMRule``) to every parameter with a gradient;
    ``lr_scale`` (1 under self-tuning) multiplies every update, the one knob external tuning gets.

    The rule's state lives in ``self.state[p]`` so ``state_dict`` checkpoints it like Adam's.
    """

    def __init__(self, params: Any, rule: Rule, step_hint: int, lr_scale: float = 1.0) -> None:
        super().__init__(params, {"lr_scale": float(lr_scale)})
        self.rule = rule.requires_grad_(False)
        self.step_hint = int(step_hint)

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        params = [p for group in self.param_groups for p in group["params"] if p.grad is not None]
        if not params:
            return loss
        for p in params:
            if not self.state[p]:
                self.state[p] = {"step": torch.tensor(0.0), **self.rule.init_state(p)}
        step = int(self.state[params[0]]["step"])
        states = [{k: v for k, v in self.state[p].items() if k != "step"} for p in params]
        new_params, new_states = self.rule.step(params, [p.grad for p in params], states, step, self.step_hint)
        finite = torch.stack([q.sum() for q in new_params]).isfinite().all()
        if not bool(finite):
            raise DivergedError(f"the learned {self.rule.kind} rule produced a non-finite update at step {step}")
        scale = self.param_groups[0]["lr_scale"]
        for p, q, st in zip(params, new_params, new_states, strict=True):
            p.copy_(q) if scale == 1.0 else p.add_(q - p, alpha=scale)
            self.state[p].update(st)
            self.state[p]["step"] = self.state[p]["step"] + 1  # a new tensor: a loaded state_dict may share it
        return loss


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
