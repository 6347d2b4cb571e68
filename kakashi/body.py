"""A body as joint rotations on a rigid skeleton, and the kinematics between it and positions.

Positions [T, *batch, 17, 3] (metres, y up, H36M-17) <-> body parameters [T, *batch, PARAM_DIM]
on a skeleton [*batch, 17, 3] (each joint's rest offset in its parent's frame, fitted per dance)
and a start [*batch, 3] (the hip's x, z in metres and the heading in radians at frame 0).

Parameters of one frame (PARAM_DIM = 48, layout in SLICES):
- root: hip height (m), planar velocity in the heading frame (x: left, z: forward; m/s, the
  step from the previous frame), yaw rate (rad/s, the same step) and the pelvis tilt with the
  heading removed (a 6D rotation: the first two columns of the matrix, Zhou et al. 2019);
- spine, thorax and neck: 6D rotations relative to the parent's frame;
- four limbs (legs from the pelvis, arms from the thorax), 5 numbers each: the upper bone's
  direction in the parent's frame (3, any length), the twist of the limb about it (rad,
  clamped to +-twist_max) and the bend of the hinge (knee, elbow; rad, clamped to
  [0, bend_max], knees flexing backwards and elbows forwards), so a knee cannot bend the
  wrong way and no parameter vector gives a broken body.

Forward kinematics (`body_to_poses`) is differentiable; bone lengths are exact by construction.
Frames: x left, y up, z forward (a right-handed frame: x cross y = z). The pelvis carries the
hips and the spine base rigidly, the thorax the neck base and shoulders: real shrugs and pelvis
deformation are what the round trip loses on mocap, with the hinge ranges.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .skeleton import H36M, NUM_JOINTS

PARENTS = H36M.parents
ROOT, R_HIP, L_HIP, SPINE, THORAX, NECK, HEAD, L_SHOULDER, R_SHOULDER = 0, 1, 4, 7, 8, 9, 10, 11, 14
PELVIS_CHILDREN = (R_HIP, L_HIP, SPINE)      # fixed in the pelvis frame
THORAX_CHILDREN = (NECK, L_SHOULDER, R_SHOULDER)  # fixed in the thorax frame
UP = (0.0, 1.0, 0.0)
EPS = 1e-8
DEGENERATE = 0.5   # a defining vector shorter than this times its median leaves its direction ill-defined
                  # (a trained decoder's: 0.65-1.1 of it at 99 steps in 100, near 0 where a part flips)

# Anatomical ranges. Knee and elbow flexion reach about 140-150 deg (Norkin & White, "Measurement
# of joint motion", normal adult ranges); limb twist is the hip's internal/external rotation
# (~45 deg each way) plus the knee's, and the shoulder's (~90 deg each way) plus the forearm's.
BEND_MAX = math.radians(150.0)
LEG_TWIST_MAX = math.radians(60.0)
ARM_TWIST_MAX = math.radians(120.0)


@dataclass(frozen=True)
class Limb:
    """A two-bone limb: upper, middle and end joints, the joint whose frame it hangs from, the
    upper bone's rest direction and the hinge's bend direction (parent frame), the ranges."""

    name: str
    joints: tuple[int, int, int]
    parent: int
    rest: tuple[float, float, float]
    bend: tuple[float, float, float]
    twist_max: float
    bend_max: float = BEND_MAX


LIMBS = (
    Limb("right_leg", (1, 2, 3), ROOT, (0.0, -1.0, 0.0), (0.0, 0.0, -1.0), LEG_TWIST_MAX),   # knee flexes back
    Limb("left_leg", (4, 5, 6), ROOT, (0.0, -1.0, 0.0), (0.0, 0.0, -1.0), LEG_TWIST_MAX),
    Limb("left_arm", (11, 12, 13), THORAX, (1.0, 0.0, 0.0), (0.0, 0.0, 1.0), ARM_TWIST_MAX),  # elbow flexes forward
    Limb("right_arm", (14, 15, 16), THORAX, (-1.0, 0.0, 0.0), (0.0, 0.0, 1.0), ARM_TWIST_MAX),
)
HINGES = tuple(limb.joints[1] for limb in LIMBS)   # knees and elbows: 2, 5, 12, 15

# parameter layout
HEIGHT, VELOCITY, YAW_RATE, TILT = slice(0, 1), slice(1, 3), slice(3, 4), slice(4, 10)
ROTATIONS = {SPINE: slice(10, 16), THORAX: slice(16, 22), NECK: slice(22, 28)}
LIMB_START = 28
LIMB_DIM = 5                                   # direction (3), twist (1), bend (1)
PARAM_DIM = LIMB_START + LIMB_DIM * len(LIMBS)  # 48
SLICES = {"height": HEIGHT, "velocity": VELOCITY, "yaw_rate": YAW_RATE, "tilt": TILT,
          "spine": ROTATIONS[SPINE], "thorax": ROTATIONS[THORAX], "neck": ROTATIONS[NECK],
          **{limb.name: slice(LIMB_START + LIMB_DIM * i, LIMB_START + LIMB_DIM * (i + 1))
             for i, limb in enumerate(LIMBS)}}
# the two halves that have codebooks of their own (kakashi.models.vocab)
LOWER = [*range(0, 10), *range(SLICES["right_leg"].start, SLICES["left_leg"].stop)]  # root + legs: 20
UPPER = [*range(10, 28), *range(SLICES["left_arm"].start, SLICES["right_arm"].stop)]  # torso, head, arms: 28


# ----------------------------------------------------------------------------- rotations
def _normalise(v: Tensor) -> Tensor:
    return v / torch.linalg.vector_norm(v, dim=-1, keepdim=True).clamp(min=EPS)


def rotation_6d_to_matrix(x: Tensor) -> Tensor:
    """6D rotations [.., 6] (two columns, any scale) -> matrices [.., 3, 3] by Gram-Schmidt."""
    a = _normalise(x[..., 0:3])
    b = _normalise(x[..., 3:6] - (a * x[..., 3:6]).sum(-1, keepdim=True) * a)
    return torch.stack([a, b, torch.linalg.cross(a, b)], dim=-1)


def matrix_to_rotation_6d(m: Tensor) -> Tensor:
    """Matrices [.., 3, 3] -> their first two columns [.., 6]."""
    return torch.cat([m[..., :, 0], m[..., :, 1]], dim=-1)


def axis_angle(axis: Tensor, angle: Tensor) -> Tensor:
    """Rotations [.., 3, 3] by `angle` [..] (rad) about unit `axis` [.., 3] (Rodrigues)."""
    x, y, z = axis.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(*x.shape, 3, 3)
    s, c = torch.sin(angle)[..., None, None], torch.cos(angle)[..., None, None]
    eye = torch.eye(3, dtype=axis.dtype, device=axis.device).expand(k.shape)
    return eye + s * k + (1 - c) * (k @ k)


def yaw(angle: Tensor) -> Tensor:
    """Rotations [.., 3, 3] about +y by `angle` [..] rad (z turns towards x)."""
    c, s = torch.cos(angle), torch.sin(angle)
    zero, one = torch.zeros_like(c), torch.ones_like(c)
    return torch.stack([c, zero, s, zero, one, zero, -s, zero, c], dim=-1).reshape(*c.shape, 3, 3)


def swing(rest: Tensor, d: Tensor) -> Tensor:
    """The smallest rotation [.., 3, 3] taking unit `rest` [3] to unit `d` [.., 3] (undefined
    only for d = -rest)."""
    rest = rest.expand(d.shape)
    w = 1.0 + (rest * d).sum(-1)
    v = torch.linalg.cross(rest, d)
    q = torch.cat([w[..., None], v], dim=-1)
    q = q / torch.linalg.vector_norm(q, dim=-1, keepdim=True).clamp(min=EPS)
    w, x, y, z = q.unbind(-1)
    rows = [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]
    return torch.stack(rows, dim=-1).reshape(*w.shape, 3, 3)


def _vec(values, like: Tensor) -> Tensor:
    return torch.tensor(values, dtype=like.dtype, device=like.device)


def _apply(m: Tensor, v: Tensor) -> Tensor:
    """m [.., 3, 3] @ v [.., 3] -> [.., 3]."""
    return (m @ v[..., None])[..., 0]


# ------------------------------------------------------------------------ forward kinematics
def limb_rotations(params: Tensor, limb: Limb, parent: Tensor) -> tuple[Tensor, Tensor]:
    """Global frames [.., 3, 3] of a limb's upper and middle joints from its 5 parameters
    [.., 5] and the parent's frame [.., 3, 3]; twist and bend clamped to their ranges."""
    rest, bend = _vec(limb.rest, params), _vec(limb.bend, params)
    d = _normalise(params[..., 0:3])
    twist = params[..., 3].clamp(-limb.twist_max, limb.twist_max)
    angle = params[..., 4].clamp(0.0, limb.bend_max)
    upper = parent @ swing(rest, d) @ axis_angle(rest.expand(d.shape), twist)
    hinge = torch.linalg.cross(rest, bend)                     # bending rotates rest towards bend
    return upper, upper @ axis_angle(hinge.expand(d.shape), angle)


