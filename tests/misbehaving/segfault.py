"""Misbehaviour: dereferences a null pointer inside update_params (SIGSEGV).

Only on digits_mlp; every other workload trains like AdamW. Every workload ends training after
STEPS steps (AlgoPerf's TrainingCompleteError, a normal ending), which keeps the tests short.
"""

import ctypes

import torch
from algoperf import spec

from algobench.schedules import warmup_cosine

STEPS = 5


def misbehaves(workload):
    return "digits_mlp" in (workload.name, getattr(workload, "base_name", None))


def get_batch_size(workload_name):
    return 64 if workload_name.startswith("digits_mlp") else 128


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    optimizer = torch.optim.AdamW(model_params.parameters(), lr=2e-3, weight_decay=0.05)
    schedule = warmup_cosine(optimizer, 0.05 * workload.step_hint, workload.step_hint)
    return {"optimizer": optimizer, "scheduler": schedule}


def adamw_step(workload, model, model_state, batch, optimizer_state, global_step, rng):
    if global_step >= STEPS:
        raise spec.TrainingCompleteError
    model.train()
    optimizer_state["optimizer"].zero_grad(set_to_none=True)
    logits, model_state = workload.model_fn(
        model, batch, model_state, spec.ForwardPassMode.TRAIN, rng, update_batch_norm=True
    )
    losses = workload.loss_fn(batch["targets"], logits, batch.get("weights"))
    (losses["summed"] / losses["n_valid_examples"]).backward()
    optimizer_state["optimizer"].step()
    optimizer_state["scheduler"].step()
    return optimizer_state, model, model_state


def update_params(
    workload, current_param_container, current_params_types, model_state, hyperparameters, batch,
    loss_type, optimizer_state, eval_results, global_step, rng,
):  # fmt: skip
    if misbehaves(workload) and global_step == 2:
        ctypes.string_at(0)
    return adamw_step(workload, current_param_container, model_state, batch, optimizer_state, global_step, rng)
