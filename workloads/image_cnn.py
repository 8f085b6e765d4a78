"""A small ResNet with batch norm on procedurally drawn shapes; stands in for imagenet_resnet.

Each image is one of ten shapes (disk, ring, square, frame, triangle, plus, bars, ellipse, L, T)
at a random place, size, rotation and colour, on a coloured gradient with noise and a
distractor blob: translation- and rotation-invariant recognition that a ResNet learns in
a minute but that still separates optimizers. Variants follow AlgoPerf's ResNet variants
(SiLU, GELU, a large batch-norm scale at init).
"""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from algobench.workloads.base import ArrayWorkload, Splits
from algobench.workloads.data_cache import cached_arrays
from algobench.workloads.layers import activation

GENERATOR_VERSION = 3
NUM_CLASSES = 10


def _shape_masks(u: np.ndarray, v: np.ndarray) -> list[np.ndarray]:
    """Signed "inside" scores per class on local coordinates (positive inside)."""
    r = np.sqrt(u**2 + v**2)
    box = np.maximum(np.abs(u), np.abs(v))
    return [
        1.0 - r,  # disk
        np.minimum(r - 0.55, 1.0 - r),  # ring
        0.8 - box,  # square
        np.minimum(box - 0.5, 0.85 - box),  # frame
        np.minimum(v + 0.6, 0.8 - 1.6 * np.abs(u) - v),  # triangle
        np.maximum(np.minimum(0.28 - np.abs(u), 1 - np.abs(v)), np.minimum(0.28 - np.abs(v), 1 - np.abs(u))),  # plus
        np.minimum(0.2 - np.minimum(np.abs(v - 0.5), np.abs(v + 0.5)), 1 - np.abs(u)),  # two bars
        1.0 - np.sqrt(u**2 + (v / 0.45) ** 2),  # ellipse
        np.maximum(
            np.minimum(0.28 - np.abs(u + 0.6), 1 - np.abs(v)), np.minimum(0.28 - np.abs(v + 0.7), 1 - np.abs(u))
        ),  # L
        np.maximum(
            np.minimum(0.28 - np.abs(u), 1 - np.abs(v)), np.minimum(0.28 - np.abs(v - 0.75), 1 - np.abs(u))
        ),  # T
    ]


def draw_shapes(n: int, image_size: int, seed: int, chunk: int = 2000) -> dict[str, np.ndarray]:
    """``n`` RGB images [n, 3, size, size] and their shape labels, from ``seed`` alone.

    Drawn in chunks (each from its own child seed) to bound the memory of the [n, classes,
    h, w] score array.
    """
    parts = [
        _draw_chunk(min(chunk, n - start), image_size, np.random.default_rng([seed, start]))
        for start in range(0, n, chunk)
    ]
    return {k: np.concatenate([p[k] for p in parts]) for k in ("x", "y")}


