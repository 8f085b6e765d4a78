"""Learning-rate schedules for native submissions (AlgoPerf baselines' warmup + cosine)."""

from __future__ import annotations

import math

import torch


def warmup_cosine(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup to the base LR over ``warmup_steps``, then cosine decay to 0 at ``total_steps``.

    A ``LambdaLR`` multiplies ``base_lrs``, so a tuner that changes the learning rate mid-run
    (PBT writes ``scheduler.base_lrs``) keeps the schedule's shape.
    """
    warmup_steps = max(int(warmup_steps), 1)
    total_steps = max(int(total_steps), warmup_steps + 1)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min((step - warmup_steps) / (total_steps - warmup_steps), 1.0)
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
