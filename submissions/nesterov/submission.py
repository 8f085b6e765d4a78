"""SGD with Nesterov momentum, L2 weight decay, warmup and cosine decay (native form)."""

import torch

from algobench.schedules import warmup_cosine

DEFAULTS = {"learning_rate": 0.1, "one_minus_beta1": 0.1, "weight_decay": 5e-4, "warmup_factor": 0.05}


def make_optimizer(params, hyperparameters, workload):
    hp = {**DEFAULTS, **hyperparameters}
    optimizer = torch.optim.SGD(
        params,
        lr=hp["learning_rate"],
        momentum=1.0 - hp["one_minus_beta1"],
        nesterov=True,
        weight_decay=hp["weight_decay"],
    )
    return optimizer, warmup_cosine(optimizer, hp["warmup_factor"] * workload.step_hint, workload.step_hint)
