"""Every registered workload and variant: init, a training step, an evaluation, deterministic
data, and variants that differ from their base in the intended way only.

Runs at ``scale="tiny"`` (the same generators and models, small) so the whole file takes
seconds per workload.
"""

from __future__ import annotations

import math

import pytest
import torch

from algobench import spec
from algobench.workloads import get_workload, workload_class, workload_names
from algobench.workloads.base import ArrayWorkload, take
from algobench.workloads.registry import SUITE, describe, load_targets, workload_info

ALL = [n for n in workload_names() if not workload_class(n).needs_data_dir]  # real data: test_workloads_real_data
VARIANTS = [n for n in ALL if workload_class(n).variant is not None]

# What each variant is meant to change, and nothing else (AlgoPerf's variants, scaled down).
INTENDED = {
    "image_cnn_silu": {"activation": "silu"},
    "image_cnn_gelu": {"activation": "gelu"},
    "image_cnn_bn_scale": {"bn_init_scale": 8.0},
    "image_vit_post_ln": {"post_ln": True},
    "image_vit_map": {"pooling": "map"},
    "image_vit_glu": {"glu": True},
    "lm_post_ln": {"post_ln": True},
    "lm_attention_temp": {"attention_temperature": 1.6},
    "lm_glu": {"glu": True},
    "translation_post_ln": {"post_ln": True},
    "translation_attention_temp": {"attention_temperature": 1.6},
    "translation_glu_tanh": {"glu": True, "mlp_activation": "tanh"},
    "click_through_layernorm": {"layer_norm": True},
    "click_through_embed_init_scale": {"embed_init_scale": 16.0},
    "click_through_resnet": {"residual": True},
    "mri_channels": {"channel_multiplier": 2},
    "mri_tanh": {"activation": "tanh"},
    "mri_layernorm": {"norm": "layer"},
    "molecules_gelu": {"activation": "gelu"},
    "molecules_silu": {"activation": "silu"},
    "molecules_model_size": {"width_multiplier": 2, "extra_depth": 1},
    "speech_attention_temp": {"attention_temperature": 1.6},
    "speech_layernorm": {"conv_norm": "layer"},
    "speech_gelu": {"activation": "gelu"},
}
NAMING = {"name", "base_name", "variant", "target_metric_name", "metric_direction", "mirrors"}  # the registry's


@pytest.fixture(scope="module")
def tiny():
    """One tiny-scale instance per workload name, shared by the tests of this module."""
    made: dict[str, ArrayWorkload] = {}

    def get(name: str) -> ArrayWorkload:
        if name not in made:
            made[name] = get_workload(name, scale="tiny")
        return made[name]

    return get


