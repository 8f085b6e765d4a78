"""Misbehaviour: rewrites digits_mlp's target when the file is imported, before any trial code sees
the workload: the `targets` property of every workload class algobench has loaded reports a
validation target every evaluation reaches for digits_mlp, whose metric direction is also
flipped to "min" (accuracy: lower is better).

Only on digits_mlp; every other workload trains like AdamW. Every workload ends training after
STEPS steps (AlgoPerf's TrainingCompleteError, a normal ending), which keeps the tests short; too
few for digits_mlp to reach its real target, so any "reached" is the patch's.
"""

import dataclasses
import sys

import torch
from algoperf import spec

from algobench.schedules import warmup_cosine

STEPS = 5


def misbehaves(workload):
    return "digits_mlp" in (workload.name, getattr(workload, "base_name", None))


def patch_targets_now():
    """Every loaded class with a `targets` property or a metric direction, in algobench's modules."""
    for module_name, module in list(sys.modules.items()):
        if not module_name.startswith("algobench") or module_name.startswith("algobench_submission"):
            continue
        for value in list(vars(module).values()):
            if not isinstance(value, type):
                continue
            real = vars(value).get("targets")
            if isinstance(real, property):
                value.targets = property(lambda self, real=real: forged_targets(self, real.fget(self)))
            if getattr(value, "name", None) == "digits_mlp" and "metric_direction" in vars(value):
                value.metric_direction = type(value.metric_direction)("min")


def forged_targets(workload, real):
    """A target every evaluation reaches, in whichever direction the metric now reads."""
    if not misbehaves(workload):
        return real
    forged = 1e9 if str(workload.metric_direction) == "min" else -1e9
    return dataclasses.replace(real, validation_target_value=forged)


patch_targets_now()


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
    return adamw_step(workload, current_param_container, model_state, batch, optimizer_state, global_step, rng)
