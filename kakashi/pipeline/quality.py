"""Automatic versions of the paper's selection criteria, one check each, reported per clip.

Each check gives value, threshold, pass/fail and a reason; `assess` gathers them into the
dict stored in meta.json under "quality". A failed check of severity "reject" rejects the
clip; one of severity "flag" only marks it. People are counted with OpenCV's HOG people
detector and camera motion is measured by phase correlation of the frame borders, both on
a sample of frames (offline, no model download). Three checks ask whether the person dances
(the paper kept full-body dancers only): standing, the whole body visible, and legs that move,
so that a seated musician or a dancer filmed from the waist up is not taken for a dance.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Iterable, Iterator

import numpy as np

from ..skeleton import bone_length_cv
from .pose import PoseTrack

R_HIP, R_KNEE, R_ANKLE, L_HIP, L_KNEE, L_ANKLE = 1, 2, 3, 4, 5, 6  # H36M-17 (DESIGN.md)
LEGS = ((R_HIP, R_KNEE, R_ANKLE), (L_HIP, L_KNEE, L_ANKLE))
LOWER_BODY = [R_HIP, R_KNEE, R_ANKLE, L_HIP, L_KNEE, L_ANKLE]
KNEES_ANKLES = [R_KNEE, R_ANKLE, L_KNEE, L_ANKLE]
MOTION_SMOOTH_S = 0.25  # moving average before measuring leg motion: removes the estimator's jitter
MOTION_WINDOW_S = 2.0   # leg motion is the range of the joints within windows this long (a bar at
MOTION_QUANTILE = 90    # 120 bpm), this percentile over the windows (a dance steps now and then)

SAMPLE_EVERY_S = 1.0   # one sampled frame per second of video ...
MAX_SAMPLES = 30       # ... and at most this many per clip
HOG_WIDTH = 640        # frames are scaled down to at most this width before people detection
FLOW_WIDTH = 160       # and to this width before camera-motion measurement
BORDER = 0.2           # border strips: this fraction of the frame on each side


@dataclass(frozen=True)
class Thresholds:
    """Limits of the checks (fractions in [0, 1]; camera motion in frame widths per second)."""

    min_detected: float = 0.9           # frames with a person found
    max_multi_person: float = 0.2       # sampled frames where more than one person is seen
    joint_confidence: float = 0.5       # a joint counts as confident above this visibility
    min_confident_joints: float = 0.7   # mean fraction of confident joints in detected frames
    max_camera_motion: float = 0.05     # median border motion
    max_bone_cv: float = 0.15           # bone-length coefficient of variation
    # Dance checks, calibrated on mgt_dancer.avi (MediaPipe, 62.5 s) against a seated person
    # and the same video cropped at the waist (tests/test_pipeline.py):
    standing_ratio: float = 0.75        # hip height above the ankles / leg length of a standing
                                        # frame: dancer median 0.97 (10th pct 0.95), seated ~0.5
    min_standing: float = 0.7           # frames standing (also hips > knees > ankles): dancer 1.00
    min_full_body: float = 0.8          # frames with knees and ankles confident: dancer 1.00,
                                        # cropped at the waist 0.00, at 60 % height 0.01
    min_leg_motion: float = 0.045       # metres (`leg_motion`): dancer 0.180 (its quietest 10 s
                                        # 0.060); still legs with 4.4 / 8 mm jitter <= 0.020 / 0.036
    severity: dict = field(default_factory=lambda: {
        "person": "reject", "single_person": "reject", "confident_joints": "reject",
        "stable_camera": "flag", "bone_lengths": "reject", "standing": "reject",
        "full_body": "reject", "lower_body_motion": "reject"})


@dataclass(frozen=True)
class Check:
    """One criterion's outcome."""

    name: str
    value: float
    threshold: float
    passed: bool
    reason: str
    severity: str = "reject"


def _check(name, value, threshold, passed, what, thresholds: Thresholds) -> Check:
    verdict = "ok" if passed else "FAILED"
    return Check(name, round(float(value), 4), threshold, bool(passed), f"{verdict}: {what}",
                 thresholds.severity.get(name, "reject"))


