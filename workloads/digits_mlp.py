"""An MLP on scikit-learn's handwritten digits: real data shipped with a package, trains in seconds.

It is the suite's smoke-test workload: most tests run on it.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from torch import nn

from algobench.workloads.base import ArrayWorkload, Splits

DATA_SPLIT_SEED = 0


def _digits_splits() -> Splits:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(DATA_SPLIT_SEED).permutation(len(y))
    x, y = x[order], y[order]
    cuts = (1200, 1500)

    def part(lo: int, hi: int | None) -> dict[str, torch.Tensor]:
        return {"inputs": torch.from_numpy(x[lo:hi]), "targets": torch.from_numpy(y[lo:hi])}

    return Splits(part(0, cuts[0]), part(cuts[0], cuts[1]), part(cuts[1], None))


class DigitsMLP(ArrayWorkload):
    description: ClassVar[str] = "MLP 64-128-128-10 on scikit-learn's 8x8 handwritten digits"
    default_batch_size: ClassVar[int] = 64
    step_hint: ClassVar[int] = 5000
    eval_period_time_sec: ClassVar[float] = 0.5
    hidden: ClassVar[int] = 128

    def load_splits(self) -> Splits:
        return _digits_splits()

    def build_model(self) -> nn.Module:
        return nn.Sequential(
            nn.Linear(64, self.hidden),
            nn.ReLU(),
            nn.Linear(self.hidden, self.hidden),
            nn.ReLU(),
            nn.Linear(self.hidden, 10),
        )

    output_layer_prefix: ClassVar[str] = "4."
