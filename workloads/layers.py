"""Transformer pieces shared by the ViT, language-model, translation and speech workloads.

The knobs are the ones AlgoPerf's variants turn: pre- or post-layer-norm, attention
temperature, a GLU feed-forward and its activation. Written once here so that a variant is a
one-line change of a workload's class attribute.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
}


def activation(name: str) -> nn.Module:
    return ACTIVATIONS[name]()


@dataclass(frozen=True)
class BlockConfig:
    """One transformer block's architecture."""

    dim: int
    heads: int
    mlp_ratio: int = 2
    post_ln: bool = False
    attention_temperature: float = 1.0
    glu: bool = False
    activation: str = "gelu"
    dropout: float = 0.0


class Attention(nn.Module):
    """Multi-head attention; logits are divided by ``temperature`` on top of 1/sqrt(d_head)."""

    def __init__(self, config: BlockConfig) -> None:
        super().__init__()
        self.heads = config.heads
        self.scale = 1.0 / (config.attention_temperature * (config.dim // config.heads) ** 0.5)
        self.q = nn.Linear(config.dim, config.dim)
        self.kv = nn.Linear(config.dim, 2 * config.dim)
        self.out = nn.Linear(config.dim, config.dim)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        return x.view(b, t, self.heads, d // self.heads).transpose(1, 2)

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        causal: bool = False,
        key_padding: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``key_padding``: bool [batch, keys], True where a key is padding (never attended)."""
        context = x if context is None else context
        q = self._split(self.q(x))
        k, v = (self._split(t) for t in self.kv(context).chunk(2, dim=-1))
        mask = None
        if key_padding is not None:
            mask = ~key_padding[:, None, None, :]
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal and mask is None, scale=self.scale)
        b, h, t, dh = y.shape
        return self.out(y.transpose(1, 2).reshape(b, t, h * dh))


class FeedForward(nn.Module):
    def __init__(self, config: BlockConfig) -> None:
        super().__init__()
        hidden = config.dim * config.mlp_ratio
        self.glu = config.glu
        self.up = nn.Linear(config.dim, hidden * (2 if config.glu else 1))
        self.act = activation(config.activation)
        self.down = nn.Linear(hidden, config.dim)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.glu:
            gate, value = self.up(x).chunk(2, dim=-1)
            return self.down(self.drop(self.act(gate) * value))
        return self.down(self.drop(self.act(self.up(x))))


class Residual(nn.Module):
    """``x + f(x)`` with the layer norm before f (pre-LN) or after the sum (post-LN)."""

    def __init__(self, dim: int, post_ln: bool, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.post_ln = post_ln
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, f) -> torch.Tensor:  # noqa: ANN001 - a callable
        if self.post_ln:
            return self.norm(x + self.drop(f(x)))
        return x + self.drop(f(self.norm(x)))


class Block(nn.Module):
    """Self-attention (optionally causal), optional cross-attention, feed-forward."""

    def __init__(self, config: BlockConfig, cross: bool = False) -> None:
        super().__init__()
        self.attn = Attention(config)
        self.attn_res = Residual(config.dim, config.post_ln, config.dropout)
        self.cross = Attention(config) if cross else None
        self.cross_res = Residual(config.dim, config.post_ln, config.dropout) if cross else None
        self.mlp = FeedForward(config)
        self.mlp_res = Residual(config.dim, config.post_ln, config.dropout)

    def forward(
        self,
        x: torch.Tensor,
        causal: bool = False,
        padding: torch.Tensor | None = None,
        memory: torch.Tensor | None = None,
        memory_padding: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = self.attn_res(x, lambda h: self.attn(h, causal=causal, key_padding=padding))
        if self.cross is not None:
            x = self.cross_res(x, lambda h: self.cross(h, memory, key_padding=memory_padding))
        return self.mlp_res(x, self.mlp)


class Encoder(nn.Module):
    """A stack of blocks with a final layer norm (pre-LN) so the output is normalised."""

    def __init__(self, config: BlockConfig, depth: int, cross: bool = False) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(Block(config, cross) for _ in range(depth))
        self.norm = nn.LayerNorm(config.dim) if not config.post_ln else nn.Identity()

    def forward(self, x: torch.Tensor, **kwargs) -> torch.Tensor:  # noqa: ANN003 - Block's options
        for block in self.blocks:
            x = block(x, **kwargs)
        return self.norm(x)