def _train_steps(workload: ArrayWorkload, steps: int, batch_size: int = 16) -> tuple[torch.nn.Module, list[float]]:
    model, state = workload.init_model_fn(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    batch = next(workload._build_input_queue(0, "train", None, batch_size))
    losses = []
    for _ in range(steps):
        logits, state = workload.model_fn(model, batch, state, spec.ForwardPassMode.TRAIN, None, True)
        out = workload.loss_fn(batch["targets"], logits, batch.get("weights"))
        loss = out["summed"] / out["n_valid_examples"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return model, losses


def test_the_suite_has_eight_workloads_with_three_variants_each() -> None:
    for base in SUITE:
        variants = [n for n in ALL if workload_class(n).base_name == base and n != base]
        assert len(variants) == 3, (base, variants)
        assert workload_class(base).mirrors


@pytest.mark.parametrize("name", ALL)
def test_init_gives_typed_parameters_and_targets(name: str, tiny) -> None:
    workload = tiny(name)
    model, _ = workload.init_model_fn(0)
    keys = {k for k, _ in model.named_parameters()}
    assert set(workload.param_shapes) == keys == set(workload.model_params_types)
    assert all(isinstance(t, spec.ParameterType) for t in workload.model_params_types.values())
    assert workload.max_allowed_runtime_sec > 0
    assert workload.metric_direction in ("min", "max")
    assert workload.target_provenance.get("method")
    assert describe(name)["workload"] == name


@pytest.mark.parametrize("name", workload_names())
def test_a_class_has_the_facts_of_its_registry_line(name: str) -> None:
    info, cls = workload_info(name), workload_class(name)
    assert (cls.name, cls.base_name, cls.variant, cls.mirrors) == (name, info.base_name, info.variant, info.mirrors)
    assert (cls.target_metric_name, cls.metric_direction) == (info.target_metric_name, info.metric_direction)
    assert cls.load_targets() == load_targets(name)
    if info.variant is not None:
        base = workload_info(info.base_name)
        assert name == f"{base.name}_{info.variant}" and base.variant is None
        assert (info.target_metric_name, info.mirrors) == (base.target_metric_name, base.mirrors)


def test_a_subclass_no_line_names_keeps_its_parents_facts() -> None:
    cls = workload_class("image_cnn_silu")
    shifted = type("Shifted", (cls,), {"data_seed": 99})
    assert (shifted.name, shifted.variant, shifted.target_metric_name) == ("image_cnn_silu", "silu", "accuracy")


@pytest.mark.parametrize("name", ALL)
def test_training_steps_lower_the_loss_on_a_batch(name: str, tiny) -> None:
    _, losses = _train_steps(tiny(name), steps=8)
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("name", ALL)
def test_evaluation_reports_the_target_metric(name: str, tiny) -> None:
    workload = tiny(name)
    model, state = workload.init_model_fn(0)
    metrics = workload.eval_model(256, model, state, 0, None, None, 0)
    metric = workload.target_metric_name
    for split in ("validation", "test"):
        assert math.isfinite(metrics[f"{split}/{metric}"])
        assert math.isfinite(metrics[f"{split}/loss"])
        assert metrics[f"{split}/num_examples"] == getattr(workload, f"num_{split}_examples")
    assert math.isfinite(metrics["train/loss"])
    # An untrained model is far from its target.
    assert not workload.has_reached_validation_target(metrics)


@pytest.mark.parametrize("name", SUITE)
def test_data_is_deterministic_for_a_seed(name: str, tmp_path, monkeypatch) -> None:
    def load(cache: str, seed_shift: int = 0):
        monkeypatch.setenv("ALGOBENCH_CACHE_DIR", str(tmp_path / cache))
        cls = workload_class(name)
        shifted = type("Shifted", (cls,), {"data_seed": cls.data_seed + seed_shift})
        return shifted(scale="tiny").load_splits()

    first, again, other = load("a"), load("b"), load("c", seed_shift=1)
    for split in ("train", "validation", "test"):
        assert torch.equal(getattr(first, split)["targets"], getattr(again, split)["targets"])
        _assert_tree_equal(getattr(first, split)["inputs"], getattr(again, split)["inputs"])
    assert not _tree_equal(first.train["inputs"], other.train["inputs"])


def _tree_equal(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_tree_equal(a[k], b[k]) for k in a)
    return a.shape == b.shape and torch.equal(a, b)


def _assert_tree_equal(a, b) -> None:
    assert _tree_equal(a, b)


@pytest.mark.parametrize("name", VARIANTS)
def test_variant_changes_only_its_architecture_knob(name: str, tiny) -> None:
    cls = workload_class(name)
    base = workload_class(cls.base_name)
    assert cls.__bases__ == (base,)
    changed = {k: v for k, v in vars(cls).items() if not k.startswith("_") and k not in NAMING}
    assert changed == INTENDED[name]
    for key, value in changed.items():
        assert getattr(base, key) != value
    # Same data, same batch: the same task.
    variant, original = tiny(name), tiny(cls.base_name)
    assert torch.equal(variant.splits.train["targets"], original.splits.train["targets"])
    # A different network: other shapes, or other outputs from the same seed.
    model_v, _ = variant.init_model_fn(0)
    model_b, _ = original.init_model_fn(0)
    inputs = take(original.splits.validation["inputs"], slice(0, 8))
    with torch.no_grad():
        model_v.eval(), model_b.eval()
        same_shapes = variant.param_shapes == original.param_shapes
        assert not same_shapes or not torch.allclose(model_v(inputs), model_b(inputs))


@pytest.mark.parametrize("name", SUITE)
def test_input_queue_resumes_where_it_stopped(name: str, tiny) -> None:
    workload = tiny(name)
    queue = workload._build_input_queue(7, "train", None, 16)
    for _ in range(3):
        next(queue)
    saved = queue.state_dict()
    expected = next(queue)
    resumed = workload._build_input_queue(7, "train", None, 16)
    resumed.load_state_dict(saved)
    got = next(resumed)
    assert torch.equal(got["targets"], expected["targets"])
    _assert_tree_equal(got["inputs"], expected["inputs"])


def test_unknown_scale_is_refused_by_name() -> None:
    from algobench.errors import AlgobenchError

    with pytest.raises(AlgobenchError, match="no scale 'huge'"):
        get_workload("image_cnn", scale="huge")


@pytest.mark.parametrize("name", SUITE)
def test_gpu_scale_builds_a_larger_model(name: str) -> None:
    count = lambda scale: sum(p.numel() for p in get_workload(name, scale=scale).build_model().parameters())  # noqa: E731
    assert count("gpu") > 4 * count("cpu")
