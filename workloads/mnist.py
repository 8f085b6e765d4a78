"""A small CNN on MNIST read from its IDX files in ``--data-dir`` (an extra, real-data workload).

The four standard files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, optionally gzipped) are read as they
are; the last sixth of the training files is the validation split, the t10k files the test.
"""

from __future__ import annotations

import gzip
from types import MappingProxyType
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from algobench.errors import AlgobenchError
from algobench.workloads.base import ArrayWorkload, Splits
from algobench.workloads.local_files import find_file

SUBDIRS = ("mnist", "MNIST", "MNIST/raw")
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049
VALIDATION_FRACTION = 1 / 6  # 10,000 of the 60,000 training images


def read_idx(path) -> np.ndarray:  # noqa: ANN001 - a path
    """An IDX file (big-endian header: magic, then one int32 per dimension) as a uint8 array."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    magic = int.from_bytes(raw[0:4], "big")
    if magic not in (IMAGE_MAGIC, LABEL_MAGIC):
        raise AlgobenchError(f"{path}: not an IDX file of unsigned bytes (magic {magic})")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _load(data_dir: str | None, stem: str) -> np.ndarray:
    return read_idx(find_file(data_dir, "MNIST", SUBDIRS, (stem, f"{stem}.gz")))


class MNIST(ArrayWorkload):
    description: ClassVar[str] = "small CNN on MNIST from its IDX files in --data-dir"
    needs_data_dir: ClassVar[bool] = True
    default_batch_size: ClassVar[int] = 128
    step_hint: ClassVar[int] = 3000
    eval_period_time_sec: ClassVar[float] = 10.0
    sizes = MappingProxyType({"cpu": {"channels": 16}, "gpu": {"channels": 64}, "tiny": {"channels": 4}})

    def load_splits(self) -> Splits:
        x = _load(self.data_dir, "train-images-idx3-ubyte")
        y = _load(self.data_dir, "train-labels-idx1-ubyte")
        x_test = _load(self.data_dir, "t10k-images-idx3-ubyte")
        y_test = _load(self.data_dir, "t10k-labels-idx1-ubyte")
        n_train = len(y) - max(1, int(len(y) * VALIDATION_FRACTION))
        images = lambda a: torch.from_numpy((a.astype(np.float32) / 255.0 - 0.1307) / 0.3081).unsqueeze(1)  # noqa: E731
        labels = lambda a: torch.from_numpy(a.astype(np.int64))  # noqa: E731
        return Splits(
            train={"inputs": images(x[:n_train]), "targets": labels(y[:n_train])},
            validation={"inputs": images(x[n_train:]), "targets": labels(y[n_train:])},
            test={"inputs": images(x_test), "targets": labels(y_test)},
        )

    def build_model(self) -> nn.Module:
        c = self.size["channels"]
        return nn.Sequential(
            nn.Conv2d(1, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c, 2 * c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(2 * c * 7 * 7, 10),
        )  # fmt: skip

    output_layer_prefix: ClassVar[str] = "7."
