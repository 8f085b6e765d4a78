"""Population members that crash or diverge mid-run (native form): AdamW with a short warmup and
cosine decay, except that the optimizer raises in global step CRASHES[rate] when its base learning
rate is one of CRASHES' rates, and fills the parameters with NaN after global step DIVERGES[rate]
when it is one of DIVERGES' (the members started there; a clone of one trains at a perturbed rate).

The rate is read from the optimizer at each step, not from the hyperparameters the submission is
built with: a fork is built with its donor's values and then takes its own, so only a member that
still trains at such a rate misbehaves. The step count is the optimizer's own (saved in and
restored from the trial's checkpoint), so the crash lands in the same global step however the run
is cut into segments.
"""

import math

import torch

from algobench.schedules import warmup_cosine

CRASHES = {5e-3: 31, 7e-3: 40}  # base learning rate -> the global step it crashes in
DIVERGES = {2e-3: 15}  # base learning rate -> the global step after which its parameters are NaN


class CrashingAdamW(torch.optim.AdamW):
    def step(self, closure=None):
        group = self.param_groups[0]
        state = self.state.get(group["params"][0], {})
        done = int(state["step"]) if "step" in state else 0  # steps taken before this one
        base = group.get("initial_lr", group["lr"])
        for rate, crash_in in CRASHES.items():
            if done + 1 >= crash_in and math.isclose(base, rate, rel_tol=1e-6):
                raise RuntimeError(f"crash_mid_run: crashed in step {done + 1} (learning rate {base})")
        loss = super().step(closure)
        for rate, after in DIVERGES.items():
            if done + 1 >= after and math.isclose(base, rate, rel_tol=1e-6):
                with torch.no_grad():
                    for p in group["params"]:
                        p.fill_(math.nan)
        return loss


def make_optimizer(params, hyperparameters, workload):
    hp = {"one_minus_beta1": 0.1, "beta2": 0.999, "weight_decay": 0.01, "warmup_factor": 0.002, **hyperparameters}
    optimizer = CrashingAdamW(
        params,
        lr=hp["learning_rate"],
        betas=(1.0 - hp["one_minus_beta1"], hp["beta2"]),
        weight_decay=hp["weight_decay"],
    )
    return optimizer, warmup_cosine(optimizer, hp["warmup_factor"] * workload.step_hint, workload.step_hint)
