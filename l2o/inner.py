"""One inner training step of a task under a rule, in the functional form meta-training needs.

The MLP and LSTM rules update the parameters themselves; the schedule rule sets the learning
rate and weight decay of an AdamW written here in torch's own formulation (decoupled decay,
bias-corrected moments), so that what meta-training sees is what ``torch.optim.AdamW`` does in
the shipped submission.
"""

from __future__ import annotations

from typing import Any

import torch

from algobench.l2o.rules import Rule, ScheduleRule

ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


def init_inner_state(rule: Rule, params: list[torch.Tensor]) -> dict[str, Any]:
    if isinstance(rule, ScheduleRule):
        return {
            "schedule": rule.init_state(),
            "m": [torch.zeros_like(p) for p in params],
            "v": [torch.zeros_like(p) for p in params],
        }
    return {"per_param": [rule.init_state(p) for p in params]}


def inner_step(
    rule: Rule,
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    state: dict[str, Any],
    step: int,
    length: int,
    loss: float,
) -> tuple[list[torch.Tensor], dict[str, Any]]:
    """The parameters after one step at ``step`` of a run of ``length`` steps (the step hint)."""
    if not isinstance(rule, ScheduleRule):
        new_params, per_param = rule.step(params, grads, state["per_param"], step, length)
        return new_params, {"per_param": per_param}
    lr, wd = rule.observe(state["schedule"], step, length, loss)
    beta1, beta2 = ADAM_BETAS
    t = step + 1
    new_params, ms, vs = [], [], []
    for p, g, m, v in zip(params, grads, state["m"], state["v"], strict=True):
        m = m * beta1 + (1 - beta1) * g
        v = v * beta2 + (1 - beta2) * g * g
        denom = (v / (1 - beta2**t)).sqrt() + ADAM_EPS
        new_params.append(p * (1 - lr * wd) - lr / (1 - beta1**t) * m / denom)
        ms.append(m)
        vs.append(v)
    return new_params, {"schedule": state["schedule"], "m": ms, "v": vs}
