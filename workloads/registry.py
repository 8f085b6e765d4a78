"""Which workloads exist, and what is known of each without importing it: one line per workload.

A line names the workload, its class (imported only when the workload is used), the metric its
targets are set on and the metric's direction, and the AlgoPerf workload it stands in for; a
variant's line names its base instead, whose metric and mirror it shares. The classes read these
facts from their line (``RegisteredWorkload``), and targets, budgets and their provenance live in
``targets/<name>.json`` (:func:`load_targets`), so each fact is written once and listing the
workloads imports neither torch nor any workload module.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import json
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from algobench.errors import AlgobenchError, UnknownWorkloadError
from algobench.layout import Direction
from algobench.spec import Targets

if TYPE_CHECKING:
    import torch

    from algobench.workload import Workload

PACKAGE = "algobench.workloads"
MAX, MIN = Direction.MAX, Direction.MIN


@dataclass(frozen=True)
class WorkloadInfo:
    """One registry line: a workload's facts that need no import of its code."""

    name: str
    target: str  # "module:Class", the module relative to this package
    target_metric_name: str
    metric_direction: Direction
    mirrors: str = ""  # the AlgoPerf workload this one stands in for
    base_name: str = ""  # a base workload's is its own name
    variant: str | None = None  # the tail of a variant's name after its base's

    def __post_init__(self) -> None:
        if not self.base_name:
            object.__setattr__(self, "base_name", self.name)

    @property
    def class_path(self) -> str:
        """``algobench.workloads.<module>:<Class>``."""
        return f"{PACKAGE}.{self.target}"


@dataclass(frozen=True)
class _Variant:
    name: str
    target: str
    base: str


def base(name: str, target: str, metric: str, direction: Direction, mirrors: str = "") -> WorkloadInfo:
    return WorkloadInfo(name, target, metric, direction, mirrors)


def variant(name: str, target: str, of: str) -> _Variant:
    """A variant of base ``of``, named ``<of>_<variant>``: its metric and mirror are the base's."""
    return _Variant(name, target, of)


def _index(*lines: WorkloadInfo | _Variant) -> MappingProxyType[str, WorkloadInfo]:
    table: dict[str, WorkloadInfo] = {}
    for line in lines:
        if isinstance(line, _Variant):
            parent = table[line.base]
            if not line.name.startswith(f"{parent.name}_"):
                raise ValueError(f"variant {line.name!r} is not named after its base {parent.name!r}")
            tail = line.name.removeprefix(f"{parent.name}_")
            line = dataclasses.replace(parent, name=line.name, target=line.target, variant=tail)
        if line.name in table:
            raise ValueError(f"workload {line.name!r} is registered twice")
        table[line.name] = line
    return MappingProxyType(table)


EXTRA = "(extra) real data from --data-dir"

WORKLOADS: MappingProxyType[str, WorkloadInfo] = _index(
    base("digits_mlp", "digits_mlp:DigitsMLP", "accuracy", MAX),
    base("mnist1d", "mnist1d:Mnist1DCNN", "accuracy", MAX),
    base("image_cnn", "image_cnn:ImageCNN", "accuracy", MAX, "imagenet_resnet"),
    variant("image_cnn_silu", "image_cnn:ImageCNNSiLU", of="image_cnn"),
    variant("image_cnn_gelu", "image_cnn:ImageCNNGELU", of="image_cnn"),
    variant("image_cnn_bn_scale", "image_cnn:ImageCNNBNScale", of="image_cnn"),
    base("image_vit", "image_vit:ImageViT", "accuracy", MAX, "imagenet_vit"),
    variant("image_vit_post_ln", "image_vit:ImageViTPostLN", of="image_vit"),
    variant("image_vit_map", "image_vit:ImageViTMAP", of="image_vit"),
    variant("image_vit_glu", "image_vit:ImageViTGLU", of="image_vit"),
    base("lm", "lm:LanguageModel", "loss", MIN, "lm (fineweb) / wmt decoder"),
    variant("lm_post_ln", "lm:LanguageModelPostLN", of="lm"),
    variant("lm_attention_temp", "lm:LanguageModelAttentionTemp", of="lm"),
    variant("lm_glu", "lm:LanguageModelGLU", of="lm"),
    base("translation", "translation:Translation", "bleu", MAX, "wmt"),
    variant("translation_post_ln", "translation:TranslationPostLN", of="translation"),
    variant("translation_attention_temp", "translation:TranslationAttentionTemp", of="translation"),
    variant("translation_glu_tanh", "translation:TranslationGLUTanh", of="translation"),
    base("click_through", "click_through:ClickThrough", "loss", MIN, "criteo1tb"),
    variant("click_through_layernorm", "click_through:ClickThroughLayerNorm", of="click_through"),
    variant("click_through_embed_init_scale", "click_through:ClickThroughEmbedInitScale", of="click_through"),
    variant("click_through_resnet", "click_through:ClickThroughResNet", of="click_through"),
    base("mri", "mri:MRI", "ssim", MAX, "fastmri"),
    variant("mri_channels", "mri:MRIChannels", of="mri"),
    variant("mri_tanh", "mri:MRITanh", of="mri"),
    variant("mri_layernorm", "mri:MRILayerNorm", of="mri"),
    base("molecules", "molecules:Molecules", "mean_average_precision", MAX, "ogbg"),
    variant("molecules_gelu", "molecules:MoleculesGELU", of="molecules"),
    variant("molecules_silu", "molecules:MoleculesSiLU", of="molecules"),
    variant("molecules_model_size", "molecules:MoleculesModelSize", of="molecules"),
    base("speech", "speech:Speech", "wer", MIN, "librispeech_conformer"),
    variant("speech_attention_temp", "speech:SpeechAttentionTemp", of="speech"),
    variant("speech_layernorm", "speech:SpeechLayerNorm", of="speech"),
    variant("speech_gelu", "speech:SpeechGELU", of="speech"),
    base("mnist", "mnist:MNIST", "accuracy", MAX, EXTRA),
    base("cifar10", "cifar10:CIFAR10", "accuracy", MAX, EXTRA),
)

