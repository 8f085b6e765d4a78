"""A decoder-only transformer on a corpus from a probabilistic grammar; stands in for
AlgoPerf's language-model workload (and the decoder half of wmt).

The corpus (``grammar.py``) has agreement across clauses, selectional restrictions and
recursion, so next-token cross-entropy keeps falling well past what bigram statistics give.
The metric is per-token cross-entropy in nats (lower is better). Variants follow AlgoPerf's
transformer variants (post-layer-norm, attention temperature, GLU feed-forward).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from algobench.workloads import grammar
from algobench.workloads.base import Arrays, ArrayWorkload, Splits
from algobench.workloads.data_cache import cached_arrays
from algobench.workloads.layers import BlockConfig, Encoder

GENERATOR_VERSION = 1
SPLITS = ("train", "validation", "test")


def make_corpus(sequences: dict[str, int], seq_len: int, seed: int) -> dict[str, np.ndarray]:
    """Windows of ``seq_len + 1`` tokens from a stream of sentences, per split.

    Each split is drawn from its own seed, so the splits share no sentence stream.
    """
    index = {w: i for i, w in enumerate(grammar.english_vocabulary())}
    arrays = {}
    for k, split in enumerate(SPLITS):
        needed = sequences[split] * (seq_len + 1)
        stream: list[int] = []
        rng_seed = seed * len(SPLITS) + k
        while len(stream) < needed:
            for sentence in grammar.sentences(2000, rng_seed):
                stream += [index[w] for w in sentence.english()] + [index["."]]
            rng_seed += 1000
        arrays[split] = np.asarray(stream[:needed], dtype=np.int64).reshape(sequences[split], seq_len + 1)
    return arrays


class DecoderLM(nn.Module):
    def __init__(self, config: BlockConfig, depth: int, vocab: int, seq_len: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, config.dim)
        self.position = nn.Parameter(torch.randn(1, seq_len, config.dim) * 0.02)
        self.decoder = Encoder(config, depth)
        self.head = nn.Linear(config.dim, vocab)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.embed(tokens) + self.position[:, : tokens.shape[1]]
        return self.head(self.decoder(h, causal=True))


class TransformerMixin:
    """The architecture knobs AlgoPerf's transformer variants turn, shared by LM and translation."""

    post_ln: ClassVar[bool] = False
    attention_temperature: ClassVar[float] = 1.0
    glu: ClassVar[bool] = False
    mlp_activation: ClassVar[str] = "gelu"

    def block_config(self) -> BlockConfig:
        s = self.size  # type: ignore[attr-defined]
        return BlockConfig(
            dim=s["dim"],
            heads=s["heads"],
            post_ln=self.post_ln,
            attention_temperature=self.attention_temperature,
            glu=self.glu,
            activation=self.mlp_activation,
        )


def token_cross_entropy(
    labels: torch.Tensor, logits: torch.Tensor, label_smoothing: float, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-sequence mean cross-entropy over its (unmasked) tokens."""
    per_token = F.cross_entropy(
        logits.flatten(0, 1), labels.flatten(), reduction="none", label_smoothing=label_smoothing
    ).view(labels.shape)
    if mask is None:
        return per_token.mean(dim=1)
    return (per_token * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)


class LanguageModel(TransformerMixin, ArrayWorkload):
    description: ClassVar[str] = "decoder-only transformer (2 blocks, width 64) on a probabilistic-grammar corpus"
    default_batch_size: ClassVar[int] = 64
    step_hint: ClassVar[int] = 1613  # = reference steps in the budget, AlgoPerf's definition (tests check)
    eval_period_time_sec: ClassVar[float] = 5.0
    eval_batch_size: ClassVar[int] = 512
    num_eval_train_examples_cap: ClassVar[int] = 1024
    data_seed: ClassVar[int] = 3
    sizes = MappingProxyType(
        {
            "tiny": {"seq_len": 16, "sequences": {"train": 128, "validation": 32, "test": 32},
                     "dim": 16, "heads": 2, "depth": 1},
            "cpu": {"seq_len": 32, "sequences": {"train": 16_000, "validation": 1000, "test": 1000},
                    "dim": 64, "heads": 4, "depth": 2},
            "gpu": {"seq_len": 128, "sequences": {"train": 100_000, "validation": 4000, "test": 4000},
                    "dim": 256, "heads": 8, "depth": 6},
        }
    )  # fmt: skip

    def load_splits(self) -> Splits:
        s = self.size
        sequences = dict(s["sequences"])
        recipe = {"version": GENERATOR_VERSION, "sequences": sequences, "seq_len": s["seq_len"], "seed": self.data_seed}
        a = cached_arrays("lm", recipe, lambda: make_corpus(sequences, s["seq_len"], self.data_seed))
        part = lambda k: {"inputs": torch.from_numpy(a[k][:, :-1]), "targets": torch.from_numpy(a[k][:, 1:])}  # noqa: E731
        return Splits(part("train"), part("validation"), part("test"))

    def build_model(self) -> nn.Module:
        vocab = len(grammar.english_vocabulary())
        return DecoderLM(self.block_config(), self.size["depth"], vocab, self.size["seq_len"])

    def per_example_loss(self, labels: torch.Tensor, logits: torch.Tensor, label_smoothing: float) -> torch.Tensor:
        return token_cross_entropy(labels, logits, label_smoothing)

    def compute_metrics(self, logits: torch.Tensor, targets: torch.Tensor, arrays: Arrays) -> dict[str, float]:
        loss = self.per_example_loss(targets, logits, 0.0).mean().item()
        accuracy = (logits.argmax(dim=-1) == targets).float().mean().item()
        return {"loss": loss, "accuracy": accuracy, "perplexity": float(np.exp(loss))}


class LanguageModelPostLN(LanguageModel):
    post_ln: ClassVar[bool] = True


class LanguageModelAttentionTemp(LanguageModel):
    attention_temperature: ClassVar[float] = 1.6


class LanguageModelGLU(LanguageModel):
    glu: ClassVar[bool] = True
