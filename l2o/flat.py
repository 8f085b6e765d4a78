"""Every parameter's coordinates in a few flat buffers, so that a learned rule runs each of its
operations once over all of a model's coordinates instead of once per parameter tensor.

Per-tensor work (about 25 small operations per tensor, each paying Python and dispatch
overhead) dominated the learned optimizers' step on models with many tensors or large, sparsely
used ones (embedding tables). ``FlatState`` keeps the rule's state in one matrix, one row per state
key, and rewires the optimizer's per-parameter state to views into it, so checkpoints see the
usual ``state[p][key]`` tensors while the rule updates them all in one pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from algobench.errors import AlgobenchError


class FlatState:
    """The optimizer state of ``params`` as rows of one matrix (``rows``), plus reusable scratch
    buffers (``scratch``) so that a step allocates (and page-faults) no new large tensors.

    Built by copying ``state``, whose tensors become views into it; ``serves`` says whether that
    still holds (a ``load_state_dict`` or another set of parameters means building a new one).
    """

    def __init__(self, params: list[torch.Tensor], state: Mapping[torch.Tensor, dict[str, Any]]) -> None:
        kinds = " and ".join(sorted({f"{p.dtype} on {p.device}" for p in params}))
        if " and " in kinds:
            raise AlgobenchError(f"learned optimizer: parameters of {kinds}; it needs one dtype and device")
        self.params = list(params)
        self.sizes = [p.numel() for p in params]
        self.numel = sum(self.sizes)
        self.keys = [k for k in state[params[0]] if k != "step"]
        per_key = [[state[p][key] for p in params] for key in self.keys]
        lengths = {sum(t.numel() for t in tensors) for tensors in per_key}
        if len(lengths) > 1:
            raise ValueError(f"state tensors of unequal total sizes {sorted(lengths)} cannot share one matrix")
        self.matrix = torch.stack([torch.cat([t.reshape(-1) for t in tensors]) for tensors in per_key])
        self.views: list[dict[str, torch.Tensor]] = [{} for _ in params]
        for row, key, tensors in zip(self.matrix, self.keys, per_key, strict=True):
            pieces = row.split([t.numel() for t in tensors])
            for p, t, piece, views in zip(params, tensors, pieces, self.views, strict=True):
                views[key] = state[p][key] = piece.view(t.shape)
        self.counts = torch.tensor(self.sizes)
        self._scratch: dict[str, torch.Tensor] = {}
        self._pieces: dict[tuple[str, tuple[int, int] | None, bool], list[torch.Tensor]] = {}

    def serves(self, params: list[torch.Tensor], state: Mapping[torch.Tensor, dict[str, Any]]) -> bool:
        """Whether these are the parameters it was built for and their state is still its views."""
        return (
            len(params) == len(self.params)
            and all(a is b for a, b in zip(params, self.params, strict=True))
            and all(state[p].get(k) is v for p, views in zip(params, self.views, strict=True) for k, v in views.items())
        )

    def rows(self, *keys: str) -> torch.Tensor:
        """The matrix rows of consecutive state ``keys`` (one (len(keys), length) view)."""
        first = self.keys.index(keys[0])
        if tuple(self.keys[first : first + len(keys)]) != keys:
            raise ValueError(f"state keys {keys} are not consecutive in {self.keys}")
        return self.matrix[first : first + len(keys)]

    def scratch(self, name: str, *shape: int, fill: float | None = None) -> torch.Tensor:
        """A buffer kept between steps, reallocated only when its shape changes: it holds what the
        last step left in it, or ``fill`` (if given) when newly made."""
        buffer = self._scratch.get(name)
        if buffer is None or tuple(buffer.shape) != shape:
            made = self.matrix.new_empty(shape) if fill is None else self.matrix.new_full(shape, fill)
            buffer = self._scratch[name] = made
            self._pieces = {key: views for key, views in self._pieces.items() if key[0] != name}
        return buffer

    def pieces(self, name: str, rows: tuple[int, int] | None = None, shaped: bool = False) -> list[torch.Tensor]:
        """Views of scratch buffer ``name`` (or of its ``rows``), one per parameter tensor and row,
        row after row: flat, or ``shaped`` as the parameters (for ``torch._foreach_*``); made once."""
        key = (name, rows, shaped)
        if key not in self._pieces:
            buffer = self._scratch[name] if rows is None else self._scratch[name][rows[0] : rows[1]]
            copies = buffer.numel() // self.numel
            pieces = list(buffer.reshape(-1).split(self.sizes * copies))
            if shaped:
                pieces = [q.view(p.shape) for q, p in zip(pieces, self.params * copies, strict=True)]
            self._pieces[key] = pieces
        return self._pieces[key]
