"""Is it a human dancing? Per-frame anatomy and balance checks over poses [T, 17, 3].

Poses are in metres, y up, H36M-17 order, at any fps; every threshold is an angle, a time, or
a share of the dance's own body height, so the checks do not depend on where the dancer stands,
which way they face, the frame rate or their size (jumps excepted: gravity sets a length scale).

Directions come from the body: `left` is the hip line (r_hip -> l_hip). A knee is a hinge whose
axis is the hip line turned by the hip's rotation (within ~45 deg, Roaas & Andersson 1982), so
the normal of its bend, thigh x shin, points to the body's left when the knee flexes (the shin
behind the thigh, whatever the hip does) and to its right when it bends the wrong way; the
H36M joints have no toe, and this needs none. An elbow's bend plane turns with the upper arm's
axial rotation (~70 deg inwards, ~90 deg outwards of the forearm pointing forward; AAOS), which
three joints do not show; but while the upper arm hangs along the torso no such rotation points
the bend behind the body's frontal plane, so there a bend backwards is a hyperextension.

Checks (`checks`, True where a frame passes): knee (both flex within range, neither bends the
wrong way), elbow (both within range, neither bent backwards while the arm hangs), torso (lean
from vertical and hip-shoulder twist), head (high enough above the floor), support (an ankle
near the floor, or the body in ballistic flight), floor (no ankle through the floor); a dance
whose root never moves (root-relative) has no balance to judge, and passes support and floor.
`plausible` = every check. `arm_leg_ratio` gives the body's proportions (a per-dance number:
bones held constant at the wrong lengths pass every check). `summary` gives every per-dance
number at once, `frame_series` and `anatomy_per_minute` the per-frame and per-minute series.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..skeleton import FEET, HEAD, ROOT, THORAX, UP, bone_lengths
from .drift import MINUTE, drift, per_minute
from .motion import check_dance

R_HIP, R_KNEE, R_ANKLE, L_HIP, L_KNEE, L_ANKLE = 1, 2, 3, 4, 5, 6
L_SHOULDER, L_ELBOW, L_WRIST, R_SHOULDER, R_ELBOW, R_WRIST = 11, 12, 13, 14, 15, 16
LEGS = ((R_HIP, R_KNEE, R_ANKLE), (L_HIP, L_KNEE, L_ANKLE))                # (right, left)
ARMS = ((R_SHOULDER, R_ELBOW, R_WRIST), (L_SHOULDER, L_ELBOW, L_WRIST))    # (right, left)
VERTICAL = np.array([0.0, 1.0, 0.0])
GRAVITY = 9.81          # m/s^2
FLOOR_PERCENTILE = 5.0  # the floor is this percentile of the lowest ankle's height (jumps sit above it)
CHECKS = ("knee", "elbow", "torso", "head", "support", "floor")
# A root that moves less than this (m) over the whole dance is held still: a root-relative dance
# (the paper's setting, video estimates placed on the floor), whose feet say nothing of balance.
ROOT_STILL = 1e-4
EPS = 1e-9


@dataclass(frozen=True)
class Limits:
    """Thresholds of the checks: angles in degrees, heights in body heights, times in seconds.

    "Ground truth" below: the extremes over every frame of the synthetic smoke clips (seeds 0-2),
    the five AIST++ slices (SMPL joints) and CMU 55_01 mocap, which all pass every check.
    """

    # Knee flexion: ~140 deg active, 150-160 deg passive in a deep squat or kneeling (Hemmerich
    # et al. 2006, 157 deg); ground truth at most 132 deg.
    knee_flexion: float = 155.0
    # Knee hyperextension: up to 5-10 deg is normal (genu recurvatum beyond ~10 deg), plus ~5 deg
    # for joint centres placed by a converter; ground truth bends at most 13 deg the wrong way.
    knee_hyperextension: float = 15.0
    # Elbow flexion: 145-150 deg (AAOS; Soucie et al. 2011) + 5 deg for joint centres;
    # ground truth at most 144 deg.
    elbow_flexion: float = 155.0
    # Elbow hyperextension: 0-10 deg is normal (Soucie et al. 2011), plus ~5 deg for joint centres.
    # Counted while the upper arm hangs within `arm_down` deg of the torso's down axis and the
    # bend points more than `elbow_behind` deg behind the shoulders' frontal plane: beyond what
    # ~90 deg of axial rotation reaches (the ground truth's bends there are >= 14 deg in front).
    elbow_hyperextension: float = 15.0
    arm_down: float = 30.0
    elbow_behind: float = 30.0
    # Torso lean from vertical (hip -> thorax): beyond horizontal the head is below the hips (a
    # handstand, a head spin; floor moves none of the data holds); ground truth at most 34 deg.
    torso_lean: float = 90.0
    # Twist between hip and shoulder lines: thoracolumbar axial rotation ~45-50 deg (White &
    # Panjabi 1990) + ~15 deg of shoulder-girdle protraction; ground truth at most 49 deg.
    torso_twist: float = 65.0
    # Head above the floor, in body heights (standing ~0.97-1.04): the ground truth's lowest is
    # 0.84 (AIST++ LA hip-hop), a body folded over or sunk to its knees is below 0.7.
    head_height: float = 0.70
    # Support: the lowest ankle within this height of the floor (~9 cm for a 1.7 m dancer; a
    # heel raised onto the ball of the foot lifts the ankle ~5-10 cm). The ground truth's ankles
    # rise above it only in short hops (AIST++ break and LA hip-hop, up to 0.10), all ballistic.
    support_height: float = 0.06
    # Penetration: an ankle this far below the floor; ground truth at most 0.007.
    penetration: float = 0.03
    # Ballistic flight: at most this long (a 0.9 s flight rises 1 m: beyond any dance jump) and
    # the root within this RMS (m) of a parabola under gravity (the pelvis moves against the
    # centre of mass as the legs tuck; the ground truth's hops are within 0.012 m).
    flight: float = 0.9
    ballistic_residual: float = 0.025


LIMITS = Limits()


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), EPS)


def _angle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Angle in degrees between vectors [..., 3] -> [...] (atan2: exact near 0 and 180 too)."""
    u, v = np.broadcast_arrays(u, v)
    return np.degrees(np.arctan2(np.linalg.norm(np.cross(u, v), axis=-1), (u * v).sum(-1)))


