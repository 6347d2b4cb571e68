"""BVH export of H36M-17 dances, and a small BVH reader for round trips.

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
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

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


@dataclass
class BVH:
    """A parsed BVH file. offsets [J, 3] and motion [T, C] are in file units, angles in degrees.

    channels[j] lists joint j's channel names in file order; motion's columns follow the joints
    in order. end_sites maps a joint to its End Site offset [3].
    """

    names: list[str]
    parents: list[int]
    offsets: np.ndarray
    channels: list[list[str]]
    motion: np.ndarray
    frame_time: float
    end_sites: dict[int, np.ndarray] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return len(self.motion)

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time


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


def _axis_rotation(axis: str, degrees: np.ndarray) -> np.ndarray:
    """Rotations [T, 3, 3] about the x, y or z axis by angles [T] in degrees."""
    t = np.radians(degrees)
    c, s = np.cos(t), np.sin(t)
    r = np.zeros(t.shape + (3, 3))
    i, j = {"X": (1, 2), "Y": (2, 0), "Z": (0, 1)}[axis]
    r[..., 3 - i - j, 3 - i - j] = 1.0
    r[..., i, i], r[..., j, j], r[..., i, j], r[..., j, i] = c, c, -s, s
    return r


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
    return bvh_to_positions(positions_to_bvh(poses, fps), scale=1.0 / SCALE).astype(np.float32)


def format_bvh(bvh: BVH) -> str:
    """The text of a BVH file: HIERARCHY (tab-indented, End Site for leaves) and MOTION."""
    children = [[c for c, p in enumerate(bvh.parents) if p == j] for j in range(len(bvh.names))]
    lines = ["HIERARCHY"]

    def joint(j: int, depth: int) -> None:
        pad = "\t" * depth
        kind = "ROOT" if bvh.parents[j] < 0 else "JOINT"
        lines.extend([f"{pad}{kind} {bvh.names[j]}", f"{pad}{{",
                      f"{pad}\tOFFSET {' '.join(f'{v:.6f}' for v in bvh.offsets[j])}",
                      f"{pad}\tCHANNELS {len(bvh.channels[j])} {' '.join(bvh.channels[j])}"])
        for c in children[j]:
            joint(c, depth + 1)
        if not children[j]:
            end = bvh.end_sites.get(j, np.zeros(3))
            lines.extend([f"{pad}\tEnd Site", f"{pad}\t{{",
                          f"{pad}\t\tOFFSET {' '.join(f'{v:.6f}' for v in end)}", f"{pad}\t}}"])
        lines.append(f"{pad}}}")

    roots = [j for j, p in enumerate(bvh.parents) if p < 0]
    if len(roots) != 1 or any(p >= c for c, p in enumerate(bvh.parents) if p >= 0):
        raise ValueError("BVH: need one root and every parent before its children")
    joint(roots[0], 0)
    lines += ["MOTION", f"Frames: {bvh.num_frames}", f"Frame Time: {bvh.frame_time:.8f}"]
    lines += [" ".join(f"{v:.6f}" for v in row) for row in bvh.motion]
    return "\n".join(lines) + "\n"


def write_bvh(path: str | os.PathLike, poses: np.ndarray, fps: float, scale: float = SCALE,
              order: str = ORDER) -> Path:
    """Write H36M-17 poses [T, 17, 3] (metres, y up) as a BVH file in file units of
    1/scale metre (default centimetres), atomically; returns the path."""
    path = Path(path)
    text = format_bvh(positions_to_bvh(poses, fps, scale, order))
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


# ---------------------------------------------------------------------------- reading

def read_bvh(path: str | os.PathLike) -> BVH:
    """Parse a BVH file (one ROOT); ValueError naming the file and line when malformed."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: BVH file not found")
    text = path.read_text(errors="replace")
    parts = re.split(r"^\s*MOTION\s*$", text, maxsplit=1, flags=re.M)
    if len(parts) != 2:
        raise ValueError(f"{path}: not a BVH file (no MOTION line)")
    head, motion_text = parts
    tokens = [(tok, n) for n, line in enumerate(head.splitlines(), 1) for tok in line.split()]
    pos = 0

    def take(expected: str | None = None) -> str:
        nonlocal pos
        if pos >= len(tokens):
            raise ValueError(f"{path}: unexpected end of HIERARCHY"
                             + (f", expected {expected!r}" if expected else ""))
        tok, line = tokens[pos]
        pos += 1
        if expected is not None and tok != expected:
            raise ValueError(f"{path}: line {line}: expected {expected!r}, found {tok!r}")
        return tok

    def numbers(count: int) -> np.ndarray:
        line = tokens[min(pos, len(tokens) - 1)][1]
        try:
            return np.array([float(take()) for _ in range(count)])
        except ValueError:
            raise ValueError(f"{path}: line {line}: expected {count} numbers") from None

    names, parents, offsets, channels, end_sites = [], [], [], [], {}

    def joint(parent: int) -> None:
        index = len(names)
        names.append(take())
        parents.append(parent)
        take("{")
        take("OFFSET")
        offsets.append(numbers(3))
        take("CHANNELS")
        count = take()
        if not count.isdigit():
            raise ValueError(f"{path}: line {tokens[pos - 1][1]}: bad channel count {count!r}")
        channels.append([take() for _ in range(int(count))])
        while True:
            tok = take()
            if tok == "}":
                return
            if tok == "JOINT":
                joint(index)
            elif tok == "End":
                take("Site")
                take("{")
                take("OFFSET")
                end_sites[index] = numbers(3)
                take("}")
            else:
                raise ValueError(f"{path}: line {tokens[pos - 1][1]}: unexpected {tok!r}")

    take("HIERARCHY")
    take("ROOT")
    joint(-1)
    if pos != len(tokens):
        raise ValueError(f"{path}: line {tokens[pos][1]}: only one ROOT is supported")
    bad = [c for cs in channels for c in cs if c[1:] not in ("position", "rotation") or c[0] not in "XYZ"]
    if bad:
        raise ValueError(f"{path}: unknown channel(s) {sorted(set(bad))}")
    frames, frame_time, values = _parse_motion(path, motion_text)
    width = sum(len(c) for c in channels)
    if values.size != frames * width:
        raise ValueError(f"{path}: MOTION holds {values.size} numbers, expected Frames {frames} x "
                         f"{width} channels")
    return BVH(names=names, parents=parents, offsets=np.array(offsets).reshape(-1, 3),
               channels=channels, motion=values.reshape(frames, width), frame_time=frame_time,
               end_sites=end_sites)


