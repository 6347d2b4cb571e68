"""BVH export of H36M-17 dances (the file format itself: kakashi.bvh).

The file is in centimetres (`scale` = 100 file units per metre, what Blender and most tools
expect), y up, the dancer's rest pose a T-pose facing +z (x = the dancer's left). The root
(hip) carries Xposition Yposition Zposition and every joint three rotations in one Euler
order (default ZXY: R = Rz @ Rx @ Ry, the channels' order, as BVH readers apply them).

Joint rotations are solved from positions: a joint with one child turns its bone from the
rest direction onto the observed direction by the smallest swing from its parent's frame
(no twist is added); the hip and the thorax, with three children each, get the rotation that
best fits all their child offsets (Kabsch). Bone lengths are the medians over the dance, so a
wobbly pose estimate still fits one skeleton.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from .bvh import BVH, format_bvh
from .fileio import atomic_path
from .skeleton import H36M, check_poses

SCALE = 100.0  # file units per metre: centimetres
ORDER = "ZXY"  # Euler order of every joint's rotation channels
_UP, _DOWN, _LEFT, _RIGHT, _FORWARD = (0, 1, 0), (0, -1, 0), (1, 0, 0), (-1, 0, 0), (0, 0, 1)
# Rest direction of each bone whose parent joint has one child, keyed by the child joint.
REST_DIRECTIONS = {2: _DOWN, 3: _DOWN, 5: _DOWN, 6: _DOWN, 8: _UP, 10: _UP,
                   12: _LEFT, 13: _LEFT, 15: _RIGHT, 16: _RIGHT}
# Joints with several children: their frame's (left, up) vectors as (to, from) joint pairs:
# hip: r_hip -> l_hip and hip -> spine; thorax: r_shoulder -> l_shoulder and thorax -> neck.
FRAME_VECTORS = {0: ((4, 1), (7, 0)), 8: ((11, 14), (9, 8))}
END_SITES = {3: (_FORWARD, 0.12), 6: (_FORWARD, 0.12), 10: (_UP, 0.05),
             13: (_LEFT, 0.08), 16: (_RIGHT, 0.08)}  # leaf joint -> (direction, metres)


# ---------------------------------------------------------------------------- rotations

def _normalise(v: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), eps)


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest rotations taking directions a [T, 3] onto b [T, 3] -> [T, 3, 3].

    Where b has zero length the rotation is the identity; opposite directions turn by 180
    degrees about an axis perpendicular to a.
    """
    a, b = np.broadcast_arrays(np.asarray(a, np.float64), np.asarray(b, np.float64))
    valid = np.linalg.norm(b, axis=-1) > 1e-9
    a, b = _normalise(a), _normalise(b)
    v = np.cross(a, b)  # [T, 3]
    c = np.einsum("ti,ti->t", a, b)
    k = np.zeros(a.shape[:-1] + (3, 3))
    k[..., 0, 1], k[..., 0, 2], k[..., 1, 2] = -v[..., 2], v[..., 1], -v[..., 0]
    k -= np.swapaxes(k, -1, -2)  # skew matrix [v]x
    eye = np.broadcast_to(np.eye(3), k.shape)
    opposite = c < -1 + 1e-9
    r = eye + k + (k @ k) / np.maximum(1 + c, 1e-9)[..., None, None]
    if opposite.any():
        axis = np.cross(a[opposite], (1.0, 0.0, 0.0))
        flat = np.linalg.norm(axis, axis=-1) < 1e-6
        axis[flat] = np.cross(a[opposite][flat], (0.0, 1.0, 0.0))
        axis = _normalise(axis)
        r[opposite] = 2 * axis[:, :, None] * axis[:, None, :] - np.eye(3)
    r[~valid] = np.eye(3)
    return r


def kabsch(rest: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Rotations R [T, 3, 3] minimising sum_k |R rest_k - observed[t, k]|^2.

    rest: [K, 3] offsets; observed: [T, K, 3] offsets (K >= 2, not all parallel).
    """
    h = np.einsum("ki,tkj->tij", rest, observed)  # [T, 3, 3] covariance
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(np.swapaxes(vt, -1, -2) @ np.swapaxes(u, -1, -2)))
    fix = np.ones(u.shape[:-1])
    fix[:, -1] = np.where(d == 0, 1.0, d)
    return np.swapaxes(vt, -1, -2) @ (fix[:, :, None] * np.swapaxes(u, -1, -2))


def _frame(left: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Orthonormal frames [T, 3, 3] with columns (left, up, forward) from two vectors [T, 3]."""
    x = _normalise(left)
    z = _normalise(np.cross(x, up))
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=-1)


# ---------------------------------------------------------------------------- positions -> BVH

