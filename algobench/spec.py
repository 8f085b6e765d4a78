"""AlgoPerf's PyTorch-side types and names, so AlgoPerf submission files find what they import.

A submission written against ``algoperf.spec`` (or the older ``algorithmic_efficiency.spec``)
is handed this module under that name while it is imported (see ``algobench.algoperf_compat``).
The workload base class lives in ``algobench.workload``; ``Workload`` here is a lazy alias to it
so that ``spec.Workload`` type hints in submission files keep working without importing torch
with the spec. ``Targets`` is algobench's own: what a workload's targets file holds.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


class LossType(enum.Enum):
    SOFTMAX_CROSS_ENTROPY = 0
    SIGMOID_CROSS_ENTROPY = 1
    MEAN_SQUARED_ERROR = 2
    CTC_LOSS = 3
    MEAN_ABSOLUTE_ERROR = 4


class ForwardPassMode(enum.Enum):
    TRAIN = 0
    EVAL = 1


class ParameterType(enum.Enum):
    WEIGHT = 0
    BIAS = 1
    CONV_WEIGHT = 2
    BATCH_NORM_SCALE = 3
    BATCH_NORM_BIAS = 4
    LAYER_NORM_SCALE = 5
    LAYER_NORM_BIAS = 6
    EMBEDDING = 7
    ATTENTION_Q = 8
    ATTENTION_K = 9
    ATTENTION_V = 10
    ATTENTION_OUT = 11
    ATTENTION_QKV = 12
    ATTENTION_KV = 13
    ATTENTION_BIAS = 14


class ShapeTuple:
    """A parameter shape, compared by value (AlgoPerf's ``param_shapes`` leaves)."""

    def __init__(self, shape_tuple: tuple[int, ...]) -> None:
        self.shape_tuple = tuple(shape_tuple)

    def __repr__(self) -> str:
        return f"ShapeTuple({self.shape_tuple})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ShapeTuple) and self.shape_tuple == other.shape_tuple

    def __hash__(self) -> int:
        return hash(self.shape_tuple)


class TrainingCompleteError(Exception):
    """Raised by a submission's ``update_params`` to end its run early."""


@dataclass(frozen=True)
class Targets:
    """A workload's calibrated facts: targets and budget, with where they came from.

    A workload's ``load_targets`` hook returns them; the workloads package reads them from its
    targets files, whose JSON documents have these four keys.
    """

    validation_target_value: float
    test_target_value: float
    max_allowed_runtime_sec: float
    provenance: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> Targets:
        """The targets of a targets file's JSON document."""
        return cls(
            validation_target_value=float(document["validation_target_value"]),
            test_target_value=float(document["test_target_value"]),
            max_allowed_runtime_sec=float(document["max_allowed_runtime_sec"]),
            provenance=document.get("provenance", {}),
        )


Tensor = Any
Shape = Any
ParameterShapeTree = dict[str, Any]
ParameterKey = str
ParameterContainer = Any
ParameterTypeTree = dict[str, Any]
RandomState = Any
OptimizerState = dict[str, Any] | tuple[Any, Any]
Hyperparameters = Any
Timing = int
Steps = int
ModelAuxiliaryState = Any
ModelInitState = tuple[ParameterContainer, ModelAuxiliaryState]
UpdateReturn = tuple[OptimizerState, ParameterContainer, ModelAuxiliaryState]
InitOptimizerFn = Callable[..., OptimizerState]
UpdateParamsFn = Callable[..., UpdateReturn]
PrepareForEvalFn = Callable[..., UpdateReturn]
DataSelectionFn = Callable[..., Any]


def __getattr__(name: str) -> Any:
    # Lazy so that importing the spec does not import torch.
    if name == "Workload":
        from algobench.workload import Workload

        return Workload
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