def root_path(params: Tensor, start: Tensor, fps: float) -> tuple[Tensor, Tensor]:
    """The hip's path [T, .., 3] (m) and heading [T, ..] (rad) integrated from the velocities
    and yaw rates of frames 1..T-1 (frame 0's are unused); start [.., 3] = (x, z, heading)."""
    heading = start[..., 2] + torch.cat([torch.zeros_like(params[:1, ..., 3]),
                                         torch.cumsum(params[1:, ..., 3], dim=0) / fps])   # [T, ..]
    c, s = torch.cos(heading), torch.sin(heading)
    vx, vz = params[..., 1], params[..., 2]
    step = torch.stack([c * vx + s * vz, -s * vx + c * vz], dim=-1) / fps                 # [T, .., 2] world x, z
    step = torch.cat([torch.zeros_like(step[:1]), step[1:]])
    xz = start[..., :2] + torch.cumsum(step, dim=0)
    return torch.stack([xz[..., 0], params[..., 0], xz[..., 1]], dim=-1), heading


def body_to_poses(params: Tensor, skeleton: Tensor, start: Tensor | None, fps: float) -> Tensor:
    """Forward kinematics: params [T, .., 48], skeleton [.., 17, 3] (m), start [.., 3] (hip x, z
    in m and heading in rad at frame 0) -> poses [T, .., 17, 3] m. start None: the local body
    (hip above the origin, facing +z at every frame; the root's velocities are not used)."""
    if params.shape[-1] != PARAM_DIM:
        raise ValueError(f"body parameters must be [.., {PARAM_DIM}], got {list(params.shape)}")
    if start is None:
        root = torch.stack([torch.zeros_like(params[..., 0]), params[..., 0], torch.zeros_like(params[..., 0])], -1)
        return _kinematics(params, skeleton, root, rotation_6d_to_matrix(params[..., TILT]))
    return poses_on_path(params, skeleton, *root_path(params, start, fps))


