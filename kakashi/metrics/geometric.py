"""Geometric features: 32 boolean Müller-style relations between body parts, averaged over time.

The AIST++ set (features/manual.py) adapted to the 17 H36M joints, y up. Each relation is
evaluated on frames 1..T-1 (velocity relations use the step from the previous frame) and the
result is the fraction of frames where it holds: poses [T, 17, 3] -> [32] in [0, 1].

Thresholds are multiples of the dance's own body dimensions (median over frames): humerus
length `hl`, shoulder width `sw` and hip width `hw`; speeds are in hl per second of real time.
Directions come from the body: up = hip -> thorax, left = r_hip -> l_hip, forward = left x up.
"""
from __future__ import annotations

import numpy as np

from ..skeleton import H36M
from ..skeleton import UP
from .motion import check_dance

J = {name: H36M.index(name) for name in H36M.names}
EPS = 1e-9

GEOMETRIC_NAMES = (
    "r_wrist_moves_forward", "l_wrist_moves_forward",
    "r_wrist_above_thorax", "l_wrist_above_thorax",
    "r_wrist_moves_up", "l_wrist_moves_up",
    "r_elbow_bent", "l_elbow_bent",
    "wrists_apart",
    "wrists_move_apart",
    "r_wrist_moves_to_hip", "l_wrist_moves_to_hip",
    "r_wrist_fast", "l_wrist_fast",
    "r_ankle_in_front", "l_ankle_in_front",
    "r_ankle_raised", "l_ankle_raised",
    "ankles_apart",
    "r_knee_bent", "l_knee_bent",
    "r_ankle_fast", "l_ankle_fast",
    "r_upper_arm_raised", "l_upper_arm_raised",
    "r_thigh_raised", "l_thigh_raised",
    "hip_in_front_of_feet",
    "torso_horizontal",
    "r_wrist_low", "l_wrist_low",
    "hip_fast",
)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), EPS)


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("...i,...i->...", a, b)


def _angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle in degrees between vectors [N, 3] and [N, 3] (0 where one has zero length)."""
    return np.degrees(np.arccos(np.clip(_dot(_unit(a), _unit(b)), -1.0, 1.0)))


def body_dimensions(poses: np.ndarray) -> tuple[float, float, float]:
    """(humerus length, shoulder width, hip width) in metres: medians over frames of [T, 17, 3]."""
    length = lambda a, b: float(np.median(np.linalg.norm(poses[:, J[a]] - poses[:, J[b]], axis=-1)))
    hl = 0.5 * (length("l_shoulder", "l_elbow") + length("r_shoulder", "r_elbow"))
    return max(hl, EPS), max(length("l_shoulder", "r_shoulder"), EPS), max(length("l_hip", "r_hip"), EPS)


def geometric_relations(poses: np.ndarray, fps: float) -> np.ndarray:
    """poses [T, 17, 3] metres, y up -> boolean [T-1, 32], one column per GEOMETRIC_NAMES entry."""
    poses = check_dance(poses, fps)
    hl, sw, hw = body_dimensions(poses)
    p = {name: poses[1:, i] for name, i in J.items()}                       # each [T-1, 3]
    v = {name: np.diff(poses[:, i], axis=0) * fps for name, i in J.items()}  # each [T-1, 3] m/s
    up = _unit(p["thorax"] - p["hip"])
    left = _unit(p["l_hip"] - p["r_hip"])
    forward = _unit(np.cross(left, up))
    lowest = poses[1:, :, UP].min(axis=1)                                   # [T-1]
    height = lambda j: p[j][:, UP] - lowest
    down_torso = p["hip"] - p["thorax"]
    vertical = np.broadcast_to(np.array([0.0, 1.0, 0.0]), down_torso.shape)

    def moves(joint, ref, direction, threshold):   # velocity of joint relative to ref along direction
        return _dot(v[joint] - v[ref], _unit(direction)) > threshold

    def bent(a, b, c):                              # angle at b between b->a and b->c below 110 deg
        return _angle(p[a] - p[b], p[c] - p[b]) < 110.0

    def fast(joint, threshold):
        return np.linalg.norm(v[joint], axis=-1) > threshold

    plane_normal = np.cross(p["l_ankle"] - p["r_ankle"], p["thorax"] - p["r_ankle"])
    rel = [
        moves("r_wrist", "thorax", forward, 1.8 * hl), moves("l_wrist", "thorax", forward, 1.8 * hl),
        _dot(p["r_wrist"] - p["thorax"], up) > 0.2 * hl, _dot(p["l_wrist"] - p["thorax"], up) > 0.2 * hl,
        moves("r_wrist", "spine", up, 1.8 * hl), moves("l_wrist", "spine", up, 1.8 * hl),
        bent("r_shoulder", "r_elbow", "r_wrist"), bent("l_shoulder", "l_elbow", "l_wrist"),
        _dot(p["r_wrist"] - p["l_wrist"], _unit(p["r_shoulder"] - p["l_shoulder"])) > 2.5 * sw,
        moves("r_wrist", "l_wrist", p["r_wrist"] - p["l_wrist"], 1.4 * hl),
        moves("r_wrist", "hip", p["hip"] - p["r_wrist"], 1.4 * hl),
        moves("l_wrist", "hip", p["hip"] - p["l_wrist"], 1.4 * hl),
        fast("r_wrist", 2.5 * hl), fast("l_wrist", 2.5 * hl),
        _dot(p["r_ankle"] - p["l_hip"], forward) > 0.38 * hl,
        _dot(p["l_ankle"] - p["r_hip"], forward) > 0.38 * hl,
        height("r_ankle") > 1.2 * hl, height("l_ankle") > 1.2 * hl,
        _dot(p["r_ankle"] - p["l_ankle"], _unit(p["r_hip"] - p["l_hip"])) > 2.1 * hw,
        bent("r_hip", "r_knee", "r_ankle"), bent("l_hip", "l_knee", "l_ankle"),
        fast("r_ankle", 2.5 * hl), fast("l_ankle", 2.5 * hl),
        _angle(down_torso, p["r_elbow"] - p["r_shoulder"]) > 25.0,
        _angle(down_torso, p["l_elbow"] - p["l_shoulder"]) > 25.0,
        _angle(down_torso, p["r_knee"] - p["r_hip"]) > 50.0,
        _angle(down_torso, p["l_knee"] - p["l_hip"]) > 50.0,
        _dot(p["hip"] - p["r_ankle"], _unit(plane_normal)) > 0.5 * hl,
        np.abs(_angle(down_torso, vertical) - 90.0) < 20.0,
        height("r_wrist") < 1.2 * hl, height("l_wrist") < 1.2 * hl,
        fast("hip", 2.3 * hl),
    ]
    out = np.stack(rel, axis=1)                                             # [T-1, 32]
    assert out.shape[1] == len(GEOMETRIC_NAMES)
    return out


def geometric_features(poses: np.ndarray, fps: float) -> np.ndarray:
    """poses [T, 17, 3] metres, y up -> float64 [32]: share of frames where each relation holds."""
    return geometric_relations(poses, fps).mean(axis=0)
