"""A tiny Vision Transformer on scikit-learn's handwritten digits; stands in for imagenet_vit.

The 1,797 real 8x8 digits ship with scikit-learn. They are split by original image first,
then each split is enlarged with random one-pixel shifts, intensity jitter and noise, so no
digit is seen in two splits and the ViT has enough examples not to just memorise. Variants
follow AlgoPerf's ViT variants (post-layer-norm, attention pooling instead of the mean, GLU).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from algobench.workloads.base import ArrayWorkload, Splits
from algobench.workloads.data_cache import cached_arrays
from algobench.workloads.layers import Attention, BlockConfig, Encoder

GENERATOR_VERSION = 1
NUM_CLASSES = 10
IMAGE_SIZE = 8


def _augment(x: np.ndarray, y: np.ndarray, copies: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``copies`` jittered versions of each 8x8 image: shift by up to one pixel, scale, noise."""
    images = np.repeat(x.reshape(-1, IMAGE_SIZE, IMAGE_SIZE), copies, axis=0)
    labels = np.repeat(y, copies)
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1)))
    dy, dx = rng.integers(0, 3, (2, len(images)))
    rows = dy[:, None] + np.arange(IMAGE_SIZE)
    cols = dx[:, None] + np.arange(IMAGE_SIZE)
    shifted = padded[np.arange(len(images))[:, None, None], rows[:, :, None], cols[:, None, :]]
    shifted = shifted * rng.uniform(0.7, 1.3, (len(images), 1, 1)) + rng.normal(0, 0.15, shifted.shape)
    return shifted[:, None].astype(np.float32), labels.astype(np.int64)


def make_digits(copies: dict[str, int], seed: int) -> dict[str, np.ndarray]:
    """Train/validation/test arrays from disjoint original digits (1300/250/247), augmented."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(digits.target))
    x, y = digits.data[order] / 16.0, digits.target[order]
    parts = {"train": slice(0, 1300), "validation": slice(1300, 1550), "test": slice(1550, None)}
    arrays = {}
    for split, part in parts.items():
        arrays[f"x_{split}"], arrays[f"y_{split}"] = _augment(x[part], y[part], copies[split], rng)
    return arrays


class ViT(nn.Module):
    def __init__(self, config: BlockConfig, depth: int, patch: int, pooling: str) -> None:
        super().__init__()
        tokens = (IMAGE_SIZE // patch) ** 2
        self.patch = patch
        self.embed = nn.Linear(patch * patch, config.dim)
        self.position = nn.Parameter(torch.randn(1, tokens, config.dim) * 0.02)
        self.encoder = Encoder(config, depth)
        self.pooling = pooling
        if pooling == "map":  # multihead attention pooling with a learned probe (AlgoPerf's "map")
            self.probe = nn.Parameter(torch.randn(1, 1, config.dim) * 0.02)
            self.pool = Attention(config)
        self.head = nn.Linear(config.dim, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, p = x.shape[0], self.patch
        patches = x.unfold(2, p, p).unfold(3, p, p).reshape(b, -1, p * p)
        h = self.encoder(self.embed(patches) + self.position)
        if self.pooling == "map":
            return self.head(self.pool(self.probe.expand(b, -1, -1), context=h)[:, 0])
        return self.head(h.mean(dim=1))


class ImageViT(ArrayWorkload):
    description: ClassVar[str] = "ViT (2x2 patches, 2 blocks, width 64) on jittered 8x8 scikit-learn digits"
    default_batch_size: ClassVar[int] = 128
    step_hint: ClassVar[int] = 1849  # = reference steps in the budget, AlgoPerf's definition (tests check)
    eval_period_time_sec: ClassVar[float] = 5.0
    data_seed: ClassVar[int] = 2
    sizes = MappingProxyType(
        {
            "tiny": {"copies": {"train": 1, "validation": 1, "test": 1}, "dim": 16, "heads": 2, "depth": 1},
            "cpu": {"copies": {"train": 8, "validation": 4, "test": 4}, "dim": 64, "heads": 4, "depth": 2},
            "gpu": {"copies": {"train": 40, "validation": 8, "test": 8}, "dim": 256, "heads": 8, "depth": 6},
        }
    )
    patch: ClassVar[int] = 2
    post_ln: ClassVar[bool] = False
    pooling: ClassVar[str] = "mean"
    glu: ClassVar[bool] = False

    def load_splits(self) -> Splits:
        copies = dict(self.size["copies"])
        recipe = {"version": GENERATOR_VERSION, "copies": copies, "seed": self.data_seed}
        a = cached_arrays("image_vit", recipe, lambda: make_digits(copies, self.data_seed))
        part = lambda s: {"inputs": torch.from_numpy(a[f"x_{s}"]), "targets": torch.from_numpy(a[f"y_{s}"])}  # noqa: E731
        return Splits(part("train"), part("validation"), part("test"))

    def block_config(self) -> BlockConfig:
        s = self.size
        return BlockConfig(dim=s["dim"], heads=s["heads"], post_ln=self.post_ln, glu=self.glu)

    def build_model(self) -> nn.Module:
        return ViT(self.block_config(), self.size["depth"], self.patch, self.pooling)


class ImageViTPostLN(ImageViT):
    post_ln: ClassVar[bool] = True


class ImageViTMAP(ImageViT):
    pooling: ClassVar[str] = "map"


class ImageViTGLU(ImageViT):
    glu: ClassVar[bool] = True
