"""An encoder-decoder transformer translating a synthetic language pair; stands in for wmt.

Source sentences come from ``grammar.py``; the target language is verb-final, puts adjectives
after the noun and relative clauses before it, and marks the verb for its subject's number and
animacy, so translation needs reordering and agreement across the sentence. The metric is
BLEU (sacrebleu) of greedy decodes, as AlgoPerf's wmt. Variants follow AlgoPerf's wmt variants
(post-layer-norm, attention temperature, GLU with tanh).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from algobench.workloads import grammar
from algobench.workloads.base import Arrays, ArrayWorkload, Splits, take
from algobench.workloads.data_cache import cached_arrays
from algobench.workloads.layers import Encoder
from algobench.workloads.lm import TransformerMixin, token_cross_entropy

GENERATOR_VERSION = 1
SPLITS = ("train", "validation", "test")


def make_pairs(pairs: dict[str, int], max_len: int, seed: int) -> dict[str, np.ndarray]:
    """Padded source and target token arrays per split; sentences longer than ``max_len``
    (target side, with BOS/EOS) are skipped. Each split is drawn from its own seed."""
    src_index = {w: i for i, w in enumerate(grammar.english_vocabulary())}
    tgt_index = {w: i for i, w in enumerate(grammar.target_vocabulary())}
    arrays = {}
    for k, split in enumerate(SPLITS):
        src = np.full((pairs[split], max_len), grammar.PAD, dtype=np.int64)
        tgt = np.full((pairs[split], max_len + 1), grammar.PAD, dtype=np.int64)
        filled, rng_seed = 0, seed * len(SPLITS) + k
        while filled < pairs[split]:
            for sentence in grammar.sentences(2000, rng_seed):
                s = [src_index[w] for w in sentence.english()]
                t = [grammar.BOS, *(tgt_index[w] for w in sentence.target()), grammar.EOS]
                if len(s) > max_len or len(t) > max_len + 1:
                    continue
                src[filled, : len(s)], tgt[filled, : len(t)] = s, t
                filled += 1
                if filled == pairs[split]:
                    break
            rng_seed += 1000
        arrays[f"source_{split}"], arrays[f"target_{split}"] = src, tgt
    return arrays


class Seq2Seq(nn.Module):
    def __init__(self, workload: TransformerMixin, depth: int, max_len: int) -> None:
        super().__init__()
        config = workload.block_config()
        self.src_embed = nn.Embedding(len(grammar.english_vocabulary()), config.dim)
        self.tgt_embed = nn.Embedding(len(grammar.target_vocabulary()), config.dim)
        self.position = nn.Parameter(torch.randn(1, max_len + 1, config.dim) * 0.02)
        self.encoder = Encoder(config, depth)
        self.decoder = Encoder(config, depth, cross=True)
        self.head = nn.Linear(config.dim, len(grammar.target_vocabulary()))

    def encode(self, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        padding = source == grammar.PAD
        h = self.src_embed(source) + self.position[:, : source.shape[1]]
        return self.encoder(h, padding=padding), padding

    def decode(self, prefix: torch.Tensor, memory: torch.Tensor, memory_padding: torch.Tensor) -> torch.Tensor:
        h = self.tgt_embed(prefix) + self.position[:, : prefix.shape[1]]
        return self.head(self.decoder(h, causal=True, memory=memory, memory_padding=memory_padding))

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        memory, padding = self.encode(inputs["source"])
        return self.decode(inputs["decoder_input"], memory, padding)

    @torch.no_grad()
    def greedy(self, source: torch.Tensor, max_len: int) -> torch.Tensor:
        memory, padding = self.encode(source)
        out = torch.full((source.shape[0], 1), grammar.BOS, dtype=torch.long, device=source.device)
        for _ in range(max_len):
            next_token = self.decode(out, memory, padding)[:, -1].argmax(dim=-1, keepdim=True)
            out = torch.cat([out, next_token], dim=1)
            if (out == grammar.EOS).any(dim=1).all():
                break
        return out[:, 1:]


def detokenize(tokens: torch.Tensor, vocabulary: list[str]) -> list[str]:
    """Token ids to space-joined words, stopping at the first EOS (or padding)."""
    lines = []
    for row in tokens.tolist():
        words = []
        for t in row:
            if t in (grammar.EOS, grammar.PAD):
                break
            words.append(vocabulary[t])
        lines.append(" ".join(words))
    return lines


class Translation(TransformerMixin, ArrayWorkload):
    description: ClassVar[str] = "encoder-decoder transformer (2+2 blocks, width 64), synthetic SVO->SOV pair"
    default_batch_size: ClassVar[int] = 64
    step_hint: ClassVar[int] = 589  # = reference steps in the budget, AlgoPerf's definition (tests check)
    eval_period_time_sec: ClassVar[float] = 10.0
    eval_batch_size: ClassVar[int] = 500
    num_eval_train_examples_cap: ClassVar[int] = 1000
    data_seed: ClassVar[int] = 4
    sizes = MappingProxyType(
        {
            "tiny": {"max_len": 20, "pairs": {"train": 128, "validation": 16, "test": 16},
                     "dim": 16, "heads": 2, "depth": 1},
            "cpu": {"max_len": 20, "pairs": {"train": 20_000, "validation": 500, "test": 500},
                    "dim": 64, "heads": 4, "depth": 2},
            "gpu": {"max_len": 40, "pairs": {"train": 200_000, "validation": 3000, "test": 3000},
                    "dim": 256, "heads": 8, "depth": 4},
        }
    )  # fmt: skip

    def load_splits(self) -> Splits:
        s = self.size
        pairs = dict(s["pairs"])
        recipe = {"version": GENERATOR_VERSION, "pairs": pairs, "max_len": s["max_len"], "seed": self.data_seed}
        a = cached_arrays("translation", recipe, lambda: make_pairs(pairs, s["max_len"], self.data_seed))

        def part(split: str) -> Arrays:
            source, target = torch.from_numpy(a[f"source_{split}"]), torch.from_numpy(a[f"target_{split}"])
            return {
                "inputs": {"source": source, "decoder_input": target[:, :-1]},
                "targets": target[:, 1:],
                "weights": (target[:, 1:] != grammar.PAD).float(),
            }

        return Splits(part("train"), part("validation"), part("test"))

    def build_model(self) -> nn.Module:
        return Seq2Seq(self, self.size["depth"], self.size["max_len"])

    def loss_fn(
        self,
        label_batch: torch.Tensor,
        logits_batch: torch.Tensor,
        mask_batch: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
    ) -> dict[str, torch.Tensor]:
        """Summed over target tokens; ``n_valid_examples`` counts tokens, as AlgoPerf's wmt."""
        per_token = torch.nn.functional.cross_entropy(
            logits_batch.flatten(0, 1), label_batch.flatten(), reduction="none", label_smoothing=label_smoothing
        ).view(label_batch.shape)
        if mask_batch is None:
            mask_batch = (label_batch != grammar.PAD).float()
        per_token = per_token * mask_batch
        return {"summed": per_token.sum(), "n_valid_examples": mask_batch.sum(), "per_example": per_token}

    def per_example_loss(self, labels: torch.Tensor, logits: torch.Tensor, label_smoothing: float) -> torch.Tensor:
        return token_cross_entropy(labels, logits, label_smoothing, (labels != grammar.PAD).float())

    def bleu(self, model: Seq2Seq, arrays: Arrays, batch_size: int) -> float:
        import sacrebleu

        vocabulary = grammar.target_vocabulary()
        hypotheses, references = [], []
        n = arrays["targets"].shape[0]
        model.eval()
        for i in range(0, n, batch_size):
            source = arrays["inputs"]["source"][i : i + batch_size]
            hypotheses += detokenize(model.greedy(source, self.size["max_len"] + 1), vocabulary)
            references += detokenize(arrays["targets"][i : i + batch_size], vocabulary)
        return float(sacrebleu.corpus_bleu(hypotheses, [references], tokenize="none").score)

    def eval_model(
        self,
        global_batch_size: int,
        params: nn.Module,
        model_state: Any,
        rng: Any,
        data_dir: str | None,
        imagenet_v2_data_dir: str | None,
        global_step: int,
    ) -> dict[str, float]:
        """Loss on every split; BLEU of greedy decodes on validation and test only (decoding is
        the costly part, and AlgoPerf's wmt does the same)."""
        metrics: dict[str, float] = {}
        for split, prefix in self.eval_splits():
            arrays = self._split_arrays(split)
            params.eval()
            with torch.no_grad():
                logits = torch.cat([
                    params(take(arrays["inputs"], slice(i, i + global_batch_size)))
                    for i in range(0, arrays["targets"].shape[0], global_batch_size)
                ])  # fmt: skip
            metrics[f"{prefix}/loss"] = self.per_example_loss(arrays["targets"], logits, 0.0).mean().item()
            if prefix != "train":
                metrics[f"{prefix}/bleu"] = self.bleu(params, arrays, global_batch_size)
            metrics[f"{prefix}/num_examples"] = int(arrays["targets"].shape[0])
        return metrics


class TranslationPostLN(Translation):
    post_ln: ClassVar[bool] = True


class TranslationAttentionTemp(Translation):
    attention_temperature: ClassVar[float] = 1.6


class TranslationGLUTanh(Translation):
    glu: ClassVar[bool] = True
    mlp_activation: ClassVar[str] = "tanh"
