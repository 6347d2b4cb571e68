"""A procedural dancer on the H36M-17 skeleton who dances to a synthetic song.

Poses are built by forward kinematics from fixed bone lengths (two-bone analytic IK for the
legs and arms), so bone lengths are constant; global positions in metres, y up, floor at
y = 0 (the ankles rest on it), facing +z at yaw 0, root trajectory kept. A move is chosen per
8-beat phrase from the song's style and section (kakashi.synth.moves); amplitude follows the
section's loudness; moves are blended over a few frames; planted feet do not move.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from ..skeleton import FPS, NUM_JOINTS
from .moves import MOVES, PHRASE_BEATS, Motion, Step, choose_move, home
from .music import Song

TEMPLATE_HEIGHT = 1.70  # stature (m) of the template bone lengths below
# Human3.6M mean bone lengths (m) for a 1.70 m subject.
TEMPLATE_BONES = {"pelvis": 0.133, "thigh": 0.443, "shin": 0.454, "spine": 0.233, "chest": 0.257,
                  "neck": 0.121, "head": 0.115, "shoulder": 0.151, "upper_arm": 0.279,
                  "forearm": 0.252}
LEG_EXTENSION = 0.96    # standing hip height as a fraction of thigh + shin
REACH_MARGIN = 0.995    # the hip never rises above this fraction of the leg's reach
LIFT_FIRST = 0.3        # fraction of a swing spent rising (and landing) before (after) travelling
# Share of a swinging foot's weight moved onto the other foot at mid-swing (the root follows
# the supporting feet): a kick leans well over the support leg, a step only a little, so
# that the sway it causes (extreme half-way between beats) stays small.
KICK_SHIFT, STEP_SHIFT = 0.8, 0.25
BLEND_FRAMES = 6        # frames over which one move hands over to the next
NECK_DIR = np.array([0.0, 0.92, 0.39])   # thorax -> nose, chest frame (unit after norm)
HEAD_DIR = np.array([0.0, 0.95, -0.31])  # nose -> head top, head frame
SHOULDER_DIR = np.array([0.985, -0.17, 0.0])  # thorax -> left shoulder, chest frame
ELBOW_POLE = np.array([0.25, -0.3, -1.0])  # where the left elbow points (outward, down, back)


@dataclass(frozen=True)
class Body:
    """A dancer's size: stature (m) and bone lengths (m), the template scaled by height / 1.70."""

    height: float

    @property
    def scale(self) -> float:
        return self.height / TEMPLATE_HEIGHT

    def bone(self, name: str) -> float:
        return TEMPLATE_BONES[name] * self.scale

    @property
    def stand_height(self) -> float:
        """Root height when standing upright, m."""
        return LEG_EXTENSION * (self.bone("thigh") + self.bone("shin"))


@dataclass(frozen=True)
class Dance:
    """A generated dance: poses [T, 17, 3] m; contacts [T, 2] bool (right, left ankle planted);
    moves: (name, start s, end s) per phrase; the dancer's stature in m."""

    poses: np.ndarray
    contacts: np.ndarray
    moves: tuple[tuple[str, float, float], ...]
    height: float
    fps: float


def make_dance(song: Song, seed: int, fps: float = FPS, height: float | None = None,
               clock: np.ndarray | None = None) -> Dance:
    """The dance of one dancer (size and choices drawn from the seed) to `song`, at `fps`.

    clock: the song's time (s) at each frame [T], for music whose tempo varies: `song` then
    describes it on a steady clock at song.bpm (its beats at whole multiples of 60 / bpm),
    and frame k shows the dancer at song time clock[k]. Default: k / fps, T = song.seconds * fps.
    """
    rng = np.random.default_rng(seed)
    body = Body(float(height) if height is not None else float(np.round(rng.uniform(1.55, 1.95), 3)))
    vigour = rng.uniform(0.85, 1.15)                   # this dancer's personal amplitude
    facing = rng.uniform(-0.4, 0.4)                    # initial yaw, rad
    if clock is None:
        t = np.arange(int(round(song.seconds * fps))) / fps
    else:
        t = np.asarray(clock, dtype=np.float64).reshape(-1)
    beat_s = 60.0 / song.bpm
    n_phrases = int(np.ceil(song.seconds / (PHRASE_BEATS * beat_s) - 1e-9))

    plan, motion_parts, steps, yaw_base = [], [], [], 0.0
    for p in range(n_phrases):
        start = p * PHRASE_BEATS * beat_s
        end = min(start + PHRASE_BEATS * beat_s, song.seconds)
        section = song.section_at(start + beat_s / 2)      # clear of rounding at the boundary
        name = choose_move(song.style, section.name, rng)
        mirror = bool(rng.random() < 0.5)
        amp = float(np.clip(vigour * (0.35 + 0.65 * section.loudness), 0.2, 1.1))
        b = t / beat_s - p * PHRASE_BEATS                # beat index within the phrase
        motion, phrase_steps = MOVES[name].fn(b, amp)
        if mirror:
            motion, phrase_steps = _mirror(motion), [_mirror_step(s) for s in phrase_steps]
        motion["yaw"] = motion["yaw"] + yaw_base
        end_yaw = MOVES[name].fn(np.array([float(PHRASE_BEATS)]), amp)[0]["yaw"][0]
        yaw_base += -end_yaw if mirror else end_yaw
        motion_parts.append((start, end, motion))
        steps += [(s, start + s.lift * beat_s, start + s.land * beat_s) for s in phrase_steps]
        plan.append((name, round(start, 6), round(end, 6)))

    motion = _blend(motion_parts, t, BLEND_FRAMES / fps)
    motion["yaw"] = motion["yaw"] + facing
    feet, contacts, weight = _feet(steps, t, body, facing)
    poses = _pose(motion, feet, weight, body, fps)
    return Dance(poses=poses.astype(np.float32), contacts=contacts, moves=tuple(plan),
                 height=body.height, fps=float(fps))


