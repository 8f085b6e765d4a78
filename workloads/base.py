"""The workload contract (DESIGN.md contract 1): AlgoPerf's PyTorch workload surface, plus.

``Workload`` is what submissions and the runner see. ``ArrayWorkload`` implements the data
plumbing for workloads whose splits fit in memory as tensors (all of the CPU-scale suite):
a subclass supplies the data, the model and, when it is not accuracy, the metric.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from algobench import spec
from algobench.errors import AlgobenchError


@dataclass(frozen=True)
class Targets:
    """A workload's calibrated facts: targets and budget, with where they came from."""

    validation_target_value: float
    test_target_value: float
    max_allowed_runtime_sec: float
    provenance: dict[str, Any] = field(default_factory=dict)


def load_targets(workload_name: str) -> Targets:
    """Read ``workloads/targets/<name>.json``: the one place a workload's targets live."""
    path = resources.files("algobench.workloads") / "targets" / f"{workload_name}.json"
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise AlgobenchError(f"workload {workload_name!r} has no targets file at {path}") from None
    return Targets(
        validation_target_value=float(raw["validation_target_value"]),
        test_target_value=float(raw["test_target_value"]),
        max_allowed_runtime_sec=float(raw["max_allowed_runtime_sec"]),
        provenance=raw.get("provenance", {}),
    )


