"""Beat Alignment Score (BAS): how well the dance's motion beats meet the music's beats.

Motion beats are the local minima of the mean joint speed, smoothed by a Gaussian of
SMOOTH_S = 5/60 s (Bailando's sigma of 5 frames at 60 fps). Times are in seconds at the
dance's own fps, a speed sample sitting between its two frames ((k + 0.5) / fps).
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from ..skeleton import motion_energy
from .motion import check_dance

SMOOTH_S = 5 / 60  # s: Gaussian smoothing of the speed curve before the minima are taken
SIGMA_S = 0.05     # s: tolerance of the score, 3 frames at 60 fps as in FACT and Bailando
VARIANTS = ("motion", "music")


def local_minima(x: np.ndarray) -> np.ndarray:
    """Positions (float index) of strict local minima of a 1-D curve; a flat-bottomed minimum
    (a run of equal samples lower than both neighbours) counts once, at its centre."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) < 3:
        return np.zeros(0)
    start = np.flatnonzero(np.r_[True, np.diff(x) != 0])                   # first sample of each run
    end = np.r_[start[1:], len(x)] - 1                                      # last sample of each run
    val = x[start]
    inner = np.arange(1, len(val) - 1)
    is_min = (val[inner] < val[inner - 1]) & (val[inner] < val[inner + 1])
    keep = inner[is_min]
    return 0.5 * (start[keep] + end[keep])


def motion_beats(poses: np.ndarray, fps: float, smooth_s: float = SMOOTH_S) -> np.ndarray:
    """Motion beat times in seconds [K]: minima of the Gaussian-smoothed mean joint speed of
    poses [T, 17, 3] (metres) at `fps`. A frozen pose has none."""
    poses = check_dance(poses, fps)
    speed = motion_energy(poses, fps)                                       # [T-1] m/s
    if smooth_s > 0:
        speed = gaussian_filter1d(speed, smooth_s * fps, mode="reflect")
    return (local_minima(speed) + 0.5) / fps


def beat_alignment(poses: np.ndarray, fps: float, music_beat_times: np.ndarray,
                   variant: str = "motion", sigma: float = SIGMA_S) -> float:
    """BAS in [0, 1] (higher is better) of one dance against its song's beat times (seconds).

    variant "motion" (FACT / AI Choreographer): mean over motion beats of exp(-d^2 / (2 sigma^2)),
    d the distance to the nearest music beat. variant "music" (Bailando): mean over the music
    beats within the dance of the same Gaussian of the distance to the nearest motion beat.
    A dance without motion beats scores 0. sigma in seconds (0.05 s = 3 frames at 60 fps).
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown BAS variant {variant!r}; choose one of {list(VARIANTS)}")
    if not sigma > 0:
        raise ValueError(f"sigma must be positive seconds, got {sigma}")
    poses = check_dance(poses, fps)
    music = np.asarray(music_beat_times, dtype=np.float64).reshape(-1)
    duration = (len(poses) - 1) / fps
    music = music[np.isfinite(music) & (music >= 0) & (music <= duration)]
    if len(music) == 0:
        raise ValueError(f"no music beats within the dance's {duration:.2f} s")
    dance = motion_beats(poses, fps)
    if len(dance) == 0:
        return 0.0
    ours, theirs = (dance, music) if variant == "motion" else (music, dance)
    nearest = np.abs(ours[:, None] - theirs[None, :]).min(axis=1)           # [K] seconds
    return float(np.mean(np.exp(-nearest ** 2 / (2 * sigma ** 2))))