def hinge_flexion(poses: np.ndarray, a: int, b: int, c: int) -> np.ndarray:
    """Bend at joint b of the chain a -> b -> c, degrees [T]: 0 straight, 180 folded back on itself."""
    return _angle(poses[:, b] - poses[:, a], poses[:, c] - poses[:, b])


def knee_flexion(poses: np.ndarray) -> np.ndarray:
    """Signed knee flexion, degrees [T, 2] (right, left): positive when the shin is behind the
    thigh (the bend's normal thigh x shin points to the body's left), negative the wrong way."""
    left = poses[:, L_HIP] - poses[:, R_HIP]                                   # [T, 3]
    out = []
    for hip, knee, ankle in LEGS:
        thigh, shin = poses[:, knee] - poses[:, hip], poses[:, ankle] - poses[:, knee]
        side = np.sign((np.cross(thigh, shin) * left).sum(-1))                # [T]
        out.append(np.where(side < 0, -1.0, 1.0) * _angle(thigh, shin))
    return np.stack(out, axis=1)


def elbow_flexion(poses: np.ndarray) -> np.ndarray:
    """Elbow flexion, degrees [T, 2] (right, left): 0 straight arm."""
    return np.stack([hinge_flexion(poses, *arm) for arm in ARMS], axis=1)


def elbow_bent_backwards(poses: np.ndarray, limits: Limits = LIMITS) -> np.ndarray:
    """Boolean [T, 2] (right, left): the upper arm hangs (within limits.arm_down deg of the
    torso's down axis, hip -> thorax reversed), the elbow bends more than
    limits.elbow_hyperextension deg, and the bend points more than limits.elbow_behind deg behind
    the frontal plane (forward = shoulder line x torso axis)."""
    up = _unit(poses[:, THORAX] - poses[:, ROOT])                              # [T, 3]
    forward = _unit(np.cross(poses[:, L_SHOULDER] - poses[:, R_SHOULDER], up))  # [T, 3]
    out = []
    for shoulder, elbow, wrist in ARMS:
        upper = _unit(poses[:, elbow] - poses[:, shoulder])
        fore = poses[:, wrist] - poses[:, elbow]
        bend = _unit(fore - (fore * upper).sum(-1, keepdims=True) * upper)     # [T, 3] square to the upper arm
        hangs = _angle(upper, -up) <= limits.arm_down
        behind = (bend * forward).sum(-1) < -np.sin(np.radians(limits.elbow_behind))
        out.append(hangs & behind & (hinge_flexion(poses, shoulder, elbow, wrist) > limits.elbow_hyperextension))
    return np.stack(out, axis=1)


def torso_lean(poses: np.ndarray) -> np.ndarray:
    """Angle of hip -> thorax from vertical, degrees [T]: 0 upright, 90 horizontal."""
    return _angle(poses[:, THORAX] - poses[:, ROOT], VERTICAL)


