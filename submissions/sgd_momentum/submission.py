"""SGD with heavy-ball momentum, L2 weight decay, warmup and cosine decay (native form)."""

import torch

from algobench.schedules import warmup_cosine

# Self-tuning defaults: the suite's best point of target setting's search, derived by
# `python -m algobench.tuning.self_tuning_defaults` (tests/test_self_tuning_defaults.py keeps them equal).
DEFAULTS = {
    "learning_rate": 0.10420532992833123,
    "one_minus_beta1": 0.10510186540336922,
    "weight_decay": 8.710418521886065e-05,
    "warmup_factor": 0.05,
}


def make_optimizer(params, hyperparameters, workload):
    hp = {**DEFAULTS, **hyperparameters}
    optimizer = torch.optim.SGD(
        params,
        lr=hp["learning_rate"],
        momentum=1.0 - hp["one_minus_beta1"],
        nesterov=False,
        weight_decay=hp["weight_decay"],
    )
    return optimizer, warmup_cosine(optimizer, hp["warmup_factor"] * workload.step_hint, workload.step_hint)