def poses_on_path(params: Tensor, skeleton: Tensor, root: Tensor, heading: Tensor) -> Tensor:
    """Forward kinematics with the hip at `root` [T, .., 3] (m) facing `heading` [T, ..] (rad):
    params [T, .., 48] (their root height and rates unused), skeleton [.., 17, 3] -> poses
    [T, .., 17, 3] m. A path read from another clock (a warped one) keeps the bones exact."""
    return _kinematics(params, skeleton, root, yaw(heading) @ rotation_6d_to_matrix(params[..., TILT]))


def _kinematics(params: Tensor, skeleton: Tensor, root: Tensor, frame: Tensor) -> Tensor:
    """Joint positions [T, .., 17, 3] from the hip's place [T, .., 3] and frame [T, .., 3, 3]."""
    off = skeleton.expand(*params.shape[:-1], NUM_JOINTS, 3)                              # [T, .., 17, 3]
    pos: dict[int, Tensor] = {ROOT: root}
    rot: dict[int, Tensor] = {ROOT: frame}
    for j in PELVIS_CHILDREN:
        pos[j] = root + _apply(frame, off[..., j, :])
    for j in (SPINE, THORAX, NECK):                            # the spine chain
        rot[j] = rot[PARENTS[j]] @ rotation_6d_to_matrix(params[..., ROTATIONS[j]])
        if j != SPINE:
            pos[j] = pos[PARENTS[j]] + _apply(rot[PARENTS[j]], off[..., j, :])
    pos[HEAD] = pos[NECK] + _apply(rot[NECK], off[..., HEAD, :])
    for j in (L_SHOULDER, R_SHOULDER):
        pos[j] = pos[THORAX] + _apply(rot[THORAX], off[..., j, :])
    for i, limb in enumerate(LIMBS):
        u, m, e = limb.joints
        upper, middle = limb_rotations(params[..., SLICES[limb.name]], limb, rot[limb.parent])
        pos[m] = pos[u] + _apply(upper, off[..., m, :])
        pos[e] = pos[m] + _apply(middle, off[..., e, :])
    return torch.stack([pos[j] for j in range(NUM_JOINTS)], dim=-2)


