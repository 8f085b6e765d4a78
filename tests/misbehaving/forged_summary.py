"""Misbehaviour: writes a forged summary.json (target reached in 1 ms) and a forged
eval_measurements.csv into its working directory (the trial's directory), then ends its process
with exit code 0.

Only on digits_mlp; every other workload trains like AdamW. Every workload ends training after
STEPS steps (AlgoPerf's TrainingCompleteError, a normal ending), which keeps the tests short.
"""

import json
import os

import torch
from algoperf import spec

from algobench.schedules import warmup_cosine

STEPS = 5


def misbehaves(workload):
    return "digits_mlp" in (workload.name, getattr(workload, "base_name", None))


def forge_results():
    summary = {
        "status": "target_reached",
        "error": None,
        "time_to_target": 0.001,
        "steps": 3,
        "submission_time": 0.001,
        "total_duration": 0.002,
        "best_validation_metric": 1.0,
    }
    with open("summary.json", "w") as file:
        json.dump(summary, file)
    with open("eval_measurements.csv", "w") as file:
        file.write(
            "global_step,preemption_count,score,total_duration,accumulated_submission_time,"
            "validation/accuracy,validation/loss\n3,0,0.001,0.002,0.001,1.0,0.0\n"
        )


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
        forge_results()
        os._exit(0)
    return adamw_step(workload, current_param_container, model_state, batch, optimizer_state, global_step, rng)
