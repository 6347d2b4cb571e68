"""Scoring dances against ground truth: metric tables over windows, and the targets a model
should meet, whose limits come from the ground truth's own values.

Dances are cut into windows of `seconds` (half overlapping) so that the set metrics (FID,
diversity) see many samples; FID limits come from the FID between the ground-truth train and
test dances.
"""
from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from .dataset import ClipData
from .metrics import evaluate_dances

WINDOW_S = 5.0
TABLE_METRICS = ("fid_k", "fid_g", "div_k", "div_g", "bas_motion", "bas_music", "speed_ratio",
                 "speed", "jerk", "frozen_share", "bone_cv", "foot_skating", "pfc")


def windows(dances: list[np.ndarray], beats: list[np.ndarray], fps: float,
            seconds: float = WINDOW_S) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Cut dances (and their songs' beat times, s) into windows of `seconds`, half overlapping.

    Windows without a music beat (a silent intro or ending) are left out: beat alignment is
    undefined there. Every set of dances to the same songs loses the same windows.
    """
    n = int(round(seconds * fps))
    cut, cut_beats = [], []
    for dance, b in zip(dances, beats):
        b = np.asarray(b)
        for start in range(0, len(dance) - n + 1, max(n // 2, 1)):
            t0 = start / fps
            inside = b[(b >= t0) & (b < t0 + (n - 1) / fps)] - t0
            if len(inside):
                cut.append(dance[start:start + n])
                cut_beats.append(inside)
    return cut, cut_beats


def metric_table(rows: dict[str, tuple[list[np.ndarray], list[np.ndarray]]], reference: list[np.ndarray],
                 reference_beats: list[np.ndarray], fps: float, seconds: float = WINDOW_S,
                 progress: bool | None = None) -> pd.DataFrame:
    """One row per named set of (dances, their songs' beat times), every metric of TABLE_METRICS.

    Dances are cut into `seconds` windows; FID, diversity and the speed ratio are against the
    windows of `reference`.
    """
    ref, _ = windows(reference, reference_beats, fps, seconds)
    table = {}
    for name, (dances, beats) in rows.items():
        cut, cut_beats = windows(dances, beats, fps, seconds)
        values = evaluate_dances(cut, fps, music_beats=cut_beats, reference=ref, progress=progress)
        table[name] = {k: values.get(k, np.nan) for k in TABLE_METRICS}
    return pd.DataFrame(table).T


# target: (metric, how the value must relate to the ground truth's, bound); see `targets`
TARGETS = (
    ("bas_motion", ">= gt x", 1.0), ("bas_music", ">= gt x", 1.0),
    ("speed_ratio", "within", (0.7, 1.3)), ("frozen_share", "<= gt +", 0.05),
    ("jerk", "<= gt x", 1.5), ("fid_k", "<= train x", 1.5), ("fid_g", "<= train x", 1.5),
    ("div_k", ">= gt x", 0.9), ("div_g", ">= gt x", 0.9), ("pfc", "<= gt x", 1.2), ("bone_cv", "<", 0.02),
)
GROUND_TRUTH, TRAIN_TRUTH = "ground truth", "train songs (ground truth)"


def targets(table: pd.DataFrame, row: str, metrics: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Per target of TARGETS: the row's value, its limit, whether it is met, and by how much it
    is missed (`miss`: 0 when met; else the log ratio of value to limit, or for the frozen share
    the excess in units of its 5-point margin).

    Limits come from the table's GROUND_TRUTH row (the test songs' own dances) and, for FID,
    from the TRAIN_TRUTH row (the FID between the ground-truth train and test dances).
    `metrics` picks targets (default all).
    """
    gt, train, v = table.loc[GROUND_TRUTH], table.loc[TRAIN_TRUTH], table.loc[row]
    out = {}
    for metric, how, bound in TARGETS:
        if metrics is not None and metric not in metrics:
            continue
        x = float(v[metric])
        if how == "within":
            limit, miss = f"{bound[0]}-{bound[1]}", max(_excess(bound[0], x), _excess(x, bound[1]))
        elif how == "<":
            limit, miss = bound, _excess(x, bound)
        else:
            ref = float({"gt": gt, "train": train}[how.split()[1]][metric])
            limit = ref + bound if how.endswith("+") else ref * bound
            if how.endswith("+"):
                miss = max(0.0, (x - limit) / bound) if np.isfinite(x) else np.inf
            else:
                miss = _excess(limit, x) if how.startswith(">=") else _excess(x, limit)
        out[metric] = {"value": x, "limit": limit, "met": bool(miss == 0.0), "miss": miss}
    return pd.DataFrame(out).T


def _excess(high: float, low: float) -> float:
    """log(high / low) when high exceeds low, else 0; inf when either is not finite or low <= 0."""
    if not (np.isfinite(high) and np.isfinite(low)):
        return np.inf
    if high <= low:
        return 0.0
    return float(np.log(high / low)) if low > 0 else np.inf


def targets_met(table: pd.DataFrame, rows: list[str], metrics: tuple[str, ...] | None = None) -> pd.DataFrame:
    """One row per table row: which targets it meets (True/False per metric) and how many."""
    met = pd.DataFrame({row: targets(table, row, metrics)["met"] for row in rows}).T.astype(bool)
    met["met"] = met.sum(axis=1)
    return met


def song_beats(clips: list[ClipData]) -> list[np.ndarray]:
    """Beat times (s) of each clip's song: meta.json's ground truth, else librosa's tracker
    (kept per song file, so checking a model every epoch tracks each song once)."""
    return [np.asarray(c.clip.meta["beats"]) if "beats" in c.clip.meta
            else _tracked_beats(str(c.clip.audio_path), c.clip.audio_path.stat().st_mtime_ns) for c in clips]


@functools.lru_cache(maxsize=512)
def _tracked_beats(path: str, mtime_ns: int) -> np.ndarray:
    from .audio import SR, beat_times, load_audio

    beats = beat_times(load_audio(path), SR)
    beats.flags.writeable = False
    return beats