def _draw_chunk(n: int, image_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    labels = rng.integers(0, NUM_CLASSES, n)
    coords = (np.arange(image_size) + 0.5) / image_size * 2 - 1  # [-1, 1]
    ys, xs = np.meshgrid(coords, coords, indexing="ij")
    cx, cy = rng.uniform(-0.45, 0.45, (2, n, 1, 1))
    radius = rng.uniform(0.4, 0.7, (n, 1, 1))
    theta = rng.uniform(0, 2 * np.pi, (n, 1, 1))
    dx, dy = xs - cx, ys - cy
    u = (dx * np.cos(theta) + dy * np.sin(theta)) / radius
    v = (-dx * np.sin(theta) + dy * np.cos(theta)) / radius
    scores = np.stack(_shape_masks(u, v), axis=1)  # [n, classes, h, w]
    inside = scores[np.arange(n), labels]
    alpha = 1 / (1 + np.exp(-inside * radius * image_size * 1.5))  # anti-aliased edge
    # Distractor blob, background gradient, colours and noise.
    bx, by = rng.uniform(-1, 1, (2, n, 1, 1))
    blob = np.exp(-((xs - bx) ** 2 + (ys - by) ** 2) / (2 * rng.uniform(0.05, 0.15, (n, 1, 1)) ** 2))
    gx, gy = rng.normal(0, 0.3, (2, n, 1, 1))
    bg = rng.uniform(-0.6, 0.6, (n, 3, 1, 1))
    fg = bg + rng.choice([-1.0, 1.0], (n, 1, 1, 1)) * rng.uniform(0.6, 1.2, (n, 3, 1, 1))
    blob_colour = rng.uniform(-1, 1, (n, 3, 1, 1))
    background = bg + (gx * xs + gy * ys)[:, None]
    image = background * (1 - alpha[:, None]) + fg * alpha[:, None] + blob_colour * blob[:, None] * 0.8
    image += rng.normal(0, 0.25, image.shape)
    return {"x": image.astype(np.float32), "y": labels.astype(np.int64)}


def split_arrays(arrays: dict[str, np.ndarray], n_train: int, n_validation: int) -> Splits:
    """Cut generated ``x``/``y`` arrays into train, validation and test in that order."""
    x, y = torch.from_numpy(arrays["x"]), torch.from_numpy(arrays["y"])
    cuts = (n_train, n_train + n_validation)
    return Splits(
        train={"inputs": x[: cuts[0]], "targets": y[: cuts[0]]},
        validation={"inputs": x[cuts[0] : cuts[1]], "targets": y[cuts[0] : cuts[1]]},
        test={"inputs": x[cuts[1] :], "targets": y[cuts[1] :]},
    )


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, act: Callable[[], nn.Module]) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.act1, self.act2 = act(), act()
        self.shortcut = (
            nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
            if stride != 1 or c_in != c_out
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act1(self.bn1(self.conv1(x)))
        return self.act2(self.bn2(self.conv2(y)) + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, widths: tuple[int, ...], act: Callable[[], nn.Module], bn_scale: float) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, 2, 1, bias=False), nn.BatchNorm2d(widths[0]), act())
        stages, c_in = [], widths[0]
        for i, width in enumerate(widths):
            stages.append(BasicBlock(c_in, width, 1 if i == 0 else 2, act))
            c_in = width
        self.stages = nn.Sequential(*stages)
        self.head = nn.Linear(c_in, NUM_CLASSES)
        for module in self.modules():
            if isinstance(module, nn.BatchNorm2d):
                nn.init.constant_(module.weight, bn_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)).mean(dim=(2, 3)))


class ImageCNN(ArrayWorkload):
    description: ClassVar[str] = "ResNet (3 stages, batch norm) on 16x16 drawn shapes, 10 classes"
    default_batch_size: ClassVar[int] = 128
    step_hint: ClassVar[int] = 1506  # = reference steps in the budget, AlgoPerf's definition (tests check)
    eval_period_time_sec: ClassVar[float] = 5.0
    data_seed: ClassVar[int] = 1
    sizes = MappingProxyType(
        {
            "tiny": {"image_size": 16, "n_train": 256, "n_validation": 64, "n_test": 64, "widths": (8, 8, 8)},
            "cpu": {"image_size": 16, "n_train": 24_000, "n_validation": 1000, "n_test": 1000, "widths": (16, 32, 48)},
            "gpu": {"image_size": 32, "n_train": 50_000, "n_validation": 5000, "n_test": 5000,
                    "widths": (64, 128, 256)},
        }
    )  # fmt: skip
    activation: ClassVar[str] = "relu"
    bn_init_scale: ClassVar[float] = 1.0

    def load_splits(self) -> Splits:
        s = self.size
        total = s["n_train"] + s["n_validation"] + s["n_test"]
        recipe = {"version": GENERATOR_VERSION, "n": total, "image_size": s["image_size"], "seed": self.data_seed}
        arrays = cached_arrays("image_cnn", recipe, lambda: draw_shapes(total, s["image_size"], self.data_seed))
        return split_arrays(arrays, s["n_train"], s["n_validation"])

    def build_model(self) -> nn.Module:
        return ResNet(tuple(self.size["widths"]), lambda: activation(self.activation), self.bn_init_scale)


class ImageCNNSiLU(ImageCNN):
    activation: ClassVar[str] = "silu"


class ImageCNNGELU(ImageCNN):
    activation: ClassVar[str] = "gelu"


class ImageCNNBNScale(ImageCNN):
    """AlgoPerf's ``resnet_bn_init_scale``-style variant: batch-norm scales start at 8."""

    bn_init_scale: ClassVar[float] = 8.0
