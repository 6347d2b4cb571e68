"""Beat time: a window's frames warped onto a grid of a fixed number of steps per beat, and back.

The `rhythm` features carry the beat phase (sin and cos of 2 pi b, b the frame's beat count,
kakashi.audio.beat_position); `beat_counts` reads b(t) back from them and `grid` lays `steps`
grid points on every beat, starting on the beat at or before the window's first frame. Warped
onto that grid (`sample`), a move that takes a beat takes `steps` grid points whatever the
song's tempo, so a model whose codes cover whole beats puts its moves on the beats. `snap`
then moves the motion beats a dance has near the beats onto them, and `accent` gives one to
the beats left without.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d
from torch import Tensor

from ..audio import BEAT_LAG_S, RHYTHM_COLUMNS

PHASE = RHYTHM_COLUMNS["phase"].start   # column of sin(2 pi b); cos(2 pi b) follows it
MIN_TEMPO = 0.5                         # beats/s: music without beats is danced at least this fast
SMOOTH_S = 1 / 12                       # s: Gaussian over the speed curve before its minima (motion
                                        # beats, as Bailando takes them: 5 frames at 60 fps)
SNAP_HOLD_S = 1 / 6                     # s: the dance either side of a snapped motion beat is only shifted
                                        # (1/12 s: BAS 0.80 instead of 0.83, its minima moved by the warp)
SMOOTHSTEP_SLOPE = 1.5                  # the steepest slope of a smoothstep from 0 to 1 over 1
ACCENT_WIDTH_S = 0.05                   # s: a beat with a motion beat this far from it is accented
                                        # by 1 - exp(-1/2) of the strength (BAS's own tolerance; a
                                        # motion_vocab's `accent_width` by default)


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


def snap(at: Tensor, speed: Tensor, steps: int, reach: float, fps: float, read: Tensor | None = None) -> Tensor:
    """Where to read a dance [T, B] (grid positions) so that its motion beats fall on the music's
    beats: `at` [T, B], the music's grid position of every frame (`to_frames`, beats at multiples
    of `steps`), shifted in time around each beat.

    speed [T - 1, B]: the mean joint speed between frames (m/s) of the dance read at `at`. Its
    minima (Gaussian-smoothed by SMOOTH_S) within `reach` beats (< 0.5) of a beat are moved onto
    that beat as heard (BEAT_LAG_S before the grid's: the beat phase comes from tracked beats),
    the closest one where several are. The dance around each moved minimum (SNAP_HOLD_S either
    side) is only shifted, so it keeps its shape and its minimum lands on the beat; between two
    such spans the shift changes smoothly (smoothstep), and a minimum whose shift would make
    time run backwards there is left where it is. The ends stay where they are.

    read [T, B]: where the dance is read now, if not at `at` (an `accent`ed reading): the same
    shifts move that reading instead."""
    if not 0.0 <= reach < 0.5:
        raise ValueError(f"reach must lie in [0, 0.5) beats, got {reach}")
    read = at if read is None else read
    out = read.clone()
    if reach == 0.0 or len(at) < 4:
        return out
    frames = np.arange(len(at), dtype=np.float64)
    s = _smoothed(speed, fps)
    for b in range(at.shape[1]):
        grid = at[:, b].double().cpu().numpy()
        knots, shifts = _moves(frames, grid, s[:, b], steps, reach, SNAP_HOLD_S * fps, BEAT_LAG_S * fps)
        shift = _plateaus(frames, knots, shifts, SNAP_HOLD_S * fps)
        out[:, b] = torch.as_tensor(np.interp(frames + shift, frames, read[:, b].double().cpu().numpy()),
                                    dtype=at.dtype, device=at.device)
    return out


def _moves(frames: np.ndarray, grid: np.ndarray, speed: np.ndarray, steps: int, reach: float, hold: float,
           lag: float) -> tuple[np.ndarray, np.ndarray]:
    """(knots, shifts) in frames: the heard beats that a minimum of the smoothed speed [T - 1]
    moves onto and how many frames after them it lies (negative: before), from -hold (the start,
    shift 0) to T - 1 + hold (the end, shift 0); only moves whose smoothstep between plateaus
    keeps time running forwards. frames [T]: 0 .. T - 1; grid [T]: their grid positions."""
    T = len(grid)
    minima = _minima(speed)
    pos = np.interp(minima, frames, grid)
    n = np.round(pos / steps) * steps                                                   # nearest grid beat
    beat = np.interp(n, grid, frames) - lag                                             # its frame, as heard
    off = np.abs(pos - np.interp(beat, frames, grid)) / steps                           # beats
    best = {}
    for k in np.flatnonzero((off <= reach) & (beat > hold) & (beat < T - 1 - hold)):     # the closest per beat
        if n[k] not in best or off[k] < off[best[n[k]]]:
            best[n[k]] = k
    knots, shifts = [-hold], [0.0]
    for k in (best[key] for key in sorted(best)):
        d = minima[k] - beat[k]
        if SMOOTHSTEP_SLOPE * abs(d - shifts[-1]) < beat[k] - knots[-1] - 2 * hold:     # time runs forwards
            knots.append(beat[k])
            shifts.append(d)
    while SMOOTHSTEP_SLOPE * abs(shifts[-1]) >= T - 1 - hold - knots[-1]:
        knots, shifts = knots[:-1], shifts[:-1]
    return np.array([*knots, T - 1 + hold]), np.array([*shifts, 0.0])


def _smoothed(speed: Tensor, fps: float) -> np.ndarray:
    """A speed curve [T - 1, B] (m/s) Gaussian-smoothed over SMOOTH_S, as `snap` and `accent`
    read a dance's motion beats (the minima, `_minima`)."""
    return gaussian_filter1d(speed.double().cpu().numpy(), SMOOTH_S * fps, axis=0, mode="reflect")


def _minima(speed: np.ndarray) -> np.ndarray:
    """Frames (fractional) of the local minima of a smoothed speed curve [T - 1] (sample k lies
    between frames k and k + 1), each at the vertex of the parabola through its three samples."""
    k = np.flatnonzero((speed[1:-1] < speed[:-2]) & (speed[1:-1] <= speed[2:])) + 1
    left, mid, right = speed[k - 1], speed[k], speed[k + 1]
    curve = np.where(left - 2 * mid + right > 0, left - 2 * mid + right, np.inf)
    return k + 0.5 + (0.5 * (left - right) / curve).clip(-0.5, 0.5)


def accent(at: Tensor, read: Tensor, speed: Tensor, steps: int, strength: float, fps: float,
           width: float = ACCENT_WIDTH_S) -> Tensor:
    """Where to read a dance [T, B] (grid positions) so that the beats it leaves without a
    motion beat get one: around such a beat as heard, time runs slower, at 1 - strength of its
    pace on the beat, and catches up before the next one (read + A sin-shaped offset that is 0
    on every beat, so the dance stays on the song's clock and time always runs forwards).

    at [T, B]: the music's grid position of every frame (beats at multiples of `steps`); read
    [T, B]: where the dance is read now (`at`, or `snap`ped); speed [T - 1, B]: the mean joint
    speed of the dance read there (m/s). A beat's strength falls as its nearest motion beat
    (Gaussian-smoothed minimum, as `snap` finds them) comes within `width` of it, and
    changes linearly from beat to beat; none before the first beat and after the last.
    width (s, > 0): ACCENT_WIDTH_S, or narrower, so that a beat whose motion beat lies a frame or
    so from it is accented nearly in full and gets one on it (the dance jerks more)."""
    if not 0.0 <= strength < 0.95:
        raise ValueError(f"accent strength must lie in [0, 0.95), got {strength}")
    if not width > 0:
        raise ValueError(f"accent width must be > 0 s, got {width}")
    if strength == 0.0 or len(at) < 4:
        return read.clone()
    frames = np.arange(len(at), dtype=np.float64)
    s = _smoothed(speed, fps)
    offset = np.zeros((len(at), at.shape[1]))
    for b in range(at.shape[1]):
        heard = np.interp(frames + BEAT_LAG_S * fps, frames, at[:, b].double().cpu().numpy()) / steps  # beats
        beats = np.arange(np.ceil(heard[0]), np.floor(heard[-1]) + 1)
        if len(beats) < 3:
            continue
        minima = np.append(_minima(s[:, b]), np.inf)                                     # none: infinitely far
        near = np.abs(np.interp(beats, heard, frames)[:, None] - minima[None]).min(1) / fps  # s
        amount = strength * (1 - np.exp(-0.5 * (near / width) ** 2))
        amount[[0, -1]] = 0.0
        offset[:, b] = -np.interp(heard, beats, amount) * steps / (2 * math.pi) * np.sin(2 * math.pi * heard)
    out = read + torch.as_tensor(offset, dtype=read.dtype, device=read.device)
    return torch.cummax(out, dim=0).values


def _plateaus(frames: np.ndarray, knots: np.ndarray, shifts: np.ndarray, hold: float) -> np.ndarray:
    """The shift [T] of every frame: shifts[i] within `hold` frames of knots[i], a smoothstep
    from one to the next between."""
    x = np.stack([knots - hold, knots + hold], 1).reshape(-1)                          # plateau edges
    u = np.clip(np.interp(frames, x, np.arange(len(x))), 0, len(x) - 1)                # plateau i: [2i, 2i + 1]
    i = np.minimum(np.floor(u / 2).astype(int), len(knots) - 2)
    t = np.clip(u - 2 * i - 1, 0.0, 1.0)                                               # 0 on plateau i, 1 on the next
    return shifts[i] + (shifts[i + 1] - shifts[i]) * t * t * (3 - 2 * t)
