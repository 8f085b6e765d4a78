"""AlgoPerf's PyTorch-side types and names, so AlgoPerf submission files find what they import.

A submission written against ``algoperf.spec`` (or the older ``algorithmic_efficiency.spec``)
is handed this module under that name while it is imported (see ``algobench.algoperf_compat``).
The workload base class lives in ``algobench.workloads.base``; ``Workload`` here is an alias
to it so that ``spec.Workload`` type hints in submission files keep working.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
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
    # Lazy so that importing the spec does not import torch-heavy workload code.
    if name == "Workload":
        from algobench.workloads.base import Workload

        return Workload
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
