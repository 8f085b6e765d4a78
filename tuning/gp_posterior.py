"""The exact Gaussian-process posterior of a history with repeats, computed on its unique points.

T evaluations of a function at q unique points x̃_j, n_j of them at x̃_j with i.i.d. noise of
variance λ, carry the same information about the function as the q means ȳ_j observed with noise
λ / n_j: the means are sufficient statistics (the residuals around them do not depend on the
function). So the posterior is

    mean(x) = k(x, X̃) (K̃ + λ N⁻¹)⁻¹ (ȳ - c) + c,    var(x) = k(x, x) - k(x, X̃) (K̃ + λ N⁻¹)⁻¹ k(X̃, x),

exactly the posterior on all T evaluations, at O(q³) instead of O(T³) (Calandriello et al., ICML
2022). scikit-learn's ``GaussianProcessRegressor`` takes a per-point noise (``alpha``), which is
λ / n_j here, and does the kernel algebra and the kernel's fitting. The log marginal likelihood of
the means differs from that of all T evaluations by a term that depends on λ only, so fitting the
kernel's hyperparameters on the means finds the same kernel as fitting on everything.

λ itself comes from the repeats: the pooled within-candidate variance
Σ_j Σ_i (y_ji - ȳ_j)² / Σ_j (n_j - 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

LENGTH_SCALE_BOUNDS = (1e-2, 1e1)  # in the unit cube of the search space
AMPLITUDE_BOUNDS = (1e-4, 1e4)


def make_kernel(dimensions: int, amplitude: float = 1.0, length_scale: float = 0.3, fixed: bool = False) -> Any:
    """Matérn-5/2 with one length scale per dimension, times an amplitude."""
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern

    bounds = "fixed" if fixed else AMPLITUDE_BOUNDS
    scale_bounds = "fixed" if fixed else LENGTH_SCALE_BOUNDS
    return ConstantKernel(amplitude, bounds) * Matern(
        length_scale=np.full(dimensions, length_scale), length_scale_bounds=scale_bounds, nu=2.5
    )


@dataclass
class UniquePoints:
    """Sufficient statistics of a history with repeats: per unique point its count, sum and sum of squares."""

    points: np.ndarray  # (q, d)
    counts: np.ndarray  # (q,)
    sums: np.ndarray  # (q,)
    squares: np.ndarray  # (q,)

    @classmethod
    def from_history(cls, points: np.ndarray, values: np.ndarray) -> UniquePoints:
        unique, inverse = np.unique(np.asarray(points, dtype=float), axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        values = np.asarray(values, dtype=float)
        counts = np.bincount(inverse, minlength=len(unique)).astype(float)
        sums = np.bincount(inverse, weights=values, minlength=len(unique))
        squares = np.bincount(inverse, weights=values**2, minlength=len(unique))
        return cls(unique, counts, sums, squares)

    @property
    def means(self) -> np.ndarray:
        return self.sums / self.counts

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def pooled_noise(self) -> float | None:
        """The pooled within-point variance, or None when no point was evaluated twice."""
        dof = float(np.sum(self.counts - 1))
        if dof < 1:
            return None
        within = np.sum(self.squares - self.sums**2 / self.counts)
        return max(float(within) / dof, 0.0)


def fit_posterior(
    data: UniquePoints, noise: float, kernel: Any, offset: float = 0.0, fit_kernel: bool = False, seed: int = 0
) -> Any:
    """A fitted ``GaussianProcessRegressor`` on the unique points, noise λ / n_j at point j;
    ``predict(x, return_std=True)`` is the exact posterior (plus ``offset``, the prior mean)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.gaussian_process import GaussianProcessRegressor

    regressor = GaussianProcessRegressor(
        kernel=kernel, alpha=noise / data.counts, optimizer="fmin_l_bfgs_b" if fit_kernel else None,
        normalize_y=False, random_state=seed, copy_X_train=False,
    )  # fmt: skip
    with warnings.catch_warnings():  # a length scale at its bound means "flat in that direction": expected
        warnings.simplefilter("ignore", ConvergenceWarning)
        regressor.fit(data.points, data.means - offset)
    return regressor


def posterior(regressor: Any, x: np.ndarray, offset: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and variance at the rows of ``x``."""
    mean, std = regressor.predict(np.asarray(x, dtype=float), return_std=True)
    return mean + offset, np.square(std)
