"""The three learned update rules, each a small ``torch.nn.Module`` with a functional ``step``.

A rule's ``step`` returns new parameters and state without changing its inputs, so the same code
serves meta-training (where the LSTM's meta-gradient flows through it) and the torch optimizers
that submissions use (under ``torch.no_grad``). The MLP and LSTM rules also have ``step_flat``,
the same rule over all of a model's coordinates at once with its state changed in place
(``flat``): what the torch optimizer runs, because per-tensor work dominated its step; tests pin
it to ``step``. Every input is clipped or normalised (``features``): a gradient a thousand times
larger than any seen in meta-training gives the same bounded inputs as a large one.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import nn

from algobench.l2o.features import FEATURE_CLIP, NUM_TIME_FEATURES, clip, rms_normalise, time_features
from algobench.l2o.flat import FlatState

State = dict[str, torch.Tensor]


class Rule(nn.Module):
    """A learned update rule: ``kind`` names it in weight files and on the command line."""

    kind: ClassVar[str]

    def config(self) -> dict[str, Any]:
        """The architecture's arguments, saved with the weights and checked when they load."""
        raise NotImplementedError

    def flat(self) -> torch.Tensor:
        return torch.nn.utils.parameters_to_vector(self.parameters()).detach().clone()

    def load_flat(self, vector: torch.Tensor) -> None:
        torch.nn.utils.vector_to_parameters(vector, self.parameters())


