"""Per-dance motion statistics that name the paper's failure (a stagnant, noisy pose), and PFC.

Every function takes one dance `poses` [T, 17, 3] (metres, y up, H36M-17 order) and its
frame rate `fps` (frames per second), and returns one float in the stated unit.
"""
from __future__ import annotations

import numpy as np

from ..skeleton import (CONTACT_HEIGHT, FEET, L_HIP, NUM_JOINTS, R_HIP, ROOT, UP, bone_length_cv, check_poses,
                        floor_height, root_relative)

MIN_FRAMES = 4            # third differences (jerk) need four frames
HORIZONTAL = (0, 2)       # the floor plane's axes
FROZEN_DISTANCE = 0.03    # m: mean per-joint distance to the mean pose that counts as "frozen"
EDGE_FRAME_TIME = 1 / 30  # s: EDGE measures foot speed in metres per frame at 30 fps
PFC_SCALE = 1e4           # EDGE reports its score times 10 000
FACING_DEG = 45.0         # deg either side of a dance's mean heading that counts as facing its front
CALM_SPEED = 0.12         # m/s: joint speed relative to the hip below which a dancer is calm (dancing: ~0.25)
CALM_SECONDS = 2.0        # s: the stretch of time that speed is averaged over


def check_dance(poses: np.ndarray, fps: float, what: str = "dance") -> np.ndarray:
    """Return poses as float64 [T, 17, 3]; ValueError on a wrong shape, NaN/inf, a bad fps or T < 4."""
    poses = check_poses(poses, NUM_JOINTS, what).astype(np.float64)
    if not np.isfinite(poses).all():
        raise ValueError(f"{what}: poses contain NaN or inf")
    if not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"{what}: frame rate must be a positive number, got {fps}")
    if len(poses) < MIN_FRAMES:
        raise ValueError(f"{what}: {len(poses)} frames; the metrics need at least {MIN_FRAMES}")
    return poses


def heading(poses: np.ndarray) -> np.ndarray:
    """The way the hips face in the floor plane [T] rad, as the angle of the right-to-left hip line."""
    across = poses[:, L_HIP][:, HORIZONTAL] - poses[:, R_HIP][:, HORIZONTAL]
    return np.arctan2(across[:, 1], across[:, 0])


def facing_share(poses: np.ndarray, fps: float, within: float = FACING_DEG) -> float:
    """Share of frames whose hips face within `within` deg of the dance's mean heading (circular
    mean): 1 for a dancer who keeps to one front (an audience, a camera), within / 180 for one who
    turns evenly all the way round."""
    angle = heading(check_dance(poses, fps))
    off = np.angle(np.exp(1j * (angle - np.angle(np.exp(1j * angle).mean()))))
    return float(np.mean(np.abs(off) <= np.radians(within)))


def body_speed(poses: np.ndarray, fps: float) -> float:
    """Mean speed (m/s) of the 16 non-root joints relative to the hip: the dance's motion energy.

    Root-relative, so that dances generated in the paper's root-relative setting and global
    ground truth compare on equal terms; a frozen pose gives 0 whatever the root does.
    """
    rel = root_relative(check_dance(poses, fps))[:, 1:]                    # [T, 16, 3]
    return float(np.linalg.norm(np.diff(rel, axis=0), axis=-1).mean() * fps)


def calm_steps(poses: np.ndarray, fps: float, speed: float = CALM_SPEED, seconds: float = CALM_SECONDS) -> np.ndarray:
    """Boolean [T-1]: frame steps where the 16 non-root joints' mean speed relative to the hip,
    averaged over the `seconds` around the step (fewer at the dance's ends), is below `speed` m/s:
    the dancer barely moves (a sway, a held pose) for a while, not for a frame between moves."""
    rel = root_relative(check_dance(poses, fps))[:, 1:]                    # [T, 16, 3]
    step = np.linalg.norm(np.diff(rel, axis=0), axis=-1).mean(axis=1) * fps  # [T-1] m/s
    kernel = np.ones(max(1, int(round(seconds * fps))))
    mean = np.convolve(step, kernel, "same") / np.convolve(np.ones_like(step), kernel, "same")
    return mean < speed


def calm_share(poses: np.ndarray, fps: float) -> float:
    """Share of the dance's frame steps that are calm (`calm_steps`): 1 for a frozen pose."""
    return float(np.mean(calm_steps(poses, fps)))


