"""The workload contract (DESIGN.md contract 1): AlgoPerf's PyTorch workload surface, plus.

The core defines what a workload is; the workloads package (``algobench.workloads``) defines the
workloads themselves and is never imported from here. A concrete workload supplies its facts
(name, base, variant, metric and its direction) and its targets through :meth:`Workload.load_targets`,
the hook by which the workloads package reads its targets files.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from algobench import spec
from algobench.errors import AlgobenchError
from algobench.layout import Direction
from algobench.spec import Targets

__all__ = ["Targets", "Workload", "parameter_types", "seed_from_rng"]


class Workload(abc.ABC):
    """AlgoPerf's PyTorch workload interface, so AlgoPerf submissions run unchanged.

    Class attributes name the workload and its fixed facts. Targets and budget come from
    :meth:`load_targets`, so that each is written down exactly once (in the workloads package,
    its targets file). A subclass writes ``load_targets``, ``build_model``, ``_build_input_queue``,
    ``eval_model`` and the ``num_*_examples`` properties.
    """

    name: ClassVar[str]
    base_name: ClassVar[str]
    variant: ClassVar[str | None] = None
    description: ClassVar[str] = ""
    target_metric_name: ClassVar[str]
    metric_direction: ClassVar[Direction]
    mirrors: ClassVar[str] = ""  # the AlgoPerf workload this one stands in for
    loss_type: ClassVar[spec.LossType] = spec.LossType.SOFTMAX_CROSS_ENTROPY
    default_batch_size: ClassVar[int]
    step_hint: ClassVar[int]
    eval_period_time_sec: ClassVar[float]
    eval_batch_size: ClassVar[int] = 1024
    default_device: ClassVar[str] = "cpu"
    needs_data_dir: ClassVar[bool] = False  # True: reads a real dataset from ``--data-dir``
    # Problem sizes per ``--scale``: "cpu" (the default, what targets are set on), "gpu" (larger
    # data and models for one GPU) and "tiny" (seconds-long smoke runs and tests; targets are
    # not meaningful there).
    sizes: ClassVar[Mapping[str, Mapping[str, Any]]] = MappingProxyType({"cpu": {}, "gpu": {}, "tiny": {}})
    output_layer_prefix: ClassVar[str] = "head."

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

    # --- targets and budget (from the hook) ------------------------------------------------
    @classmethod
    @abc.abstractmethod
    def load_targets(cls) -> Targets:
        """This workload's targets and budget, from the one place its package keeps them."""

    @property
    def targets(self) -> Targets:
        """Targets are set at the CPU scale; other scales share them until set on their own."""
        if self._targets is None:
            self._targets = self.load_targets()
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
    def target_provenance(self) -> Mapping[str, Any]:
        return self.targets.provenance

    def has_reached_validation_target(self, eval_result: dict[str, float]) -> bool:
        value = eval_result[f"validation/{self.target_metric_name}"]
        return Direction(self.metric_direction).reached(value, self.validation_target_value)

    def has_reached_test_target(self, eval_result: dict[str, float]) -> bool:
        value = eval_result[f"test/{self.target_metric_name}"]
        return Direction(self.metric_direction).reached(value, self.test_target_value)

    def attach_metrics_logger(self, metrics_logger: Any) -> None:
        self.metrics_logger = metrics_logger

    # --- data sizes ---------------------------------------------------------------------
    @property
    @abc.abstractmethod
    def num_train_examples(self) -> int: ...

    @property
    @abc.abstractmethod
    def num_eval_train_examples(self) -> int: ...

    @property
    @abc.abstractmethod
    def num_validation_examples(self) -> int: ...

    @property
    @abc.abstractmethod
    def num_test_examples(self) -> int: ...

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

    # --- model --------------------------------------------------------------------------
    @abc.abstractmethod
    def build_model(self) -> nn.Module:
        """The freshly initialised network (the torch RNG is already seeded)."""

    def init_model_fn(self, rng: Any, dropout_rate: float | None = None) -> spec.ModelInitState:
        torch.manual_seed(seed_from_rng(rng))
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

    # --- data and evaluation ------------------------------------------------------------
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


def seed_from_rng(rng: Any) -> int:
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
