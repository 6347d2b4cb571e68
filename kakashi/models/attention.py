"""Attention building blocks the transformer models share: sinusoidal positions, banded masks,
multi-head attention and a pre-norm block with optional cross-attention and a key/value cache.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

MAX_PERIOD = 10_000.0  # longest wavelength of the sinusoidal positions, frames


def positions(n: int, dim: int, device=None) -> Tensor:
    """Sinusoidal position codes [n, dim] of frames 0..n-1."""
    pos = torch.arange(n, dtype=torch.float32, device=device)[:, None]
    freq = torch.exp(-math.log(MAX_PERIOD) * torch.arange(0, dim, 2, dtype=torch.float32, device=device) / dim)
    out = torch.zeros(n, dim, device=device)
    out[:, 0::2] = torch.sin(pos * freq)
    out[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return out


def band_mask(rows: Tensor, cols: Tensor, before: int, after: int) -> Tensor:
    """Additive attention mask [len(rows), len(cols)]: 0 where rows[i] - before <= cols[j] <=
    rows[i] + after, -inf elsewhere (frame indices)."""
    d = cols[None, :] - rows[:, None]
    allowed = (d >= -before) & (d <= after)
    return torch.zeros(d.shape, device=rows.device).masked_fill(~allowed, float("-inf"))


class Attention(nn.Module):
    """Multi-head attention over [B, S, hidden] with an additive mask [S_q, S_k]."""

    def __init__(self, hidden: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.q = nn.Linear(hidden, hidden)
        self.kv = nn.Linear(hidden, 2 * hidden)
        self.out = nn.Linear(hidden, hidden)

    def split(self, x: Tensor) -> Tensor:
        B, S, D = x.shape
        return x.reshape(B, S, self.heads, D // self.heads).transpose(1, 2)  # [B, heads, S, D/heads]

    def keys(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Keys and values [B, heads, S, D/heads] of x [B, S, hidden]."""
        k, v = self.kv(x).chunk(2, dim=-1)
        return self.split(k), self.split(v)

    def forward(self, x: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> Tensor:
        y = F.scaled_dot_product_attention(self.split(self.q(x)), k, v, attn_mask=mask,
                                           dropout_p=self.dropout if self.training else 0.0)
        B, _, S, _ = y.shape
        return self.out(y.transpose(1, 2).reshape(B, S, -1))             # [B, S, hidden]


class Block(nn.Module):
    """Pre-norm block: band self-attention, then (decoder only) cross-attention to the music,
    then a feed-forward layer, each added to the residual stream [B, S, hidden]."""

    def __init__(self, hidden: int, heads: int, dropout: float, cross: bool):
        super().__init__()
        self.self_norm, self.self_attn = nn.LayerNorm(hidden), Attention(hidden, heads, dropout)
        if cross:
            self.cross_norm, self.cross_attn = nn.LayerNorm(hidden), Attention(hidden, heads, dropout)
        self.ff_norm = nn.LayerNorm(hidden)
        self.ff = nn.Sequential(nn.Linear(hidden, 2 * hidden), nn.GELU(), nn.Linear(2 * hidden, hidden),
                                nn.Dropout(dropout))

    def forward(self, x: Tensor, self_mask: Tensor, cache: tuple[Tensor, Tensor] | None = None,
                music: tuple[Tensor, Tensor] | None = None, cross_mask: Tensor | None = None):
        """x [B, S, hidden]; cache: keys/values of earlier steps (prepended); music: the
        music's keys/values. Returns (x, this call's keys/values including the cache)."""
        h = self.self_norm(x)
        k, v = self.self_attn.keys(h)
        if cache is not None:
            k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
        x = x + self.self_attn(h, k, v, self_mask)
        if music is not None:
            x = x + self.cross_attn(self.cross_norm(x), *music, cross_mask)
        return x + self.ff(self.ff_norm(x)), (k, v)
