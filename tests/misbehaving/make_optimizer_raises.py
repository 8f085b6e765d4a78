"""Misbehaviour (native form): make_optimizer raises KeyError('learning_rate').

Only on digits_mlp; every other workload gets AdamW, which ends training after STEPS steps
(AlgoPerf's TrainingCompleteError, a normal ending) to keep the tests short.
"""

import torch

from algobench import spec
from algobench.schedules import warmup_cosine

STEPS = 5


class ShortAdamW(torch.optim.AdamW):
    steps = 0

    def step(self, closure=None):
        if self.steps >= STEPS:
            raise spec.TrainingCompleteError
        self.steps += 1
        return super().step(closure)


def make_optimizer(params, hyperparameters, workload):
    if "digits_mlp" in (workload.name, getattr(workload, "base_name", None)):
        raise KeyError("learning_rate")
    optimizer = ShortAdamW(params, lr=2e-3, weight_decay=0.05)
    return optimizer, warmup_cosine(optimizer, 0.05 * workload.step_hint, workload.step_hint)