# ------------------------------------------------------------------------------- fitting
def _frame(left: Tensor, up: Tensor) -> Tensor:
    """Right-handed frames [.., 3, 3] (columns x, y, z) with x along `left` and y the part of
    `up` orthogonal to it."""
    x = _normalise(left)
    y = _normalise(up - (up * x).sum(-1, keepdim=True) * x)
    return torch.stack([x, y, torch.linalg.cross(x, y)], dim=-1)


def _frame_up(up: Tensor, left: Tensor) -> Tensor:
    """Frames [.., 3, 3] with y along `up` and x the part of `left` orthogonal to it."""
    y = _normalise(up)
    x = _normalise(left - (left * y).sum(-1, keepdim=True) * y)
    return torch.stack([x, y, torch.linalg.cross(x, y)], dim=-1)


def kabsch(rest: Tensor, observed: Tensor) -> Tensor:
    """Rotations [.., 3, 3] best taking the rest vectors [.., N, 3] onto observed [.., N, 3]."""
    h = rest.transpose(-1, -2) @ observed                      # [.., 3, 3]
    u, _, vt = torch.linalg.svd(h)
    d = torch.sign(torch.linalg.det(vt.transpose(-1, -2) @ u.transpose(-1, -2)))
    fix = torch.diag_embed(torch.stack([torch.ones_like(d), torch.ones_like(d), d], dim=-1))
    return vt.transpose(-1, -2) @ fix @ u.transpose(-1, -2)


def _rigid(rel: Tensor, init: Tensor, offsets: Tensor | None, iterations: int = 2) -> tuple[Tensor, Tensor]:
    """Frames [T, .., 3, 3] and rest offsets [.., N, 3] of a rigid set of vectors rel [T, .., N, 3]
    (initial frames `init`; offsets given, or the mean in the frame, refined `iterations` times)."""
    frame = init
    fit = offsets is None
    for _ in range(iterations if fit else 1):
        if fit:
            offsets = (frame.transpose(-1, -2)[..., None, :, :] @ rel[..., None])[..., 0].mean(0)  # [.., N, 3]
        frame = kabsch(offsets.expand(rel.shape), rel)
    return frame, offsets


def _median_length(a: Tensor, b: Tensor) -> Tensor:
    return torch.linalg.vector_norm(b - a, dim=-1).median(dim=0).values


