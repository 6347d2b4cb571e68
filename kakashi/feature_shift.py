"""How far a set of songs sits from the training songs, in the `rich` features a model reads.

Each frame's features are z-normalised with the training songs' statistics (as kakashi.dataset
does), then compared with the training frames:
- `frechet`: the Frechet distance between Gaussians fitted to the two frame sets (the FID
  formula, over all continuous feature columns: onset, MFCC, chroma);
- `outside/<group>`: the share of frames with at least one column of the group outside the
  training frames' range (their minimum .. maximum), per group (onset, mfcc, chroma);
- `frechet/<group>`: the Frechet distance within the group.
The one-hot columns (onset peak, beat) are left out: a Gaussian fits them badly.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg

from .audio import RICH_COLUMNS

GROUPS = ("onset", "mfcc", "chroma")


def _columns(group: str | None = None) -> np.ndarray:
    names = GROUPS if group is None else (group,)
    return np.concatenate([np.arange(RICH_COLUMNS[n].start, RICH_COLUMNS[n].stop) for n in names])


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to frames a [N, D] and b [M, D]."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"need two sets of >= 2 frames of the same width, got {a.shape} and {b.shape}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    root = scipy.linalg.sqrtm(cov_a @ cov_b)
    root = root.real if np.iscomplexobj(root) else root
    return float(max(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a + cov_b - 2 * root), 0.0))


def feature_shift(songs: list[np.ndarray], training: list[np.ndarray]) -> dict[str, float]:
    """Distance of songs' `rich` features (each [T, 35]) from the training songs' (each [T, 35]).

    Returns {"frechet", "frechet/<group>", "outside/<group>"} (see the module docstring);
    identical sets give 0 everywhere.
    """
    if not songs or not training:
        raise ValueError("feature_shift needs at least one song and one training song")
    test, train = np.concatenate(songs).astype(np.float64), np.concatenate(training).astype(np.float64)
    if test.shape[1] != RICH_COLUMNS["beat"].stop or train.shape[1] < RICH_COLUMNS["beat"].stop:
        raise ValueError(f"expected `rich` features ({RICH_COLUMNS['beat'].stop} columns), got "
                         f"{test.shape[1]} and {train.shape[1]}")
    mean, std = train.mean(0), np.maximum(train.std(0), 1e-6)
    test, train = (test - mean) / std, (train - mean) / std
    out = {"frechet": frechet(test[:, _columns()], train[:, _columns()])}
    for group in GROUPS:
        cols = _columns(group)
        lo, hi = train[:, cols].min(0), train[:, cols].max(0)
        outside = ((test[:, cols] < lo) | (test[:, cols] > hi)).any(1)
        out[f"frechet/{group}"] = frechet(test[:, cols], train[:, cols])
        out[f"outside/{group}"] = float(outside.mean())
    return out