class MLPRule(Rule):
    """Per-parameter MLP optimizer in the line of Metz et al. (2022, "Practical tradeoffs ...").

    Per coordinate it reads the gradient and momenta at three decays, each divided by the root
    of a second-moment average, plus the gradient and the parameter normalised over their
    tensor; training progress enters through fixed time features added to the hidden layer (so
    they cost one small matrix product per step, not per coordinate). A tiny MLP outputs a
    direction ``d`` and a log magnitude ``s``; the update is ``-exp(log_lr + time_lr(t) + s) * d``.
    It starts as Adam(beta1 = 0.9, lr = 3e-3): a linear skip reads the 0.9 momentum feature and
    the MLP's outputs start near zero, so meta-training refines a working rule.
    """

    kind = "mlp"
    DECAYS = (0.5, 0.9, 0.99)
    BETA2 = 0.999
    NUM_FEATURES = 6  # g, three momenta (second-moment normalised), g and p normalised over the tensor

    def __init__(self, hidden: int = 8, initial_lr: float = 3e-3) -> None:
        super().__init__()
        self.hidden, self.initial_lr = hidden, initial_lr
        self.inp = nn.Linear(self.NUM_FEATURES, hidden)
        self.time = nn.Linear(NUM_TIME_FEATURES, hidden, bias=False)
        self.out = nn.Linear(hidden, 2)
        self.skip = nn.Linear(self.NUM_FEATURES, 1, bias=False)
        self.time_lr = nn.Linear(NUM_TIME_FEATURES, 1, bias=False)
        self.log_lr = nn.Parameter(torch.tensor(math.log(initial_lr)))
        with torch.no_grad():
            self.out.weight.mul_(0.01)
            self.out.bias.zero_()
            self.skip.weight.zero_()
            self.skip.weight[0, 2] = 1.0  # the 0.9 momentum over the root second moment: Adam
            self.time_lr.weight.zero_()

    def config(self) -> dict[str, Any]:
        return {"hidden": self.hidden, "initial_lr": self.initial_lr}

    def init_state(self, param: torch.Tensor) -> State:
        state = {f"m{i}": torch.zeros_like(param) for i in range(len(self.DECAYS))}
        state["v"] = torch.zeros_like(param)
        return state

    def step(
        self, params: list[torch.Tensor], grads: list[torch.Tensor], states: list[State], step: int, step_hint: int
    ) -> tuple[list[torch.Tensor], list[State]]:
        tf = time_features(step, step_hint)
        hidden_bias = self.time(tf)
        log_lr = self.log_lr + self.time_lr(tf)[0]
        t = step + 1
        new_params, new_states = [], []
        for p, g, st in zip(params, grads, states, strict=True):
            g = torch.nan_to_num(g, nan=0.0, posinf=0.0, neginf=0.0)
            v = st["v"] * self.BETA2 + (1 - self.BETA2) * g * g
            inv_rms = torch.rsqrt(v / (1 - self.BETA2**t) + 1e-16)
            new = {"v": v}
            feats = [clip(g * inv_rms)]
            for i, beta in enumerate(self.DECAYS):
                m = st[f"m{i}"] * beta + (1 - beta) * g
                new[f"m{i}"] = m
                feats.append(clip(m / (1 - beta**t) * inv_rms))
            feats += [rms_normalise(g), rms_normalise(p.detach())]
            x = torch.stack(feats, dim=-1)
            h = torch.relu(self.inp(x) + hidden_bias)
            out = self.out(h)
            direction = self.skip(x)[..., 0] + out[..., 0]
            magnitude = torch.exp((log_lr + out[..., 1]).clamp(-20.0, 0.0))
            new_params.append(p - magnitude * direction)
            new_states.append(new)
        return new_params, new_states

    CHUNK = 1 << 17  # coordinates per pass of the MLP: bounds its scratch space (5 MB)

    @torch.no_grad()
    def step_flat(self, grads: list[torch.Tensor], params: list[torch.Tensor], flat: FlatState, step: int,
                  step_hint: int, out: torch.Tensor) -> None:  # fmt: skip
        """``step`` over every coordinate of every tensor at once, for the torch optimizer: the same
        numbers up to float rounding, in about 30 operations per step instead of ~25 per tensor.

        ``flat`` holds the state of ``params`` (updated in place) and scratch space; the update
        (new parameters minus old, flat, tensor after tensor) goes to ``out``. The features are
        the rows of one matrix, over a row of ones, so that the MLP, with its biases, skip and
        time features folded into its weights, is two matrix products.
        """
        n, t, features = flat.numel, step + 1, self.NUM_FEATURES
        tf = time_features(step, step_hint)
        z = flat.scratch("z", features + 1, n, fill=1.0)  # the features and a row of ones (for biases)
        x = z[:features]
        g = torch.cat([q.reshape(-1) for q in grads], out=x[4]).nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)
        torch.cat([p.reshape(-1) for p in params], out=x[5])  # rows 4 and 5 normalised below
        bias_correction = 1 - self.BETA2**t  # rsqrt(v / c + eps) = sqrt(c) rsqrt(v + eps c): one pass fewer
        v = flat.rows("v")[0].mul_(self.BETA2).addcmul_(g, g, value=1 - self.BETA2)
        inv_rms = torch.add(v, 1e-16 * bias_correction, out=flat.scratch("inv_rms", n)).rsqrt_()
        torch.mul(g, inv_rms, out=x[0])
        betas = torch.tensor(self.DECAYS)[:, None]
        momenta = flat.rows(*(f"m{i}" for i in range(len(self.DECAYS))))
        momenta.mul_(betas).addcmul_(1 - betas, g)
        torch.mul(momenta, inv_rms, out=x[1:4])
        x[:4].mul_(torch.cat([torch.ones(1, 1), 1 / (1 - betas**t)]) * math.sqrt(bias_correction))
        segments = flat.pieces("z", rows=(4, 6))  # rms_normalise: one norm and one factor per tensor
        norms = torch.stack(torch._foreach_norm(segments)).view(2, -1)
        torch._foreach_mul_(segments, norms.square_().div_(flat.counts).add_(1e-12).rsqrt_().view(-1).unbind())
        x.clamp_(-FEATURE_CLIP, FEATURE_CLIP)
        # One product gives the hidden layer's inputs (biases and time features in the ones column),
        # minus the skip's direction and the log magnitude's constant part; the hidden units then
        # add theirs. Minus the direction: negated weights give exactly the negation.
        log_magnitude_bias = (self.out.bias[1] + self.log_lr + self.time_lr(tf))[:, None]
        w_first = torch.cat(
            [torch.cat([self.inp.weight, (self.inp.bias + self.time(tf))[:, None]], dim=1),
             torch.cat([-self.skip.weight, -self.out.bias[:1, None]], dim=1),
             torch.cat([x.new_zeros(1, features), log_magnitude_bias], dim=1)],
        )  # fmt: skip
        w_second = self.out.weight * torch.tensor([[-1.0], [1.0]])
        work = flat.scratch("mlp", self.hidden + 2, min(n, self.CHUNK))
        for start in range(0, n, self.CHUNK):  # chunks bound the scratch space
            part = slice(start, min(start + self.CHUNK, n))
            chunk = work[:, : part.stop - start]
            hidden, rows = torch.mm(w_first, z[:, part], out=chunk).split([self.hidden, 2])
            rows.addmm_(w_second, hidden.relu_())
            minus_direction, magnitude = rows
            torch.mul(magnitude.clamp_(-20.0, 0.0).exp_(), minus_direction, out=out[part])