class Workload(abc.ABC):
    """AlgoPerf's PyTorch workload interface, so AlgoPerf submissions run unchanged.

    Class attributes name the workload and its fixed facts; targets and budget come from the
    targets file (``load_targets``) so that each is written down exactly once.
    """

    name: ClassVar[str]
    base_name: ClassVar[str]
    variant: ClassVar[str | None] = None
    description: ClassVar[str] = ""
    target_metric_name: ClassVar[str]
    metric_direction: ClassVar[str]  # "max" or "min"
    loss_type: ClassVar[spec.LossType] = spec.LossType.SOFTMAX_CROSS_ENTROPY
    default_batch_size: ClassVar[int]
    step_hint: ClassVar[int]
    eval_period_time_sec: ClassVar[float]
    eval_batch_size: ClassVar[int] = 1024
    default_device: ClassVar[str] = "cpu"
    mirrors: ClassVar[str] = ""  # the AlgoPerf workload this one stands in for
    needs_data_dir: ClassVar[bool] = False  # True: reads a real dataset from ``--data-dir``
    # Problem sizes per ``--scale``: "cpu" (the default, what targets are set on), "gpu" (larger
    # data and models for one GPU) and "tiny" (seconds-long smoke runs and tests; targets are
    # not meaningful there).
    sizes: ClassVar[Mapping[str, Mapping[str, Any]]] = MappingProxyType({"cpu": {}, "gpu": {}, "tiny": {}})

    def __init__(self, device: str | torch.device = "cpu", data_dir: str | None = None, scale: str = "cpu") -> None:
        if scale not in self.sizes:
            raise AlgobenchError(
                f"workload {self.name!r} has no scale {scale!r}; choose one of {', '.join(self.sizes)}"
            )
        self.device = torch.device(device)
        self.data_dir = data_dir
        self.scale = scale
        self.size: Mapping[str, Any] = self.sizes[scale]
        self.metrics_logger = None
        self._param_shapes: dict[str, spec.ShapeTuple] | None = None
        self._param_types: dict[str, spec.ParameterType] | None = None
        self._targets: Targets | None = None

    # --- targets and budget (from the targets file) ---------------------------------------
    @property
    def targets(self) -> Targets:
        """Targets are set at the CPU scale; other scales share them until set on their own."""
        if self._targets is None:
            self._targets = load_targets(self.name)
        return self._targets

    @property
    def validation_target_value(self) -> float:
        return self.targets.validation_target_value

    @property
    def test_target_value(self) -> float:
        return self.targets.test_target_value

    @property
    def max_allowed_runtime_sec(self) -> float:
        return self.targets.max_allowed_runtime_sec

    @property
    def target_provenance(self) -> dict[str, Any]:
        return self.targets.provenance

    def _reached(self, value: float, target: float) -> bool:
        if self.metric_direction == "max":
            return value >= target
        return value <= target

    def has_reached_validation_target(self, eval_result: dict[str, float]) -> bool:
        value = eval_result[f"validation/{self.target_metric_name}"]
        return self._reached(value, self.validation_target_value)

    def has_reached_test_target(self, eval_result: dict[str, float]) -> bool:
        value = eval_result[f"test/{self.target_metric_name}"]
        return self._reached(value, self.test_target_value)

    def attach_metrics_logger(self, metrics_logger: Any) -> None:
        self.metrics_logger = metrics_logger

    # --- parameters ---------------------------------------------------------------------
    @property
    def param_shapes(self) -> dict[str, spec.ShapeTuple]:
        if self._param_shapes is None:
            raise ValueError("init_model_fn() must be called before param_shapes")
        return self._param_shapes

    @property
    def model_params_types(self) -> dict[str, spec.ParameterType]:
        if self._param_types is None:
            raise ValueError("init_model_fn() must be called before model_params_types")
        return self._param_types

    def is_output_params(self, param_key: str) -> bool:
        return param_key.startswith(self.output_layer_prefix)

    output_layer_prefix: ClassVar[str] = "head."

    # --- model --------------------------------------------------------------------------
    @abc.abstractmethod
    def build_model(self) -> nn.Module:
        """The freshly initialised network (the torch RNG is already seeded)."""

    def init_model_fn(self, rng: Any, dropout_rate: float | None = None) -> spec.ModelInitState:
        torch.manual_seed(_seed_from_rng(rng))
        model = self.build_model().to(self.device)
        if dropout_rate is not None:
            _set_dropout(model, dropout_rate)
        self._param_shapes = {k: spec.ShapeTuple(p.shape) for k, p in model.named_parameters()}
        self._param_types = parameter_types(model)
        return model, None

    def model_fn(
        self,
        params: nn.Module,
        augmented_and_preprocessed_input_batch: dict[str, torch.Tensor],
        model_state: Any,
        mode: spec.ForwardPassMode,
        rng: Any,
        update_batch_norm: bool,
        dropout_rate: float | None = None,
    ) -> tuple[torch.Tensor, Any]:
        model = params
        if dropout_rate is not None:
            _set_dropout(model, dropout_rate)
        if mode == spec.ForwardPassMode.EVAL:
            model.eval()
            with torch.no_grad():
                return model(augmented_and_preprocessed_input_batch["inputs"]), model_state
        if not model.training:  # train() walks every module: only when an eval switched it off
            model.train()
        if not update_batch_norm:
            _freeze_batch_norm_stats(model)
        logits = model(augmented_and_preprocessed_input_batch["inputs"])
        if not update_batch_norm:
            _restore_batch_norm_stats(model)
        return logits, model_state

    def loss_fn(
        self,
        label_batch: torch.Tensor,
        logits_batch: torch.Tensor,
        mask_batch: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
    ) -> dict[str, torch.Tensor]:
        per_example = self.per_example_loss(label_batch, logits_batch, label_smoothing)
        if mask_batch is not None:
            per_example = per_example * mask_batch
            n_valid = mask_batch.sum()
        else:
            n_valid = torch.full((), per_example.shape[0], device=per_example.device)
        return {"summed": per_example.sum(), "n_valid_examples": n_valid, "per_example": per_example}

    def per_example_loss(self, labels: torch.Tensor, logits: torch.Tensor, label_smoothing: float) -> torch.Tensor:
        """Softmax cross-entropy; workloads with another ``loss_type`` override this."""
        return F.cross_entropy(logits, labels, reduction="none", label_smoothing=label_smoothing)

    # --- data and evaluation (implemented by ArrayWorkload) -------------------------------
    @abc.abstractmethod
    def _build_input_queue(
        self,
        data_rng: Any,
        split: str,
        data_dir: str | None,
        global_batch_size: int,
        cache: bool | None = None,
        repeat_final_dataset: bool | None = None,
        num_batches: int | None = None,
    ) -> Iterator[dict[str, torch.Tensor]]:
        """Training batches; the iterator has ``state_dict``/``load_state_dict`` for resume."""

    @abc.abstractmethod
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
        """``train/…``, ``validation/…`` and ``test/…`` metrics of the current model."""

    def describe(self) -> dict[str, Any]:
        """The facts ``algobench workloads`` prints."""
        return {
            "workload": self.name,
            "base": self.base_name,
            "variant": self.variant or "",
            "mirrors": self.mirrors,
            "metric": f"{self.target_metric_name} ({self.metric_direction})",
            "validation_target": self.validation_target_value,
            "test_target": self.test_target_value,
            "budget_sec": self.max_allowed_runtime_sec,
            "targets_from": self.target_provenance.get("method", "unknown"),
        }


