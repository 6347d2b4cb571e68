"""Kinetic features (AIST++): per joint horizontal and vertical kinetic energy and energy expenditure.

poses [T, 17, 3] metres, y up, at `fps` -> [51] = per joint (in H36M order) the triple
(mean |v_horizontal|^2 in m^2/s^2, mean v_vertical^2 in m^2/s^2, mean |a| in m/s^2).
v at each frame is the displacement over a window of WINDOW_S = 5/60 s centred on it, divided
by that time (AIST++'s mean of the five frame steps around a frame at 60 fps); a is the change
of the one-frame velocity over the same window. Positions between frames are interpolated
linearly, so the window is 5/60 s of real time at any fps; it is clipped at the dance's ends.
"""
from __future__ import annotations

import numpy as np

from ..skeleton import UP
from .motion import HORIZONTAL, check_dance

WINDOW_S = 5 / 60  # seconds over which velocity and acceleration are measured
KINETIC_NAMES = ("energy_horizontal", "energy_vertical", "energy_expenditure")


def _at(x: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """x [N, ...] at fractional sample positions pos [M] in [0, N-1], linearly interpolated: [M, ...]."""
    lo = np.clip(np.floor(pos).astype(int), 0, len(x) - 2)
    frac = (pos - lo).reshape((-1,) + (1,) * (x.ndim - 1))
    return x[lo] * (1.0 - frac) + x[lo + 1] * frac


def windowed_rate(x: np.ndarray, width: float) -> np.ndarray:
    """Change of x [N, ...] (N >= 2) per sample over a window `width` samples wide centred on each
    sample (clipped to the ends): [N, ...]. Exact for x linear in time, at any real width."""
    pos = np.arange(len(x), dtype=np.float64)
    lo = np.clip(pos - width / 2, 0, len(x) - 1)
    hi = np.clip(pos + width / 2, 0, len(x) - 1)
    span = (hi - lo).reshape((-1,) + (1,) * (x.ndim - 1))                  # [N, 1, ...] samples
    return (_at(x, hi) - _at(x, lo)) / span


def kinetic_features(poses: np.ndarray, fps: float) -> np.ndarray:
    """poses [T, 17, 3] metres, y up -> float64 [51]: per joint (E_horizontal, E_vertical, E_expenditure).

    Translation and rotation about the vertical leave it unchanged; constant-velocity motion
    has zero expenditure; resampling the fps changes it only by what the new rate cannot hold.
    """
    poses = check_dance(poses, fps)
    width = WINDOW_S * fps                                                  # samples, fractional
    vel = windowed_rate(poses, width) * fps                                 # [T, J, 3] m/s
    step_vel = np.diff(poses, axis=0) * fps                                 # [T-1, J, 3] m/s
    acc = windowed_rate(step_vel, width) * fps                              # [T-1, J, 3] m/s^2
    e_horizontal = (vel[..., list(HORIZONTAL)] ** 2).sum(axis=-1).mean(axis=0)  # [J]
    e_vertical = (vel[..., UP] ** 2).mean(axis=0)                           # [J]
    expenditure = np.linalg.norm(acc, axis=-1).mean(axis=0)                 # [J]
    return np.stack([e_horizontal, e_vertical, expenditure], axis=1).reshape(-1)  # [J*3]
