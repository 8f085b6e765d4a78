"""The workloads package's side of the workload contract (``algobench.workload``).

``RegisteredWorkload`` is a workload of this package: its facts come from its registry line and
its targets from ``targets/<name>.json``. ``ArrayWorkload`` implements the data plumbing for
workloads whose splits fit in memory as tensors (all of the CPU-scale suite): a subclass supplies
the data, the model and, when it is not accuracy, the metric.

``Workload`` and ``Targets`` are the core's, re-exported here for the many modules that import
them from this one.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from algobench.errors import AlgobenchError
from algobench.workload import Targets, Workload, seed_from_rng
from algobench.workloads import registry

__all__ = ["ArrayWorkload", "Arrays", "RegisteredWorkload", "ShuffledBatches", "Splits", "Targets", "Workload"]


class RegisteredWorkload(Workload):
    """A workload of this package: the registry line that names its class gives its name, base,
    variant, metric, direction and mirror (set on the class when it is defined), and
    ``targets/<name>.json`` its targets and budget. A subclass that no line names (a test's,
    a user's) keeps what it inherits."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        info = registry.info_of_class(f"{cls.__module__}:{cls.__qualname__}")
        if info is not None:
            cls.name = info.name
            cls.base_name = info.base_name
            cls.variant = info.variant
            cls.target_metric_name = info.target_metric_name
            cls.metric_direction = info.metric_direction
            cls.mirrors = info.mirrors

    @classmethod
    def load_targets(cls) -> Targets:
        return registry.load_targets(cls.name)


Arrays = dict[str, Any]  # name -> tensor, or name -> dict of tensors (multi-part inputs)
TUNING_SPLIT_SEED = 20171127  # draws the held-out tuning examples: fixed, so every trial holds out the same ones


def take(tree: Any, index: Any) -> Any:
    """``tree[index]`` for a tensor, or for every tensor of a (nested) dict of them."""
    if isinstance(tree, dict):
        return {k: take(v, index) for k, v in tree.items()}
    return tree[index]


def move(tree: Any, device: torch.device) -> Any:
    if isinstance(tree, dict):
        return {k: move(v, device) for k, v in tree.items()}
    return tree.to(device)


@dataclass
class Splits:
    """In-memory data per split (train, validation, test): ``targets`` and ``inputs`` tensors,
    plus optional ``weights``; ``inputs`` may be a dict of tensors (graphs, token pairs)."""

    train: Arrays
    validation: Arrays
    test: Arrays
    tuning: Arrays | None = None  # held out from train for a tuner's fitness (``hold_out_tuning_split``)

    def to(self, device: torch.device) -> Splits:
        tuning = None if self.tuning is None else move(self.tuning, device)
        return Splits(move(self.train, device), move(self.validation, device), move(self.test, device), tuning)

    def holding_out(self, fraction: float) -> Splits:
        """These splits with ``fraction`` of the training examples (at most as many as the
        validation set has) moved into a ``tuning`` split. The examples are drawn by a fixed seed,
        not the trial's: every member of a population and every study is judged on the same ones."""
        size = int(self.train["targets"].shape[0])
        count = min(round(fraction * size), int(self.validation["targets"].shape[0]))
        if not 0 < count < size:
            raise AlgobenchError(f"tuning split {fraction} of {size} training examples holds out {count} of them")
        order = torch.randperm(size, generator=torch.Generator().manual_seed(TUNING_SPLIT_SEED))
        kept, held = order[count:].sort().values, order[:count].sort().values
        return Splits(take(self.train, kept), self.validation, self.test, take(self.train, held))


class ShuffledBatches:
    """Endless shuffled minibatches of one split; its position is saved with the trial.

    Each epoch's order is drawn from (seed, epoch), so a restored stream yields exactly the
    batches the uninterrupted one would have.
    """

    def __init__(self, arrays: Arrays, batch_size: int, seed: int) -> None:
        self.arrays = arrays
        self.size = arrays["targets"].shape[0]
        if batch_size > self.size:
            raise AlgobenchError(f"batch size {batch_size} exceeds the {self.size} training examples")
        self.batch_size = batch_size
        self.seed = seed
        self.batches_per_epoch = self.size // batch_size
        self.epoch = 0
        self.index = 0
        self._order: torch.Tensor | None = None

    def _epoch_order(self) -> torch.Tensor:
        if self._order is None:
            generator = torch.Generator().manual_seed(seed_from_rng([self.seed, self.epoch]))
            order = torch.randperm(self.size, generator=generator)
            self._order = order.to(self.arrays["targets"].device)
        return self._order

    def __iter__(self) -> ShuffledBatches:
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        if self.index >= self.batches_per_epoch:
            self.epoch, self.index, self._order = self.epoch + 1, 0, None
        start = self.index * self.batch_size
        picked = self._epoch_order()[start : start + self.batch_size]
        self.index += 1
        return take(self.arrays, picked)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "index": self.index}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.index, self._order = int(state["epoch"]), int(state["index"]), None