class LSTMRule(Rule):
    """Coordinatewise two-layer LSTM optimizer (Andrychowicz et al. 2016, Open-L2O's L2O-DM).

    Each coordinate's gradient, preprocessed as in the paper's appendix (log-magnitude and sign,
    p = 10, so every input lies in [-1, 1] whatever the gradient's scale), drives an LSTM whose
    weights are shared by all coordinates; a linear head scaled by ``output_scale`` gives the
    update. Hidden width 10 (the paper's is 20) so that a step over every coordinate of the suite's
    models stays affordable on a CPU.
    """

    kind = "lstm"
    PREPROCESS_P = 10.0

    def __init__(self, hidden: int = 10, layers: int = 2, output_scale: float = 0.01) -> None:
        super().__init__()
        self.hidden, self.layers, self.output_scale = hidden, layers, output_scale
        self.cells = nn.ModuleList(nn.LSTMCell(2 if i == 0 else hidden, hidden) for i in range(layers))
        self.head = nn.Linear(hidden, 1)
        with torch.no_grad():
            self.head.weight.mul_(0.1)
            self.head.bias.zero_()

    def config(self) -> dict[str, Any]:
        return {"hidden": self.hidden, "layers": self.layers, "output_scale": self.output_scale}

    def init_state(self, param: torch.Tensor) -> State:
        n = param.numel()
        state = {}
        for i in range(self.layers):
            state[f"h{i}"] = param.new_zeros(n, self.hidden)
            state[f"c{i}"] = param.new_zeros(n, self.hidden)
        return state

    def preprocess(self, g: torch.Tensor) -> torch.Tensor:
        p = self.PREPROCESS_P
        g = torch.nan_to_num(g.reshape(-1), nan=0.0, posinf=0.0, neginf=0.0)
        big = g.abs() >= math.exp(-p)
        log_part = torch.where(big, torch.log(g.abs().clamp_min(1e-30)) / p, torch.full_like(g, -1.0))
        sign_part = torch.where(big, torch.sign(g), (math.exp(p) * g).clamp(-1.0, 1.0))
        return torch.stack([log_part.clamp(-1.0, 1.0), sign_part], dim=-1)

    def step(
        self, params: list[torch.Tensor], grads: list[torch.Tensor], states: list[State], step: int, step_hint: int
    ) -> tuple[list[torch.Tensor], list[State]]:
        new_params, new_states = [], []
        for p, g, st in zip(params, grads, states, strict=True):
            x = self.preprocess(g)
            new: State = {}
            for i, cell in enumerate(self.cells):
                h, c = cell(x, (st[f"h{i}"], st[f"c{i}"]))
                new[f"h{i}"], new[f"c{i}"] = h, c
                x = h
            update = self.head(x)[:, 0] * self.output_scale
            new_params.append(p + update.reshape(p.shape))
            new_states.append(new)
        return new_params, new_states

    CHUNK = 32768  # coordinates per LSTM call (all at once was slower than tensor by tensor)

    @torch.no_grad()
    def step_flat(self, grads: list[torch.Tensor], params: list[torch.Tensor], flat: FlatState, step: int,
                  step_hint: int, out: torch.Tensor) -> None:  # fmt: skip
        """``step`` over all coordinates at once (arguments as ``MLPRule.step_flat``; each state row
        holds the coordinates' hidden vectors one after another): one LSTM call per layer."""
        g = torch.cat([q.reshape(-1) for q in grads], out=flat.scratch("grads", flat.numel))
        states = [[flat.rows(f"{k}{i}")[0].view(-1, self.hidden) for k in "hc"] for i in range(self.layers)]
        for start in range(0, flat.numel, self.CHUNK):  # a chunk's gates stay in the cache
            part = slice(start, start + self.CHUNK)
            x = self.preprocess(g[part])
            for cell, (h_state, c_state) in zip(self.cells, states, strict=True):
                h, c = cell(x, (h_state[part], c_state[part]))
                h_state[part] = h
                c_state[part] = c
                x = h
            torch.mul(self.head(x)[:, 0], self.output_scale, out=out[part])


