"""Which workloads exist: one line per workload, resolved lazily so listing imports nothing heavy."""

from __future__ import annotations

import difflib
import importlib
from types import MappingProxyType

import torch

from algobench.errors import UnknownWorkloadError
from algobench.workloads.base import Workload

WORKLOADS: MappingProxyType[str, str] = MappingProxyType(
    {
        "digits_mlp": "algobench.workloads.digits_mlp:DigitsMLP",
        "mnist1d": "algobench.workloads.mnist1d:Mnist1DCNN",
        "image_cnn": "algobench.workloads.image_cnn:ImageCNN",
        "image_cnn_silu": "algobench.workloads.image_cnn:ImageCNNSiLU",
        "image_cnn_gelu": "algobench.workloads.image_cnn:ImageCNNGELU",
        "image_cnn_bn_scale": "algobench.workloads.image_cnn:ImageCNNBNScale",
        "image_vit": "algobench.workloads.image_vit:ImageViT",
        "image_vit_post_ln": "algobench.workloads.image_vit:ImageViTPostLN",
        "image_vit_map": "algobench.workloads.image_vit:ImageViTMAP",
        "image_vit_glu": "algobench.workloads.image_vit:ImageViTGLU",
        "lm": "algobench.workloads.lm:LanguageModel",
        "lm_post_ln": "algobench.workloads.lm:LanguageModelPostLN",
        "lm_attention_temp": "algobench.workloads.lm:LanguageModelAttentionTemp",
        "lm_glu": "algobench.workloads.lm:LanguageModelGLU",
        "translation": "algobench.workloads.translation:Translation",
        "translation_post_ln": "algobench.workloads.translation:TranslationPostLN",
        "translation_attention_temp": "algobench.workloads.translation:TranslationAttentionTemp",
        "translation_glu_tanh": "algobench.workloads.translation:TranslationGLUTanh",
        "click_through": "algobench.workloads.click_through:ClickThrough",
        "click_through_layernorm": "algobench.workloads.click_through:ClickThroughLayerNorm",
        "click_through_embed_init_scale": "algobench.workloads.click_through:ClickThroughEmbedInitScale",
        "click_through_resnet": "algobench.workloads.click_through:ClickThroughResNet",
        "mri": "algobench.workloads.mri:MRI",
        "mri_channels": "algobench.workloads.mri:MRIChannels",
        "mri_tanh": "algobench.workloads.mri:MRITanh",
        "mri_layernorm": "algobench.workloads.mri:MRILayerNorm",
        "molecules": "algobench.workloads.molecules:Molecules",
        "molecules_gelu": "algobench.workloads.molecules:MoleculesGELU",
        "molecules_silu": "algobench.workloads.molecules:MoleculesSiLU",
        "molecules_model_size": "algobench.workloads.molecules:MoleculesModelSize",
        "speech": "algobench.workloads.speech:Speech",
        "speech_attention_temp": "algobench.workloads.speech:SpeechAttentionTemp",
        "speech_layernorm": "algobench.workloads.speech:SpeechLayerNorm",
        "speech_gelu": "algobench.workloads.speech:SpeechGELU",
        "mnist": "algobench.workloads.mnist:MNIST",
        "cifar10": "algobench.workloads.cifar10:CIFAR10",
    }
)


SUITE: tuple[str, ...] = (
    "image_cnn", "image_vit", "lm", "translation", "click_through", "mri", "molecules", "speech",
)  # fmt: skip
"""The eight base workloads that mirror AlgoPerf's problems; ``--workloads suite`` selects them."""


def expand_workload_names(names: list[str]) -> list[str]:
    """``names`` with ``suite`` replaced by the :data:`SUITE`, duplicates dropped, each checked to exist."""
    expanded: list[str] = []
    for name in names:
        for member in SUITE if name == "suite" else (name,):
            workload_class(member)  # an unknown name fails here, with suggestions
            if member not in expanded:
                expanded.append(member)
    return expanded


def workload_names() -> list[str]:
    return list(WORKLOADS)


def workload_class(name: str) -> type[Workload]:
    """The class registered as ``name``; an unknown name gets the closest suggestions."""
    try:
        target = WORKLOADS[name]
    except KeyError:
        close = difflib.get_close_matches(name, WORKLOADS, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownWorkloadError(
            f"unknown workload {name!r}.{hint} Known workloads: {', '.join(WORKLOADS)}"
        ) from None
    module_name, class_name = target.split(":")
    return getattr(importlib.import_module(module_name), class_name)


def get_workload(
    name: str, device: str | torch.device = "cpu", data_dir: str | None = None, scale: str = "cpu"
) -> Workload:
    """An instance of workload ``name``; ``scale`` picks its problem size ("cpu" or "gpu")."""
    return workload_class(name)(device=device, data_dir=data_dir, scale=scale)
