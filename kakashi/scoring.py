"""Scoring dances against ground truth: metric tables over windows, and the targets a model
should meet, whose limits come from the ground truth's own values.

Dances are cut into windows of `seconds` (half overlapping) so that the set metrics (FID,
diversity) see many samples; FID limits come from the FID between the ground-truth train and
test dances.
"""
from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import pandas as pd

from .dataset import ClipData
from .metrics import (anatomy, calm_share, dance_set, evaluate_dances, facing_share, longest_calm, pose_distance,
                      reference_distance)
from .parallel import map_items

WINDOW_S = 5.0
# measured on the windows of the dances (the set metrics need many samples)
WINDOW_METRICS = ("fid_k", "fid_g", "div_k", "div_g", "bas_motion", "bas_music", "speed_ratio",
                  "speed", "jerk", "frozen_share", "bone_cv", "foot_skating", "pfc")
# measured on each whole dance (is it a human body from start to end?), means over the dances
DANCE_METRICS = ("plausible_share", "knee_violation", "head_height_share", "support_share", "arm_leg_ratio",
                 "facing_share", "calm_share", "longest_calm", "drift")
TABLE_METRICS = WINDOW_METRICS + DANCE_METRICS + ("pose_distance",)
DRIFTS = tuple(f"drift_{name}" for name in anatomy.DRIFTS)  # the start-to-end changes `drift` takes the largest of


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


def draws_to_match(frames: int, train_frames: int) -> int:
    """Dances per song that make a set of dances to songs of `frames` frames in all as long as
    the train songs' dances (`train_frames`), so as many windows.

    FID estimated from N samples is biased upwards by about tr(cov) / N for each set, so the FID
    of one dance per test song (few windows) comes out above the train-vs-test FID (many train
    windows) that sets its limit even for a second draw of the ground truth's own dancer; with
    as many windows on both sides the two compare."""
    return max(1, math.ceil(train_frames / max(frames, 1)))


def metric_table(rows: dict[str, tuple[list[np.ndarray], list[np.ndarray]]], reference: list[np.ndarray],
                 reference_beats: list[np.ndarray], fps: float, seconds: float = WINDOW_S,
                 progress: bool | None = None, train_poses: list[np.ndarray] | None = None,
                 workers: int = 1) -> pd.DataFrame:
    """One row per named set of (dances, their songs' beat times), every metric of TABLE_METRICS.

    WINDOW_METRICS on the dances cut into `seconds` windows (FID, diversity and the speed ratio
    against the windows of `reference`); DANCE_METRICS on each whole dance (`whole_dances`);
    pose_distance (each pose's distance to the nearest of `train_poses`, over a held-out
    training dance's own) when train_poses are given. workers: rows measured at once, each in a
    process of its own (the values do not depend on it).
    """
    ref, _ = windows(reference, reference_beats, fps, seconds)
    if len(ref) >= 2:   # the reference's features once, for every row
        ref = dance_set(ref, fps, "reference", progress=progress)
    one = workers == 1   # a bar per row in this process, or one for the rows of all workers
    if train_poses is not None and not one:   # the training dances' own pose distance once, before the workers fork
        reference_distance(train_poses, fps)
    items = [(dances, beats, ref, fps, seconds, train_poses, progress if one else False) for dances, beats in rows.values()]
    values = map_items(_row, items, workers, desc="metric rows", progress=not one and progress is not False,
                       sizes=[sum(map(len, d)) for d, _ in rows.values()])
    return pd.DataFrame(dict(zip(rows, values))).T


def _row(dances: list[np.ndarray], beats: list[np.ndarray], ref, fps: float, seconds: float,
         train_poses: list[np.ndarray] | None, progress: bool | None) -> dict[str, float]:
    """One row of `metric_table`: {metric: value} for every TABLE_METRICS name."""
    cut, cut_beats = windows(dances, beats, fps, seconds)
    values = evaluate_dances(cut, fps, music_beats=cut_beats, reference=ref, metrics=WINDOW_METRICS,
                             progress=progress)
    values.update(whole_dances(dances, fps))
    if train_poses is not None:
        values["pose_distance"] = pose_distance(dances, train_poses, fps)["ratio"]
    return {k: values.get(k, np.nan) for k in TABLE_METRICS}