def torso_twist(poses: np.ndarray) -> np.ndarray:
    """Angle between the hip line and the shoulder line, degrees [T], in the torso's own
    horizontal plane (perpendicular to hip -> thorax; the horizontal plane when upright)."""
    axis = _unit(poses[:, THORAX] - poses[:, ROOT])                            # [T, 3]
    flat = lambda v: v - (v * axis).sum(-1, keepdims=True) * axis
    return _angle(flat(poses[:, L_HIP] - poses[:, R_HIP]), flat(poses[:, L_SHOULDER] - poses[:, R_SHOULDER]))


def body_height(poses: np.ndarray) -> float:
    """The dance's body height in metres: median over frames of the chain ankle -> knee -> hip
    (mean of both legs) plus hip -> thorax -> head top; ~0.9 of stature, the head's height
    above the ankles' floor level when standing straight."""
    seg = lambda a, b: np.linalg.norm(poses[:, a] - poses[:, b], axis=-1)
    legs = 0.5 * sum(seg(h, k) + seg(k, a) for h, k, a in LEGS)                # [T]
    return max(float(np.median(legs + seg(ROOT, THORAX) + seg(THORAX, HEAD))), EPS)


def arm_leg_ratio(poses: np.ndarray) -> float:
    """Arm over leg length, (upper arm + forearm) / (thigh + shin), of the bones' median lengths
    over the dance, both sides together: the body's proportions, which bone constancy does not
    see. A human's: 0.59 (H36M's mean subject, the synthetic dancers), 0.64-0.65 (CMU mocap,
    AIST++), 0.58 (video estimates); a body built on the mean of many poses (moving arms average
    shorter) 0.43."""
    length = np.median(bone_lengths(poses), axis=0)                   # [16] m, bone j -> joint j + 1
    of = lambda limbs: float(sum(length[middle - 1] + length[end - 1] for _, middle, end in limbs))
    return of(ARMS) / max(of(LEGS), EPS)


def floor_level(poses: np.ndarray, floor: float | None = None) -> float:
    """Height (m) of the ankles of a foot standing on the floor: `floor` when it is known (0 for
    this project's clips, whose lowest ankle is placed at y = 0), else the FLOOR_PERCENTILE of
    the lowest ankle's height over the dance (robust to a few frames through the floor)."""
    if floor is not None:
        return float(floor)
    return float(np.percentile(poses[:, list(FEET), UP].min(axis=1), FLOOR_PERCENTILE))


def head_height(poses: np.ndarray, floor: float | None = None) -> np.ndarray:
    """Head top above the ankles' floor level, in body heights [T] (standing straight ~1)."""
    return (poses[:, HEAD, UP] - floor_level(poses, floor)) / body_height(poses)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[(start, stop)] of the runs of True in a boolean [T]."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def ballistic(root_height: np.ndarray, grounded: np.ndarray, fps: float, limits: Limits = LIMITS) -> np.ndarray:
    """Boolean [T]: frames off the ground (`grounded` False) that lie on a jump's flight.

    A flight is a run of ungrounded frames no longer than limits.flight seconds along which the
    root height (m), with the frames of take-off and landing either side, stays within
    limits.ballistic_residual (RMS, m) of a parabola under gravity: y + g t^2 / 2 linear in t.
    """
    out = np.zeros(len(grounded), dtype=bool)
    for start, stop in _runs(~grounded):
        if (stop - start) / fps > limits.flight:
            continue
        idx = np.arange(max(start - 1, 0), min(stop + 1, len(grounded)))     # with take-off and landing
        t = (idx - idx[0]) / fps                                              # s from the flight's start
        y = root_height[idx] + 0.5 * GRAVITY * t ** 2                         # linear in t on a flight
        if len(idx) > 2:
            coef = np.polyfit(t - t.mean(), y, 1)
            rms = np.sqrt(np.mean((np.polyval(coef, t - t.mean()) - y) ** 2))
        else:
            rms = 0.0                                                         # two points lie on any parabola
        out[start:stop] = rms <= limits.ballistic_residual
    return out


def support(poses: np.ndarray, fps: float, limits: Limits = LIMITS, floor: float | None = None
            ) -> dict[str, np.ndarray]:
    """Balance per frame: {"contact": [T] an ankle within limits.support_height of the floor,
    "flight": [T] off the floor on a ballistic path, "depth": [T] metres of the lowest ankle
    below the floor level (0 above it)}."""
    return _support(poses, fps, limits, floor_level(poses, floor), body_height(poses))


def _support(poses: np.ndarray, fps: float, limits: Limits, level: float, height: float) -> dict[str, np.ndarray]:
    lowest = poses[:, list(FEET), UP].min(axis=1) - level                     # [T] m
    contact = lowest < limits.support_height * height
    flight = ballistic(poses[:, ROOT, UP], contact, fps, limits)
    return {"contact": contact, "flight": flight, "depth": np.maximum(-lowest, 0.0)}