def _rest_offsets(poses: np.ndarray) -> np.ndarray:
    """Rest-pose offsets [J, 3] in metres of each joint from its parent (root: zeros)."""
    parents = H36M.parents
    offsets = np.zeros((H36M.num_joints, 3))
    for child, parent in enumerate(parents):
        if parent < 0:
            continue
        length = np.median(np.linalg.norm(poses[:, child] - poses[:, parent], axis=-1))
        if child in REST_DIRECTIONS:
            offsets[child] = np.array(REST_DIRECTIONS[child], float) * length
        else:  # a child of the hip or thorax: its typical place in the parent's frame
            (l1, l0), (u1, u0) = FRAME_VECTORS[parent]
            frame = _frame(poses[:, l1] - poses[:, l0], poses[:, u1] - poses[:, u0])  # [T, 3, 3]
            local = np.einsum("tij,ti->tj", frame, poses[:, child] - poses[:, parent])  # F^T d
            offsets[child] = _normalise(np.median(local, axis=0)) * length
    return offsets


def _global_rotations(poses: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Global joint rotations [T, J, 3, 3] placing each child bone along the observed one."""
    num_frames, num_joints = poses.shape[:2]
    children = [[c for c, p in enumerate(H36M.parents) if p == j] for j in range(num_joints)]
    rot = np.zeros((num_frames, num_joints, 3, 3))
    for j, parent in enumerate(H36M.parents):  # parents come before their children
        above = rot[:, parent] if parent >= 0 else np.broadcast_to(np.eye(3), (num_frames, 3, 3))
        kids = children[j]
        if len(kids) >= 2:
            rot[:, j] = kabsch(offsets[kids], poses[:, kids] - poses[:, j:j + 1])
        elif len(kids) == 1:
            rest = np.einsum("tij,j->ti", above, offsets[kids[0]])  # the bone if j did not turn
            rot[:, j] = rotation_between(rest, poses[:, kids[0]] - poses[:, j]) @ above
        else:
            rot[:, j] = above
    return rot


def positions_to_bvh(poses: np.ndarray, fps: float, scale: float = SCALE, order: str = ORDER) -> BVH:
    """H36M-17 poses [T, 17, 3] metres y up at fps -> BVH (file units = metres * scale)."""
    poses = check_poses(poses, H36M.num_joints).astype(np.float64)
    order = order.upper()
    if sorted(order) != ["X", "Y", "Z"]:
        raise ValueError(f"Euler order must be a permutation of XYZ, got {order!r}")
    if fps <= 0 or scale <= 0:
        raise ValueError(f"fps and scale must be positive, got fps={fps}, scale={scale}")
    if len(poses) == 0 or not np.isfinite(poses).all():
        raise ValueError("poses: need at least one frame and only finite values")
    offsets = _rest_offsets(poses)
    rot = _global_rotations(poses, offsets)
    parent_rot = np.concatenate([np.broadcast_to(np.eye(3), rot[:, :1].shape),
                                 rot[:, list(H36M.parents[1:])]], axis=1)  # [T, J, 3, 3]
    local = np.swapaxes(parent_rot, -1, -2) @ rot  # parent^T @ global
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # gimbal lock: the angles still match
        angles = Rotation.from_matrix(local.reshape(-1, 3, 3)).as_euler(order, degrees=True)
    angles = np.degrees(np.unwrap(np.radians(angles.reshape(len(poses), -1, 3)), axis=0))  # [T, J, 3]
    rot_channels = [f"{axis}rotation" for axis in order]
    channels = [["Xposition", "Yposition", "Zposition"] + rot_channels]
    channels += [list(rot_channels) for _ in range(1, H36M.num_joints)]
    motion = np.concatenate([poses[:, 0] * scale, angles.reshape(len(poses), -1)], axis=1)
    end_sites = {j: np.array(d, float) * length * scale for j, (d, length) in END_SITES.items()}
    return BVH(names=list(H36M.names), parents=list(H36M.parents), offsets=offsets * scale,
               channels=channels, motion=motion, frame_time=1.0 / fps, end_sites=end_sites)


def fit_rig(poses: np.ndarray, fps: float = 24.0) -> np.ndarray:
    """The dance as the BVH skeleton moves it: poses [T, 17, 3] metres -> [T, 17, 3] on a rigid
    rig (median bone lengths, the hip and thorax fitted as rigid bodies). A BVH written from
    the result reads back to the same positions."""
    return positions_to_bvh(poses, fps).positions(scale=1.0 / SCALE).astype(np.float32)


def write_bvh(path: str | os.PathLike, poses: np.ndarray, fps: float, scale: float = SCALE,
              order: str = ORDER) -> Path:
    """Write H36M-17 poses [T, 17, 3] (metres, y up) as a BVH file in file units of
    1/scale metre (default centimetres), atomically; returns the path."""
    path = Path(path)
    text = format_bvh(positions_to_bvh(poses, fps, scale, order))
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path
