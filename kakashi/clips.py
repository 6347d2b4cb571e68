"""The clip on disk: data/<dataset>/<clip_id>/{audio.wav, clip.npz, meta.json} (DESIGN.md).

A clip folder is written whole or not at all (temp folder + rename).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from . import audio
from .audio import FEATURE_DIMS, SR
from .fileio import atomic_dir, atomic_path, write_json, write_npz
from .skeleton import NUM_JOINTS, check_poses

AUDIO, POSES, META = "audio.wav", "clip.npz", "meta.json"
FEATURES_DIR = "features"   # cache of audio features inside a clip folder (clip_features)
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass
class Clip:
    """One dance with its music. poses [T, 17, 3] metres y up; confidence [T, 17] in [0, 1]."""

    path: Path
    poses: np.ndarray
    fps: float
    confidence: np.ndarray
    meta: dict = field(default_factory=dict)

    @property
    def clip_id(self) -> str:
        return self.path.name

    @property
    def audio_path(self) -> Path:
        return self.path / AUDIO

    @property
    def num_frames(self) -> int:
        return len(self.poses)

    @property
    def seconds(self) -> float:
        return self.num_frames / self.fps


def safe_clip_id(name: str) -> str:
    """A clip id made from any string (video title, URL) that cannot leave its folder."""
    clip_id = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("._-")[:128]
    if not clip_id:
        raise ValueError(f"cannot make a clip id from {name!r}")
    return clip_id


def write_clip(dataset: str | os.PathLike, clip_id: str, poses: np.ndarray, fps: float,
               audio: np.ndarray | str | os.PathLike, meta: dict,
               confidence: np.ndarray | None = None) -> Path:
    """Write one clip atomically and return its folder.

    audio: mono float samples in [-1, 1] at SR (22 050 Hz; written as 16-bit PCM), or the path
    of a wav already at SR.
    """
    if not _SAFE_ID.match(clip_id):
        raise ValueError(f"unsafe clip id {clip_id!r}: use kakashi.clips.safe_clip_id")
    poses = check_poses(poses, NUM_JOINTS, f"clip {clip_id}").astype(np.float32)
    if not np.isfinite(poses).all():
        raise ValueError(f"clip {clip_id}: poses contain NaN or inf")
    if confidence is None:
        confidence = np.ones(poses.shape[:2], np.float32)
    confidence = np.asarray(confidence, np.float32)
    if confidence.shape != poses.shape[:2]:
        raise ValueError(f"clip {clip_id}: confidence {confidence.shape} does not match poses {poses.shape[:2]}")
    target = Path(dataset) / clip_id
    with atomic_dir(target) as tmp:
        if isinstance(audio, (str, os.PathLike)):
            shutil.copyfile(audio, tmp / AUDIO)
        else:
            # 16-bit PCM: half the size of float and byte-identical between runs (libsndfile
            # stamps float wavs with a time-dependent PEAK chunk).
            sf.write(tmp / AUDIO, np.clip(np.asarray(audio, np.float32), -1.0, 1.0), SR, subtype="PCM_16")
        write_npz(tmp / POSES, poses=poses, fps=np.float64(fps), confidence=confidence)
        (tmp / META).write_text(json.dumps({"fps": float(fps), **meta}, indent=2, default=_tolist) + "\n")
    return target


def _tolist(x):
    if hasattr(x, "tolist"):
        return x.tolist()
    return str(x)


def is_clip(path: str | os.PathLike) -> bool:
    """True when `path` is a complete clip folder."""
    path = Path(path)
    return all((path / name).is_file() for name in (AUDIO, POSES, META)) and not path.name.startswith(".")


def read_clip(path: str | os.PathLike) -> Clip:
    """Read a clip folder; ValueError naming the folder when it is incomplete or corrupt."""
    path = Path(path)
    if not is_clip(path):
        raise ValueError(f"{path}: not a clip folder (needs {AUDIO}, {POSES} and {META})")
    try:
        with np.load(path / POSES, allow_pickle=False) as data:
            poses = data["poses"].astype(np.float32)
            fps = float(data["fps"])
            confidence = data["confidence"].astype(np.float32)
        meta = json.loads((path / META).read_text())
    except Exception as e:  # corrupt npz / json: name the clip, not the library internals
        raise ValueError(f"{path}: unreadable clip ({type(e).__name__}: {e})") from None
    return Clip(path=path, poses=check_poses(poses, NUM_JOINTS, str(path)), fps=fps,
                confidence=confidence, meta=meta)


def list_clips(dataset: str | os.PathLike) -> list[Path]:
    """Complete clip folders of a dataset, sorted by id (temp folders are skipped)."""
    dataset = Path(dataset)
    if not dataset.is_dir():
        raise FileNotFoundError(f"{dataset}: dataset folder not found")
    return sorted(p for p in dataset.iterdir() if p.is_dir() and is_clip(p))


def clip_features(clip_dir: str | os.PathLike, kind: str = "mfcc") -> np.ndarray:
    """Features [T, F] of a clip's audio.wav at its pose frame rate, T = its pose frame count.

    Cached as clip_dir/features/<kind>.npy with a <kind>.json stamp (FEATURE_VERSION, fps, T,
    size and mtime of audio.wav); recomputed when any of these no longer match.
    """
    if kind not in FEATURE_DIMS:
        raise ValueError(f"unknown feature kind {kind!r}; choose one of {sorted(FEATURE_DIMS)}")
    clip = read_clip(clip_dir)
    cache = clip.path / FEATURES_DIR / f"{kind}.npy"
    stamp_path = cache.with_suffix(".json")
    stat = clip.audio_path.stat()
    stamp = {"version": audio.FEATURE_VERSION, "kind": kind, "fps": clip.fps, "frames": clip.num_frames,
             "sr": SR, "audio_bytes": stat.st_size, "audio_mtime_ns": stat.st_mtime_ns}
    cached = _read_cache(cache, stamp_path, stamp, (clip.num_frames, FEATURE_DIMS[kind]))
    if cached is not None:
        return cached
    y = audio.load_audio(clip.audio_path, SR)
    out = audio.features(y, SR, clip.fps, kind, n_frames=clip.num_frames)
    try:
        with atomic_path(cache) as tmp:
            np.save(tmp, out)
        write_json(stamp_path, stamp)
    except OSError as e:  # a read-only dataset or a full disk: the features are still right
        warnings.warn(f"{clip.path}: {kind} features not cached ({e})", stacklevel=2)
    return out


def _read_cache(cache: Path, stamp_path: Path, stamp: dict, shape: tuple) -> np.ndarray | None:
    """The cached array when its stamp and shape match and it is not older than the audio."""
    try:
        if json.loads(stamp_path.read_text()) != stamp:
            return None
        if cache.stat().st_mtime_ns < stamp["audio_mtime_ns"]:
            return None
        out = np.load(cache, allow_pickle=False)
    except (OSError, ValueError):
        return None
    if out.shape != shape or out.dtype != np.float32 or not np.isfinite(out).all():
        return None
    return out
