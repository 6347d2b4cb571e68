"""Per-minute reporting of any per-frame metric, and `drift`: how the last minute compares with the first.

A generated dance can start human and stop being so after half a minute; a mean over the whole
dance hides that. `per_minute` cuts a per-frame series [T] at `fps` into windows of `window`
seconds (a minute by default) and `drift` gives the relative change from the first to the last.
"""
from __future__ import annotations

import numpy as np

MINUTE = 60.0           # s: the reporting window
MIN_PARTIAL = 0.5       # a last partial window shorter than this share of `window` joins the one before


def minute_bounds(n_frames: int, fps: float, window: float = MINUTE) -> list[tuple[int, int]]:
    """Frame ranges [(start, stop)] of consecutive `window`-second windows over n_frames at fps.

    The last partial window stands alone when it holds at least MIN_PARTIAL of a window,
    otherwise it is added to the window before it (a 75 s dance: one 75 s window; 95 s: 60 + 35).
    A dance shorter than a window is one window.
    """
    if not (np.isfinite(fps) and fps > 0 and window > 0):
        raise ValueError(f"fps and window must be positive, got fps={fps}, window={window}")
    if n_frames < 1:
        raise ValueError("no frames to report per minute")
    size = max(1, int(round(window * fps)))                               # frames per window
    starts = list(range(0, n_frames, size))
    if len(starts) > 1 and n_frames - starts[-1] < MIN_PARTIAL * size:
        starts.pop()
    return [(s, e) for s, e in zip(starts, starts[1:] + [n_frames])]


def per_minute(values: np.ndarray, fps: float, window: float = MINUTE) -> np.ndarray:
    """Mean of a per-frame series (or boolean mask) [T] over each window of `window` s -> [M].

    NaN frames (a metric undefined there) are left out of their window's mean; a window with no
    defined frame gives NaN.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"per_minute: expected a per-frame series [T], got shape {list(values.shape)}")
    out = []
    for start, stop in minute_bounds(len(values), fps, window):
        chunk = values[start:stop]
        chunk = chunk[np.isfinite(chunk)]
        out.append(chunk.mean() if len(chunk) else np.nan)
    return np.array(out)


def drift(values_per_minute: np.ndarray) -> float:
    """Relative change from the first window to the last: (last - first) / |first|; 0 for a
    single window (nothing to compare).

    Meant for quantities whose first minute is not 0 (a share of frames that pass, a height in
    body heights). When it is 0 the relative change is undefined and the absolute change
    last - first is given instead, which for such unit-scale quantities reads the same way.
    """
    values = np.asarray(values_per_minute, dtype=np.float64)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError(f"drift: expected per-minute values [M], got shape {list(values.shape)}")
    first, last = values[0], values[-1]
    if len(values) == 1 or last == first:
        return 0.0
    return float((last - first) / abs(first)) if first != 0 else float(last - first)
