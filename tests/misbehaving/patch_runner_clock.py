"""Misbehaviour: slows algobench's own clock twentyfold from inside update_params: every timer-like
function, timer class and `time` module reference in the algobench modules loaded in its process is
replaced, so that the submission time the trial reports is a twentieth of the truth. The parent
process must notice.

Only on digits_mlp; every other workload trains like AdamW. Every workload ends training after
STEPS steps, digits_mlp after DIGITS_STEPS (AlgoPerf's TrainingCompleteError, a normal ending),
which keeps the tests short.
"""

import re
import sys
import time
import types

import torch
from algoperf import spec

from algobench.schedules import warmup_cosine

STEPS = 5
DIGITS_STEPS = 2000  # digits_mlp trains for a second or two, so that the slowed clock shows


def misbehaves(workload):
    return "digits_mlp" in (workload.name, getattr(workload, "base_name", None))


SLOWDOWN = 20.0
TIMER = re.compile(r"clock|perf|monotonic|wall|timer|watch|^_?now$|^_?time$", re.IGNORECASE)


def slowed(real):
    """``real``, running SLOWDOWN times slower from its first call on."""
    origin = []

    def clock(*args, **kwargs):
        value = real(*args, **kwargs)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return value
        if not origin:
            origin.append(value)
        return type(value)(origin[0] + (value - origin[0]) / SLOWDOWN)

    return clock


def slowed_time_module():
    fake = types.ModuleType("time")
    fake.__dict__.update(vars(time))
    for name in ("perf_counter", "monotonic", "time", "perf_counter_ns", "monotonic_ns", "time_ns"):
        setattr(fake, name, slowed(getattr(time, name)))
    return fake


def patch_algobench_clocks():
    fake_time = slowed_time_module()
    for module_name, module in list(sys.modules.items()):
        if not module_name.startswith("algobench") or module_name.startswith("algobench_submission"):
            continue
        for attr, value in list(vars(module).items()):
            if value is time:
                setattr(module, attr, fake_time)
            elif isinstance(value, (types.FunctionType, types.BuiltinFunctionType)) and TIMER.search(attr):
                setattr(module, attr, slowed(value))
            elif isinstance(value, type) and TIMER.search(attr):
                for method, function in list(vars(value).items()):
                    if isinstance(function, types.FunctionType) and TIMER.search(method):
                        setattr(value, method, slowed(function))


def get_batch_size(workload_name):
    return 64 if workload_name.startswith("digits_mlp") else 128


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    optimizer = torch.optim.AdamW(model_params.parameters(), lr=2e-3, weight_decay=0.05)
    schedule = warmup_cosine(optimizer, 0.05 * workload.step_hint, workload.step_hint)
    return {"optimizer": optimizer, "scheduler": schedule}


def adamw_step(workload, model, model_state, batch, optimizer_state, global_step, rng):
    if global_step >= (DIGITS_STEPS if misbehaves(workload) else STEPS):
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
    if misbehaves(workload) and global_step == 0:
        patch_algobench_clocks()
    return adamw_step(workload, current_param_container, model_state, batch, optimizer_state, global_step, rng)
