"""Kinetic features (AIST++): per joint horizontal and vertical kinetic energy and energy expenditure.

poses [T, 17, 3] metres, y up, at `fps` -> [51] = per joint (in H36M order) the triple
(mean |v_horizontal|^2 in m^2/s^2, mean v_vertical^2 in m^2/s^2, mean |a| in m/s^2), with v and a
finite differences over the real frame time, averaged over a centred window of about
5/60 s (AIST++'s two frames either side at 60 fps), truncated at the ends.
"""
from __future__ import annotations

import numpy as np

from .motion import HORIZONTAL, UP, check_dance

WINDOW_S = 5 / 60  # smoothing window of velocity and acceleration, seconds
KINETIC_NAMES = ("energy_horizontal", "energy_vertical", "energy_expenditure")


def window_frames(fps: float, seconds: float = WINDOW_S) -> int:
    """Number of samples in a smoothing window of `seconds` at `fps` (at least 1)."""
    return max(1, int(round(seconds * fps)))


def moving_average(x: np.ndarray, n: int) -> np.ndarray:
    """Centred mean over n samples along axis 0, the window truncated at both ends: [N, ...] -> [N, ...]."""
    if n <= 1 or len(x) == 0:
        return x
    before, after = (n - 1) // 2, n // 2
    csum = np.concatenate([np.zeros_like(x[:1]), np.cumsum(x, axis=0)])    # [N+1, ...]
    idx = np.arange(len(x))
    lo, hi = np.maximum(idx - before, 0), np.minimum(idx + after + 1, len(x))
    count = (hi - lo).reshape((-1,) + (1,) * (x.ndim - 1))
    return (csum[hi] - csum[lo]) / count


def kinetic_features(poses: np.ndarray, fps: float) -> np.ndarray:
    """poses [T, 17, 3] metres, y up -> float64 [51]: per joint (E_horizontal, E_vertical, E_expenditure).

    Translation and rotation about the vertical leave it unchanged; constant-velocity motion
    has zero expenditure; resampling the fps changes it only by what the new rate cannot hold.
    """
    poses = check_dance(poses, fps)
    n = window_frames(fps)
    vel = moving_average(np.diff(poses, axis=0) * fps, n)                   # [T-1, J, 3] m/s
    acc = moving_average(np.diff(poses, n=2, axis=0) * fps ** 2, n)         # [T-2, J, 3] m/s^2
    e_horizontal = (vel[..., list(HORIZONTAL)] ** 2).sum(axis=-1).mean(axis=0)  # [J]
    e_vertical = (vel[..., UP] ** 2).mean(axis=0)                           # [J]
    expenditure = np.linalg.norm(acc, axis=-1).mean(axis=0)                 # [J]
    return np.stack([e_horizontal, e_vertical, expenditure], axis=1).reshape(-1)  # [J*3]
