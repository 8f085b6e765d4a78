"""A 1-D CNN with batch norm on MNIST-1D, generated locally with the ``mnist1d`` package.

MNIST-1D (Greydanus, 2020) is small enough for a CPU yet separates architectures and
optimizers the way MNIST no longer does. The data comes from the package's own generator
(``make_dataset``), never its download path, and is cached on disk.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from torch import nn

from algobench.workloads.base import ArrayWorkload, Splits
from algobench.workloads.data_cache import cached_arrays

NUM_SAMPLES = 10_000  # 8,000 train+validation, 2,000 test (mnist1d's 0.8 split)
NUM_VALIDATION = 1_000
DATA_SEED = 42


def _generate_mnist1d() -> dict[str, np.ndarray]:
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = NUM_SAMPLES
    args.seed = DATA_SEED
    saved = np.random.get_state()  # make_dataset seeds numpy's global RNG: leave it as it was
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(saved)
    return {
        "x": data["x"].astype(np.float32),
        "y": data["y"].astype(np.int64),
        "x_test": data["x_test"].astype(np.float32),
        "y_test": data["y_test"].astype(np.int64),
    }


def mnist1d_splits() -> Splits:
    recipe = {"num_samples": NUM_SAMPLES, "seed": DATA_SEED, "generator": "mnist1d.make_dataset"}
    arrays = cached_arrays("mnist1d", recipe, _generate_mnist1d)
    x, y = torch.from_numpy(arrays["x"]).unsqueeze(1), torch.from_numpy(arrays["y"])
    x_test, y_test = torch.from_numpy(arrays["x_test"]).unsqueeze(1), torch.from_numpy(arrays["y_test"])
    n_train = len(y) - NUM_VALIDATION
    return Splits(
        train={"inputs": x[:n_train], "targets": y[:n_train]},
        validation={"inputs": x[n_train:], "targets": y[n_train:]},
        test={"inputs": x_test, "targets": y_test},
    )


class ConvBlock(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, activation: type[nn.Module]) -> None:
        super().__init__(
            nn.Conv1d(c_in, c_out, kernel_size=5, padding=2, bias=False),
            nn.BatchNorm1d(c_out),
            activation(),
        )


class Mnist1DCNN(ArrayWorkload):
    description: ClassVar[str] = "1-D CNN (3 conv+BN blocks, 32 channels) on MNIST-1D"
    default_batch_size: ClassVar[int] = 128
    step_hint: ClassVar[int] = 3000
    eval_period_time_sec: ClassVar[float] = 3.0
    channels: ClassVar[int] = 32
    activation: ClassVar[type[nn.Module]] = nn.ReLU

    def load_splits(self) -> Splits:
        return mnist1d_splits()

    def build_model(self) -> nn.Module:
        c = self.channels
        return nn.Sequential(
            ConvBlock(1, c, self.activation),
            ConvBlock(c, c, self.activation),
            nn.MaxPool1d(2),
            ConvBlock(c, c, self.activation),
            nn.MaxPool1d(2),
            nn.Flatten(),
            nn.Linear(c * 10, 10),
        )

    output_layer_prefix: ClassVar[str] = "6."
