"""How the travelling models see motion, and the loss terms they train with.

Representation. A global pose sequence [T, B, 17, 3] (metres, y up, floor at y = 0, root
trajectory kept) becomes a *local* sequence [T, B, 51]: the 16 non-root joints relative to
the hip (48 values, m), the hip height (1, m) and the hip's horizontal velocity (x, z; 2,
m/s, frame t's velocity being the step from t - 1 to t; 0 at frame 0). The models predict a
*step* [.., 51] per frame in m/s: the change of the 49 pose values times fps, and the root's
horizontal velocity itself; they read `motion_features` (the pose and its velocity).
`to_global` integrates the velocity back into a trajectory, so the dancer can travel while
the network only sees translation-invariant numbers.

Loss terms (all on one-step predictions, scalars): Gaussian-mixture negative log-likelihood
(`mixture_nll`), step regression (`step_mse`), foot skating on the ground truth's contact
frames (`skating_loss`) and bone-length agreement (`bone_loss`).

Feet at generation (no gradient): `plant_feet` shifts the dancer over the foot it stands on,
`lock_feet` holds every foot on the floor by leg IK, `hold_stance` holds one foot exactly still
at every frame (leg IK; the stance passed from foot to foot).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d
from scipy.signal import lfilter
from torch import Tensor

from ..skeleton import CONTACT_HEIGHT, FEET, FLOOR_PERCENTILE, H36M, NUM_JOINTS
from . import Output

REL_DIM = 3 * (NUM_JOINTS - 1)      # 48: non-root joints relative to the hip
HEIGHT = REL_DIM                    # index of the hip height
VEL = slice(REL_DIM + 1, REL_DIM + 3)  # the hip's horizontal velocity (x, z), m/s
LOCAL_DIM = REL_DIM + 3             # 51
FEATURE_DIM = 2 * LOCAL_DIM - 2     # 100: a local pose and the velocity of its 49 pose values
HORIZONTAL = [0, 2]
CONTACT_EDGE = 0.005                # m: width of plant_feet's soft edge at the contact height
PLANT_SMOOTH = 0.7                  # frames: Gaussian sigma of plant_feet's shifts (unsmoothed: jerk +6 %)
LOG_SIGMA_MIN, LOG_SIGMA_MAX = -7.0, 2.0   # mixture scales kept within [1e-3, 7.4] m/s
PARENTS = H36M.parents


@dataclass
class Rollout(Output):
    """What the travelling models' forward returns.

    poses [T, B, 17, 3] global metres (frame 0 = first_pose); inputs [T-1, B, 51]: the local
    pose each step read (truth or the model's own); head: the step prediction for frames
    1..T-1 — a tensor [T-1, B, 51] (m/s) or mixture parameters (logits [T-1, B, K], means
    [T-1, B, K, 51], log_sigma [T-1, B, K, 51]).
    """

    inputs: Tensor
    head: Tensor | tuple[Tensor, Tensor, Tensor]


def to_local(poses: Tensor, fps: float) -> Tensor:
    """Global poses [T, B, 17, 3] (m) -> local [T, B, 51] (see module docstring)."""
    if poses.dim() != 4 or poses.shape[2:] != (NUM_JOINTS, 3):
        raise ValueError(f"poses must be [T, B, {NUM_JOINTS}, 3], got {list(poses.shape)}")
    T, B = poses.shape[:2]
    root = poses[:, :, 0]                                                 # [T, B, 3]
    rel = (poses[:, :, 1:] - root[:, :, None]).reshape(T, B, REL_DIM)     # [T, B, 48]
    vel = torch.zeros(T, B, 2, dtype=poses.dtype, device=poses.device)
    vel[1:] = (root[1:, :, HORIZONTAL] - root[:-1, :, HORIZONTAL]) * fps  # [T-1, B, 2] m/s
    return torch.cat([rel, root[:, :, 1:2], vel], dim=-1)                 # [T, B, 51]


def to_global(local: Tensor, start_xz: Tensor, fps: float) -> Tensor:
    """Local [T, B, 51] -> global poses [T, B, 17, 3], the hip starting at start_xz [B, 2] (m).

    The hip's horizontal position at frame t is start_xz + sum of velocities of frames 1..t / fps.
    """
    T, B, _ = local.shape
    steps = local[1:, :, VEL] / fps                                       # [T-1, B, 2] m
    xz = torch.cat([start_xz[None], start_xz[None] + torch.cumsum(steps, dim=0)])  # [T, B, 2]
    root = torch.stack([xz[..., 0], local[..., HEIGHT], xz[..., 1]], dim=-1)  # [T, B, 3]
    rel = local[..., :REL_DIM].reshape(T, B, NUM_JOINTS - 1, 3)           # [T, B, 16, 3]
    return torch.cat([root[:, :, None], rel + root[:, :, None]], dim=2)  # [T, B, 17, 3]


def apply_step(prev: Tensor, step: Tensor, fps: float) -> Tensor:
    """The local pose [.., 51] after `step` [.., 51] (m/s) from `prev` [.., 51]."""
    pose = prev[..., :REL_DIM + 1] + step[..., :REL_DIM + 1] / fps
    return torch.cat([pose, step[..., VEL]], dim=-1)


def ground(local: Tensor, rate: float = 1.0) -> Tensor:
    """Local poses [.., 51] with the hip height moved `rate` (0..1) of the way to where the
    lowest joint touches the floor (y = 0), as a dancer who does not jump always has a foot
    down; a rate below 1 spreads the correction over frames when the lowest joint changes."""
    lowest = local[..., 1:REL_DIM:3].min(dim=-1).values                 # [..] lowest joint's y - hip's, m
    height = local[..., HEIGHT] + rate * ((-lowest).clamp(min=0.0) - local[..., HEIGHT])
    return torch.cat([local[..., :HEIGHT], height[..., None], local[..., HEIGHT + 1:]], dim=-1)


def motion_features(inputs: Tensor, before: Tensor | None, fps: float) -> Tensor:
    """What a network reads of the motion: local poses [S, B, 51] and the velocity (m/s) of
    their 49 pose values since the pose before each -> [S, B, 100]. `before` [B, 51] is the pose
    before inputs[0]; None (the first step) gives that step zero velocity."""
    prev = torch.cat([inputs[:1] if before is None else before[None], inputs[:-1]])  # [S, B, 51]
    vel = (inputs[..., :REL_DIM + 1] - prev[..., :REL_DIM + 1]) * fps
    return torch.cat([inputs, vel], dim=-1)                               # [S, B, 100]


def step_targets(target_local: Tensor, inputs: Tensor, fps: float, pull: float = 0.0) -> Tensor:
    """The step [T-1, B, 51] (m/s) to learn from each input [T-1, B, 51]: the true motion
    target_local[s + 1] - target_local[s] plus `pull` (0..1) of the way from the input back to
    the true pose target_local[s]. Equal to the finite difference under clean teacher forcing;
    where the input strayed (noise, or the model's own pose) the model learns to return to
    the truth by a share `pull` per frame, smoothly instead of in one jump."""
    pose = (target_local[1:, ..., :REL_DIM + 1] - target_local[:-1, ..., :REL_DIM + 1]
            + pull * (target_local[:-1, ..., :REL_DIM + 1] - inputs[..., :REL_DIM + 1])) * fps
    return torch.cat([pose, target_local[1:, ..., VEL]], dim=-1)


def mixture_nll(logits: Tensor, means: Tensor, log_sigma: Tensor, x: Tensor) -> Tensor:
    """Mean negative log-likelihood per dimension of x [.., D] under a diagonal Gaussian mixture.

    logits [.., K] (unnormalised weights), means and log_sigma [.., K, D]. log_sigma is clamped
    to [LOG_SIGMA_MIN, LOG_SIGMA_MAX] and the mixture is summed with logsumexp, so the value is
    finite for any finite input. Returns a scalar (nats per dimension, averaged over frames).
    """
    log_sigma = log_sigma.clamp(LOG_SIGMA_MIN, LOG_SIGMA_MAX)
    z = (x[..., None, :] - means) * torch.exp(-log_sigma)                 # [.., K, D]
    log_n = -0.5 * z.pow(2) - log_sigma - 0.5 * math.log(2 * math.pi)     # [.., K, D]
    log_p = torch.logsumexp(torch.log_softmax(logits, dim=-1) + log_n.sum(-1), dim=-1)  # [..]
    return -log_p.mean() / x.shape[-1]


def step_mse(pred: Tensor, target: Tensor) -> Tensor:
    """Mean squared step error, (m/s)^2: pred and target [T-1, B, 51]."""
    return torch.mean((pred - target) ** 2)


def contact_mask(target: Tensor, height: float = CONTACT_HEIGHT) -> Tensor:
    """[T-1, B, 2] float: both ankles' ground truth within `height` m of the floor (y = 0) at
    both ends of each frame step. target: global poses [T, B, 17, 3]."""
    low = (target[:, :, list(FEET), 1] < height).float()                 # [T, B, 2]
    return low[1:] * low[:-1]


def skating_loss(step: Tensor, target: Tensor) -> Tensor:
    """Mean squared horizontal ankle speed (m/s)^2 of the predicted steps [T-1, B, 51] on the
    frames where the true ankle stands on the floor (target [T, B, 17, 3]); 0 when none does."""
    mask = contact_mask(target)                                           # [T-1, B, 2]
    S, B = step.shape[:2]
    rel = step[..., :REL_DIM].reshape(S, B, NUM_JOINTS - 1, 3)            # [T-1, B, 16, 3]
    feet = rel[:, :, [j - 1 for j in FEET]][..., HORIZONTAL] + step[:, :, None, VEL]  # [T-1, B, 2, 2]
    speed2 = feet.pow(2).sum(-1)                                          # [T-1, B, 2]
    return (speed2 * mask).sum() / mask.sum().clamp(min=1.0)


def bone_lengths(rel: Tensor) -> Tensor:
    """Bone lengths [.., 16] (m) of root-relative joints rel [.., 48] (the hip at the origin)."""
    joints = torch.cat([torch.zeros_like(rel[..., :3]), rel], dim=-1)
    joints = joints.reshape(*rel.shape[:-1], NUM_JOINTS, 3)               # [.., 17, 3]
    child = list(range(1, NUM_JOINTS))
    parent = [PARENTS[c] for c in child]
    return torch.linalg.vector_norm(joints[..., child, :] - joints[..., parent, :], dim=-1)


def bone_loss(next_local: Tensor, target_local: Tensor) -> Tensor:
    """Mean squared bone-length error (m^2) of predicted local poses [S, B, 51] against the truth."""
    return torch.mean((bone_lengths(next_local[..., :REL_DIM]) - bone_lengths(target_local[..., :REL_DIM])) ** 2)


BONE_ITERATIONS = 30   # relaxation sweeps of keep_bones


def keep_bones(poses: Tensor, lengths: Tensor, iterations: int = BONE_ITERATIONS) -> Tensor:
    """Poses [.., 17, 3] (m) with each bone relaxed towards `lengths` [.., 16] (m; indexed by
    child joint - 1): sweeps that move both ends of every bone half of its error along the
    bone (the hip stays put, so its child takes the whole correction). Spreading the change
    over the body keeps the pose's shape where rebuilding it outwards from the hip would let
    errors in short bones (neck, head) swing whole limbs."""
    joints = list(poses.unbind(-2))
    for _ in range(iterations):
        for child in range(1, NUM_JOINTS):
            parent = PARENTS[child]
            d = joints[child] - joints[parent]
            norm = torch.linalg.vector_norm(d, dim=-1, keepdim=True).clamp(min=1e-6)
            corr = d * ((norm - lengths[..., child - 1, None]) / norm)         # [.., 3]
            if parent == 0:
                joints[child] = joints[child] - corr
            else:
                joints[child] = joints[child] - 0.5 * corr
                joints[parent] = joints[parent] + 0.5 * corr
    return torch.stack(joints, dim=-2)                                    # [.., 17, 3]


LEGS = ((1, 2, 3), (4, 5, 6))   # (hip, knee, ankle) joints of the right and left leg
RELEASE_FRAMES = 4               # frames over which a released foot glides back to the generated one
REACH_MARGIN = 1e-3              # m: a held ankle this close to the leg's full reach is let go
KNEE_LEAD = 1e-3                 # m: forwards, the way hold_stance bends a knee the leg held straight
HOLD_SLACK = 0.03                # m: a held ankle this far from the generated one is let go (real songs'
                                 # FID_g 8.6; held until lifted 11.5; 0.015 m: 14.6; feet left free 7.7)
HOLD_RELEASE_FRAMES = 6          # frames over which hold_stance's released foot glides back (raised
                                 # cosine; linear over 4: jerk +1 %)


def two_bone_ik(hip: Tensor, knee: Tensor, target: Tensor, thigh: Tensor, shin: Tensor) -> tuple[Tensor, Tensor]:
    """(knee, ankle) [.., 3] placing the ankle at `target` (or as near as the leg reaches) with
    thigh and shin lengths [..] (m) kept, the knee bending towards where it was."""
    reach = target - hip
    dist = torch.linalg.vector_norm(reach, dim=-1).clamp(min=1e-6)
    d = dist.clamp((thigh - shin).abs() + 1e-4, thigh + shin - 1e-4)
    u = reach / dist[..., None]
    ankle = hip + u * d[..., None]
    cos = ((thigh ** 2 + d ** 2 - shin ** 2) / (2 * thigh * d)).clamp(-1.0, 1.0)
    pole = knee - hip
    pole = pole - (pole * u).sum(-1, keepdim=True) * u
    pole = pole / torch.linalg.vector_norm(pole, dim=-1, keepdim=True).clamp(min=1e-6)
    knee = hip + thigh[..., None] * (u * cos[..., None] + pole * torch.sqrt(1 - cos ** 2)[..., None])
    return knee, ankle


def floor_heights(ankle_heights: Tensor) -> Tensor:
    """The floor (m) of each dance in a batch, from both ankles' heights [T, B, 2]: their
    FLOOR_PERCENTILE-th percentile over the dance -> [B], as skeleton.floor_height."""
    return torch.quantile(ankle_heights.transpose(0, 1).flatten(1), FLOOR_PERCENTILE / 100, dim=1)


def smooth_in_time(x: Tensor, sigma: float) -> Tensor:
    """x [T, ...] Gaussian-smoothed along time over `sigma` frames (edges repeated), on the CPU
    through scipy, returned as x's dtype and device. Generation only (no gradient)."""
    return torch.from_numpy(gaussian_filter1d(x.detach().cpu().numpy(), sigma, axis=0, mode="nearest")).to(x)


def face_front(yaw_rate: Tensor, seconds: float, fps: float) -> Tensor:
    """Yaw rates [T, ...] rad/s (frame 0's unused, as body.root_path reads them) whose heading,
    their integral from frame 0, is pulled back to frame 0's with time constant `seconds`: a
    turn or a spin stays, the heading that many of them add up to does not (a dancer keeps to
    the front it started facing). Generation only (no gradient)."""
    turn = yaw_rate.detach().cpu().double().numpy() / fps
    turn[:1] = 0.0
    heading = lfilter([1.0], [1.0, -math.exp(-1.0 / (seconds * fps))], turn, axis=0)
    return torch.from_numpy(np.diff(heading, axis=0, prepend=0.0) * fps).to(yaw_rate)


def plant_feet(poses: Tensor, softness: float, contact_height: float = CONTACT_HEIGHT) -> Tensor:
    """Global poses [T, B, 17, 3] (m) moved horizontally, frame by frame, so the foot that bears
    the weight stays where it is on the floor: each frame step the dancer is shifted back by
    the ankles' horizontal step, weighted towards the lower ankle (softmax of -height /
    `softness` m: 0.005 picks the lower one, 0.05 shares between them), when that ankle is
    within `contact_height` of the floor (edge CONTACT_EDGE m wide), smoothed over PLANT_SMOOTH
    frames; the shifts add up from frame 0, which stays. A pure translation per frame: the
    body's shape is untouched. Generation only (no gradient)."""
    feet = poses[:, :, list(FEET)]                                          # [T, B, 2, 3]
    floor = floor_heights(feet[..., 1])                                     # [B]
    height = 0.5 * (feet[1:, ..., 1] + feet[:-1, ..., 1]) - floor[:, None]   # [T-1, B, 2] over each step
    weight = torch.softmax(-height / softness, dim=-1)
    down = torch.sigmoid((contact_height - height.min(-1).values) / CONTACT_EDGE)   # [T-1, B]
    step = (feet[1:] - feet[:-1])[..., HORIZONTAL]                          # [T-1, B, 2, 2]
    back = -(weight[..., None] * step).sum(-2) * down[..., None]            # [T-1, B, 2]
    back = smooth_in_time(back.double(), PLANT_SMOOTH)
    shift = torch.cat([back.new_zeros(1, *back.shape[1:]), back.cumsum(0)]).to(poses)  # [T, B, 2]
    out = poses.clone()
    out[..., HORIZONTAL] += shift[:, :, None]
    return out


def lock_feet(poses: Tensor, contact_height: float = CONTACT_HEIGHT) -> Tensor:
    """Foot-skate clean-up of global poses [T, B, 17, 3] (m): an ankle within `contact_height`
    of the floor stays where it touched down (horizontally) until it lifts, the knee moved by
    two-bone IK so leg bones keep their lengths; after lift-off the ankle glides back to the
    generated one over RELEASE_FRAMES frames."""
    out = poses.clone()
    T = poses.shape[0]
    heights = poses[:, :, [a for _, _, a in LEGS], 1]                     # [T, B, 2]
    floor = floor_heights(heights)                                        # [B]
    for side, (h, k, a) in enumerate(LEGS):
        thigh = torch.linalg.vector_norm(poses[:, :, k] - poses[:, :, h], dim=-1)  # [T, B]
        shin = torch.linalg.vector_norm(poses[:, :, a] - poses[:, :, k], dim=-1)
        contact = heights[:, :, side] - floor < contact_height           # [T, B]
        target = poses[:, :, a].clone()                                    # [T, B, 3]
        anchor = target[0].clone()
        offset = torch.zeros_like(anchor)                                  # anchor - generated at lift-off
        fade = torch.zeros(poses.shape[1], device=poses.device)
        for t in range(T):
            start = contact[t] & ((t == 0) | ~contact[max(t - 1, 0)])
            anchor = torch.where(start[:, None], poses[t, :, a], anchor)
            lifted = (t > 0) & contact[max(t - 1, 0)] & ~contact[t]
            offset = torch.where(lifted[:, None], target[t - 1] - poses[t, :, a], offset)
            fade = torch.where(lifted, torch.ones_like(fade), fade)
            held = torch.stack([anchor[:, 0], poses[t, :, a, 1], anchor[:, 2]], dim=-1)
            glide = poses[t, :, a] + offset * fade[:, None]
            target[t] = torch.where(contact[t][:, None], held, glide)
            fade = (fade - 1.0 / RELEASE_FRAMES).clamp(min=0.0)
        out[:, :, k], out[:, :, a] = two_bone_ik(poses[:, :, h], poses[:, :, k], target, thigh, shin)
    return out


def hold_stance(poses: Tensor, contact_height: float = CONTACT_HEIGHT) -> Tensor:
    """Global poses [T, B, 17, 3] (m) whose stance foot does not move over the floor: at every
    frame one ankle bears the weight and is held where it stood (horizontally; its height as
    generated), the knee moved by two-bone IK so the leg's bones keep their lengths. The stance
    passes to the other ankle when the held one rises `contact_height` above the floor with the
    other lower, or when the other is on the floor and the held one steps away (the generated
    ankle HOLD_SLACK from where it is held) or its leg can no longer reach it (within
    REACH_MARGIN); the new stance ankle is held where it was the frame before, the released one
    glides back to the generated ankle over HOLD_RELEASE_FRAMES frames. A leg that cannot reach its
    held ankle with the other foot in the air pulls the dancer (the whole body, from that frame
    on) towards it. Each knee bends the way it stood out of its leg's line (forwards where the leg
    was straight). So at every frame step one foot stays put (PFC 0). Frame 0 is untouched;
    computed in float64. Generation only."""
    p = poses.detach().cpu().double().numpy()
    T, B = p.shape[:2]
    hip, knee, ankle = (p[:, :, [leg[i] for leg in LEGS]] for i in range(3))          # [T, B, 2, 3]
    height = ankle[..., 1] - floor_heights(torch.from_numpy(ankle[..., 1])).numpy()[:, None]   # [T, B, 2]
    thigh, shin = np.linalg.norm(knee - hip, axis=-1), np.linalg.norm(ankle - knee, axis=-1)   # [T, B, 2]
    target, pull = np.empty_like(ankle), np.empty((T, B, 3))
    for i in range(B):
        target[:, i], pull[:, i] = _stance(hip[:, i], ankle[:, i], height[:, i], thigh[:, i], shin[:, i],
                                           contact_height)
    out = torch.from_numpy(p + pull[:, :, None])
    forward = np.cross(p[:, :, LEGS[1][0]] - p[:, :, LEGS[0][0]], [0.0, 1.0, 0.0])       # [T, B, 3]
    forward /= np.maximum(np.linalg.norm(forward, axis=-1, keepdims=True), 1e-9)
    for side, (h, k, a) in enumerate(LEGS):
        line = ankle[:, :, side] - hip[:, :, side]
        line /= np.maximum(np.linalg.norm(line, axis=-1, keepdims=True), 1e-9)
        bend = knee[:, :, side] - hip[:, :, side]
        bend -= (bend * line).sum(-1, keepdims=True) * line      # where the knee stands out of the leg's line
        hint = out[:, :, h] + torch.from_numpy(bend + KNEE_LEAD * forward)
        legs = torch.from_numpy(target[:, :, side]), torch.from_numpy(thigh[..., side]), torch.from_numpy(shin[..., side])
        out[1:, :, k], out[1:, :, a] = (x[1:] for x in two_bone_ik(out[:, :, h], hint, *legs))
    return out.to(poses)


def _stance(hip: np.ndarray, ankle: np.ndarray, height: np.ndarray, thigh: np.ndarray, shin: np.ndarray,
            contact_height: float) -> tuple[np.ndarray, np.ndarray]:
    """hold_stance's frame-by-frame walk for one dancer: from the hips and ankles [T, 2, 3] (m), the
    ankles' heights over the floor [T, 2] and the thigh and shin lengths [T, 2] (m), the ankle
    targets [T, 2, 3] and the dancer's horizontal pull [T, 3] (m). Python floats: each frame
    depends on the one before, and the loop over one dancer's few numbers is fastest so."""
    hip_, ankle_, height_ = hip.tolist(), ankle.tolist(), height.tolist()
    thigh_, shin_, reach_ = thigh.tolist(), shin.tolist(), (thigh + shin - REACH_MARGIN).tolist()
    cur = int(np.argmin(height[0]))                                   # the stance side
    anchor = ankle_[0][cur]
    px = pz = fade = 0.0                                              # the pull (horizontal only), the glide's fade
    offset = (0.0, 0.0, 0.0)                                          # the free foot's glide
    targets, pulls = [ankle_[0]], [(0.0, 0.0, 0.0)]
    for t in range(1, len(ankle_)):
        a, h, up, down, reach = ankle_[t], hip_[t], height_[t][cur], height_[t][1 - cur], reach_[t][cur]
        gx, gy, gz = a[cur][0] + px, a[cur][1], a[cur][2] + pz       # the generated stance ankle
        vx, vy, vz = anchor[0] - h[cur][0] - px, gy - h[cur][1], anchor[2] - h[cur][2] - pz
        stretched = math.sqrt(vx * vx + vy * vy + vz * vz) > reach
        stepping = math.sqrt((anchor[0] - gx) ** 2 + (anchor[2] - gz) ** 2) > HOLD_SLACK
        if (up >= contact_height and down < up) or ((stretched or stepping) and down < contact_height):
            last = targets[-1]
            offset, fade = (last[cur][0] - gx, last[cur][1] - gy, last[cur][2] - gz), 1.0
            cur = 1 - cur
            anchor, reach = last[cur], reach_[t][cur]
        ky = a[cur][1]                                                # held: where it stood, at its height
        vx, vy, vz = anchor[0] - h[cur][0] - px, ky - h[cur][1], anchor[2] - h[cur][2] - pz
        flat, allowed = math.sqrt(vx * vx + vz * vz), math.sqrt(max(reach * reach - vy * vy, 0.0))
        if flat > allowed:                                            # out of the leg's reach: pull the dancer
            scale = 1.0 - allowed / max(flat, 1e-12)
            px, pz = px + vx * scale, pz + vz * scale
        free = 1 - cur
        eased = 0.5 - 0.5 * math.cos(math.pi * fade)                  # 1 -> 0, smoothly
        rx = a[free][0] + px + offset[0] * eased - (h[free][0] + px)  # from the free hip to its glide target
        ry = a[free][1] + offset[1] * eased - h[free][1]
        rz = a[free][2] + pz + offset[2] * eased - (h[free][2] + pz)
        dist = max(math.sqrt(rx * rx + ry * ry + rz * rz), 1e-9)
        fit = min(max(dist, abs(thigh_[t][free] - shin_[t][free]) + 2e-4), thigh_[t][free] + shin_[t][free] - 2e-4)
        frame = [None, None]
        frame[cur] = (anchor[0], ky, anchor[2])
        frame[free] = (h[free][0] + px + rx * (fit / dist), h[free][1] + ry * (fit / dist),
                       h[free][2] + pz + rz * (fit / dist))          # within the free leg's reach
        targets.append(frame)
        pulls.append((px, 0.0, pz))
        fade = max(fade - 1.0 / HOLD_RELEASE_FRAMES, 0.0)
    return np.array(targets), np.array(pulls)
