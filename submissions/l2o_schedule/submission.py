"""A learned schedule for AdamW (``algobench.l2o.rules.ScheduleRule``), AlgoPerf form.

Every 1/25 of the workload's step hint a tiny network, meta-trained by ``algobench meta-train
--optimizer schedule`` on generated tasks disjoint from the suite, reads the training progress
and the recent training-loss trend and sets AdamW's learning rate and weight decay. AlgoPerf's
form because the schedule reads the loss, which a native ``make_optimizer`` never sees. Each
decision is printed (the trial's ``output.log``) so the schedule it chose can be plotted.
Weights and provenance beside this file. External tuning: ``lr_scale`` multiplies the rate.
"""

from pathlib import Path

from algobench import spec
from algobench.errors import DivergedError
from algobench.l2o.optim import ScheduledAdamW
from algobench.l2o.weights import load_rule

WEIGHTS = Path(__file__).with_name("weights.pt")


def get_batch_size(workload_name):
    from algobench.workloads.registry import workload_class

    return workload_class(workload_name).default_batch_size


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    del model_state, rng
    lr_scale = hyperparameters.get("lr_scale", 1.0) if hyperparameters else 1.0
    rule = load_rule(WEIGHTS, "schedule")
    return {"optimizer": ScheduledAdamW(model_params.parameters(), rule, workload.step_hint, lr_scale=lr_scale)}


def update_params(
    workload, current_param_container, current_params_types, model_state, hyperparameters, batch, loss_type,
    optimizer_state, eval_results, global_step, rng,
):  # fmt: skip
    del current_params_types, loss_type, eval_results
    model = current_param_container
    model.train()
    optimizer = optimizer_state["optimizer"]
    optimizer.zero_grad(set_to_none=True)
    logits, new_model_state = workload.model_fn(
        model, batch, model_state, spec.ForwardPassMode.TRAIN, rng, update_batch_norm=True
    )
    losses = workload.loss_fn(batch["targets"], logits, batch.get("weights"))
    loss = losses["summed"] / losses["n_valid_examples"]
    loss_value = loss.item()
    if loss_value != loss_value or abs(loss_value) == float("inf"):
        raise DivergedError(f"training loss is {loss_value} at step {global_step}")
    loss.backward()
    decisions = len(optimizer.trace)
    optimizer.step(loss_value)
    if len(optimizer.trace) > decisions:
        step, lr, wd = optimizer.trace[-1]
        print(f"l2o_schedule step={step} progress={step / workload.step_hint:.4f} lr={lr:.6g} weight_decay={wd:.6g}")
    return optimizer_state, model, new_model_state
