"""A U-Net reconstructing random-ellipse phantoms from undersampled k-space; stands in for fastmri.

Each phantom is a sum of rotated ellipses of random intensity (a Shepp-Logan-like head with
random inner structure). Its 2-D FFT is subsampled the way fastMRI's knee data is: the central
columns always, then random other columns up to 4x acceleration, plus a little noise. The
network maps the zero-filled inverse FFT (aliased, blurred) to the phantom; the loss is L1 and
the metric SSIM (fastMRI's 7x7 window and constants). Variants follow AlgoPerf's fastmri
variants (more channels, tanh activations, layer norm instead of instance norm).
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
from algobench.workloads.layers import activation

GENERATOR_VERSION = 1
NUM_ELLIPSES = 8
ACCELERATION = 4
CENTER_FRACTION = 0.125


def make_phantoms(n: int, image_size: int, seed: int, chunk: int = 2000) -> dict[str, np.ndarray]:
    """Phantoms [n, 1, s, s] in [0, 1] and their zero-filled undersampled reconstructions."""
    parts = [
        _phantom_chunk(min(chunk, n - start), image_size, np.random.default_rng([seed, start]))
        for start in range(0, n, chunk)
    ]
    return {k: np.concatenate([p[k] for p in parts]) for k in ("x", "y")}


def _phantom_chunk(n: int, s: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    coords = (np.arange(s) + 0.5) / s * 2 - 1
    ys, xs = np.meshgrid(coords, coords, indexing="ij")
    # An outer "skull" ellipse, then inner ellipses of random sign.
    image = np.zeros((n, s, s))
    params = [(rng.uniform(-0.05, 0.05, n), rng.uniform(-0.05, 0.05, n), rng.uniform(0.7, 0.9, n),
               rng.uniform(0.8, 0.95, n), rng.uniform(0, np.pi, n), np.full(n, 0.8))]  # fmt: skip
    for _ in range(NUM_ELLIPSES):
        params.append((rng.uniform(-0.5, 0.5, n), rng.uniform(-0.5, 0.5, n), rng.uniform(0.05, 0.35, n),
                       rng.uniform(0.05, 0.35, n), rng.uniform(0, np.pi, n), rng.uniform(-0.3, 0.4, n)))  # fmt: skip
    for cx, cy, a, b, theta, value in params:
        dx, dy = xs - cx[:, None, None], ys - cy[:, None, None]
        c, si = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
        inside = ((dx * c + dy * si) / a[:, None, None]) ** 2 + ((-dx * si + dy * c) / b[:, None, None]) ** 2 <= 1
        image += inside * value[:, None, None]
    image = np.clip(image, 0, None)
    image /= image.max(axis=(1, 2), keepdims=True)
    kspace = np.fft.fft2(image, norm="ortho")
    mask = _column_masks(n, s, rng)
    noisy = (kspace + (rng.normal(0, 0.01, kspace.shape) + 1j * rng.normal(0, 0.01, kspace.shape))) * mask
    zero_filled = np.abs(np.fft.ifft2(noisy, norm="ortho"))
    return {"x": zero_filled[:, None].astype(np.float32), "y": image[:, None].astype(np.float32)}


def _column_masks(n: int, s: int, rng: np.random.Generator) -> np.ndarray:
    """fastMRI's random mask: the centre ``CENTER_FRACTION`` of columns plus random others."""
    n_center = int(round(s * CENTER_FRACTION))
    freqs = np.fft.fftfreq(s) * s  # column index -> signed frequency
    center = np.abs(freqs) < n_center / 2
    p_other = (s / ACCELERATION - center.sum()) / (s - center.sum())
    columns = center[None, :] | (rng.random((n, s)) < p_other)
    return columns[:, None, :]


def ssim(x: torch.Tensor, y: torch.Tensor, window: int = 7) -> torch.Tensor:
    """Per-image SSIM of [n, 1, h, w] batches, fastMRI's way: uniform 7x7 window, K1=0.01,
    K2=0.03, the data range being each target image's maximum."""
    data_range = y.amax(dim=(1, 2, 3), keepdim=True)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    kernel = torch.ones(1, 1, window, window, device=x.device) / window**2
    mu_x, mu_y = F.conv2d(x, kernel), F.conv2d(y, kernel)
    n_px = window**2
    cov = n_px / (n_px - 1)  # unbiased, as fastMRI's skimage call
    var_x = cov * (F.conv2d(x * x, kernel) - mu_x**2)
    var_y = cov * (F.conv2d(y * y, kernel) - mu_y**2)
    cov_xy = cov * (F.conv2d(x * y, kernel) - mu_x * mu_y)
    s = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return s.mean(dim=(1, 2, 3))