class FrameSampler:
    """Pass frames through while keeping a sample for the image checks.

    Keeps every `step`-th frame scaled to HOG_WIDTH and the (gray, FLOW_WIDTH) pair of it
    and its successor, so the video is decoded only once.
    """

    def __init__(self, fps: float, total_frames: int, every_s: float = SAMPLE_EVERY_S,
                 max_samples: int = MAX_SAMPLES):
        self.step = max(1, int(round(every_s * fps)), math.ceil(max(total_frames, 1) / max_samples))
        self.samples: list[np.ndarray] = []
        self.pairs: list[tuple[np.ndarray, np.ndarray]] = []

    def wrap(self, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        import cv2

        first = None
        for i, frame in enumerate(frames):
            if first is not None:
                self.pairs.append((first, _gray(frame, FLOW_WIDTH, cv2)))
                first = None
            if i % self.step == 0:
                self.samples.append(_scaled(frame, HOG_WIDTH, cv2))
                first = _gray(frame, FLOW_WIDTH, cv2)
            yield frame


def _scaled(frame, width, cv2):
    h, w = frame.shape[:2]
    if w <= width:
        return frame.copy()
    return cv2.resize(frame, (width, round(h * width / w)), interpolation=cv2.INTER_AREA)


def _gray(frame, width, cv2):
    return cv2.cvtColor(_scaled(frame, width, cv2), cv2.COLOR_BGR2GRAY).astype(np.float32)


_HOG = None


def count_people(frame: np.ndarray, min_weight: float = 0.3, overlap: float = 0.3) -> int:
    """People in one BGR frame by OpenCV's HOG detector, overlapping boxes merged.

    Boxes whose intersection exceeds `overlap` of the smaller box count once.
    """
    import cv2

    global _HOG
    if _HOG is None:
        _HOG = cv2.HOGDescriptor()
        _HOG.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    rects, weights = _HOG.detectMultiScale(frame, winStride=(8, 8), padding=(8, 8), scale=1.05)
    weights = np.ravel(weights)
    kept: list[np.ndarray] = []
    for i in np.argsort(-weights):
        if weights[i] < min_weight:
            break
        x, y, w, h = rects[i]
        if all(_intersection(rects[i], k) <= overlap * min(w * h, k[2] * k[3]) for k in kept):
            kept.append(rects[i])
    return len(kept)


def _intersection(a, b) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return float(ix * iy)


def camera_motion(pairs: list[tuple[np.ndarray, np.ndarray]], fps: float,
                  min_response: float = 0.1) -> float:
    """Median shift of the frame borders between consecutive frames, in frame widths per second.

    pairs: (frame t, frame t+1) gray float32 [H, W]. Each border strip (top, bottom, left,
    right) is phase-correlated; strips without texture (weak response) are ignored, and the
    median over strips ignores a dancer crossing one of them. 0.0 when no strip has texture.
    """
    import cv2

    per_pair = []
    for a, b in pairs:
        h, w = a.shape
        bh, bw = max(8, int(h * BORDER)), max(8, int(w * BORDER))
        strips = [(slice(0, bh), slice(None)), (slice(h - bh, h), slice(None)),
                  (slice(None), slice(0, bw)), (slice(None), slice(w - bw, w))]
        shifts = []
        for rows, cols in strips:
            sa, sb = a[rows, cols], b[rows, cols]
            if sa.std() < 2.0:  # flat backdrop: no evidence either way
                continue
            (dx, dy), response = cv2.phaseCorrelate(sa, sb, cv2.createHanningWindow(sa.shape[::-1], cv2.CV_32F))
            if response >= min_response:
                shifts.append(math.hypot(dx, dy) / w)
        if shifts:
            per_pair.append(float(np.median(shifts)))
    return float(np.median(per_pair)) * fps if per_pair else 0.0


def standing_fraction(poses: np.ndarray, ratio: float = Thresholds.standing_ratio) -> float:
    """Share of frames where the person stands: on both legs hip above knee above ankle, and
    the hips at least `ratio` leg lengths above the lower ankle.

    poses: [T, 17, 3] metres, y up (root-relative or global). 0.0 for no frames.
    """
    if len(poses) == 0:
        return 0.0
    y = poses[..., 1]                                                               # [T, 17]
    ordered = np.ones(len(poses), bool)
    for hip, knee, ankle in LEGS:
        ordered &= (y[:, hip] > y[:, knee]) & (y[:, knee] > y[:, ankle])
    leg = np.mean([np.linalg.norm(poses[:, k] - poses[:, h], axis=-1) +
                   np.linalg.norm(poses[:, a] - poses[:, k], axis=-1) for h, k, a in LEGS], axis=0)  # [T]
    height = y[:, [R_HIP, L_HIP]].mean(axis=1) - y[:, [R_ANKLE, L_ANKLE]].min(axis=1)            # [T]
    tall = height >= ratio * np.maximum(leg, 1e-6)
    return float((ordered & tall).mean())


def full_body_fraction(confidence: np.ndarray, threshold: float = Thresholds.joint_confidence) -> float:
    """Share of frames whose knees and ankles are all confident. confidence: [T, 17] in [0, 1]."""
    if len(confidence) == 0:
        return 0.0
    return float((confidence[:, KNEES_ANKLES] >= threshold).all(axis=1).mean())


def leg_motion(poses: np.ndarray, fps: float) -> float:
    """How much hips, knees and ankles move around the root, in metres: the legs' positions
    relative to joint 0 are smoothed over MOTION_SMOOTH_S, their range (max - min, averaged over
    the six joints) taken in windows of MOTION_WINDOW_S, and the MOTION_QUANTILE-th percentile
    over windows returned. poses: [T, 17, 3] metres at `fps`; 0.0 for fewer than 2 frames.
    """
    from scipy.ndimage import uniform_filter1d

    if len(poses) < 2:
        return 0.0
    rel = poses[:, LOWER_BODY] - poses[:, :1]                                         # [T, 6, 3]
    rel = uniform_filter1d(rel, max(1, round(MOTION_SMOOTH_S * fps)), axis=0, mode="nearest")
    window = max(2, min(len(rel), round(MOTION_WINDOW_S * fps)))
    ranges = [np.linalg.norm(rel[i:i + window].max(0) - rel[i:i + window].min(0), axis=-1).mean()
              for i in range(0, len(rel) - window + 1, window)]                     # [W] metres
    return float(np.percentile(ranges, MOTION_QUANTILE))


def dance_checks(poses: np.ndarray, confidence: np.ndarray, fps: float,
                 thresholds: Thresholds = Thresholds()) -> list[Check]:
    """The checks that the person dances, on the frames where one was found.

    poses: [T, 17, 3] metres, y up; confidence: [T, 17]; fps: frames per second.
    """
    t = thresholds
    standing = standing_fraction(poses, t.standing_ratio)
    visible = full_body_fraction(confidence, t.joint_confidence)
    motion = leg_motion(poses, fps)
    return [
        _check("standing", standing, t.min_standing, standing >= t.min_standing,
               f"standing in {standing:.0%} of frames (hips above knees above ankles, hips at least "
               f"{t.standing_ratio:g} leg lengths up; needs >= {t.min_standing:.0%})", t),
        _check("full_body", visible, t.min_full_body, visible >= t.min_full_body,
               f"knees and ankles visible (confidence >= {t.joint_confidence}) in {visible:.0%} of "
               f"frames (needs >= {t.min_full_body:.0%})", t),
        _check("lower_body_motion", motion, t.min_leg_motion, motion >= t.min_leg_motion,
               f"legs and hips move over {motion:.3f} m in {MOTION_WINDOW_S:g} s ({MOTION_QUANTILE}th percentile; "
               f"needs >= {t.min_leg_motion} m)", t),
    ]


def assess(track: PoseTrack, sampler: FrameSampler | None = None,
           thresholds: Thresholds = Thresholds()) -> dict:
    """All checks of one raw track (at the video's fps) -> the "quality" dict of meta.json."""
    t = thresholds
    checks = []
    det = track.detected_fraction
    checks.append(_check("person", det, t.min_detected, det >= t.min_detected,
                         f"a person found in {det:.0%} of frames (needs >= {t.min_detected:.0%})", t))
    if sampler is not None and sampler.samples:
        counts = np.array([count_people(f) for f in sampler.samples])
        multi = float((counts >= 2).mean())
        checks.append(_check(
            "single_person", multi, t.max_multi_person, multi <= t.max_multi_person,
            f"more than one person in {multi:.0%} of {len(counts)} sampled frames (max {counts.max()}; "
            f"allowed <= {t.max_multi_person:.0%})", t))
        motion = camera_motion(sampler.pairs, track.fps)
        checks.append(_check(
            "stable_camera", motion, t.max_camera_motion, motion <= t.max_camera_motion,
            f"background moves {motion:.3f} frame widths/s (allowed <= {t.max_camera_motion})", t))
    if track.detected.any():
        conf = track.confidence[track.detected]
        good = float((conf >= t.joint_confidence).mean())
        checks.append(_check(
            "confident_joints", good, t.min_confident_joints, good >= t.min_confident_joints,
            f"{good:.0%} of joints confident (visibility >= {t.joint_confidence}) in frames with a "
            f"person (needs >= {t.min_confident_joints:.0%})", t))
        cv = bone_length_cv(track.poses[track.detected]) if track.detected.sum() > 1 else 0.0
        checks.append(_check("bone_lengths", cv, t.max_bone_cv, cv <= t.max_bone_cv,
                             f"bone lengths vary by {cv:.1%} (allowed <= {t.max_bone_cv:.0%})", t))
        checks += dance_checks(track.poses[track.detected], track.confidence[track.detected], track.fps, t)
    failed = [c for c in checks if not c.passed]
    return {"passed": not any(c.severity == "reject" for c in failed),
            "rejected_by": [c.name for c in failed if c.severity == "reject"],
            "flagged": [c.name for c in failed if c.severity != "reject"],
            "checks": {c.name: asdict(c) for c in checks}}


def summary(quality: dict) -> str:
    """One line naming the failed checks and their reasons ('' when every check passed)."""
    return "; ".join(f"{name}: {c['reason']}" for name, c in quality["checks"].items() if not c["passed"])
