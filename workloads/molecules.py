"""A message-passing GNN on generated molecule-like graphs; stands in for ogbg (ogbg-molpcba).

Graphs are grown atom by atom under valence rules (C4, N3, O2, S2, F1), with single and
double bonds and ring closures that make 5- and 6-rings. The twelve binary properties are
functions of structure at different ranges (rings, functional groups two bonds wide,
distances, counts, shape), with a little label noise, so a model must pass messages several
hops. The metric is mean average precision over the properties, as ogbg's. Variants follow
AlgoPerf's ogbg variants (GELU, SiLU, a larger model).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from algobench import spec
from algobench.workloads.base import Arrays, ArrayWorkload, Splits
from algobench.workloads.data_cache import cached_arrays
from algobench.workloads.layers import activation

GENERATOR_VERSION = 2
ATOMS = ("C", "N", "O", "S", "F")  # type ids 1..5; 0 is padding
VALENCE = np.array([0, 4, 3, 2, 2, 1])
ATOM_P = (0.6, 0.15, 0.15, 0.04, 0.06)
NUM_TASKS = 12
LABEL_NOISE = 0.03
CARBON, NITROGEN, OXYGEN, SULFUR, FLUORINE = 1, 2, 3, 4, 5


def _grow(rng: np.random.Generator, max_nodes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
    """One molecule: atom types [n], bond orders [n, n], bond distances [n, n], ring sizes.

    Distances are kept up to date as bonds are added (a new leaf is one further than its
    parent; a ring bond can only shorten paths through it), which is what makes generating
    thousands of graphs take seconds.
    """
    n = int(rng.integers(8, max_nodes + 1))
    atoms = 1 + rng.choice(len(ATOMS), n, p=ATOM_P)
    atoms[0] = CARBON
    bonds = np.zeros((n, n), dtype=np.int64)
    dist = np.zeros((n, n))
    free = VALENCE[atoms].copy()
    doubles = rng.random(n) < 0.2
    for i in range(1, n):
        candidates = np.flatnonzero(free[:i] > 0)
        if len(candidates) == 0:
            n = i
            atoms, bonds, dist, free = atoms[:n], bonds[:n, :n], dist[:n, :n], free[:n]
            break
        j = candidates[int(rng.integers(len(candidates)))]
        order = 2 if (doubles[i] and free[j] >= 2 and free[i] >= 2) else 1
        bonds[i, j] = bonds[j, i] = order
        free[i] -= order
        free[j] -= order
        dist[i, :i] = dist[:i, i] = dist[j, :i] + 1
    rings = []
    for _ in range(int(rng.integers(0, 3))):
        pairs = np.argwhere(np.triu((dist == 4) | (dist == 5)) & (free[:, None] > 0) & (free[None, :] > 0))
        if len(pairs) == 0:
            break
        a, b = pairs[int(rng.integers(len(pairs)))]
        rings.append(int(dist[a, b]) + 1)
        bonds[a, b] = bonds[b, a] = 1
        free[a] -= 1
        free[b] -= 1
        dist = np.minimum(dist, np.minimum(dist[:, [a]] + 1 + dist[[b], :], dist[:, [b]] + 1 + dist[[a], :]))
    return atoms, bonds, dist, rings


def _properties(atoms: np.ndarray, bonds: np.ndarray, d: np.ndarray, rings: list[int]) -> np.ndarray:
    is_ = lambda t: atoms == t  # noqa: E731
    double = bonds == 2
    carbonyl_c = is_(CARBON) & (double & is_(OXYGEN)[None, :]).any(1)
    near = lambda a, b, k: bool(((d <= k) & is_(a)[:, None] & is_(b)[None, :]).any())  # noqa: E731
    heavy_degree = (bonds > 0).sum(1)
    return np.array([
        len(rings) > 0,
        6 in rings,
        5 in rings,
        carbonyl_c.any(),  # C=O
        bool((is_(NITROGEN)[:, None] & (bonds == 1) & carbonyl_c[None, :]).any()),  # amide N-C(=O)
        is_(SULFUR).any(),
        is_(FLUORINE).sum() >= 2,
        near(NITROGEN, OXYGEN, 3) and not near(NITROGEN, OXYGEN, 1),  # N and O two or three bonds apart
        is_(CARBON).sum() >= 12,
        bool((is_(CARBON) & (heavy_degree == 4)).any()),  # a quaternary carbon
        is_(NITROGEN).sum() >= 3,
        d.max() >= 9,  # a long, thin molecule
    ], dtype=bool)  # fmt: skip


def make_molecules(n: int, max_nodes: int, seed: int) -> dict[str, np.ndarray]:
    """``n`` padded graphs: atom types [n, max_nodes], bond orders [n, max_nodes, max_nodes]
    (uint8), and noisy binary properties [n, NUM_TASKS]."""
    rng = np.random.default_rng(seed)
    atoms = np.zeros((n, max_nodes), dtype=np.int64)
    bonds = np.zeros((n, max_nodes, max_nodes), dtype=np.uint8)
    labels = np.zeros((n, NUM_TASKS), dtype=bool)
    for g in range(n):
        a, b, d, rings = _grow(rng, max_nodes)
        atoms[g, : len(a)], bonds[g, : len(a), : len(a)] = a, b
        labels[g] = _properties(a, b, d, rings)
    labels ^= rng.random(labels.shape) < LABEL_NOISE
    return {"atoms": atoms, "bonds": bonds, "labels": labels.astype(np.float32)}


def mean_average_precision(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Mean over tasks of average precision, skipping tasks with one class only (as ogbg)."""
    from sklearn.metrics import average_precision_score

    scores, labels = logits.cpu().numpy(), targets.cpu().numpy()
    aps = [
        average_precision_score(labels[:, t], scores[:, t])
        for t in range(labels.shape[1])
        if 0 < labels[:, t].sum() < len(labels)
    ]
    return float(np.mean(aps)) if aps else float("nan")


