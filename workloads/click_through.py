"""DLRM-small on synthetic click logs; stands in for criteo1tb.

Each log line has dense counts (heavy-tailed, log-transformed as Criteo's are) and categorical
fields drawn from Zipfian distributions over vocabularies of different sizes. The click comes
from a hidden model: per-value biases, factorisation-machine interactions between some field
pairs, and a nonlinear function of the dense features, so the embeddings and the interaction
layer both matter and rare values are hard. The metric is log loss (lower is better).
Variants follow AlgoPerf's criteo variants (layer norm in the MLPs, embedding init scale,
residual MLP blocks).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from algobench import spec
from algobench.workloads.base import Arrays, ArrayWorkload, Splits
from algobench.workloads.data_cache import cached_arrays

GENERATOR_VERSION = 1
NUM_DENSE = 8
VOCAB_SIZES = (2000, 1000, 500, 200, 100, 50, 20, 10, 1000, 300, 30, 5)
LATENT_DIM = 4
INTERACTING_PAIRS = ((0, 1), (0, 3), (1, 2), (2, 5), (4, 8), (6, 9), (3, 10), (8, 11))
ZIPF_EXPONENT = 1.1


def make_logs(n: int, seed: int) -> dict[str, np.ndarray]:
    """``n`` log lines and clicks; the hidden model is drawn from ``seed`` too."""
    rng = np.random.default_rng(seed)
    # The hidden model.
    biases = [rng.normal(0, 0.6, v) for v in VOCAB_SIZES]
    latents = [rng.normal(0, 0.7, (v, LATENT_DIM)) for v in VOCAB_SIZES]
    dense_w = rng.normal(0, 0.5, NUM_DENSE)
    dense_freq = rng.uniform(0.5, 2.0, NUM_DENSE)
    # The log lines.
    categorical = np.stack(
        [rng.choice(v, n, p=(p := 1.0 / np.arange(1, v + 1) ** ZIPF_EXPONENT) / p.sum()) for v in VOCAB_SIZES], axis=1
    )
    counts = np.floor(rng.lognormal(1.0, 1.2, (n, NUM_DENSE)))
    dense = np.log1p(counts)
    logit = sum(b[categorical[:, i]] for i, b in enumerate(biases))
    logit += sum((latents[i][categorical[:, i]] * latents[j][categorical[:, j]]).sum(1) for i, j in INTERACTING_PAIRS)
    logit += np.sin(dense * dense_freq) @ dense_w + 0.3 * dense[:, 0] * dense[:, 1] - 0.4 * dense.mean(1)
    logit = logit - np.quantile(logit, 0.75)  # about a quarter of the lines are clicks
    clicks = rng.random(n) < 1 / (1 + np.exp(-logit))
    return {
        "dense": dense.astype(np.float32),
        "categorical": categorical.astype(np.int64),
        "clicks": clicks.astype(np.float32),
    }


def _mlp(sizes: list[int], layer_norm: bool, residual: bool, last_linear: bool) -> nn.Module:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        if last_linear and i == len(sizes) - 2:
            layers.append(nn.Linear(a, b))
        elif residual and a == b:
            layers.append(ResidualDense(a, layer_norm))
        else:
            layers += [nn.Linear(a, b), *([nn.LayerNorm(b)] if layer_norm else []), nn.ReLU()]
    return nn.Sequential(*layers)


class ResidualDense(nn.Module):
    def __init__(self, width: int, layer_norm: bool) -> None:
        super().__init__()
        self.linear = nn.Linear(width, width)
        self.norm = nn.LayerNorm(width) if layer_norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + F.relu(self.norm(self.linear(x)))


class DLRM(nn.Module):
    def __init__(self, embed_dim: int, bottom: list[int], top: list[int], layer_norm: bool, residual: bool,
                 embed_init_scale: float) -> None:  # fmt: skip
        super().__init__()
        self.embeddings = nn.ModuleList(nn.Embedding(v, embed_dim) for v in VOCAB_SIZES)
        for table in self.embeddings:
            nn.init.normal_(table.weight, std=embed_init_scale / embed_dim**0.5)
        self.bottom = _mlp([NUM_DENSE, *bottom, embed_dim], layer_norm, residual, last_linear=False)
        n_vectors = len(VOCAB_SIZES) + 1
        n_pairs = n_vectors * (n_vectors - 1) // 2
        self.top = _mlp([embed_dim + n_pairs, *top], layer_norm, residual, last_linear=False)
        self.head = nn.Linear(top[-1], 1)
        self.register_buffer("pairs", torch.triu_indices(n_vectors, n_vectors, offset=1), persistent=False)

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        x = self.bottom(inputs["dense"])
        vectors = torch.stack([x, *(t(inputs["categorical"][:, i]) for i, t in enumerate(self.embeddings))], dim=1)
        dots = vectors @ vectors.transpose(1, 2)
        interactions = dots[:, self.pairs[0], self.pairs[1]]
        return self.head(self.top(torch.cat([x, interactions], dim=1))).squeeze(-1)


class ClickThrough(ArrayWorkload):
    description: ClassVar[str] = "DLRM-small (12 embedding tables, dot interactions) on synthetic Zipfian click logs"
    loss_type: ClassVar[spec.LossType] = spec.LossType.SIGMOID_CROSS_ENTROPY
    default_batch_size: ClassVar[int] = 256
    step_hint: ClassVar[int] = 8032  # = reference steps in the budget, AlgoPerf's definition (tests check)
    eval_period_time_sec: ClassVar[float] = 5.0
    eval_batch_size: ClassVar[int] = 4096
    num_eval_train_examples_cap: ClassVar[int] = 10_000
    data_seed: ClassVar[int] = 5
    sizes = MappingProxyType(
        {
            "tiny": {"n_train": 512, "n_validation": 128, "n_test": 128, "embed_dim": 4,
                     "bottom": [8, 8], "top": [16, 16, 8]},
            "cpu": {"n_train": 200_000, "n_validation": 20_000, "n_test": 20_000, "embed_dim": 16,
                    "bottom": [64, 64], "top": [128, 128, 64]},
            "gpu": {"n_train": 2_000_000, "n_validation": 100_000, "n_test": 100_000, "embed_dim": 64,
                    "bottom": [256, 128], "top": [512, 256, 256]},
        }
    )  # fmt: skip
    layer_norm: ClassVar[bool] = False
    residual: ClassVar[bool] = False
    embed_init_scale: ClassVar[float] = 1.0

    def load_splits(self) -> Splits:
        s = self.size
        total = s["n_train"] + s["n_validation"] + s["n_test"]
        recipe = {"version": GENERATOR_VERSION, "n": total, "seed": self.data_seed}
        a = cached_arrays("click_through", recipe, lambda: make_logs(total, self.data_seed))
        cuts = (s["n_train"], s["n_train"] + s["n_validation"])

        def part(lo: int, hi: int | None) -> Arrays:
            return {
                "inputs": {"dense": torch.from_numpy(a["dense"][lo:hi]),
                           "categorical": torch.from_numpy(a["categorical"][lo:hi])},
                "targets": torch.from_numpy(a["clicks"][lo:hi]),
            }  # fmt: skip

        return Splits(part(0, cuts[0]), part(cuts[0], cuts[1]), part(cuts[1], None))

    def build_model(self) -> nn.Module:
        s = self.size
        return DLRM(s["embed_dim"], list(s["bottom"]), list(s["top"]), self.layer_norm, self.residual,
                    self.embed_init_scale)  # fmt: skip

    def per_example_loss(self, labels: torch.Tensor, logits: torch.Tensor, label_smoothing: float) -> torch.Tensor:
        labels = labels * (1 - label_smoothing) + 0.5 * label_smoothing
        return F.binary_cross_entropy_with_logits(logits, labels, reduction="none")

    def compute_metrics(self, logits: torch.Tensor, targets: torch.Tensor, arrays: Arrays) -> dict[str, float]:
        loss = self.per_example_loss(targets, logits, 0.0).mean().item()
        accuracy = ((logits > 0).float() == targets).float().mean().item()
        return {"loss": loss, "accuracy": accuracy}


class ClickThroughLayerNorm(ClickThrough):
    layer_norm: ClassVar[bool] = True


class ClickThroughEmbedInitScale(ClickThrough):
    embed_init_scale: ClassVar[float] = 16.0


class ClickThroughResNet(ClickThrough):
    residual: ClassVar[bool] = True
