"""3D pose estimation from video frames, behind a small interface with a registry of backends.

A backend turns frames (BGR uint8 [H, W, 3], as OpenCV decodes them) into a PoseTrack:
poses [T, 17, 3] metres y up (H36M-17), confidence [T, 17] in [0, 1], detected [T] bool.
The default backend is MediaPipe Pose (CPU, offline). Its world landmarks are centred on the
hips, so a track is root-relative: the global trajectory is NOT recovered. `postprocess`
puts the root at one fixed height per clip, chosen so that the lowest ankle touches y = 0.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator, Protocol

import numpy as np

from ..skeleton import (FEET, MAX_GAP_S, NUM_JOINTS, fill_gaps, mediapipe33_to_h36m, put_on_floor, resample,
                        root_relative)


# MediaPipe landmarks behind each H36M joint (same combinations as skeleton.mediapipe33_to_h36m);
# a joint's confidence is the lowest visibility among them.
MP_SOURCES: tuple[tuple[int, ...], ...] = (
    (23, 24), (24,), (26,), (28,), (23,), (25,), (27,), (23, 24, 11, 12), (11, 12), (0,),
    (7, 8, 11, 12), (11,), (13,), (15,), (12,), (14,), (16,))
MP_MODEL_FILES = {0: "pose_landmark_lite.tflite", 1: "pose_landmark_full.tflite",
                  2: "pose_landmark_heavy.tflite"}


@dataclass
class PoseTrack:
    """Poses of one video. poses [T, 17, 3] m y up; confidence [T, 17]; detected [T]; fps."""

    poses: np.ndarray
    confidence: np.ndarray
    detected: np.ndarray
    fps: float

    def __post_init__(self):
        T = len(self.poses)
        assert self.poses.shape == (T, NUM_JOINTS, 3), self.poses.shape
        assert self.confidence.shape == (T, NUM_JOINTS) and self.detected.shape == (T,)

    @property
    def detected_fraction(self) -> float:
        return float(self.detected.mean()) if len(self.detected) else 0.0


class PoseEstimator(Protocol):
    """A 3D pose backend: `name`, `settings` (for meta.json) and `estimate`."""

    name: str
    settings: dict

    def estimate(self, frames: Iterable[np.ndarray], fps: float) -> PoseTrack:
        """frames: BGR uint8 [H, W, 3] at `fps` -> raw track (NaN poses where nobody was found)."""
        ...


class MediaPipePose:
    """MediaPipe Pose (legacy `mp.solutions.pose`), CPU only, no network.

    model_complexity 1 (the model shipped in the mediapipe wheel) runs at ~40 frames/s on 2
    cores; 0 and 2 need model files that mediapipe would download, so they work only when
    those files are already installed.
    """

    name = "mediapipe"

    def __init__(self, model_complexity: int = 1, min_detection_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5, smooth_landmarks: bool = True):
        import mediapipe as mp

        if model_complexity not in MP_MODEL_FILES:
            raise ValueError(f"model_complexity must be 0, 1 or 2, got {model_complexity!r}")
        model = Path(mp.__file__).parent / "modules" / "pose_landmark" / MP_MODEL_FILES[model_complexity]
        if not model.is_file():
            raise FileNotFoundError(f"{model}: MediaPipe model for model_complexity={model_complexity} "
                                    "is not installed (it needs a download); use model_complexity=1")
        self.version = mp.__version__
        self.settings = {"model_complexity": model_complexity,
                         "min_detection_confidence": min_detection_confidence,
                         "min_tracking_confidence": min_tracking_confidence,
                         "smooth_landmarks": smooth_landmarks}
        self._mp = mp

    @property
    def generator(self) -> str:
        return f"mediapipe-{self.version}"

    def estimate(self, frames: Iterable[np.ndarray], fps: float) -> PoseTrack:
        import cv2

        landmarks, visibility = [], []
        with self._mp.solutions.pose.Pose(static_image_mode=False, enable_segmentation=False,
                                          **self.settings) as model:
            for frame in frames:
                rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                rgb.flags.writeable = False
                world = model.process(rgb).pose_world_landmarks
                if world is None:
                    landmarks.append(np.full((33, 3), np.nan))
                    visibility.append(np.zeros(33))
                else:
                    lm = np.array([(p.x, p.y, p.z, p.visibility) for p in world.landmark])  # [33, 4]
                    landmarks.append(lm[:, :3])
                    visibility.append(lm[:, 3])
        if not landmarks:
            raise ValueError("the video has no frames")
        lm = np.stack(landmarks)  # [T, 33, 3] metres, y down
        vis = np.stack(visibility)  # [T, 33]
        detected = np.isfinite(lm).all(axis=(1, 2))
        poses = np.full((len(lm), NUM_JOINTS, 3), np.nan, np.float32)
        if detected.any():
            poses[detected] = mediapipe33_to_h36m(lm[detected])
        confidence = np.stack([vis[:, list(src)].min(axis=1) for src in MP_SOURCES], axis=1)
        return PoseTrack(poses, confidence.astype(np.float32), detected, float(fps))


ESTIMATORS: dict[str, Callable[..., PoseEstimator]] = {"mediapipe": MediaPipePose}


def get_estimator(name: str = "mediapipe", **settings) -> PoseEstimator:
    """A pose backend by name; ValueError listing the valid names for an unknown one."""
    if name not in ESTIMATORS:
        raise ValueError(f"unknown pose estimator {name!r}; choose one of {sorted(ESTIMATORS)}")
    return ESTIMATORS[name](**settings)


def read_frames(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """Decode a video with OpenCV: BGR uint8 frames [H, W, 3]."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ValueError(f"{path}: OpenCV cannot open the video")
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            yield frame
    finally:
        cap.release()


def count_frames(path: str | os.PathLike) -> int:
    """Frame count from the container (0 when unknown)."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        return max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
    finally:
        cap.release()


def postprocess(track: PoseTrack, fps_out: float = 24.0, max_gap_s: float = MAX_GAP_S) -> PoseTrack:
    """Raw track -> clip-ready track: gaps filled, resampled to fps_out, placed on the floor."""
    poses, confidence = fill_gaps(track.poses, track.confidence, track.detected, track.fps, max_gap_s)
    poses = resample(poses, track.fps, fps_out)
    confidence = resample(confidence, track.fps, fps_out)
    detected = resample(track.detected.astype(np.float32), track.fps, fps_out) > 0.5
    poses = put_on_floor(root_relative(poses), FEET).astype(np.float32)  # hip-centred: lowest ankle at y = 0
    return replace(track, poses=poses, confidence=confidence, detected=detected,
                   fps=float(fps_out))