_BY_CLASS: MappingProxyType[str, WorkloadInfo] = MappingProxyType({i.class_path: i for i in WORKLOADS.values()})

SUITE: tuple[str, ...] = (
    "image_cnn", "image_vit", "lm", "translation", "click_through", "mri", "molecules", "speech",
)  # fmt: skip
"""The eight base workloads that mirror AlgoPerf's problems; ``--workloads suite`` selects them."""


def workload_names() -> list[str]:
    return list(WORKLOADS)


def workload_info(name: str) -> WorkloadInfo:
    """The registry line of ``name``; an unknown name gets the closest suggestions."""
    try:
        return WORKLOADS[name]
    except KeyError:
        close = difflib.get_close_matches(name, WORKLOADS, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownWorkloadError(
            f"unknown workload {name!r}.{hint} Known workloads: {', '.join(WORKLOADS)}"
        ) from None


def info_of_class(class_path: str) -> WorkloadInfo | None:
    """The line that registers the class at ``module:Class``, or None for an unregistered class."""
    return _BY_CLASS.get(class_path)


def expand_workload_names(names: list[str]) -> list[str]:
    """``names`` with ``suite`` replaced by the :data:`SUITE`, duplicates dropped, each checked to exist."""
    expanded: list[str] = []
    for name in names:
        for member in SUITE if name == "suite" else (name,):
            workload_info(member)  # an unknown name fails here, with suggestions
            if member not in expanded:
                expanded.append(member)
    return expanded


def load_targets(name: str) -> Targets:
    """Read ``targets/<name>.json`` (package data): the one place a workload's targets live."""
    workload_info(name)
    path = resources.files(PACKAGE) / "targets" / f"{name}.json"
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise AlgobenchError(f"workload {name!r} has no targets file at {path}") from None
    return Targets.from_document(document)


def describe(name: str) -> dict[str, Any]:
    """The facts ``algobench workloads`` prints, from the registry line and the targets file."""
    info, targets = workload_info(name), load_targets(name)
    provenance = targets.provenance
    origin = provenance.get("method", "unknown")
    if provenance.get("date"):
        origin += f" {provenance['date']}"
    details = [provenance["winner"]] if provenance.get("winner") else []
    if provenance.get("seeds_best"):
        details.append(f"{len(provenance['seeds_best'])} seeds")
    if fresh := provenance.get("fresh_seed_check"):
        details.append(f"{fresh['reached']} of {fresh['seeds']} fresh seeds reach it")
    if details:
        origin += f" ({', '.join(details)})"
    return {
        "workload": info.name,
        "base": info.base_name,
        "variant": info.variant or "",
        "mirrors": info.mirrors,
        "metric": f"{info.target_metric_name} ({info.metric_direction})",
        "validation_target": targets.validation_target_value,
        "test_target": targets.test_target_value,
        "budget_sec": targets.max_allowed_runtime_sec,
        "targets_from": origin,  # method, date, the winning optimizer, its seeds and the fresh-seed check
    }


def workload_class(name: str) -> type[Workload]:
    """The class registered as ``name`` (this imports its module, and torch)."""
    module_name, class_name = workload_info(name).class_path.split(":")
    return getattr(importlib.import_module(module_name), class_name)


def get_workload(
    name: str, device: str | torch.device = "cpu", data_dir: str | None = None, scale: str = "cpu"
) -> Workload:
    """An instance of workload ``name``; ``scale`` picks its problem size ("cpu", "gpu" or "tiny")."""
    return workload_class(name)(device=device, data_dir=data_dir, scale=scale)
