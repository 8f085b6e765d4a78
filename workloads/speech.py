"""A conformer-lite trained with CTC on synthesised speech-like features; stands in for librispeech.

Utterances are one to three words from a Zipfian lexicon of letter strings. Each letter is
rendered as two to four frames around its own 16-dimensional "spectral" template, words are
separated by silence, neighbouring frames are blurred together (coarticulation), and every
utterance has its own channel gain and noise. The model must segment and label frames
without alignments, as in speech recognition; the metric is word error rate of greedy CTC
decodes. Variants follow AlgoPerf's conformer variants (attention temperature, layer norm
instead of batch norm in the convolution module, GELU instead of swish).
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
from algobench.workloads.layers import Attention, BlockConfig, FeedForward, activation

GENERATOR_VERSION = 2
BLANK = 0
NUM_LETTERS = 10
SPACE = NUM_LETTERS + 1  # letters are 1..NUM_LETTERS
VOCAB = NUM_LETTERS + 2
FEATURES = 16
LEXICON_SIZE = 40


def make_utterances(n: int, max_frames: int, max_labels: int, seed: int) -> dict[str, np.ndarray]:
    """Features [n, max_frames, FEATURES], padding [n, max_frames] and labels [n, max_labels]."""
    rng = np.random.default_rng(seed)
    templates = rng.normal(0, 1, (VOCAB, FEATURES))  # row 0: silence
    templates[BLANK] *= 0.3
    lexicon = [rng.integers(1, NUM_LETTERS + 1, rng.integers(2, 5)) for _ in range(LEXICON_SIZE)]
    zipf = 1 / np.arange(1, LEXICON_SIZE + 1)
    features = np.zeros((n, max_frames, FEATURES), dtype=np.float32)
    padding = np.ones((n, max_frames), dtype=bool)
    labels = np.zeros((n, max_labels), dtype=np.int64)
    filled = 0
    while filled < n:
        words = rng.choice(LEXICON_SIZE, rng.integers(1, 4), p=zipf / zipf.sum())
        symbols, frames = [], [BLANK] * int(rng.integers(0, 4))
        for k, w in enumerate(words):
            if k:
                symbols.append(SPACE)
                frames += [BLANK] * int(rng.integers(1, 4))
            for letter in lexicon[w]:
                symbols.append(int(letter))
                frames += [int(letter)] * int(rng.integers(2, 5))
        frames += [BLANK] * int(rng.integers(0, 4))
        if len(frames) > max_frames or len(symbols) > max_labels:
            continue
        x = templates[frames]
        blurred = x.copy()
        blurred[1:] += 0.5 * x[:-1]
        blurred[:-1] += 0.5 * x[1:]
        gain = rng.uniform(0.7, 1.3, FEATURES)
        features[filled, : len(frames)] = blurred / 2 * gain + rng.normal(0, 0.9, blurred.shape)
        padding[filled, : len(frames)] = False
        labels[filled, : len(symbols)] = symbols
        filled += 1
    return {"features": features, "padding": padding, "labels": labels}


def greedy_decode(logits: torch.Tensor) -> list[list[int]]:
    """Best path: argmax per frame, collapse repeats, drop blanks."""
    decoded = []
    for row in logits.argmax(dim=-1).tolist():
        out, previous = [], BLANK
        for t in row:
            if t != previous and t != BLANK:
                out.append(t)
            previous = t
        decoded.append(out)
    return decoded


def edit_distance(a: list, b: list) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (x != y))
    return row[-1]


def _words(symbols: list[int]) -> list[tuple[int, ...]]:
    words, current = [], []
    for s in [*symbols, SPACE]:
        if s == SPACE:
            if current:
                words.append(tuple(current))
            current = []
        else:
            current.append(s)
    return words


def error_rates(logits: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """(word error rate, character error rate) of greedy decodes against the labels."""
    hypotheses = greedy_decode(logits)
    references = [[t for t in row if t != BLANK] for row in labels.tolist()]
    word_errors = sum(edit_distance(_words(h), _words(r)) for h, r in zip(hypotheses, references, strict=True))
    char_errors = sum(edit_distance(h, r) for h, r in zip(hypotheses, references, strict=True))
    n_words = sum(len(_words(r)) for r in references)
    n_chars = sum(len(r) for r in references)
    return word_errors / max(n_words, 1), char_errors / max(n_chars, 1)


class ConvModule(nn.Module):
    """Conformer convolution module: pointwise + GLU, depthwise conv, norm, activation, pointwise."""

    def __init__(self, dim: int, kernel: int, norm: str, act: str) -> None:
        super().__init__()
        self.pre_norm = nn.LayerNorm(dim)
        self.pointwise_in = nn.Linear(dim, 2 * dim)
        self.depthwise = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.norm = nn.BatchNorm1d(dim) if norm == "batch" else nn.GroupNorm(1, dim)
        self.act = activation(act)
        self.pointwise_out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        h = F.glu(self.pointwise_in(self.pre_norm(x)), dim=-1)
        h = h.masked_fill(padding.unsqueeze(-1), 0.0).transpose(1, 2)
        h = self.act(self.norm(self.depthwise(h))).transpose(1, 2)
        return x + self.pointwise_out(h)


class ConformerBlock(nn.Module):
    def __init__(self, config: BlockConfig, kernel: int, norm: str) -> None:
        super().__init__()
        self.ff1, self.ff2 = FeedForward(config), FeedForward(config)
        self.ff1_norm, self.ff2_norm = nn.LayerNorm(config.dim), nn.LayerNorm(config.dim)
        self.attn_norm = nn.LayerNorm(config.dim)
        self.attn = Attention(config)
        self.conv = ConvModule(config.dim, kernel, norm, config.activation)
        self.out_norm = nn.LayerNorm(config.dim)

    def forward(self, x: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        x = x + 0.5 * self.ff1(self.ff1_norm(x))
        x = x + self.attn(self.attn_norm(x), key_padding=padding)
        x = self.conv(x, padding)
        x = x + 0.5 * self.ff2(self.ff2_norm(x))
        return self.out_norm(x)


class Conformer(nn.Module):
    def __init__(self, config: BlockConfig, depth: int, kernel: int, norm: str) -> None:
        super().__init__()
        self.embed = nn.Linear(FEATURES, config.dim)
        self.blocks = nn.ModuleList(ConformerBlock(config, kernel, norm) for _ in range(depth))
        self.head = nn.Linear(config.dim, VOCAB)

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Log-probabilities [batch, frames, VOCAB]; padded frames are certain blanks, so CTC
        over the padded length equals CTC over each utterance's own length."""
        padding = inputs["padding"]
        h = self.embed(inputs["features"])
        for block in self.blocks:
            h = block(h, padding)
        log_probs = F.log_softmax(self.head(h), dim=-1)
        blank = torch.full_like(log_probs, -1e4)
        blank[..., BLANK] = 0.0
        return torch.where(padding.unsqueeze(-1), blank, log_probs)