class ScheduleRule(Rule):
    """A learned schedule for AdamW: every ``1 / DECISIONS`` of the step hint, a tiny network
    reads the training progress and the recent loss trend and sets the learning rate and the
    weight decay until the next decision (L2O as a schedule tuner, comparable with PBT's).

    Inputs: the time features, the log-ratio of this interval's mean loss to the previous one's
    (the trend) and of this interval's to the first's (the level), both clipped. Outputs: log
    multipliers of ``base_lr`` and ``base_weight_decay``; the rule starts as constant AdamW.
    """

    kind = "schedule"
    DECISIONS = 25

    def __init__(self, hidden: int = 8, base_lr: float = 2e-3, base_weight_decay: float = 0.05) -> None:
        super().__init__()
        self.hidden, self.base_lr, self.base_weight_decay = hidden, base_lr, base_weight_decay
        self.net = nn.Sequential(nn.Linear(NUM_TIME_FEATURES + 2, hidden), nn.Tanh(), nn.Linear(hidden, 2))
        with torch.no_grad():
            self.net[2].weight.zero_()
            self.net[2].bias.zero_()

    def config(self) -> dict[str, Any]:
        return {"hidden": self.hidden, "base_lr": self.base_lr, "base_weight_decay": self.base_weight_decay}

    def interval(self, step_hint: int) -> int:
        return max(step_hint // self.DECISIONS, 1)

    def init_state(self) -> dict[str, float]:
        """The loss bookkeeping between decisions (plain floats: cheap to save and restore)."""
        return {"sum": 0.0, "count": 0.0, "previous": math.nan, "first": math.nan, "lr": math.nan, "wd": math.nan}

    @torch.no_grad()
    def observe(self, state: dict[str, float], step: int, step_hint: int, loss: float) -> tuple[float, float]:
        """Record this step's training loss; at a decision step, decide. Returns (lr, weight decay)
        for this step. A non-finite loss is not recorded (the caller reports the divergence)."""
        if step % self.interval(step_hint) == 0:
            trend = level = 0.0
            if state["count"] > 0:
                mean = max(state["sum"] / state["count"], 1e-12)
                if math.isnan(state["first"]):
                    state["first"] = mean
                if not math.isnan(state["previous"]):
                    trend = 5.0 * math.log(mean / state["previous"])
                level = math.log(mean / state["first"])
                state["previous"], state["sum"], state["count"] = mean, 0.0, 0.0
            x = torch.cat(
                [time_features(step, step_hint), torch.tensor([trend, level]).clamp(-FEATURE_CLIP, FEATURE_CLIP)]
            )
            out = self.net(x)
            state["lr"] = self.base_lr * math.exp(float(out[0].clamp(-7.0, 2.5)))
            state["wd"] = self.base_weight_decay * math.exp(float(out[1].clamp(-5.0, 2.0)))
        if math.isfinite(loss):
            state["sum"] += loss
            state["count"] += 1
        return state["lr"], state["wd"]


RULES: dict[str, type[Rule]] = {"mlp": MLPRule, "schedule": ScheduleRule, "lstm": LSTMRule}
