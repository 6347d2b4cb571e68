"""Beat time: a window's frames warped onto a grid of a fixed number of steps per beat, and back.

The `rhythm` features carry the beat phase (sin and cos of 2 pi b, b the frame's beat count,
kakashi.audio.beat_position); `beat_counts` reads b(t) back from them and `grid` lays `steps`
grid points on every beat, starting on the beat at or before the window's first frame. Warped
onto that grid (`sample`), a move that takes a beat takes `steps` grid points whatever the
song's tempo, so a model whose codes cover whole beats puts its moves on the beats.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from ..audio import RHYTHM_COLUMNS

PHASE = RHYTHM_COLUMNS["phase"].start   # column of sin(2 pi b); cos(2 pi b) follows it
MIN_TEMPO = 0.5                         # beats/s: music without beats is danced at least this fast


def beat_counts(audio: Tensor, fps: float) -> Tensor:
    """Beat count b [T, B] of every frame of `rhythm` features [T, B, 44] (normalised or not:
    only the angle of the one-beat phase is read), increasing by at least MIN_TEMPO / fps a frame;
    whole numbers fall on the beats."""
    angle = torch.atan2(audio[..., PHASE], audio[..., PHASE + 1]) / (2 * math.pi)   # [T, B] beats mod 1
    step = torch.diff(angle, dim=0)
    step = (step - torch.round(step)).clamp(min=MIN_TEMPO / fps)                    # unwrapped, forwards
    return torch.cat([angle[:1], angle[:1] + torch.cumsum(step, 0)])


def grid(b: Tensor, steps: int, cover: bool) -> tuple[Tensor, Tensor]:
    """Grid points of beat counts b [T, B]: (start [B], the beat at or before each column's first
    frame; positions [J, B], the fractional frame index of every grid point, `steps` per beat).
    J reaches past every column's last frame when `cover` (later points are clamped to it),
    else only to the shortest column's last whole point (every point inside its window: what
    training needs). Points before the first frame are clamped to it."""
    start = torch.floor(b[0])
    span = (b[-1] - start) * steps                                                  # [B] grid steps
    J = int(torch.ceil(span).max()) + 1 if cover else int(torch.floor(span).min()) + 1
    u = start[None] + torch.arange(J, device=b.device, dtype=b.dtype)[:, None] / steps   # [J, B]
    return start, frame_index(b, u)


def frame_index(b: Tensor, u: Tensor) -> Tensor:
    """Fractional frame index [J, B] at which beat counts b [T, B] (increasing) reach u [J, B],
    clamped to the window."""
    if b.shape[0] == 1:
        return torch.zeros_like(u)
    bt, ut = b.T.contiguous(), u.T.contiguous()                                      # [B, T], [B, J]
    hi = torch.searchsorted(bt, ut).clamp(1, b.shape[0] - 1)
    b0, b1 = torch.gather(bt, 1, hi - 1), torch.gather(bt, 1, hi)
    frac = ((ut - b0) / (b1 - b0)).clamp(0.0, 1.0)
    return (hi - 1 + frac).T


def sample(x: Tensor, index: Tensor) -> Tensor:
    """x [N, B, ...] at fractional indices [J, B] (clamped to [0, N - 1]), linearly interpolated."""
    index = index.clamp(0, x.shape[0] - 1)
    lo = index.floor().long().clamp(max=x.shape[0] - 2) if x.shape[0] > 1 else index.long() * 0
    frac = (index - lo).to(x.dtype)
    hi = (lo + 1).clamp(max=x.shape[0] - 1)
    pick = lambda i: torch.gather(x, 0, i.reshape(*i.shape, *[1] * (x.dim() - 2)).expand(-1, -1, *x.shape[2:]))
    frac = frac.reshape(*frac.shape, *[1] * (x.dim() - 2))
    return (1 - frac) * pick(lo) + frac * pick(hi)


def to_frames(b: Tensor, start: Tensor, steps: int) -> Tensor:
    """Grid position [T, B] (fractional) of every frame with beat counts b [T, B], for a grid
    from `start` [B] with `steps` points per beat: where `sample` reads a warped sequence back."""
    return (b - start[None]) * steps