def _parse_motion(path: Path, text: str) -> tuple[int, float, np.ndarray]:
    """(frame count, frame time, all motion values flat) from the text after MOTION."""
    lines = text.strip().splitlines()
    try:
        key1, frames = lines[0].split(":", 1)
        key2, frame_time = lines[1].split(":", 1)
        if key1.strip() != "Frames" or key2.strip() != "Frame Time":
            raise ValueError
        frames, frame_time = int(frames), float(frame_time)
    except (ValueError, IndexError):
        raise ValueError(f"{path}: MOTION must start with 'Frames: N' and 'Frame Time: dt'") from None
    if frame_time <= 0 or frames < 0:
        raise ValueError(f"{path}: bad Frames {frames} or Frame Time {frame_time}")
    try:
        values = np.array(" ".join(lines[2:]).split(), dtype=np.float64)
    except ValueError:
        raise ValueError(f"{path}: MOTION contains a value that is not a number") from None
    return frames, frame_time, values


def bvh_to_positions(bvh: BVH, scale: float = 1.0 / SCALE) -> np.ndarray:
    """Forward kinematics: joint positions [T, J, 3] in metres (file units * scale)."""
    num_frames, num_joints = bvh.num_frames, len(bvh.names)
    positions = np.zeros((num_frames, num_joints, 3))
    rot = np.zeros((num_frames, num_joints, 3, 3))
    column = 0
    for j, parent in enumerate(bvh.parents):
        translation = np.tile(np.asarray(bvh.offsets[j], np.float64), (num_frames, 1))  # [T, 3]
        local = np.broadcast_to(np.eye(3), (num_frames, 3, 3))
        for name in bvh.channels[j]:
            values = bvh.motion[:, column]
            column += 1
            if name.endswith("position"):
                translation[:, "XYZ".index(name[0])] += values
            else:
                local = local @ _axis_rotation(name[0], values)
        if parent < 0:
            rot[:, j], positions[:, j] = local, translation
        else:
            rot[:, j] = rot[:, parent] @ local
            positions[:, j] = positions[:, parent] + np.einsum("tij,tj->ti", rot[:, parent], translation)
    return positions * scale