def fit_skeleton(poses: Tensor) -> Tensor:
    """A dance's rigid skeleton [.., 17, 3]: each joint's rest offset in its parent's frame (m).
    poses [T, .., 17, 3]: bone lengths are medians over frames, the pelvis and thorax shapes means."""
    return poses_to_body(poses, 24.0)[1]


def poses_to_body(poses: Tensor, fps: float, skeleton: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Inverse kinematics: poses [T, .., 17, 3] (m, y up) -> (params [T, .., 48], skeleton
    [.., 17, 3], start [.., 3]). The skeleton is fitted to the dance unless given. Each bone
    is aimed at its observed child from the reconstructed parent, so errors do not add up along
    chains; hinges outside their range are clamped (the error the hinge costs)."""
    if poses.shape[-2:] != (NUM_JOINTS, 3) or poses.dim() < 3:
        raise ValueError(f"poses must be [T, .., {NUM_JOINTS}, 3], got {list(poses.shape)}")
    p = poses
    fitted = skeleton is None
    off = {} if fitted else {j: skeleton[..., j, :] for j in range(NUM_JOINTS)}
    # pelvis: a rigid triangle of hips and spine base
    rel = torch.stack([p[..., j, :] - p[..., ROOT, :] for j in PELVIS_CHILDREN], dim=-2)
    init = _frame(p[..., L_HIP, :] - p[..., R_HIP, :], p[..., SPINE, :] - p[..., ROOT, :])
    given = None if fitted else torch.stack([off[j] for j in PELVIS_CHILDREN], dim=-2)
    pelvis, rest = _rigid(rel, init, given)
    off.update({j: rest[..., i, :] for i, j in enumerate(PELVIS_CHILDREN)})
    rec = {ROOT: p[..., ROOT, :]}
    rec.update({j: rec[ROOT] + _apply(pelvis, off[j]) for j in PELVIS_CHILDREN})
    forward = pelvis[..., :, 2]
    heading = torch.atan2(forward[..., 0], forward[..., 2])                    # [T, ..]
    tilt = yaw(heading).transpose(-1, -2) @ pelvis
    # spine: bone 7 -> 8 along the spine frame's y, twist following the pelvis
    up = _vec(UP, p)
    if fitted:
        off[THORAX] = up * _median_length(p[..., SPINE, :], p[..., THORAX, :])[..., None]
    spine = _frame_up(p[..., THORAX, :] - rec[SPINE], pelvis[..., :, 0])
    rec[THORAX] = rec[SPINE] + _apply(spine, off[THORAX])
    # thorax: a rigid triangle of neck base and shoulders
    rel = torch.stack([p[..., j, :] - rec[THORAX] for j in THORAX_CHILDREN], dim=-2)
    init = _frame(p[..., L_SHOULDER, :] - p[..., R_SHOULDER, :], p[..., THORAX, :] - p[..., SPINE, :])
    given = None if fitted else torch.stack([off[j] for j in THORAX_CHILDREN], dim=-2)
    thorax, rest = _rigid(rel, init, given)
    off.update({j: rest[..., i, :] for i, j in enumerate(THORAX_CHILDREN)})
    rec.update({j: rec[THORAX] + _apply(thorax, off[j]) for j in THORAX_CHILDREN})
    # neck: bone 9 -> 10 along the neck frame's y
    if fitted:
        off[HEAD] = up * _median_length(p[..., NECK, :], p[..., HEAD, :])[..., None]
    neck = _frame_up(p[..., HEAD, :] - rec[NECK], thorax[..., :, 0])
    frames = {ROOT: pelvis, SPINE: spine, THORAX: thorax, NECK: neck}
    parts = [p[..., ROOT, 1:2], torch.zeros_like(p[..., ROOT, :2]), torch.zeros_like(p[..., ROOT, :1]),
             matrix_to_rotation_6d(tilt)]
    for j in (SPINE, THORAX, NECK):
        parts.append(matrix_to_rotation_6d(frames[PARENTS[j]].transpose(-1, -2) @ frames[j]))
    for limb in LIMBS:
        u, m, e = limb.joints
        if fitted:
            off[m] = _vec(limb.rest, p) * _median_length(p[..., u, :], p[..., m, :])[..., None]
            off[e] = _vec(limb.rest, p) * _median_length(p[..., m, :], p[..., e, :])[..., None]
        parts.append(limb_parameters(frames[limb.parent], rec[u], p[..., m, :], p[..., e, :], limb,
                                     torch.linalg.vector_norm(off[m], dim=-1)))
    params = torch.cat(parts, dim=-1)
    # root motion: planar velocity in the heading frame and yaw rate, frame t from t - 1
    if len(p) > 1:
        step = (p[1:, ..., ROOT, :] - p[:-1, ..., ROOT, :]) * fps                  # [T-1, .., 3] m/s
        c, s = torch.cos(heading[1:]), torch.sin(heading[1:])
        vx = c * step[..., 0] - s * step[..., 2]
        vz = s * step[..., 0] + c * step[..., 2]
        turn = torch.remainder(heading[1:] - heading[:-1] + math.pi, 2 * math.pi) - math.pi
        params[1:, ..., VELOCITY] = torch.stack([vx, vz], dim=-1)
        params[1:, ..., YAW_RATE] = (turn * fps)[..., None]
    skeleton = torch.stack([torch.zeros_like(off[R_HIP]) if j == ROOT else off[j] for j in range(NUM_JOINTS)], dim=-2)
    start = torch.stack([p[0, ..., ROOT, 0], p[0, ..., ROOT, 2], heading[0]], dim=-1)
    return params, skeleton, start


def limb_parameters(parent: Tensor, upper: Tensor, middle: Tensor, end: Tensor, limb: Limb,
                    upper_length: Tensor) -> Tensor:
    """A limb's 5 parameters [.., 5] from its parent's frame [.., 3, 3], the reconstructed upper
    joint and the observed middle and end joints [.., 3] (m); upper_length [..] (m)."""
    inv = parent.transpose(-1, -2)
    d = _normalise(_apply(inv, middle - upper))                               # upper bone, parent frame
    mid = upper + _apply(parent, d) * upper_length[..., None]
    v = _normalise(_apply(inv, end - mid))                                    # lower bone, parent frame
    angle = torch.acos((d * v).sum(-1).clamp(-1.0, 1.0)).clamp(0.0, limb.bend_max)
    side = v - (d * v).sum(-1, keepdim=True) * d                             # where the hinge bends to
    zero = _apply(swing(_vec(limb.rest, d), d), _vec(limb.bend, d).expand(d.shape))  # ... with no twist
    twist = torch.atan2((torch.linalg.cross(zero, side) * d).sum(-1), (zero * side).sum(-1))
    straight = torch.linalg.vector_norm(side, dim=-1) < 1e-6
    twist = torch.where(straight, torch.zeros_like(twist), twist).clamp(-limb.twist_max, limb.twist_max)
    return torch.cat([d, twist[..., None], angle[..., None]], dim=-1)


IDENTITY_6D = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def _directions(params: Tensor) -> list[tuple[slice, Tensor, tuple[float, ...]]]:
    """Each direction-carrying part of params [.., PARAM_DIM]: its slice, the length [..] of its
    shortest defining vector (a 6D rotation's first column and its second's part orthogonal to
    it; a limb's upper-bone direction) and its value at rest."""
    out = []
    for sl in (TILT, *ROTATIONS.values()):
        a, b = params[..., sl.start:sl.start + 3], params[..., sl.start + 3:sl.stop]
        unit = _normalise(a)                                    # as rotation_6d_to_matrix's Gram-Schmidt
        ortho = b - (unit * b).sum(-1, keepdim=True) * unit
        out.append((sl, torch.minimum(torch.linalg.vector_norm(a, dim=-1), torch.linalg.vector_norm(ortho, dim=-1)),
                    IDENTITY_6D))
    for i, limb in enumerate(LIMBS):
        start = LIMB_START + LIMB_DIM * i
        out.append((slice(start, start + 3), torch.linalg.vector_norm(params[..., start:start + 3], dim=-1),
                    limb.rest))
    return out


def mend_directions(params: Tensor, min_length: float = DEGENERATE) -> Tensor:
    """Body parameters [T, *batch, PARAM_DIM] with every rotation or limb direction that is
    degenerate at a step (a defining vector shorter than `min_length` times its median over the
    steps, or zero: its direction, hence the body part's orientation, is ill-defined there and
    may flip, a pelvis upside down for a frame) replaced by the linear interpolation of that part
    at the nearest sound steps either side (the one sound side's value at the ends; the rest
    pose where a part is never sound). Sound steps are returned as they are. Fitted bodies
    (`poses_to_body`) have unit vectors."""
    T = params.shape[0]
    flat = params.reshape(T, -1, PARAM_DIM)
    out = flat.clone()
    steps = torch.arange(T, device=params.device)[:, None].expand(T, flat.shape[1])
    for sl, length, rest in _directions(flat):
        sound = (length >= min_length * length.median(0).values) & (length > EPS)   # [T, N]
        if bool(sound.all()):
            continue
        before = torch.cummax(torch.where(sound, steps, -1), 0).values        # last sound step at or before
        after = torch.cummin(torch.where(sound, steps, T).flip(0), 0).values.flip(0)   # first at or after
        lo = torch.where(before < 0, after, before).clamp(0, T - 1)
        hi = torch.where(after >= T, before, after).clamp(0, T - 1)
        w = ((steps - lo) / (hi - lo).clamp(min=1)).to(params.dtype)[..., None]
        part = flat[..., sl]
        pick = lambda i: torch.gather(part, 0, i[..., None].expand(-1, -1, part.shape[-1]))
        mended = (1 - w) * pick(lo) + w * pick(hi)
        mended = torch.where(sound.any(0)[..., None], mended, _vec(rest, part).expand_as(mended))
        out[..., sl] = torch.where(sound[..., None], part, mended)
    return out.reshape(params.shape)


# ------------------------------------------------------------------------------ numpy side
def body_round_trip(poses: np.ndarray, fps: float) -> np.ndarray:
    """Poses [T, 17, 3] (m) fitted to a rigid hinged body and rebuilt -> [T, 17, 3] (float64)."""
    p = torch.as_tensor(np.asarray(poses, np.float64))
    params, skeleton, start = poses_to_body(p, fps)
    return body_to_poses(params, skeleton, start, fps).numpy()


def knee_bends(poses: np.ndarray) -> np.ndarray:
    """Signed knee flexion [T, 2] (deg; right, left) of poses [T, 17, 3]: the angle between
    thigh and shin, negative when the knee bends the wrong way, i.e. when the shin leaves the
    thigh's line towards the front half of the thigh's cross-section (the back half being the
    pelvis's backward direction carried along by the thigh's swing from hanging down, as
    `swing` defines it; meaningful for thighs not pointing straight up)."""
    p = torch.as_tensor(np.asarray(poses, np.float64))
    pelvis = _frame(p[:, L_HIP] - p[:, R_HIP], p[:, SPINE] - p[:, ROOT])       # [T, 3, 3]
    inv = pelvis.transpose(-1, -2)
    out = []
    for limb in LIMBS[:2]:
        hip, knee, ankle = limb.joints
        d = _normalise(_apply(inv, p[:, knee] - p[:, hip]))
        v = _normalise(_apply(inv, p[:, ankle] - p[:, knee]))
        angle = torch.rad2deg(torch.acos((d * v).sum(-1).clamp(-1.0, 1.0)))
        back = _apply(swing(_vec(limb.rest, d), d), _vec(limb.bend, d).expand(d.shape))
        out.append(torch.where((back * v).sum(-1) >= 0, angle, -angle))
    return torch.stack(out, dim=-1).numpy()
