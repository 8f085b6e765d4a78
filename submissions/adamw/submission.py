"""AdamW with linear warmup and cosine decay over the workload's step hint (native form)."""

import torch

from algobench.schedules import warmup_cosine

# Self-tuning defaults: the suite's best point of target setting's search, derived by
# `python -m algobench.tuning.self_tuning_defaults` (tests/test_self_tuning_defaults.py keeps them equal).
DEFAULTS = {
    "learning_rate": 0.006039842928272597,
    "one_minus_beta1": 0.165683272329239,
    "beta2": 0.999,
    "weight_decay": 0.050049187247517286,
    "warmup_factor": 0.05,
}


def make_optimizer(params, hyperparameters, workload):
    hp = {**DEFAULTS, **hyperparameters}
    optimizer = torch.optim.AdamW(
        params,
        lr=hp["learning_rate"],
        betas=(1.0 - hp["one_minus_beta1"], hp["beta2"]),
        weight_decay=hp["weight_decay"],
    )
    return optimizer, warmup_cosine(optimizer, hp["warmup_factor"] * workload.step_hint, workload.step_hint)
