"""The metric registry and `evaluate_dances`: every metric the inputs allow, averaged over a set.

A metric needs one of: "dance" (fn(poses, fps) -> float, averaged over the dances), "beats"
(fn(poses, fps, music_beat_times) -> float, averaged), "set" (fn(gen: DanceSet, ref: DanceSet
| None) -> float, at least two dances) or "reference" (fn(gen, ref) -> float, a ground-truth set).
"better" says which way is better: "higher", "lower", "near reference", "near 1", "near 0" or ""
(a property of the reference, not a score).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable, Sequence

import numpy as np

from ..parallel import map_items
from . import anatomy
from .beats import beat_alignment
from .distribution import diversity, fid
from .geometric import geometric_features
from .kinetic import kinetic_features
from .motion import (CALM_SECONDS, CALM_SPEED, FACING_DEG, body_speed, bone_cv, calm_share, check_dance, facing_share,
                     foot_skating, frozen_share, jerk, longest_calm, pfc)
from .pose_distance import feature_distance, sample_features

NEEDS = ("dance", "beats", "set", "reference")


@dataclass(frozen=True)
class Metric:
    """One metric: its function, what it needs (NEEDS), its unit, and which way is better."""

    fn: Callable[..., float]
    needs: str
    unit: str
    better: str
    description: str
    anatomy: bool = False  # one of anatomy.SUMMARY: evaluate_dances reads it from one anatomy.summary per dance


@dataclass(frozen=True)
class DanceSet:
    """Per-dance features of a set of N dances: kinetic [N, 51], geometric [N, 32], speed [N] m/s,
    poses: N arrays [T_i, 48] of sampled pose features (kakashi.metrics.pose_distance)."""

    kinetic: np.ndarray
    geometric: np.ndarray
    speed: np.ndarray
    poses: tuple[np.ndarray, ...]

    def __len__(self) -> int:
        return len(self.speed)


def _speed_ratio(gen: DanceSet, ref: DanceSet) -> float:
    ref_speed = float(ref.speed.mean())
    if ref_speed <= 0:
        raise ValueError("reference dances do not move (mean speed 0): speed_ratio is undefined")
    return float(gen.speed.mean()) / ref_speed


def _summary_value(name: str, poses: np.ndarray, fps: float) -> float:
    return anatomy.summary(poses, fps)[name]


def _anatomy(name: str, unit: str, better: str, description: str) -> Metric:
    return Metric(partial(_summary_value, name), "dance", unit, better, description, anatomy=True)


METRICS: dict[str, Metric] = {
    "speed": Metric(body_speed, "dance", "m/s", "near reference",
                    "mean speed of the joints relative to the hip"),
    "jerk": Metric(jerk, "dance", "m/s^3", "near reference", "mean |third derivative| of positions (noise)"),
    "frozen_share": Metric(frozen_share, "dance", "", "lower",
                           "share of frames within 3 cm (mean per joint) of the mean pose"),
    "calm_share": Metric(calm_share, "dance", "", "near reference",
                         f"share of frames where the joints move below {CALM_SPEED:g} m/s (over {CALM_SECONDS:g} s)"),
    "longest_calm": Metric(longest_calm, "dance", "s", "near reference",
                           "the longest stretch of calm frames (calm_share)"),
    "bone_cv": Metric(bone_cv, "dance", "", "lower", "mean coefficient of variation of bone lengths"),
    "foot_skating": Metric(foot_skating, "dance", "m/s", "lower",
                           "mean horizontal ankle speed while the ankle is on the floor"),
    "pfc": Metric(pfc, "dance", "", "lower", "EDGE's physical foot contact score"),
    "facing_share": Metric(facing_share, "dance", "", "near reference",
                           f"share of frames with the hips facing within {FACING_DEG:g} deg of the dance's mean heading"),
    "bas_motion": Metric(partial(beat_alignment, variant="motion"), "beats", "", "higher",
                         "beat alignment over motion beats (FACT / AI Choreographer)"),
    "bas_music": Metric(partial(beat_alignment, variant="music"), "beats", "", "higher",
                        "beat alignment over music beats (Bailando)"),
    "plausible_share": _anatomy("plausible_share", "", "higher",
                                "share of frames where every anatomy and balance check holds"),
    "knee_violation": _anatomy("knee_violation", "", "lower", "share of frames with a knee bent the wrong way "
                               f"or past {anatomy.LIMITS.knee_flexion:g} deg"),
    "elbow_violation": _anatomy("elbow_violation", "", "lower",
                                f"share of frames with an elbow past {anatomy.LIMITS.elbow_flexion:g} deg or bent backwards"),
    "torso_lean_p95": _anatomy("torso_lean_p95", "deg", "near reference",
                               "95th percentile of the hip->thorax lean from vertical"),
    "torso_twist_p95": _anatomy("torso_twist_p95", "deg", "near reference",
                                "95th percentile of the hip-line to shoulder-line twist"),
    "head_height_share": _anatomy("head_height_share", "", "higher",
                                  f"share of frames with the head above {anatomy.LIMITS.head_height:g} body heights"),
    "support_share": _anatomy("support_share", "", "higher",
                              "share of frames with an ankle on the floor or the body in a jump's flight "
                              "(1 when the root never moves: no balance to judge)"),
    "penetration_share": _anatomy("penetration_share", "", "lower",
                                  "share of frames with an ankle through the floor"),
    "arm_leg_ratio": _anatomy("arm_leg_ratio", "", "near reference",
                              "(upper arm + forearm) / (thigh + shin), median bone lengths: ~0.6 for a human"),
    "drift_plausible": _anatomy("drift_plausible", "", "near 0",
                                "plausible share, last minute against the first (relative change)"),
    "drift_head_height": _anatomy("drift_head_height", "", "near 0",
                                  "mean head height, last minute against the first (relative change)"),
    "drift_support": _anatomy("drift_support", "", "near 0",
                              "support share, last minute against the first (relative change)"),
    "div_k": Metric(lambda g, r: diversity(g.kinetic, None if r is None else r.kinetic), "set", "",
                    "near reference", "mean pairwise distance of normalised kinetic features"),
    "div_g": Metric(lambda g, r: diversity(g.geometric, None if r is None else r.geometric), "set", "",
                    "near reference", "mean pairwise distance of normalised geometric features"),
    "speed_ratio": Metric(_speed_ratio, "reference", "", "near 1", "speed / the reference set's speed"),
    "fid_k": Metric(lambda g, r: fid(g.kinetic, r.kinetic), "reference", "", "lower",
                    "Fréchet distance of kinetic features to the reference set"),
    "fid_g": Metric(lambda g, r: fid(g.geometric, r.geometric), "reference", "", "lower",
                    "Fréchet distance of geometric features to the reference set"),
    "div_k_ref": Metric(lambda g, r: diversity(r.kinetic, r.kinetic), "reference", "", "",
                        "div_k of the reference set itself"),
    "div_g_ref": Metric(lambda g, r: diversity(r.geometric, r.geometric), "reference", "", "",
                        "div_g of the reference set itself"),
    "pose_distance": Metric(lambda g, r: feature_distance(g.poses, r.poses)["ratio"], "reference", "", "lower",
                            "median distance of a pose to the nearest reference pose / the reference's own "
                            "(a held-out reference dance's); 1 = as near as the ground truth"),
}


def get_metric(name: str) -> Metric:
    """The registered metric `name`; ValueError listing the valid names otherwise."""
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; choose from {list(METRICS)}")
    return METRICS[name]


def _fps_list(fps: float | Sequence[float], n: int, what: str) -> list[float]:
    if np.ndim(fps) == 0:
        return [float(fps)] * n
    fps = [float(f) for f in fps]
    if len(fps) != n:
        raise ValueError(f"{what}: {len(fps)} frame rates for {n} dances")
    return fps


def _dance_row(poses: np.ndarray, fps: float, beats: np.ndarray | None, names: tuple[str, ...],
               features: bool, what: str) -> tuple[dict[str, float], tuple | None]:
    """One dance's per-dance metrics `names` and (kinetic [51], geometric [32], speed, pose features
    [T', 48]) when asked."""
    poses = check_dance(poses, fps, what)
    body = anatomy.summary(poses, fps) if any(METRICS[n].anatomy for n in names) else {}
    values = {n: body[n] if METRICS[n].anatomy else
              METRICS[n].fn(poses, fps) if METRICS[n].needs == "dance" else METRICS[n].fn(poses, fps, beats)
              for n in names}
    feats = (kinetic_features(poses, fps), geometric_features(poses, fps), body_speed(poses, fps),
             sample_features(poses, fps)) if features else None
    return values, feats


def _stack(feats: list[tuple]) -> DanceSet:
    kinetic, geometric, speed, poses = zip(*feats)
    return DanceSet(kinetic=np.array(kinetic), geometric=np.array(geometric), speed=np.array(speed),
                    poses=tuple(poses))


def dance_set(dances: Sequence[np.ndarray], fps: float | Sequence[float], what: str = "dance",
              workers: int = 1, scheduler=None, progress: bool | None = None) -> DanceSet:
    """Features of each dance [T_i, 17, 3] (metres, y up) at its fps (one rate or one per dance)."""
    rates = _fps_list(fps, len(dances), what)
    items = [(d, r, None, (), True, f"{what} {i}") for i, (d, r) in enumerate(zip(dances, rates))]
    rows = map_items(_dance_row, items, workers=workers, scheduler=scheduler, desc=f"{what} features",
                     progress=len(items) >= 100 if progress is None else progress)
    return _stack([feats for _, feats in rows])


def dance_metrics(poses: np.ndarray, fps: float, music_beat_times: np.ndarray | None = None) -> dict[str, float]:
    """Every per-dance metric of one dance [T, 17, 3] (beat alignment when beat times are given)."""
    needs = ("dance", "beats") if music_beat_times is not None else ("dance",)
    names = tuple(n for n, m in METRICS.items() if m.needs in needs)
    return _dance_row(poses, fps, music_beat_times, names, False, "dance")[0]


def _beats_list(music_beats, n: int) -> list[np.ndarray]:
    """One beat-time array per dance: a list of n arrays, or one 1-D array shared by all."""
    if isinstance(music_beats, np.ndarray) and music_beats.ndim <= 1:
        return [music_beats] * n
    music_beats = list(music_beats)
    if len(music_beats) != n:
        raise ValueError(f"{len(music_beats)} beat arrays for {n} dances (give one per dance)")
    return [np.asarray(b, dtype=np.float64) for b in music_beats]


def evaluate_dances(dances: Sequence[np.ndarray], fps: float | Sequence[float],
                    music_beats: Sequence[np.ndarray] | np.ndarray | None = None,
                    reference: Sequence[np.ndarray] | DanceSet | None = None,
                    reference_fps: float | Sequence[float] | None = None,
                    metrics: Sequence[str] | None = None,
                    workers: int = 1, scheduler=None, progress: bool | None = None) -> dict[str, float]:
    """Every metric the inputs allow, as {name: value} in METRICS order (means over the dances).

    dances: poses [T_i, 17, 3] metres, y up; fps: one rate or one per dance. music_beats: beat
    times in seconds, one array per dance (or one array for all) -> bas_*. reference: ground-truth
    dances (at reference_fps, default the dances' rate), or their `dance_set` when several sets are
    measured against the same reference -> fid_*, speed_ratio, div_*_ref (two or more); div_*
    need two dances. metrics: names to compute (default: all the inputs allow); a
    named one the inputs cannot give is an error. workers / scheduler: see kakashi.parallel
    (one dance takes milliseconds, so the default runs in this process). progress: a tqdm bar
    (default: for 100 dances or more).
    """
    dances = list(dances)
    if not dances:
        raise ValueError("no dances to evaluate")
    names = list(METRICS) if metrics is None else [n for n in metrics if get_metric(n) is not None]
    allowed = {"dance": True, "beats": music_beats is not None, "set": len(dances) >= 2,
               "reference": reference is not None and len(reference) >= 2}
    if metrics is not None:
        for name in names:
            if not allowed[METRICS[name].needs]:
                raise ValueError(f"metric {name!r} needs {METRICS[name].needs!r} input that was not given "
                                 "(beats: music beat times; set: two dances; reference: two ground-truth dances)")
    names = [n for n in names if allowed[METRICS[n].needs]]
    rates = _fps_list(fps, len(dances), "dances")
    beats = _beats_list(music_beats, len(dances)) if music_beats is not None else [None] * len(dances)
    per_dance = tuple(n for n in names if METRICS[n].needs in ("dance", "beats"))
    set_names = [n for n in names if METRICS[n].needs in ("set", "reference")]
    items = [(d, r, b, per_dance, bool(set_names), f"dance {i}")
             for i, (d, r, b) in enumerate(zip(dances, rates, beats))]
    rows = map_items(_dance_row, items, workers=workers, scheduler=scheduler, desc="dance metrics",
                     progress=len(items) >= 100 if progress is None else progress)
    out = {n: float(np.mean([values[n] for values, _ in rows])) for n in per_dance}
    if set_names:
        gen = _stack([feats for _, feats in rows])
        ref = reference if isinstance(reference, DanceSet) else None
        if allowed["reference"] and ref is None:
            ref_rates = reference_fps
            if ref_rates is None:
                if len(set(rates)) > 1:
                    raise ValueError("reference_fps is needed when the dances have several frame rates")
                ref_rates = rates[0]
            ref = dance_set(list(reference), ref_rates, "reference", workers=workers, scheduler=scheduler,
                            progress=progress)
        for n in set_names:
            out[n] = float(METRICS[n].fn(gen, ref))
    return {n: out[n] for n in names}
