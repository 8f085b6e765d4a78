"""Inputs the learned rules read, bounded so that a huge gradient or a long run cannot push them
out of the range the rules were meta-trained on."""

from __future__ import annotations

import math

import torch

FEATURE_CLIP = 5.0
NUM_TIME_FEATURES = 4


def time_features(step: int, step_hint: int) -> torch.Tensor:
    """Fixed functions of training progress (step / step_hint, clipped to [0, 1.5]), from which a
    rule can build its own schedule: linear, cosine, a fast early rise and a late switch."""
    progress = min(max(step / max(step_hint, 1), 0.0), 1.5)
    return torch.tensor(
        [
            progress,
            math.cos(math.pi * min(progress, 1.0)),
            math.tanh(20.0 * progress),
            math.tanh(10.0 * (progress - 0.75)),
        ]
    )


def rms_normalise(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """``x`` divided by its root mean square over the tensor (scale-free), then clipped."""
    scale = torch.rsqrt(x.square().mean() + eps)
    return (x * scale).clamp(-FEATURE_CLIP, FEATURE_CLIP)


def clip(x: torch.Tensor) -> torch.Tensor:
    return x.clamp(-FEATURE_CLIP, FEATURE_CLIP)
