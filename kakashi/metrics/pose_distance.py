"""Distance of each pose to the nearest pose of a reference set, in a yaw-aligned, size-free space.

A pose is its 16 unit bone directions after turning it about the vertical so that its hip line
(r_hip -> l_hip, seen from above) points along +x: [T, 17, 3] -> [T, 48], unchanged by where the
dancer stands, which way they face and how tall they are. The distance between two poses is
the RMS over bones of the chord between their directions (0 same pose, 2 every bone reversed;
0.1 ~ every bone 6 deg off).

A generated dance is judged against the ground truth's own: `pose_distance` (`feature_distance`
over features sampled once per dance) gives the median
nearest-reference distance of the dances' poses and of each reference dance's poses to the
other reference dances (held out one dance at a time, as a test song is to the training songs).
"""
from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np

from ..skeleton import H36M, L_HIP, R_HIP

PARENTS, CHILDREN = (list(x) for x in zip(*H36M.bones))
L_SHOULDER, R_SHOULDER = H36M.index("l_shoulder"), H36M.index("r_shoulder")
POSE_RATE = 6.0            # poses per second kept: poses 1/6 s apart are near-duplicates
MAX_REFERENCE = 6000       # reference poses kept at most (evenly spread), for speed
CHUNK = 2048               # query poses per block of the distance matrix
OWN_KEPT = 8               # references whose own distance is kept (`_own_distance`)
EPS = 1e-9
_OWN: dict[bytes, float] = {}


def pose_features(poses: np.ndarray) -> np.ndarray:
    """Yaw-aligned unit bone directions: poses [T, 17, 3] -> [T, 48] (16 bones x 3)."""
    poses = np.asarray(poses, dtype=np.float64)
    side = (poses[:, L_HIP] - poses[:, R_HIP]) + (poses[:, L_SHOULDER] - poses[:, R_SHOULDER])  # [T, 3]
    yaw = np.arctan2(side[:, 2], side[:, 0])                                 # [T] rad, left -> +x
    c, s = np.cos(yaw), np.sin(yaw)
    bones = poses[:, CHILDREN] - poses[:, PARENTS]                           # [T, 16, 3]
    bones = bones / np.maximum(np.linalg.norm(bones, axis=-1, keepdims=True), EPS)
    x, y, z = bones[..., 0], bones[..., 1], bones[..., 2]
    turned = np.stack([c[:, None] * x + s[:, None] * z, y, -s[:, None] * x + c[:, None] * z], axis=-1)
    return turned.reshape(len(poses), -1)                                    # [T, 48]


def sample_features(poses: np.ndarray, fps: float, rate: float = POSE_RATE) -> np.ndarray:
    """pose_features of every (fps / rate)-th frame: [T, 17, 3] -> [~T rate / fps, 48]."""
    step = max(1, int(round(fps / rate)))
    return pose_features(np.asarray(poses)[::step])


def nearest_distances(query: np.ndarray, pool: np.ndarray, query_groups: np.ndarray | None = None,
                      pool_groups: np.ndarray | None = None) -> np.ndarray:
    """Distance of each query feature [N, 48] to its nearest pool feature [R, 48] -> [N].

    With groups (one integer per row), a pool row of the query row's own group is skipped
    (leave one dance out). RMS chord per bone: sqrt(|a - b|^2 / 16).
    """
    query, pool = np.asarray(query, np.float64), np.asarray(pool, np.float64)
    bones = query.shape[1] // 3
    pool_sq = (pool ** 2).sum(axis=1)                                        # [R]
    out = np.empty(len(query))
    for start in range(0, len(query), CHUNK):
        q = query[start:start + CHUNK]                                       # [n, 48]
        d2 = (q ** 2).sum(axis=1)[:, None] + pool_sq[None] - 2.0 * q @ pool.T  # [n, R]
        if query_groups is not None:
            d2[query_groups[start:start + CHUNK, None] == pool_groups[None]] = np.inf
        out[start:start + CHUNK] = np.sqrt(np.maximum(d2.min(axis=1), 0.0) / bones)
    return out


def _own_distance(pool: np.ndarray, groups: np.ndarray) -> float:
    """Median distance of a reference's poses [R, 48] to its other dances' (`groups`), computed
    once per reference: every row of a table is measured against the same one."""
    key = hashlib.blake2b(pool.tobytes() + groups.tobytes(), digest_size=16).digest()
    if key not in _OWN:
        if len(_OWN) >= OWN_KEPT:
            _OWN.pop(next(iter(_OWN)))
        _OWN[key] = float(np.median(nearest_distances(pool, pool, groups, groups)))
    return _OWN[key]


def _thin(features: np.ndarray, groups: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """At most `limit` rows, evenly spread."""
    if len(features) <= limit:
        return features, groups
    keep = np.linspace(0, len(features) - 1, limit).round().astype(int)
    return features[keep], groups[keep]


def feature_distance(dances: Sequence[np.ndarray], reference: Sequence[np.ndarray],
                     max_reference: int = MAX_REFERENCE) -> dict[str, float]:
    """Nearest-reference distance of the dances' poses against the reference's own.

    dances, reference: per-dance features [T_i, 48] (`sample_features`); two reference dances at
    least, thinned evenly to max_reference poses. Returns {"dances": median over the dances'
    poses of the distance to the nearest reference pose, "reference": the same for each
    reference dance's poses against the other reference dances, "ratio": dances / reference
    (1: as near as a held-out ground-truth dance)}.
    """
    pool, groups = _reference_pool(reference, max_reference)
    own = _own_distance(pool, groups)
    gen = float(np.median(nearest_distances(np.concatenate(list(dances)), pool)))
    return {"dances": gen, "reference": own, "ratio": gen / max(own, EPS)}


def _reference_pool(reference: Sequence[np.ndarray], max_reference: int) -> tuple[np.ndarray, np.ndarray]:
    """The reference dances' features [R, 48] pooled and thinned, with each pose's dance [R]."""
    if len(reference) < 2:
        raise ValueError(f"pose_distance needs two reference dances or more, got {len(reference)}")
    pool = np.concatenate(list(reference))                                   # [R, 48]
    groups = np.concatenate([np.full(len(r), i) for i, r in enumerate(reference)])
    return _thin(pool, groups, max_reference)


def reference_distance(reference: Sequence[np.ndarray], fps: float, max_reference: int = MAX_REFERENCE) -> float:
    """The "reference" of pose_distance: the median distance of each reference dance's poses
    [T_j, 17, 3] at fps to the other dances' nearest, computed once per reference and kept for
    the pose_distance calls that follow (in this process and in processes forked after it)."""
    return _own_distance(*_reference_pool([sample_features(r, fps) for r in reference], max_reference))


def pose_distance(dances: Sequence[np.ndarray], reference: Sequence[np.ndarray], fps: float,
                  reference_fps: float | None = None, max_reference: int = MAX_REFERENCE) -> dict[str, float]:
    """feature_distance of dances [T_i, 17, 3] at fps against reference dances [T_j, 17, 3]
    (ground truth, at reference_fps, default fps), POSE_RATE poses a second of each."""
    ref_fps = fps if reference_fps is None else reference_fps
    return feature_distance([sample_features(d, fps) for d in dances],
                            [sample_features(r, ref_fps) for r in reference], max_reference)
