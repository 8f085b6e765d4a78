"""Misbehaviour (native form): the optimizer fills every parameter with NaN after two steps.

Only on digits_mlp; every other workload gets plain AdamW. Every workload ends training after
STEPS steps (AlgoPerf's TrainingCompleteError, a normal ending) to keep the tests short.
"""

import math

import torch

from algobench import spec
from algobench.schedules import warmup_cosine

STEPS = 5


class NaNAdamW(torch.optim.AdamW):
    steps = 0
    poison = False

    @torch.no_grad()
    def step(self, closure=None):
        if self.steps >= STEPS:
            raise spec.TrainingCompleteError
        self.steps += 1
        loss = super().step(closure)
        if self.poison and self.steps >= 2:
            for group in self.param_groups:
                for p in group["params"]:
                    p.fill_(math.nan)
        return loss


def make_optimizer(params, hyperparameters, workload):
    optimizer = NaNAdamW(params, lr=2e-3, weight_decay=0.05)
    optimizer.poison = "digits_mlp" in (workload.name, getattr(workload, "base_name", None))
    return optimizer, warmup_cosine(optimizer, 0.05 * workload.step_hint, workload.step_hint)