def _mirror(m: Motion) -> Motion:
    """Swap left and right in a motion."""
    out = dict(m)
    out["hand_l"], out["hand_r"] = m["hand_r"], m["hand_l"]
    out["sway"] = m["sway"] * np.array([-1.0, 1.0])
    for key in ("yaw", "side", "twist"):
        out[key] = -m[key]
    return out


def _mirror_step(s: Step) -> Step:
    return Step(1 - s.foot, s.lift, s.land, (-s.to[0], s.to[1]), s.height, -s.yaw, s.kick)


def _blend(parts: list[tuple[float, float, Motion]], t: np.ndarray, width: float) -> Motion:
    """Cross-fade per-phrase motions [(start s, end s, motion)] over `width` s at each boundary."""
    total = None
    for i, (start, end, motion) in enumerate(parts):
        w_in = np.ones_like(t) if i == 0 else _smoothstep((t - start + width / 2) / width)
        w_out = np.ones_like(t) if i == len(parts) - 1 else 1 - _smoothstep((t - end + width / 2) / width)
        w = w_in * w_out
        weighted = {k: v * (w if v.ndim == 1 else w[:, None]) for k, v in motion.items()}
        total = weighted if total is None else {k: total[k] + weighted[k] for k in total}
    return total


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _feet(steps, t: np.ndarray, body: Body, facing: float):
    """World ankle positions [T, 2, 3] (right, left), contacts [T, 2] bool, support weights [T, 2].

    Between steps a foot stays exactly where it landed. In a swing the foot first rises, then
    travels (smoothstep), then comes down, so it never drags along the floor.
    """
    n = len(t)
    feet = np.zeros((n, 2, 3))
    contacts = np.ones((n, 2), bool)
    weight = np.ones((n, 2))
    for foot in (0, 1):
        pos = _place(home(foot), 0.0, body, facing)
        feet[:, foot] = pos
        for step, t0, t1 in sorted((s for s in steps if s[0].foot == foot), key=lambda s: s[1]):
            target = _place(step.to, step.yaw, body, facing)
            swing = (t > t0) & (t < t1)
            s = (t[swing] - t0) / (t1 - t0)
            travel = _smoothstep((s - LIFT_FIRST) / (1 - 2 * LIFT_FIRST))[:, None]
            bump = np.sin(np.pi * s) ** 2
            path = pos[None] * (1 - travel) + target[None] * travel
            path[:, 1] += step.height * body.scale * bump
            if step.kick is not None:
                yaw = facing + step.yaw
                forward = np.array([np.sin(yaw), 0.0, np.cos(yaw)])
                # forward with bump ** 2: the foot rises before it travels (no scuff on the floor)
                path += body.scale * (np.outer(bump ** 2, step.kick[0] * forward)
                                      + np.outer(bump, [0.0, step.kick[1], 0.0]))
            feet[swing, foot] = path
            feet[t >= t1, foot] = target
            contacts[swing, foot] = False
            weight[swing, foot] = 1 - (KICK_SHIFT if step.kick else STEP_SHIFT) * np.sin(np.pi * s)
            pos = target
    return feet, contacts, weight


def _place(spot: tuple[float, float], yaw: float, body: Body, facing: float) -> np.ndarray:
    """A stance-frame spot (left, forward) m of the template -> world ankle position [3] on the floor."""
    x, z = spot[0] * body.scale, spot[1] * body.scale
    a = facing + yaw
    return np.array([x * np.cos(a) + z * np.sin(a), 0.0, -x * np.sin(a) + z * np.cos(a)])