class ConvBlock(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, norm: str, act: str) -> None:
        def normalisation() -> nn.Module:
            # fastMRI's U-Net uses instance norm; a GroupNorm with one group is a layer norm.
            return nn.InstanceNorm2d(c_out) if norm == "instance" else nn.GroupNorm(1, c_out)

        super().__init__(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), normalisation(), activation(act),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), normalisation(), activation(act),
        )  # fmt: skip


class UNet(nn.Module):
    def __init__(self, channels: int, depth: int, norm: str, act: str) -> None:
        super().__init__()
        widths = [channels * 2**i for i in range(depth + 1)]
        pairs = zip([1, *widths[:-2]], widths[:-1], strict=True)
        self.down = nn.ModuleList(ConvBlock(a, b, norm, act) for a, b in pairs)
        self.bottom = ConvBlock(widths[-2], widths[-1], norm, act)
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(b, a, 2, stride=2) for a, b in zip(widths[:-1], widths[1:], strict=True)
        )
        self.merge = nn.ModuleList(ConvBlock(2 * a, a, norm, act) for a in widths[:-1])
        self.head = nn.Conv2d(widths[0], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        h = x
        for block in self.down:
            h = block(h)
            skips.append(h)
            h = F.avg_pool2d(h, 2)
        h = self.bottom(h)
        for up, merge, skip in zip(reversed(self.up), reversed(self.merge), reversed(skips), strict=True):
            h = merge(torch.cat([up(h), skip], dim=1))
        return x + self.head(h)  # predict the correction to the zero-filled image


class MRI(ArrayWorkload):
    description: ClassVar[str] = "U-Net (2 levels, 8 channels): 32x32 phantoms from 4x undersampled k-space"
    loss_type: ClassVar[spec.LossType] = spec.LossType.MEAN_ABSOLUTE_ERROR
    default_batch_size: ClassVar[int] = 32
    step_hint: ClassVar[int] = 969  # = reference steps in the budget, AlgoPerf's definition (tests check)
    eval_period_time_sec: ClassVar[float] = 5.0
    eval_batch_size: ClassVar[int] = 256
    num_eval_train_examples_cap: ClassVar[int] = 500
    data_seed: ClassVar[int] = 6
    sizes = MappingProxyType(
        {
            "tiny": {"image_size": 16, "n_train": 64, "n_validation": 16, "n_test": 16, "channels": 4, "depth": 1},
            "cpu": {"image_size": 32, "n_train": 6000, "n_validation": 500, "n_test": 500, "channels": 8, "depth": 2},
            "gpu": {"image_size": 128, "n_train": 20_000, "n_validation": 1000, "n_test": 1000, "channels": 32,
                    "depth": 4},
        }
    )  # fmt: skip
    norm: ClassVar[str] = "instance"
    activation: ClassVar[str] = "leaky_relu"
    channel_multiplier: ClassVar[int] = 1

    def load_splits(self) -> Splits:
        s = self.size
        total = s["n_train"] + s["n_validation"] + s["n_test"]
        recipe = {"version": GENERATOR_VERSION, "n": total, "image_size": s["image_size"], "seed": self.data_seed}
        a = cached_arrays("mri", recipe, lambda: make_phantoms(total, s["image_size"], self.data_seed))
        x, y = torch.from_numpy(a["x"]), torch.from_numpy(a["y"])
        cuts = (s["n_train"], s["n_train"] + s["n_validation"])
        part = lambda lo, hi: {"inputs": x[lo:hi], "targets": y[lo:hi]}  # noqa: E731
        return Splits(part(0, cuts[0]), part(cuts[0], cuts[1]), part(cuts[1], None))

    def build_model(self) -> nn.Module:
        return UNet(self.size["channels"] * self.channel_multiplier, self.size["depth"], self.norm, self.activation)

    def per_example_loss(self, labels: torch.Tensor, logits: torch.Tensor, label_smoothing: float) -> torch.Tensor:
        return (logits - labels).abs().mean(dim=(1, 2, 3))

    def compute_metrics(self, logits: torch.Tensor, targets: torch.Tensor, arrays: Arrays) -> dict[str, float]:
        return {
            "loss": self.per_example_loss(targets, logits, 0.0).mean().item(),
            "ssim": ssim(logits, targets).mean().item(),
        }


class MRIChannels(MRI):
    channel_multiplier: ClassVar[int] = 2


class MRITanh(MRI):
    activation: ClassVar[str] = "tanh"


class MRILayerNorm(MRI):
    norm: ClassVar[str] = "layer"