class Speech(ArrayWorkload):
    description: ClassVar[str] = "conformer-lite (2 blocks, width 64) with CTC on synthesised feature sequences"
    loss_type: ClassVar[spec.LossType] = spec.LossType.CTC_LOSS
    default_batch_size: ClassVar[int] = 64
    step_hint: ClassVar[int] = 567  # = reference steps in the budget, AlgoPerf's definition (tests check)
    eval_period_time_sec: ClassVar[float] = 5.0
    eval_batch_size: ClassVar[int] = 512
    num_eval_train_examples_cap: ClassVar[int] = 1000
    data_seed: ClassVar[int] = 8
    sizes = MappingProxyType(
        {
            "tiny": {"max_frames": 48, "max_labels": 14, "n_train": 128, "n_validation": 32, "n_test": 32,
                     "dim": 16, "heads": 2, "depth": 1, "kernel": 3},
            "cpu": {"max_frames": 48, "max_labels": 14, "n_train": 12_000, "n_validation": 1000, "n_test": 1000,
                    "dim": 64, "heads": 4, "depth": 2, "kernel": 7},
            "gpu": {"max_frames": 96, "max_labels": 28, "n_train": 100_000, "n_validation": 4000, "n_test": 4000,
                    "dim": 256, "heads": 8, "depth": 6, "kernel": 15},
        }
    )  # fmt: skip
    attention_temperature: ClassVar[float] = 1.0
    conv_norm: ClassVar[str] = "batch"
    activation: ClassVar[str] = "silu"

    def load_splits(self) -> Splits:
        s = self.size
        total = s["n_train"] + s["n_validation"] + s["n_test"]
        recipe = {"version": GENERATOR_VERSION, "n": total, "max_frames": s["max_frames"],
                  "max_labels": s["max_labels"], "seed": self.data_seed}  # fmt: skip
        a = cached_arrays(
            "speech", recipe, lambda: make_utterances(total, s["max_frames"], s["max_labels"], self.data_seed)
        )
        cuts = (s["n_train"], s["n_train"] + s["n_validation"])

        def part(lo: int, hi: int | None) -> Arrays:
            return {
                "inputs": {"features": torch.from_numpy(a["features"][lo:hi]),
                           "padding": torch.from_numpy(a["padding"][lo:hi])},
                "targets": torch.from_numpy(a["labels"][lo:hi]),
            }  # fmt: skip

        return Splits(part(0, cuts[0]), part(cuts[0], cuts[1]), part(cuts[1], None))

    def build_model(self) -> nn.Module:
        s = self.size
        config = BlockConfig(dim=s["dim"], heads=s["heads"], mlp_ratio=2,
                             attention_temperature=self.attention_temperature, activation=self.activation)  # fmt: skip
        return Conformer(config, s["depth"], s["kernel"], self.conv_norm)

    def per_example_loss(self, labels: torch.Tensor, logits: torch.Tensor, label_smoothing: float) -> torch.Tensor:
        """CTC per utterance, divided by its number of labels (label smoothing does not apply)."""
        lengths = (labels != BLANK).sum(dim=1)
        input_lengths = torch.full((logits.shape[0],), logits.shape[1], dtype=torch.long, device=logits.device)
        loss = F.ctc_loss(logits.transpose(0, 1), labels, input_lengths, lengths, blank=BLANK,
                          reduction="none", zero_infinity=True)  # fmt: skip
        return loss / lengths.clamp(min=1)

    def compute_metrics(self, logits: torch.Tensor, targets: torch.Tensor, arrays: Arrays) -> dict[str, float]:
        wer, cer = error_rates(logits, targets)
        return {"loss": self.per_example_loss(targets, logits, 0.0).mean().item(), "wer": wer, "cer": cer}


class SpeechAttentionTemp(Speech):
    attention_temperature: ClassVar[float] = 1.6


class SpeechLayerNorm(Speech):
    conv_norm: ClassVar[str] = "layer"


class SpeechGELU(Speech):
    activation: ClassVar[str] = "gelu"