class ArrayWorkload(RegisteredWorkload):
    """A workload whose splits are tensors in memory; subclasses provide ``load_splits``."""

    num_eval_train_examples_cap: ClassVar[int] = 2048

    def __init__(self, device: str | torch.device = "cpu", data_dir: str | None = None, scale: str = "cpu") -> None:
        super().__init__(device, data_dir, scale)
        self._splits: Splits | None = None
        self._tuning_split = 0.0

    def hold_out_tuning_split(self, fraction: float) -> None:
        """Train on all but ``fraction`` of the training examples and evaluate those as the
        ``tuning`` split (``tuning/<metric>`` at every evaluation): a tuner's fitness that is
        not the validation set the targets are judged on. Call before the data is first used."""
        if self._splits is not None:
            raise AlgobenchError(f"{self.name}: the tuning split must be held out before the data is loaded")
        self._tuning_split = fraction

    @abc.abstractmethod
    def load_splits(self) -> Splits:
        """Generate (or read from disk, or from the cache) the train/validation/test splits."""

    @property
    def splits(self) -> Splits:
        if self._splits is None:
            splits = self.load_splits()
            if self._tuning_split:
                splits = splits.holding_out(self._tuning_split)
            self._splits = splits.to(self.device)
        return self._splits

    @property
    def num_train_examples(self) -> int:
        return int(self.splits.train["targets"].shape[0])

    @property
    def num_eval_train_examples(self) -> int:
        return min(self.num_train_examples, self.num_eval_train_examples_cap)

    @property
    def num_validation_examples(self) -> int:
        return int(self.splits.validation["targets"].shape[0])

    @property
    def num_test_examples(self) -> int:
        return int(self.splits.test["targets"].shape[0])

    def _build_input_queue(
        self,
        data_rng: Any,
        split: str,
        data_dir: str | None,
        global_batch_size: int,
        cache: bool | None = None,
        repeat_final_dataset: bool | None = None,
        num_batches: int | None = None,
    ) -> ShuffledBatches:
        if split != "train":
            raise ValueError(f"the input queue serves the train split, not {split!r}")
        return ShuffledBatches(self.splits.train, global_batch_size, seed_from_rng(data_rng))

    def _split_arrays(self, split: str) -> Arrays:
        if split == "eval_train":
            return take(self.splits.train, slice(0, self.num_eval_train_examples))
        return getattr(self.splits, split)

    def eval_splits(self) -> list[tuple[str, str]]:
        """The splits each evaluation measures, with the prefix of their metrics."""
        splits = [("eval_train", "train"), ("validation", "validation"), ("test", "test")]
        return splits + ([("tuning", "tuning")] if self.splits.tuning is not None else [])

    def compute_metrics(self, logits: torch.Tensor, targets: torch.Tensor, arrays: Arrays) -> dict[str, float]:
        """Mean loss and accuracy; workloads with another metric override this."""
        loss = self.per_example_loss(targets, logits, 0.0).mean().item()
        accuracy = (logits.argmax(dim=-1) == targets).float().mean().item()
        return {"loss": loss, "accuracy": accuracy}

    def predict(self, model: nn.Module, arrays: Arrays, batch_size: int) -> torch.Tensor:
        """The model's outputs on a whole split, in batches (overridden by sequence decoders)."""
        model.eval()
        n = arrays["targets"].shape[0]
        with torch.no_grad():
            return torch.cat([model(take(arrays["inputs"], slice(i, i + batch_size))) for i in range(0, n, batch_size)])

    def eval_model(
        self,
        global_batch_size: int,
        params: nn.Module,
        model_state: Any,
        rng: Any,
        data_dir: str | None,
        imagenet_v2_data_dir: str | None,
        global_step: int,
    ) -> dict[str, float]:
        metrics: dict[str, float] = {}
        for split, prefix in self.eval_splits():
            arrays = self._split_arrays(split)
            logits = self.predict(params, arrays, global_batch_size)
            for key, value in self.compute_metrics(logits, arrays["targets"], arrays).items():
                metrics[f"{prefix}/{key}"] = value
            metrics[f"{prefix}/num_examples"] = int(arrays["targets"].shape[0])
        return metrics