def _rot(axis: str, angle: np.ndarray) -> np.ndarray:
    """Rotations [T, 3, 3] about a principal axis by angle [T] rad."""
    c, s = np.cos(angle), np.sin(angle)
    o, z = np.ones_like(angle), np.zeros_like(angle)
    rows = {"x": ((o, z, z), (z, c, -s), (z, s, c)),
            "y": ((c, z, s), (z, o, z), (-s, z, c)),
            "z": ((c, -s, z), (s, c, z), (z, z, o))}[axis]
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def _apply(rot: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors: rot [T, 3, 3] @ v [3] or [T, 3] -> [T, 3]."""
    return np.einsum("tij,tj->ti", rot, np.broadcast_to(v, (len(rot), 3)))


def two_bone_ik(a: np.ndarray, target: np.ndarray, l1: float, l2: float,
                pole: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Middle and end joints [T, 3] of a chain a -(l1)- b -(l2)- c reaching for `target` [T, 3].

    The bend points towards `pole` [T, 3] (a direction). Out-of-reach targets are approached
    along the straight line; |b - a| = l1 and |c - b| = l2 exactly.
    """
    d_vec = target - a
    d = np.linalg.norm(d_vec, axis=-1, keepdims=True)
    u = d_vec / np.maximum(d, 1e-9)
    d = np.clip(d, abs(l1 - l2) + 1e-6, (l1 + l2) * (1 - 1e-6))
    cos_a = np.clip((l1 ** 2 + d ** 2 - l2 ** 2) / (2 * l1 * d), -1.0, 1.0)
    perp = pole - np.sum(pole * u, axis=-1, keepdims=True) * u
    perp /= np.maximum(np.linalg.norm(perp, axis=-1, keepdims=True), 1e-9)
    b = a + l1 * (cos_a * u + np.sqrt(1 - cos_a ** 2) * perp)
    return b, a + u * d


def _pose(m: Motion, feet: np.ndarray, weight: np.ndarray, body: Body, fps: float) -> np.ndarray:
    """Forward kinematics: motion parameters + world ankles [T, 2, 3] -> poses [T, 17, 3]."""
    n, s = len(feet), body.scale
    # Root over the supporting feet, plus the move's sway (stance frame).
    support = (weight[..., None] * feet).sum(1) / weight.sum(1, keepdims=True)  # [T, 3]
    support = gaussian_filter1d(support, 2.0 * fps / FPS, axis=0, mode="nearest")
    yaw_rot = _rot("y", m["yaw"])
    root = support + _apply(yaw_rot, np.stack([m["sway"][:, 0], np.zeros(n), m["sway"][:, 1]], 1) * s)
    hip_off = _apply(yaw_rot, np.array([body.bone("pelvis"), 0.0, 0.0]))        # to the left hip
    hips = np.stack([root - hip_off, root + hip_off], axis=1)                     # [T, 2, 3] right, left
    # Root height: the move's drop, but never beyond the legs' reach of the ankles.
    height = body.stand_height - m["drop"] * s
    reach = REACH_MARGIN * (body.bone("thigh") + body.bone("shin"))
    flat = np.linalg.norm((feet - hips)[..., [0, 2]], axis=-1)                    # [T, 2]
    limit = (feet[..., 1] + np.sqrt(np.maximum(reach ** 2 - flat ** 2, 0.0))).min(1)
    height = np.minimum(height, limit)
    root[:, 1] = height
    hips[..., 1] = height[:, None]
    forward = _apply(yaw_rot, np.array([0.0, 0.0, 1.0]))
    knees, ankles = [], []
    for foot, side in ((0, -1.0), (1, 1.0)):
        pole = forward + 0.15 * side * _apply(yaw_rot, np.array([1.0, 0.0, 0.0]))
        knee, ankle = two_bone_ik(hips[:, foot], feet[:, foot], body.bone("thigh"), body.bone("shin"), pole)
        knees.append(knee)
        ankles.append(ankle)
    # Spine, chest and head.
    lower = yaw_rot @ _rot("y", 0.3 * m["twist"]) @ _rot("x", m["lower_fwd"]) @ _rot("z", 0.5 * m["side"])
    chest = (yaw_rot @ _rot("y", m["twist"]) @ _rot("x", m["lower_fwd"] + m["upper_fwd"])
             @ _rot("z", m["side"]))
    head_rot = chest @ _rot("x", m["nod"])
    spine = root + _apply(lower, np.array([0.0, body.bone("spine"), 0.0]))
    thorax = spine + _apply(chest, np.array([0.0, body.bone("chest"), 0.0]))
    nose = thorax + _apply(chest, NECK_DIR / np.linalg.norm(NECK_DIR) * body.bone("neck"))
    head = nose + _apply(head_rot, HEAD_DIR / np.linalg.norm(HEAD_DIR) * body.bone("head"))
    arms = {}
    for key, side in (("hand_l", 1.0), ("hand_r", -1.0)):
        flip = np.array([side, 1.0, 1.0])                                     # outward -> world x sign
        unit = SHOULDER_DIR * flip / np.linalg.norm(SHOULDER_DIR)
        shoulder = thorax + _apply(chest, unit * body.bone("shoulder"))
        target = shoulder + _apply(chest, m[key] * flip * s)
        elbow, wrist = two_bone_ik(shoulder, target, body.bone("upper_arm"), body.bone("forearm"),
                                   _apply(chest, ELBOW_POLE * flip))
        arms[key] = (shoulder, elbow, wrist)
    joints = [root, hips[:, 0], knees[0], ankles[0], hips[:, 1], knees[1], ankles[1], spine,
              thorax, nose, head, *arms["hand_l"], *arms["hand_r"]]
    poses = np.stack(joints, axis=1)                                               # [T, 17, 3]
    assert poses.shape == (n, NUM_JOINTS, 3)
    return poses
