"""The image_cnn ResNet on CIFAR-10 read from its python pickle batches in ``--data-dir``
(an extra, real-data workload).

Reads ``cifar-10-batches-py/data_batch_1`` … ``data_batch_5`` and ``test_batch`` as the
dataset ships them; the last tenth of the training batches is the validation split.
"""

from __future__ import annotations

import pickle
from types import MappingProxyType
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from algobench.workloads.base import ArrayWorkload, Splits
from algobench.workloads.image_cnn import ResNet
from algobench.workloads.layers import activation
from algobench.workloads.local_files import find_file

SUBDIRS = ("cifar-10-batches-py", "cifar10/cifar-10-batches-py")
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
VALIDATION_FRACTION = 0.1
MEAN = np.array([0.4914, 0.4822, 0.4465], dtype=np.float32).reshape(1, 3, 1, 1)
STD = np.array([0.2470, 0.2435, 0.2616], dtype=np.float32).reshape(1, 3, 1, 1)


def read_batch(path) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001 - a path
    """One pickled batch: images [n, 3, 32, 32] uint8 and labels [n]."""
    with open(path, "rb") as handle:
        batch = pickle.load(handle, encoding="bytes")
    data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    return data, np.asarray(batch[b"labels"], dtype=np.int64)


class CIFAR10(ArrayWorkload):
    description: ClassVar[str] = "image_cnn's ResNet on CIFAR-10 from its python batches in --data-dir"
    needs_data_dir: ClassVar[bool] = True
    default_batch_size: ClassVar[int] = 128
    step_hint: ClassVar[int] = 5000
    eval_period_time_sec: ClassVar[float] = 20.0
    sizes = MappingProxyType({"cpu": {"widths": (16, 32, 64)}, "gpu": {"widths": (64, 128, 256)},
                              "tiny": {"widths": (4, 4, 4)}})  # fmt: skip

    def load_splits(self) -> Splits:
        parts = [read_batch(find_file(self.data_dir, "CIFAR-10", SUBDIRS, (b,))) for b in TRAIN_BATCHES]
        x = np.concatenate([p[0] for p in parts])
        y = np.concatenate([p[1] for p in parts])
        x_test, y_test = read_batch(find_file(self.data_dir, "CIFAR-10", SUBDIRS, ("test_batch",)))
        n_train = len(y) - max(1, int(len(y) * VALIDATION_FRACTION))
        images = lambda a: torch.from_numpy((a.astype(np.float32) / 255.0 - MEAN) / STD)  # noqa: E731
        return Splits(
            train={"inputs": images(x[:n_train]), "targets": torch.from_numpy(y[:n_train])},
            validation={"inputs": images(x[n_train:]), "targets": torch.from_numpy(y[n_train:])},
            test={"inputs": images(x_test), "targets": torch.from_numpy(y_test)},
        )

    def build_model(self) -> nn.Module:
        return ResNet(tuple(self.size["widths"]), lambda: activation("relu"), 1.0)