def whole_dances(dances: list[np.ndarray], fps: float) -> dict[str, float]:
    """DANCE_METRICS, means over the dances [T_i, 17, 3]: anatomy shares and the arm-to-leg ratio
    (kakashi.metrics.anatomy), the share of frames facing the dance's front (facing_share), the
    share of calm frames and the longest calm stretch in s (calm_share, longest_calm: on the whole
    dance, since a 5-s window cannot tell a pause from half a song standing still), and `drift`,
    each dance's largest start-to-end change (plausible share, head height, support; relative)
    between its first and last minute, or its halves when shorter than two minutes."""
    out = []
    for dance in dances:
        values = anatomy.summary(dance, fps, window=drift_window(len(dance), fps))
        out.append({**values, "facing_share": facing_share(dance, fps), "calm_share": calm_share(dance, fps),
                    "longest_calm": longest_calm(dance, fps),
                    "drift": max(abs(values[name]) for name in DRIFTS)})
    return {name: float(np.mean([v[name] for v in out])) for name in DANCE_METRICS}


def drift_window(frames: int, fps: float) -> float:
    """Seconds compared at a dance's start and end: a minute, or half the dance when shorter than two."""
    return min(anatomy.MINUTE, frames / fps / 2)


# target: (metric, how the value must relate to the ground truth's, bound); see `targets`
TARGETS = (
    ("bas_motion", ">= gt x", 1.0), ("bas_music", ">= gt x", 1.0),
    ("speed_ratio", "within", (0.7, 1.3)), ("frozen_share", "<= gt +", 0.05),
    ("jerk", "<= gt x", 1.5), ("fid_k", "<= train x", 1.5), ("fid_g", "<= train x", 1.5),
    ("div_k", ">= gt x", 0.9), ("div_g", ">= gt x", 0.9), ("pfc", "<= gt x", 1.2), ("bone_cv", "<", 0.02),
    ("plausible_share", ">= gt -", 0.01), ("drift", "<", 0.10),
)
GROUND_TRUTH, TRAIN_TRUTH = "ground truth", "train songs (ground truth)"


def targets(table: pd.DataFrame, row: str, metrics: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Per target of TARGETS: the row's value, its limit, whether it is met, and by how much it
    is missed (`miss`: 0 when met; else the log ratio of value to limit, or for a margin in
    the metric's own units (frozen share, plausible share) the excess in units of the margin).

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
            limit = {"+": ref + bound, "-": ref - bound}.get(how[-1], ref * bound)
            if how[-1] in "+-":  # a margin in the metric's own units: miss in units of the margin
                excess = (x - limit) if how.startswith("<=") else (limit - x)
                miss = max(0.0, excess / bound) if np.isfinite(x) else np.inf
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


def targets_over_draws(tables: list[pd.DataFrame], rows: list[str],
                       metrics: tuple[str, ...] | None = None) -> pd.DataFrame:
    """One row per table row: in how many of `tables` (the same dancers, one draw each: a
    sampling seed) it meets each target, and how many targets it meets in every one of them
    (`every draw`)."""
    if not tables:
        raise ValueError("no tables: give one per draw")
    met = sum(targets_met(t, rows, metrics).drop(columns="met").astype(int) for t in tables)
    met["every draw"] = (met == len(tables)).sum(axis=1)
    return met


def song_beats(clips: list[ClipData]) -> list[np.ndarray]:
    """Beat times (s) of each clip's song: meta.json's ground truth, else librosa's tracker
    (kept per song file, so checking a model every epoch tracks each song once)."""
    return [np.asarray(c.clip.meta["beats"]) if "beats" in c.clip.meta else tracked_beats(c.clip.audio_path)
            for c in clips]


def tracked_beats(song: Path) -> np.ndarray:
    """Beat times (s) of a music file as heard (kakashi.audio.beat_times), tracked once per file version."""
    song = Path(song)
    return _tracked_beats(str(song), song.stat().st_mtime_ns)


@functools.lru_cache(maxsize=512)
def _tracked_beats(path: str, mtime_ns: int) -> np.ndarray:
    from .audio import SR, beat_times, load_audio

    beats = beat_times(load_audio(path), SR)
    beats.flags.writeable = False
    return beats