class MessagePassing(nn.Module):
    """One round: messages per bond order, summed over neighbours, then a residual MLP."""

    def __init__(self, dim: int, act: str, dropout: float) -> None:
        super().__init__()
        self.messages = nn.Linear(dim, 2 * dim)  # single- and double-bond messages
        self.norm = nn.LayerNorm(dim)
        self.update = nn.Sequential(nn.Linear(2 * dim, dim), activation(act), nn.Dropout(dropout), nn.Linear(dim, dim))

    def forward(self, h: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        b, n, d = h.shape
        per_order = self.messages(self.norm(h)).view(b, n, 2, d).transpose(1, 2)  # [b, 2, n, d]
        incoming = (adjacency @ per_order).sum(dim=1)  # [b, n, d]
        return h + self.update(torch.cat([self.norm(h), incoming], dim=-1))


class GNN(nn.Module):
    def __init__(self, dim: int, depth: int, act: str, dropout: float) -> None:
        super().__init__()
        self.embed = nn.Embedding(len(ATOMS) + 1, dim, padding_idx=0)
        self.layers = nn.ModuleList(MessagePassing(dim, act, dropout) for _ in range(depth))
        self.readout = nn.Sequential(nn.LayerNorm(2 * dim), nn.Linear(2 * dim, dim), activation(act))
        self.head = nn.Linear(dim, NUM_TASKS)

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        atoms, bonds = inputs["atoms"], inputs["bonds"].long()
        real = (atoms > 0).unsqueeze(-1).float()
        adjacency = torch.stack([(bonds == 1), (bonds == 2)], dim=1).float()  # [b, 2, n, n]
        h = self.embed(atoms)
        for layer in self.layers:
            h = layer(h, adjacency) * real
        mean = h.sum(1) / real.sum(1).clamp(min=1)
        largest = (h - 1e4 * (1 - real)).amax(1)
        return self.head(self.readout(torch.cat([mean, largest], dim=-1)))


class Molecules(ArrayWorkload):
    description: ClassVar[str] = "message-passing GNN (3 rounds, width 64) on generated molecule-like graphs"
    loss_type: ClassVar[spec.LossType] = spec.LossType.SIGMOID_CROSS_ENTROPY
    default_batch_size: ClassVar[int] = 128
    step_hint: ClassVar[int] = 1050  # = reference steps in the budget, AlgoPerf's definition (tests check)
    eval_period_time_sec: ClassVar[float] = 5.0
    eval_batch_size: ClassVar[int] = 1024
    data_seed: ClassVar[int] = 7
    sizes = MappingProxyType(
        {
            "tiny": {"max_nodes": 16, "n_train": 128, "n_validation": 64, "n_test": 64, "dim": 8, "depth": 1},
            "cpu": {"max_nodes": 24, "n_train": 12_000, "n_validation": 1500, "n_test": 1500, "dim": 64, "depth": 3},
            "gpu": {"max_nodes": 32, "n_train": 100_000, "n_validation": 5000, "n_test": 5000, "dim": 256,
                    "depth": 5},
        }
    )  # fmt: skip
    activation: ClassVar[str] = "relu"
    width_multiplier: ClassVar[int] = 1
    extra_depth: ClassVar[int] = 0
    dropout: ClassVar[float] = 0.1

    def load_splits(self) -> Splits:
        s = self.size
        total = s["n_train"] + s["n_validation"] + s["n_test"]
        recipe = {"version": GENERATOR_VERSION, "n": total, "max_nodes": s["max_nodes"], "seed": self.data_seed}
        a = cached_arrays("molecules", recipe, lambda: make_molecules(total, s["max_nodes"], self.data_seed))
        cuts = (s["n_train"], s["n_train"] + s["n_validation"])

        def part(lo: int, hi: int | None) -> Arrays:
            return {
                "inputs": {"atoms": torch.from_numpy(a["atoms"][lo:hi]), "bonds": torch.from_numpy(a["bonds"][lo:hi])},
                "targets": torch.from_numpy(a["labels"][lo:hi]),
            }

        return Splits(part(0, cuts[0]), part(cuts[0], cuts[1]), part(cuts[1], None))

    def build_model(self) -> nn.Module:
        s = self.size
        return GNN(s["dim"] * self.width_multiplier, s["depth"] + self.extra_depth, self.activation, self.dropout)

    def per_example_loss(self, labels: torch.Tensor, logits: torch.Tensor, label_smoothing: float) -> torch.Tensor:
        labels = labels * (1 - label_smoothing) + 0.5 * label_smoothing
        return F.binary_cross_entropy_with_logits(logits, labels, reduction="none").mean(dim=1)

    def compute_metrics(self, logits: torch.Tensor, targets: torch.Tensor, arrays: Arrays) -> dict[str, float]:
        return {
            "loss": self.per_example_loss(targets, logits, 0.0).mean().item(),
            "mean_average_precision": mean_average_precision(logits, targets),
        }


class MoleculesGELU(Molecules):
    activation: ClassVar[str] = "gelu"


class MoleculesSiLU(Molecules):
    activation: ClassVar[str] = "silu"


class MoleculesModelSize(Molecules):
    """AlgoPerf's ogbg ``model_size`` variant: wider and deeper."""

    width_multiplier: ClassVar[int] = 2
    extra_depth: ClassVar[int] = 1
