"""The H36M-17 skeleton, other skeletons' converters to it, and small pose transforms.

Poses are arrays [T, 17, 3] in metres, y up, right-handed, Human3.6M / VideoPose3D joint
order (DESIGN.md). Every other layout is converted by a named function here.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import interp1d


@dataclass(frozen=True)
class Skeleton:
    """A kinematic tree: joint names, parent indices (-1 = root), left/right joint lists."""

    names: tuple[str, ...]
    parents: tuple[int, ...]
    joints_left: tuple[int, ...]
    joints_right: tuple[int, ...]

    @property
    def num_joints(self) -> int:
        return len(self.names)

    @property
    def bones(self) -> tuple[tuple[int, int], ...]:
        """(parent, child) pairs, one per non-root joint."""
        return tuple((p, c) for c, p in enumerate(self.parents) if p >= 0)

    def index(self, name: str) -> int:
        return self.names.index(name)

    @property
    def mirror(self) -> np.ndarray:
        """Permutation [J] that swaps left and right joints."""
        perm = np.arange(self.num_joints)
        perm[list(self.joints_left)] = self.joints_right
        perm[list(self.joints_right)] = self.joints_left
        return perm


H36M = Skeleton(
    names=("hip", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "spine",
           "thorax", "neck", "head", "l_shoulder", "l_elbow", "l_wrist",
           "r_shoulder", "r_elbow", "r_wrist"),
    parents=(-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15),
    joints_left=(4, 5, 6, 11, 12, 13),
    joints_right=(1, 2, 3, 14, 15, 16),
)
NUM_JOINTS = H36M.num_joints
FPS = 24.0  # canonical frame rate of every clip
# Named joint indices used across the package.
ROOT, R_ANKLE, L_ANKLE, THORAX, HEAD = 0, 3, 6, 8, 10
R_HIP, L_HIP = 1, 4
R_WRIST, L_WRIST = 16, 13
FEET = (R_ANKLE, L_ANKLE)
UP = 1                    # y up (DESIGN.md)
CONTACT_HEIGHT = 0.05     # m: ankle height above the floor that counts as "on the floor"
FLOOR_PERCENTILE = 1.0    # %: the floor is this percentile of ankle heights (robust to a stray frame)
MAX_GAP_S = 0.5           # s: frames without a pose are interpolated across gaps up to this long

SMPL24 = Skeleton(
    names=("pelvis", "l_hip", "r_hip", "spine1", "l_knee", "r_knee", "spine2", "l_ankle",
           "r_ankle", "spine3", "l_foot", "r_foot", "neck", "l_collar", "r_collar", "head",
           "l_shoulder", "r_shoulder", "l_elbow", "r_elbow", "l_wrist", "r_wrist",
           "l_hand", "r_hand"),
    parents=(-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21),
    joints_left=(1, 4, 7, 10, 13, 16, 18, 20, 22),
    joints_right=(2, 5, 8, 11, 14, 17, 19, 21, 23),
)
COCO17 = Skeleton(
    names=("nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder", "l_elbow",
           "r_elbow", "l_wrist", "r_wrist", "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle",
           "r_ankle"),
    parents=(-1, 0, 0, 1, 2, 0, 0, 5, 6, 7, 8, 5, 6, 11, 12, 13, 14),
    joints_left=(1, 3, 5, 7, 9, 11, 13, 15),
    joints_right=(2, 4, 6, 8, 10, 12, 14, 16),
)
CMU15 = Skeleton(
    names=("pelvis", "torso", "head", "right_upper_arm", "right_lower_arm", "right_hand",
           "left_upper_arm", "left_lower_arm", "left_hand", "right_thigh", "right_shin",
           "right_foot", "left_thigh", "left_shin", "left_foot"),
    parents=(-1, 0, 1, 1, 3, 4, 1, 6, 7, 0, 9, 10, 0, 12, 13),
    joints_left=(6, 7, 8, 12, 13, 14),
    joints_right=(3, 4, 5, 9, 10, 11),
)
# MediaPipe Pose landmarks used by the converter (of 33).
MP_NOSE, MP_L_EAR, MP_R_EAR = 0, 7, 8
MP_L_SHOULDER, MP_R_SHOULDER, MP_L_ELBOW, MP_R_ELBOW, MP_L_WRIST, MP_R_WRIST = 11, 12, 13, 14, 15, 16
MP_L_HIP, MP_R_HIP, MP_L_KNEE, MP_R_KNEE, MP_L_ANKLE, MP_R_ANKLE = 23, 24, 25, 26, 27, 28

# Rotations between axis conventions, applied as points @ R.T.
Z_UP_TO_Y_UP = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], dtype=np.float64)  # (x, y, z) -> (x, z, -y)
Y_DOWN_TO_Y_UP = np.array([[1, 0, 0], [0, -1, 0], [0, 0, -1]], dtype=np.float64)  # 180 deg about x


def check_poses(poses: np.ndarray, num_joints: int = NUM_JOINTS, what: str = "poses") -> np.ndarray:
    """Return poses as float array [T, J, 3], raising ValueError on another shape."""
    poses = np.asarray(poses)
    if poses.ndim != 3 or poses.shape[1:] != (num_joints, 3):
        raise ValueError(f"{what}: expected shape [T, {num_joints}, 3], got {list(poses.shape)}")
    return poses


def rotate(poses: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """Apply a 3x3 rotation to points [..., 3]."""
    return (np.asarray(poses) @ np.asarray(rotation).T).astype(np.asarray(poses).dtype)


def _assemble(hip, r_hip, r_knee, r_ankle, l_hip, l_knee, l_ankle, thorax, neck, head,
              l_sh, l_el, l_wr, r_sh, r_el, r_wr, spine=None) -> np.ndarray:
    """Stack H36M-17 joints [T, 3] each into [T, 17, 3]; spine defaults to mid hip-thorax."""
    if spine is None:
        spine = 0.5 * (hip + thorax)
    joints = (hip, r_hip, r_knee, r_ankle, l_hip, l_knee, l_ankle, spine, thorax, neck, head,
              l_sh, l_el, l_wr, r_sh, r_el, r_wr)
    return np.stack(joints, axis=1).astype(np.float32)


def smpl24_to_h36m(joints: np.ndarray, z_up: bool = True) -> np.ndarray:
    """SMPL-24 joints [T, 24, 3] (metres) -> H36M-17 [T, 17, 3], y up.

    SMPL has no head-top joint: it is extrapolated 60 % of the neck->head segment beyond the head.
    """
    j = check_poses(joints, 24, "SMPL-24 joints").astype(np.float64)
    if z_up:
        j = rotate(j, Z_UP_TO_Y_UP)
    neck, head = j[:, 12], j[:, 15]
    return _assemble(j[:, 0], j[:, 2], j[:, 5], j[:, 8], j[:, 1], j[:, 4], j[:, 7],
                     thorax=neck, neck=head, head=head + 0.6 * (head - neck),
                     l_sh=j[:, 16], l_el=j[:, 18], l_wr=j[:, 20],
                     r_sh=j[:, 17], r_el=j[:, 19], r_wr=j[:, 21], spine=j[:, 6])


def cmu15_to_h36m(positions: np.ndarray, z_up: bool = True) -> np.ndarray:
    """CMU 15-body humanoid [T, 15, 3] (joint order of CMU15, metres) -> H36M-17 [T, 17, 3], y up.

    The 15-body layout's `head` body sits at the base of the skull; the nose joint is placed
    there and the head top 70 % of the thorax->head segment above it.
    """
    p = check_poses(positions, 15, "CMU 15-body positions").astype(np.float64)
    if z_up:
        p = rotate(p, Z_UP_TO_Y_UP)
    thorax = 0.5 * (p[:, 3] + p[:, 6])
    head = p[:, 2]
    return _assemble(p[:, 0], p[:, 9], p[:, 10], p[:, 11], p[:, 12], p[:, 13], p[:, 14],
                     thorax=thorax, neck=head, head=head + 0.7 * (head - thorax),
                     l_sh=p[:, 6], l_el=p[:, 7], l_wr=p[:, 8],
                     r_sh=p[:, 3], r_el=p[:, 4], r_wr=p[:, 5], spine=p[:, 1])


def coco17_to_h36m(keypoints: np.ndarray) -> np.ndarray:
    """COCO-17 keypoints [T, 17, 3] (metres, y up, as AIST++ keypoints3d once scaled) -> H36M-17.

    Hip and thorax are the mid-points of the hips and shoulders; the head top is the ear
    mid-point pushed 50 % of the thorax->ears segment further up.
    """
    k = check_poses(keypoints, 17, "COCO-17 keypoints").astype(np.float64)
    hip = 0.5 * (k[:, 11] + k[:, 12])
    thorax = 0.5 * (k[:, 5] + k[:, 6])
    ears = 0.5 * (k[:, 3] + k[:, 4])
    return _assemble(hip, k[:, 12], k[:, 14], k[:, 16], k[:, 11], k[:, 13], k[:, 15],
                     thorax=thorax, neck=k[:, 0], head=ears + 0.5 * (ears - thorax),
                     l_sh=k[:, 5], l_el=k[:, 7], l_wr=k[:, 9],
                     r_sh=k[:, 6], r_el=k[:, 8], r_wr=k[:, 10])


def mediapipe33_to_h36m(landmarks: np.ndarray) -> np.ndarray:
    """MediaPipe Pose world landmarks [T, 33, 3] (metres, y down, origin at the hips) -> H36M-17, y up."""
    m = rotate(check_poses(landmarks, 33, "MediaPipe landmarks").astype(np.float64), Y_DOWN_TO_Y_UP)
    hip = 0.5 * (m[:, MP_L_HIP] + m[:, MP_R_HIP])
    thorax = 0.5 * (m[:, MP_L_SHOULDER] + m[:, MP_R_SHOULDER])
    ears = 0.5 * (m[:, MP_L_EAR] + m[:, MP_R_EAR])
    return _assemble(hip, m[:, MP_R_HIP], m[:, MP_R_KNEE], m[:, MP_R_ANKLE],
                     m[:, MP_L_HIP], m[:, MP_L_KNEE], m[:, MP_L_ANKLE],
                     thorax=thorax, neck=m[:, MP_NOSE], head=ears + 0.5 * (ears - thorax),
                     l_sh=m[:, MP_L_SHOULDER], l_el=m[:, MP_L_ELBOW], l_wr=m[:, MP_L_WRIST],
                     r_sh=m[:, MP_R_SHOULDER], r_el=m[:, MP_R_ELBOW], r_wr=m[:, MP_R_WRIST])


def bone_lengths(poses: np.ndarray, skeleton: Skeleton = H36M) -> np.ndarray:
    """Bone lengths [T, J-1] in metres, one per (parent, child) in skeleton.bones."""
    poses = check_poses(poses, skeleton.num_joints)
    parents, children = zip(*skeleton.bones)
    return np.linalg.norm(poses[:, list(children)] - poses[:, list(parents)], axis=-1)


def bone_length_cv(poses: np.ndarray, skeleton: Skeleton = H36M) -> float:
    """Mean over bones of the coefficient of variation (std / mean) of bone length over time."""
    lengths = bone_lengths(poses, skeleton)
    return float(np.mean(lengths.std(axis=0) / np.maximum(lengths.mean(axis=0), 1e-8)))


def root_relative(poses: np.ndarray) -> np.ndarray:
    """Subtract the root (hip) from every joint: [T, J, 3] -> [T, J, 3], root at the origin."""
    return poses - poses[:, :1]


def floor_height(poses: np.ndarray, percentile: float = FLOOR_PERCENTILE) -> float:
    """Height (m) of the floor a dance stands on: a low percentile of both ankles' heights over
    [T, 17, 3], so a source whose floor is not at y = 0 (AIST++) or a root-relative dance works."""
    return float(np.percentile(np.asarray(poses)[:, list(FEET), UP], percentile))


def put_on_floor(poses: np.ndarray, joints: tuple[int, ...] | None = None, per_frame: bool = False) -> np.ndarray:
    """Poses [T, J, 3] shifted vertically so that the lowest of `joints` (default: all) is at
    y = 0: its lowest point over the whole dance, or in each frame (`per_frame`)."""
    poses = np.array(poses, copy=True)
    heights = poses[:, list(joints) if joints is not None else slice(None), UP]  # [T, J']
    poses[..., UP] -= heights.min(axis=1)[:, None] if per_frame else heights.min()
    return poses


def fill_gaps(poses: np.ndarray, confidence: np.ndarray, valid: np.ndarray, fps: float,
              max_gap_s: float = MAX_GAP_S) -> tuple[np.ndarray, np.ndarray]:
    """Fill frames where valid is False: poses [T, J, 3], confidence [T, J], valid [T] bool.

    Gaps up to max_gap_s seconds between valid frames are interpolated linearly; longer gaps
    and the ends hold the nearest valid pose. Filled frames get confidence 0.
    ValueError when no frame is valid.
    """
    valid = np.asarray(valid, bool)
    if not valid.any():
        raise ValueError("no person detected in any frame")
    poses = np.array(poses, np.float32, copy=True)
    confidence = np.where(valid[:, None], confidence, 0.0).astype(np.float32)
    t = np.arange(len(poses))
    good = np.flatnonzero(valid)
    flat = poses.reshape(len(poses), -1)  # [T, J*3]
    for k in range(flat.shape[1]):
        flat[~valid, k] = np.interp(t[~valid], good, flat[good, k])
    # Frames deep inside a long gap: hold the nearest valid pose instead of interpolating.
    prev = np.maximum.accumulate(np.where(valid, t, -1))
    nxt = np.minimum.accumulate(np.where(valid, t, len(t))[::-1])[::-1]
    long_gap = (~valid) & (prev >= 0) & (nxt < len(t)) & ((nxt - prev - 1) > max_gap_s * fps)
    nearest = np.where(t - prev <= nxt - t, prev, nxt)
    flat[long_gap] = flat[nearest[long_gap]]
    return flat.reshape(poses.shape), confidence


def resample(poses: np.ndarray, fps_in: float, fps_out: float) -> np.ndarray:
    """Linearly resample [T, J, 3] (or any [T, ...]) from fps_in to fps_out.

    The output covers the same time span: frame k sits at k / fps_out seconds, for every
    k with k / fps_out <= (T - 1) / fps_in.
    """
    poses = np.asarray(poses)
    if fps_in <= 0 or fps_out <= 0:
        raise ValueError(f"frame rates must be positive, got {fps_in} -> {fps_out}")
    if len(poses) < 2 or fps_in == fps_out:
        return poses.copy()
    duration = (len(poses) - 1) / fps_in
    n_out = int(np.floor(duration * fps_out + 1e-6)) + 1
    t_in = np.arange(len(poses)) / fps_in
    t_out = np.arange(n_out) / fps_out
    return interp1d(t_in, poses, axis=0, assume_sorted=True)(t_out).astype(poses.dtype)


def joint_speed(poses: np.ndarray, fps: float) -> np.ndarray:
    """Joint speeds: poses [T, J, 3] metres -> [T-1, J] m/s."""
    poses = np.asarray(poses, dtype=np.float64)
    return np.linalg.norm(np.diff(poses, axis=0), axis=-1) * fps


def motion_energy(poses: np.ndarray, fps: float) -> np.ndarray:
    """Mean joint speed per frame transition: [T, J, 3] -> [T-1] m/s."""
    return joint_speed(poses, fps).mean(axis=1)