def root_still(poses: np.ndarray) -> bool:
    """True when the root stays within ROOT_STILL m of one point over the dance (root-relative)."""
    return bool(np.ptp(poses[:, ROOT], axis=0).max() < ROOT_STILL)


def frame_series(poses: np.ndarray, fps: float, limits: Limits = LIMITS, floor: float | None = None
                 ) -> dict[str, np.ndarray]:
    """Every per-frame series [T] of one dance: the CHECKS masks and "plausible" (True where the
    frame passes), "head_height" (body heights), "torso_lean", "torso_twist" and "knee_flexion"
    (degrees; the larger magnitude of the two knees')."""
    poses = check_dance(poses, fps)
    knee = knee_flexion(poses)                                                 # [T, 2]
    height, level = body_height(poses), floor_level(poses, floor)
    balance = _support(poses, fps, limits, level, height)
    head, lean, twist = (poses[:, HEAD, UP] - level) / height, torso_lean(poses), torso_twist(poses)
    masks = {
        "knee": ((knee <= limits.knee_flexion) & (knee >= -limits.knee_hyperextension)).all(axis=1),
        "elbow": ((elbow_flexion(poses) <= limits.elbow_flexion) & ~elbow_bent_backwards(poses, limits)).all(axis=1),
        "torso": (lean <= limits.torso_lean) & (twist <= limits.torso_twist),
        "head": head >= limits.head_height,
        "support": balance["contact"] | balance["flight"] | root_still(poses),
        "floor": (balance["depth"] <= limits.penetration * height) | root_still(poses),
    }
    return {**masks, "plausible": np.logical_and.reduce(list(masks.values())), "head_height": head,
            "torso_lean": lean, "torso_twist": twist, "knee_flexion": np.abs(knee).max(axis=1)}


def checks(poses: np.ndarray, fps: float, limits: Limits = LIMITS, floor: float | None = None) -> dict[str, np.ndarray]:
    """Per-frame boolean masks [T], True where the frame passes, one per name of CHECKS."""
    series = frame_series(poses, fps, limits, floor)
    return {name: series[name] for name in CHECKS}


def plausible(poses: np.ndarray, fps: float, limits: Limits = LIMITS, floor: float | None = None) -> np.ndarray:
    """Boolean [T]: every check holds."""
    return frame_series(poses, fps, limits, floor)["plausible"]


def plausible_share(poses: np.ndarray, fps: float) -> float:
    """Share of frames where every anatomy and balance check holds (1 for a human dancing)."""
    return float(plausible(poses, fps).mean())


def anatomy_per_minute(poses: np.ndarray, fps: float, window: float = MINUTE, limits: Limits = LIMITS,
                       floor: float | None = None) -> dict[str, np.ndarray]:
    """Every anatomy metric of one dance per `window` seconds -> {name: [M]}: the share of frames
    passing each check and all of them ("plausible"), the mean head height (body heights), the
    mean torso lean and twist (deg) and the mean of the larger knee flexion (deg)."""
    return {name: per_minute(values, fps, window) for name, values in frame_series(poses, fps, limits, floor).items()}


# The per-dance numbers `summary` gives (the registry's names), and the per-minute series whose drift it gives.
SUMMARY = ("plausible_share", "knee_violation", "elbow_violation", "torso_lean_p95", "torso_twist_p95",
           "head_height_share", "support_share", "penetration_share", "arm_leg_ratio",
           "drift_plausible", "drift_head_height", "drift_support")
DRIFTS = ("plausible", "head_height", "support")


def summary(poses: np.ndarray, fps: float, window: float = MINUTE, limits: Limits = LIMITS,
            floor: float | None = None) -> dict[str, float]:
    """Every per-dance anatomy number of one dance, from one pass over its frames -> {SUMMARY name:
    value}: shares of frames passing ("plausible", "head_height", "support") or failing ("knee",
    "elbow", "penetration": the floor check) a check, the 95th percentiles of torso lean and
    twist (deg), the arm-to-leg ratio, and the drift (last window against the first, relative)
    of the plausible share, the mean head height and the support share."""
    series = frame_series(poses, fps, limits, floor)
    out = {"plausible_share": series["plausible"].mean(), "knee_violation": 1 - series["knee"].mean(),
           "elbow_violation": 1 - series["elbow"].mean(),
           "torso_lean_p95": np.percentile(series["torso_lean"], 95),
           "torso_twist_p95": np.percentile(series["torso_twist"], 95),
           "head_height_share": series["head"].mean(), "support_share": series["support"].mean(),
           "penetration_share": 1 - series["floor"].mean(), "arm_leg_ratio": arm_leg_ratio(poses)}
    out.update({f"drift_{name}": drift(per_minute(series[name], fps, window)) for name in DRIFTS})
    return {name: float(out[name]) for name in SUMMARY}