def longest_calm(poses: np.ndarray, fps: float) -> float:
    """The longest stretch (s) of calm frame steps (`calm_steps`) in the dance: how long the
    dancer stays near still at most; the whole dance for a frozen pose."""
    calm = np.concatenate([[False], calm_steps(poses, fps), [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(calm))                                  # starts and ends, paired
    return float((edges[1::2] - edges[::2]).max(initial=0) / fps)


def calm_loudness(poses: np.ndarray, fps: float, loudness: np.ndarray) -> tuple[float, int]:
    """Is the dancer calm where the music is quiet? (mean rank, calm steps): the mean loudness rank
    of the dance's calm frame steps (`calm_steps`), each step ranked within the song from 0 (its
    quietest) to 1 (its loudest), and how many steps are calm (the rank is NaN when none is).
    About 0.5 when pauses do not follow the music, lower when they fall in its quiet passages.
    loudness [T] per frame on any increasing scale (dB, MFCC 0); the dance and the song are
    read over the frames both have."""
    calm = calm_steps(poses, fps)
    level = np.asarray(loudness, dtype=np.float64)
    if level.ndim != 1 or not np.isfinite(level).all():
        raise ValueError(f"loudness must be [T] finite values, got shape {level.shape}")
    n = min(len(calm), len(level) - 1)
    if n < 1:
        raise ValueError(f"loudness has {len(level)} frames; it needs at least 2")
    step = (level[:n] + level[1:n + 1]) / 2                                 # [n] each step's loudness
    rank = np.argsort(np.argsort(step, kind="stable"), kind="stable") / max(n - 1, 1)
    calm = calm[:n]
    return (float(rank[calm].mean()) if calm.any() else float("nan")), int(calm.sum())


def jerk(poses: np.ndarray, fps: float) -> float:
    """Mean magnitude of the third time derivative of joint positions, m/s^3 (noise shows here)."""
    poses = check_dance(poses, fps)
    third = np.diff(poses, n=3, axis=0) * fps ** 3                          # [T-3, 17, 3]
    return float(np.linalg.norm(third, axis=-1).mean())


def bone_cv(poses: np.ndarray, fps: float) -> float:
    """Mean over bones of the coefficient of variation of bone length (unitless; mocap ~0)."""
    return bone_length_cv(check_dance(poses, fps))


def foot_contacts(poses: np.ndarray, contact_height: float = CONTACT_HEIGHT) -> np.ndarray:
    """Boolean [T, 2] (right, left ankle): ankle within `contact_height` m of the floor.

    The floor is skeleton.floor_height: a low percentile of both ankles' heights over the dance.
    """
    return poses[:, list(FEET), UP] - floor_height(poses) < contact_height


def foot_skating(poses: np.ndarray, fps: float, contact_height: float = CONTACT_HEIGHT) -> float:
    """Mean horizontal ankle speed (m/s) over frame steps where that ankle is on the floor at both ends.

    0 when a foot never touches the floor (then nothing can skate).
    """
    poses = check_dance(poses, fps)
    contact = foot_contacts(poses, contact_height)                          # [T, 2]
    steps = contact[1:] & contact[:-1]                                      # [T-1, 2]
    feet = poses[:, list(FEET)][..., list(HORIZONTAL)]                      # [T, 2, 2]
    speed = np.linalg.norm(np.diff(feet, axis=0), axis=-1) * fps            # [T-1, 2]
    return float(speed[steps].mean()) if steps.any() else 0.0


def frozen_share(poses: np.ndarray, fps: float, distance: float = FROZEN_DISTANCE) -> float:
    """Fraction of frames whose root-relative pose is within `distance` m (mean per joint) of
    the dance's mean root-relative pose: 1 for a frozen pose, near 0 for real dance."""
    rel = root_relative(check_dance(poses, fps))                            # [T, 17, 3]
    dist = np.linalg.norm(rel - rel.mean(axis=0), axis=-1).mean(axis=1)     # [T]
    return float(np.mean(dist < distance))


def pfc(poses: np.ndarray, fps: float) -> float:
    """EDGE's Physical Foot Contact score (lower is better), for y up, any fps, ankles as feet.

    Per frame: (right foot horizontal speed) x (left foot horizontal speed) x (root acceleration
    / its maximum over the dance), averaged and times 10 000. The root's upward acceleration
    counts, downward (free fall) does not. Foot speeds are in metres per 1/30 s, so that at
    30 fps the number is EDGE's. A root that never accelerates needs no foot contact: 0.
    """
    poses = check_dance(poses, fps)
    root_v = np.diff(poses[:, ROOT], axis=0) * fps                          # [T-1, 3] m/s
    root_a = np.diff(root_v, axis=0) * fps                                  # [T-2, 3] m/s^2
    root_a[:, UP] = np.maximum(root_a[:, UP], 0.0)
    root_a = np.linalg.norm(root_a, axis=-1)                                # [T-2]
    peak = root_a.max()
    if peak < 1e-9:
        return 0.0
    feet = poses[:, list(FEET)][..., list(HORIZONTAL)]                      # [T, 2, 2]
    foot_v = np.linalg.norm(feet[2:] - feet[1:-1], axis=-1) * fps * EDGE_FRAME_TIME  # [T-2, 2]
    return float(np.mean(foot_v[:, 0] * foot_v[:, 1] * root_a / peak) * PFC_SCALE)