Arrays = dict[str, Any]  # name -> tensor, or name -> dict of tensors (multi-part inputs)


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

    def to(self, device: torch.device) -> Splits:
        return Splits(move(self.train, device), move(self.validation, device), move(self.test, device))


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
            generator = torch.Generator().manual_seed(_seed_from_rng([self.seed, self.epoch]))
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


class ArrayWorkload(Workload):
    """A workload whose splits are tensors in memory; subclasses provide ``load_splits``."""

    num_eval_train_examples_cap: ClassVar[int] = 2048

    def __init__(self, device: str | torch.device = "cpu", data_dir: str | None = None, scale: str = "cpu") -> None:
        super().__init__(device, data_dir, scale)
        self._splits: Splits | None = None

    @abc.abstractmethod
    def load_splits(self) -> Splits:
        """Generate (or read from disk, or from the cache) the train/validation/test splits."""

    @property
    def splits(self) -> Splits:
        if self._splits is None:
            self._splits = self.load_splits().to(self.device)
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
        return ShuffledBatches(self.splits.train, global_batch_size, _seed_from_rng(data_rng))

    def _split_arrays(self, split: str) -> Arrays:
        if split == "eval_train":
            return take(self.splits.train, slice(0, self.num_eval_train_examples))
        return getattr(self.splits, split)

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
        for split, prefix in (("eval_train", "train"), ("validation", "validation"), ("test", "test")):
            arrays = self._split_arrays(split)
            logits = self.predict(params, arrays, global_batch_size)
            for key, value in self.compute_metrics(logits, arrays["targets"], arrays).items():
                metrics[f"{prefix}/{key}"] = value
            metrics[f"{prefix}/num_examples"] = int(arrays["targets"].shape[0])
        return metrics


def parameter_types(model: nn.Module) -> dict[str, spec.ParameterType]:
    """AlgoPerf's parameter types, read off the module that owns each parameter."""
    types: dict[str, spec.ParameterType] = {}
    for module_name, module in model.named_modules():
        for param_name, _ in module.named_parameters(recurse=False):
            key = f"{module_name}.{param_name}" if module_name else param_name
            types[key] = _parameter_type(module, param_name)
    return types


def _parameter_type(module: nn.Module, param_name: str) -> spec.ParameterType:
    P = spec.ParameterType
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return P.BATCH_NORM_SCALE if param_name == "weight" else P.BATCH_NORM_BIAS
    if isinstance(module, nn.LayerNorm | nn.GroupNorm):
        return P.LAYER_NORM_SCALE if param_name == "weight" else P.LAYER_NORM_BIAS
    if isinstance(module, nn.Embedding):
        return P.EMBEDDING
    if isinstance(module, nn.MultiheadAttention):
        return P.ATTENTION_QKV if "in_proj_weight" in param_name else P.ATTENTION_BIAS
    if param_name == "bias":
        return P.BIAS
    if isinstance(module, nn.modules.conv._ConvNd):
        return P.CONV_WEIGHT
    return P.WEIGHT


def _seed_from_rng(rng: Any) -> int:
    """Turn AlgoPerf-style rng (an int, or an array of uint32 key words) into a torch seed.

    torch's CPU generator keeps only 32 bits of a seed, so the words are hashed together
    rather than concatenated (concatenation would drop all but the last word).
    """
    words = [rng] if isinstance(rng, int) else [int(w) for w in np.asarray(rng).ravel()]
    return int(np.random.SeedSequence([w % 2**63 for w in words]).generate_state(1)[0])


def _set_dropout(model: nn.Module, rate: float) -> None:
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = rate


def _freeze_batch_norm_stats(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.momentum_backup = module.momentum
            module.momentum = 0.0


def _restore_batch_norm_stats(model: nn.Module) -> None:
    for module in model.modules():
        if hasattr(module, "momentum_backup"):
            module.momentum = module.momentum_backup
            del module.momentum_backup
