"""Persistent evolution strategies (Vicol, Metz & Sohl-Dickstein, ICML 2021), antithetic.

Each particle pair shares one task and one perturbation ``eps`` per truncated unroll, run with
theta + eps and theta - eps, and keeps ``xi``, the sum of the perturbations since its episode
began. The estimate ``mean_i (L+_i - L-_i) xi_i / (2 sigma^2)`` is unbiased for the gradient of
the whole episode's loss even though each unroll sees only a truncation, which plain truncated
ES is not. The caller owns the particles; these two functions are the estimator.
"""

from __future__ import annotations

import torch


def draw_perturbations(num_pairs: int, dim: int, sigma: float, generator: torch.Generator) -> torch.Tensor:
    """One Gaussian perturbation per pair (the pair's two members use +eps and -eps)."""
    return torch.randn(num_pairs, dim, generator=generator, dtype=torch.float64).to(torch.float32) * sigma


def pes_gradient(
    loss_pos: torch.Tensor, loss_neg: torch.Tensor, accumulated: torch.Tensor, sigma: float
) -> torch.Tensor:
    """The antithetic PES estimate from each pair's unroll losses and accumulated perturbations
    (``accumulated`` already includes this unroll's ``eps``)."""
    diff = torch.nan_to_num(loss_pos - loss_neg, nan=0.0, posinf=0.0, neginf=0.0)
    return (diff[:, None] * accumulated).mean(dim=0) / (2.0 * sigma**2)
