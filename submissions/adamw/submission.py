"""AdamW with linear warmup and cosine decay over the workload's step hint (native form)."""

import torch

from algobench.schedules import warmup_cosine

DEFAULTS = {"learning_rate": 2e-3, "one_minus_beta1": 0.1, "beta2": 0.999, "weight_decay": 0.05, "warmup_factor": 0.05}


def make_optimizer(params, hyperparameters, workload):
    hp = {**DEFAULTS, **hyperparameters}
    optimizer = torch.optim.AdamW(
        params,
        lr=hp["learning_rate"],
        betas=(1.0 - hp["one_minus_beta1"], hp["beta2"]),
        weight_decay=hp["weight_decay"],
    )
    return optimizer, warmup_cosine(optimizer, hp["warmup_factor"] * workload.step_hint, workload.step_hint)
