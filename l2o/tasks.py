"""The meta-training task family, disjoint from the suite: small MLPs and CNNs, of varied width,
depth, activation and batch size, classifying generated data, with varied run lengths.

A task is a ``TaskSpec`` (a few numbers); its data, its model's initial weights and its batch
order are drawn from generators seeded by ``spec.seed``, so a task is rebuilt exactly from its
spec (a resumed meta-training run does not store data). Training tasks and held-out tasks come
from separate seed ranges, and held-out tasks also use widths never drawn for training.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "silu": nn.SiLU}
TRAIN_WIDTHS = (8, 16, 32, 64)
HELD_OUT_WIDTHS = (12, 24, 48)
HELD_OUT_SEED_BASE = 1_000_000_000  # training seeds stay below it
IMAGE_SIDE = 8


@dataclass(frozen=True)
class TaskSpec:
    kind: str  # "mlp" or "cnn"
    seed: int
    input_dim: int  # features (mlp); ignored by cnn, which reads IMAGE_SIDE x IMAGE_SIDE images
    widths: tuple[int, ...]  # hidden widths (mlp) or conv channels (cnn)
    activation: str
    num_classes: int
    batch_size: int
    length: int  # inner training steps
    num_examples: int = 1024

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TaskSpec:
        return cls(**{**d, "widths": tuple(d["widths"])})


def sample_task(
    rng: np.random.Generator, *, held_out: bool = False, lengths: tuple[int, int] = (60, 300), cnn_share: float = 0.3
) -> TaskSpec:
    """One random task; ``held_out`` draws seeds and widths that training never draws."""
    widths = HELD_OUT_WIDTHS if held_out else TRAIN_WIDTHS
    seed = int(rng.integers(0, 2**30)) + (HELD_OUT_SEED_BASE if held_out else 0)
    kind = "cnn" if rng.random() < cnn_share else "mlp"
    depth = int(rng.integers(1, 3 if kind == "cnn" else 4))
    return TaskSpec(
        kind=kind,
        seed=seed,
        input_dim=int(rng.choice((8, 16, 32))),
        widths=tuple(int(rng.choice(widths)) for _ in range(depth)),
        activation=str(rng.choice(list(ACTIVATIONS))),
        num_classes=int(rng.choice((2, 4, 8))),
        batch_size=int(rng.choice((16, 32, 64, 128))),
        length=int(rng.integers(lengths[0], lengths[1] + 1)),
    )


def build_model(spec: TaskSpec) -> nn.Module:
    """The task's model with its initial weights (drawn from ``spec.seed``)."""
    act = ACTIVATIONS[spec.activation]
    layers: list[nn.Module] = []
    if spec.kind == "mlp":
        width = spec.input_dim
        for w in spec.widths:
            layers += [nn.Linear(width, w), act()]
            width = w
        layers.append(nn.Linear(width, spec.num_classes))
    else:
        channels = 1
        for c in spec.widths:
            layers += [nn.Conv2d(channels, c, 3, padding=1), act()]
            channels = c
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, spec.num_classes)]
    model = nn.Sequential(*layers)
    generator = torch.Generator().manual_seed(spec.seed)
    with torch.no_grad():
        for p in model.parameters():
            fan_in = p[0].numel() if p.dim() > 1 else 1
            p.copy_(torch.randn(p.shape, generator=generator) / fan_in**0.5 if p.dim() > 1 else torch.zeros_like(p))
    return model


def make_data(spec: TaskSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and labels: labels from a random teacher network on the inputs, 10 % flipped."""
    generator = torch.Generator().manual_seed(spec.seed + 1)
    n = spec.num_examples
    if spec.kind == "mlp":
        x = torch.randn(n, spec.input_dim, generator=generator)
    else:
        noise = torch.randn(n, 1, IMAGE_SIDE + 2, IMAGE_SIDE + 2, generator=generator)
        x = nn.functional.avg_pool2d(noise, 3, stride=1) * 3.0  # smooth images, unit-ish scale
    flat = x.reshape(n, -1)
    w1 = torch.randn(flat.shape[1], 32, generator=generator) / flat.shape[1] ** 0.5
    w2 = torch.randn(32, spec.num_classes, generator=generator) / 32**0.5
    labels = (torch.tanh(flat @ w1) @ w2).argmax(dim=1)
    flip = torch.rand(n, generator=generator) < 0.1
    labels = torch.where(flip, torch.randint(0, spec.num_classes, (n,), generator=generator), labels)
    return x, labels


class Task:
    """A built task: model (for its structure), data, and a functional loss on a parameter list."""

    def __init__(self, spec: TaskSpec) -> None:
        self.spec = spec
        self.model = build_model(spec)
        self.names = [name for name, _ in self.model.named_parameters()]
        self.x, self.y = make_data(spec)

    def initial_params(self) -> list[torch.Tensor]:
        return [p.detach().clone() for p in self.model.parameters()]

    def batch_generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.spec.seed + 2)

    def batch_indices(self, generator: torch.Generator) -> torch.Tensor:
        return torch.randint(0, self.spec.num_examples, (self.spec.batch_size,), generator=generator)

    def loss(self, params: list[torch.Tensor], indices: torch.Tensor | None = None) -> torch.Tensor:
        x, y = (self.x, self.y) if indices is None else (self.x[indices], self.y[indices])
        logits = torch.func.functional_call(self.model, dict(zip(self.names, params, strict=True)), (x,))
        return nn.functional.cross_entropy(logits, y)

    def loss_and_grads(
        self, params: list[torch.Tensor], indices: torch.Tensor, keep_graph: bool = False
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The batch loss and its gradients. The gradients are always detached (as L2O-DM treats
        them: no second derivatives); with ``keep_graph`` the loss stays a function of
        ``params``, so a meta-loss built from it backpropagates into whatever made them."""
        leaves = params if keep_graph else [p.detach().requires_grad_(True) for p in params]
        with torch.enable_grad():
            loss = self.loss(leaves, indices)
            grads = torch.autograd.grad(loss, leaves, retain_graph=keep_graph)
        return (loss if keep_graph else loss.detach()), [g.detach() for g in grads]
