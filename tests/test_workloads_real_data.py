"""The MNIST and CIFAR-10 loaders, on tiny files written here in those datasets' exact formats."""

from __future__ import annotations

import gzip
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from algobench import spec
from algobench.errors import AlgobenchError
from algobench.workloads import get_workload


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> None:
    """MNIST's IDX format: magic (0, 0, 8 = unsigned byte, ndim), big-endian dims, raw bytes."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)


def write_mnist(folder: Path, n_train: int = 60, n_test: int = 20, gz: bool = False) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for stem, n in (("train", n_train), ("t10k", n_test)):
        write_idx(folder / f"{stem}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)), gz)
        write_idx(folder / f"{stem}-labels-idx1-ubyte", rng.integers(0, 10, n), gz)
    return folder


def write_cifar10(root: Path, per_batch: int = 12) -> Path:
    """CIFAR-10's python version: pickled dicts with byte-string keys, 3072 bytes per image."""
    rng = np.random.default_rng(1)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        batch = {b"data": rng.integers(0, 256, (per_batch, 3072)).astype(np.uint8),
                 b"labels": rng.integers(0, 10, per_batch).tolist(), b"batch_label": name.encode()}  # fmt: skip
        with open(folder / name, "wb") as handle:
            pickle.dump(batch, handle, protocol=2)
    return root


def _one_step_and_eval(workload) -> dict[str, float]:
    model, state = workload.init_model_fn(0)
    batch = next(workload._build_input_queue(0, "train", None, 8))
    logits, state = workload.model_fn(model, batch, state, spec.ForwardPassMode.TRAIN, None, True)
    out = workload.loss_fn(batch["targets"], logits)
    (out["summed"] / out["n_valid_examples"]).backward()
    return workload.eval_model(64, model, state, 0, None, None, 0)


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_reads_idx_files(tmp_path: Path, gz: bool) -> None:
    write_mnist(tmp_path / "mnist", gz=gz)
    workload = get_workload("mnist", data_dir=str(tmp_path), scale="tiny")
    assert (workload.num_train_examples, workload.num_validation_examples, workload.num_test_examples) == (50, 10, 20)
    first = workload.splits.train["inputs"][0, 0]
    stored = (tmp_path / "mnist" / ("train-images-idx3-ubyte" + (".gz" if gz else ""))).read_bytes()
    raw = np.frombuffer(gzip.decompress(stored) if gz else stored, dtype=np.uint8, offset=16)[: 28 * 28].reshape(28, 28)
    assert torch.allclose(first, torch.from_numpy((raw / 255.0 - 0.1307) / 0.3081).float(), atol=1e-6)
    assert math.isfinite(_one_step_and_eval(workload)["validation/accuracy"])


def test_cifar10_reads_pickle_batches(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    workload = get_workload("cifar10", data_dir=str(tmp_path), scale="tiny")
    assert workload.num_train_examples + workload.num_validation_examples == 60
    assert workload.num_test_examples == 12
    assert workload.splits.train["inputs"].shape[1:] == (3, 32, 32)
    assert math.isfinite(_one_step_and_eval(workload)["test/accuracy"])


@pytest.mark.parametrize(("name", "missing"), [("mnist", "t10k-labels-idx1-ubyte"), ("cifar10", "test_batch")])
def test_a_missing_file_is_named(tmp_path: Path, name: str, missing: str) -> None:
    if name == "mnist":
        write_mnist(tmp_path)
        (tmp_path / missing).unlink()
    else:
        write_cifar10(tmp_path)
        (tmp_path / "cifar-10-batches-py" / missing).unlink()
    workload = get_workload(name, data_dir=str(tmp_path), scale="tiny")
    with pytest.raises(AlgobenchError, match=f"missing file {missing}"):
        workload.load_splits()


def test_no_data_dir_says_nothing_is_downloaded() -> None:
    with pytest.raises(AlgobenchError, match="does not download"):
        get_workload("mnist").load_splits()
