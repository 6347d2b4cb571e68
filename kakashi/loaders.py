"""Existing dance datasets -> clips (kakashi.clips.write_clip): poses [T, 17, 3] m, y up, 24 fps.

- the original Kakashi layout: <root>/<label>/NNNNN/NNNNN.keypoints.npy (+ NNNNN.wav)
- AIST++ keypoints3d (COCO-17, cm, 60 fps) from .npz/.npy, or .pkl with allow_pickle=True
- BVH motion capture (kakashi.bvh), joints matched to H36M-17 by name
- EDGE-style AIST++ slice CSVs (SMPL-24, z up, 30 fps)
When a source has no music, the clip's audio.wav is silence and meta.json says so.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .audio import SR, load_audio
from .bvh import read_bvh
from .clips import safe_clip_id, write_clip
from .skeleton import (FEET, FPS, Y_DOWN_TO_Y_UP, Z_UP_TO_Y_UP, check_poses, coco17_to_h36m, fill_gaps,
                       put_on_floor, resample, root_relative, rotate, smpl24_to_h36m)

AISTPP_FPS = 60.0
SMPL_CSV_FPS = 30.0
SMPL_FEET = (10, 11)  # SMPL-24 l_foot, r_foot
UNITS = {"m": 1.0, "cm": 0.01, "mm": 0.001, "in": 0.0254}
SILENT = "silence: the source has no music"


@dataclass
class LoadReport:
    """Clips written and sources that failed (name -> reason)."""

    written: list[Path] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed


def _on_floor(poses: np.ndarray) -> np.ndarray:
    """Hip-centred poses (estimated keypoints): root-relative, lowest ankle at y = 0."""
    return put_on_floor(root_relative(poses), FEET)


def _audio(audio, poses: np.ndarray, fps: float) -> tuple[np.ndarray, str]:
    if audio is None:
        return np.zeros(int(round(len(poses) / fps * SR)), np.float32), SILENT
    return load_audio(audio), str(audio)


def _write(out_dir, clip_id, poses, fps_in, audio, meta, floor=None) -> Path:
    """Resample poses [T, 17, 3] from fps_in to 24 fps, apply `floor`, write with the music."""
    poses = resample(poses, fps_in, FPS) if fps_in != FPS else poses
    poses = floor(poses) if floor is not None else poses
    samples, audio_note = _audio(audio, poses, FPS)
    return write_clip(out_dir, clip_id, poses, FPS, samples, {**meta, "source_fps": fps_in,
                                                              "audio": audio_note})


# ---------------------------------------------------------------- the original Kakashi layout
def kakashi_to_h36m(keypoints: np.ndarray) -> np.ndarray:
    """Kakashi keypoints [T, 17, 3] (root-relative, VideoPose3D camera space, y down) -> y up.

    Still root-relative: the source has no global trajectory (the loader then places the
    root at one height per clip, the lowest ankle at y = 0).
    """
    return rotate(check_poses(keypoints, 17, "Kakashi keypoints").astype(np.float32), Y_DOWN_TO_Y_UP)


def load_kakashi(root: str | os.PathLike, out_dir: str | os.PathLike, fps: float = FPS) -> LoadReport:
    """The original layout <root>/<label>/NNNNN/NNNNN.{keypoints.npy, wav} -> clips <label>_NNNNN.

    fps: the keypoints' frame rate (the original dataset does not record it; 24 assumed).
    """

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: Kakashi dataset folder not found")
    files = sorted(p for p in root.glob("*/*/*.keypoints.npy") if p.name == f"{p.parent.name}.keypoints.npy")
    if not files:
        raise ValueError(f"{root}: no <label>/NNNNN/NNNNN.keypoints.npy files (the Kakashi layout)")
    report = LoadReport()
    for kp in files:
        label, number = kp.parent.parent.name, kp.parent.name
        clip_id = safe_clip_id(f"{label}_{number}")
        try:
            poses = kakashi_to_h36m(np.load(kp, allow_pickle=False))
            wav = kp.parent / f"{number}.wav"
            if not wav.is_file():
                raise FileNotFoundError(f"{wav}: music of {kp.name} not found")
            meta = {"source": str(kp), "label": label, "licence": "as the original Kakashi dataset",
                    "generator": "VideoPose3D (original Kakashi dataset)",
                    "fps_note": f"frame rate not recorded in the source; {fps:g} assumed",
                    "root": "root-relative in the source; lowest ankle placed at y = 0"}
            report.written.append(_write(out_dir, clip_id, poses, fps, wav, meta, _on_floor))
        except (ValueError, OSError) as e:
            report.failed[str(kp)] = str(e)
    return report


# ---------------------------------------------------------------- AIST++
def read_aistpp_keypoints(path: str | os.PathLike, allow_pickle: bool = False,
                          key: str | None = None) -> np.ndarray:
    """AIST++ keypoints3d [T, 17, 3] (COCO order, cm) from .npy, .npz or (opt-in) .pkl.

    allow_pickle=True is needed for the official .pkl files. Unpickling runs code from the
    file: only use it on files from a source you trust.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: AIST++ keypoints file not found")
    keys = [key] if key else ["keypoints3d_optim", "keypoints3d"]
    suffix = path.suffix.lower()
    if suffix == ".pkl":
        if not allow_pickle:
            raise ValueError(f"{path}: reading a .pkl runs code from the file; pass allow_pickle=True "
                             "only for files you trust, or convert it to .npz")
        import pickle

        with open(path, "rb") as f:
            data = pickle.load(f)
    elif suffix in (".npz", ".npy"):
        try:
            data = np.load(path, allow_pickle=False)
        except ValueError as e:
            raise ValueError(f"{path}: unreadable array file ({e})") from None
    else:
        raise ValueError(f"{path}: unsupported AIST++ keypoints file (use .npz, .npy or .pkl)")
    if not isinstance(data, np.ndarray):
        found = [k for k in keys if k in data]
        if not found and len(list(data.keys())) == 1:
            found = list(data.keys())
        if not found:
            raise ValueError(f"{path}: no {' or '.join(keys)} array (has {sorted(data.keys())})")
        data = data[found[0]]
    array = np.asarray(data, np.float64)
    return check_poses(array, 17, f"{path}: keypoints3d")


def fill_invalid(poses: np.ndarray, what: str) -> np.ndarray:
    """Interpolate frames with NaN/inf joints [T, J, 3] from their neighbours; ValueError if none valid."""

    valid = np.isfinite(poses).all(axis=(1, 2))
    if valid.all():
        return poses
    if not valid.any():
        raise ValueError(f"{what}: every frame contains NaN")
    conf = np.ones(poses.shape[:2], np.float32)
    return fill_gaps(np.where(np.isfinite(poses), poses, 0.0), conf, valid, 1.0, np.inf)[0]


def load_aistpp(keypoints: str | os.PathLike, audio: str | os.PathLike | None,
                out_dir: str | os.PathLike, clip_id: str | None = None, fps: float = AISTPP_FPS,
                allow_pickle: bool = False, key: str | None = None) -> Path:
    """One AIST++ sequence (keypoints3d, cm, y up, 60 fps) + its music -> one clip at 24 fps.

    The global trajectory and the AIST++ world's floor are kept.
    """
    kp = read_aistpp_keypoints(keypoints, allow_pickle, key) * UNITS["cm"]
    poses = coco17_to_h36m(fill_invalid(kp, str(keypoints)))
    clip_id = clip_id or safe_clip_id(Path(keypoints).stem)
    meta = {"source": str(keypoints), "licence": "CC BY 4.0 (AIST++, Li et al. 2021)",
            "generator": "AIST++ keypoints3d (multi-view triangulation)"}
    return _write(out_dir, clip_id, poses, fps, audio, meta)


# ---------------------------------------------------------------- BVH
# H36M joint -> BVH joint names (normalised: lower case, no namespace, no '_', '-', ' ', '.'),
# first match wins. Clavicles are often called *Shoulder, so *Arm is tried first.
BVH_NAMES: dict[str, tuple[str, ...]] = {
    "hip": ("hips", "pelvis", "hip", "root"),
    "r_hip": ("rightupleg", "rightupperleg", "rightthigh", "rthigh", "righthip", "rhip"),
    "r_knee": ("rightleg", "rightlowerleg", "rightshin", "rshin", "rightknee", "rknee"),
    "r_ankle": ("rightfoot", "rightankle", "rfoot", "rankle"),
    "l_hip": ("leftupleg", "leftupperleg", "leftthigh", "lthigh", "lefthip", "lhip"),
    "l_knee": ("leftleg", "leftlowerleg", "leftshin", "lshin", "leftknee", "lknee"),
    "l_ankle": ("leftfoot", "leftankle", "lfoot", "lankle"),
    "thorax": ("neck", "neck1", "upperchest", "chest2", "spine3", "chest", "spine2"),
    "neck": ("head",),
    "l_shoulder": ("leftarm", "leftupperarm", "lshldr", "leftshoulder", "lshoulder"),
    "l_elbow": ("leftforearm", "leftlowerarm", "lforearm", "leftelbow", "lelbow"),
    "l_wrist": ("lefthand", "leftwrist", "lhand", "lwrist"),
    "r_shoulder": ("rightarm", "rightupperarm", "rshldr", "rightshoulder", "rshoulder"),
    "r_elbow": ("rightforearm", "rightlowerarm", "rforearm", "rightelbow", "relbow"),
    "r_wrist": ("righthand", "rightwrist", "rhand", "rwrist"),
}
HEAD_TOP = ("headend", "headtop", "headtopend", "headsiteend")


def _norm(name: str) -> str:
    return re.sub(r"[\s_.\-]", "", name.split(":")[-1].lower())


def bvh_to_h36m(names: list[str], positions: np.ndarray, scale: float = UNITS["cm"],
                z_up: bool = False, what: str = "BVH") -> np.ndarray:
    """BVH joint positions [T, J, 3] (file units) -> H36M-17 [T, 17, 3] metres, y up.

    The spine is the hip-thorax mid-point; the head top is the head's End Site when present,
    else 50 % of the thorax->head segment above the head.
    """
    index = {}
    for j, name in enumerate(names):
        index.setdefault(_norm(name), j)
    found, missing = {}, []
    for joint, candidates in BVH_NAMES.items():
        hit = next((index[c] for c in candidates if c in index), None)
        (missing.append(joint) if hit is None else found.__setitem__(joint, hit))
    if missing:
        raise ValueError(f"{what}: no joint for {', '.join(missing)} (joints: {', '.join(names)})")
    p = np.asarray(positions, np.float64) * scale
    if z_up:
        p = rotate(p, Z_UP_TO_Y_UP)
    get = {k: p[:, j] for k, j in found.items()}
    top = next((index[c] for c in HEAD_TOP if c in index), None)
    head = p[:, top] if top is not None else get["neck"] + 0.5 * (get["neck"] - get["thorax"])
    order = ("hip", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", None, "thorax", "neck",
             None, "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist")
    joints = [get[k] if k else None for k in order]
    joints[7] = 0.5 * (get["hip"] + get["thorax"])  # spine
    joints[10] = head
    return np.stack(joints, axis=1).astype(np.float32)  # [T, 17, 3]


def load_bvh(path: str | os.PathLike, audio: str | os.PathLike | None, out_dir: str | os.PathLike,
             clip_id: str | None = None, units: str = "cm", z_up: bool = False) -> Path:
    """A BVH file (+ its music) -> one clip at 24 fps; the file's global trajectory is kept."""
    if units not in UNITS:
        raise ValueError(f"unknown units {units!r}; choose one of {sorted(UNITS)}")
    bvh = read_bvh(path)
    poses = bvh_to_h36m(bvh.joint_names(end_sites=True), bvh.positions(end_sites=True), UNITS[units], z_up, str(path))
    meta = {"source": str(path), "generator": "BVH motion capture", "units": units}
    return _write(out_dir, clip_id or safe_clip_id(Path(path).stem), poses, bvh.fps, audio, meta)


# ---------------------------------------------------------------- EDGE-style SMPL-24 CSV
def read_smpl_csv(path: str | os.PathLike) -> np.ndarray:
    """One row a frame, 72 columns (24 SMPL joints x, y, z; z up; metres) -> [T, 24, 3]."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: SMPL CSV not found")
    try:
        rows = np.loadtxt(path, delimiter=",", ndmin=2)
    except ValueError as e:
        raise ValueError(f"{path}: not a numeric CSV ({e})") from None
    if rows.shape[1] != 72 or len(rows) < 2:
        raise ValueError(f"{path}: expected at least 2 rows of 72 values (24 joints x 3), got {list(rows.shape)}")
    return rows.reshape(len(rows), 24, 3)  # [T, 24, 3]


def load_smpl_csv(path: str | os.PathLike, out_dir: str | os.PathLike,
                  audio: str | os.PathLike | None = None, fps: float = SMPL_CSV_FPS,
                  clip_id: str | None = None) -> Path:
    """An EDGE-style AIST++ slice (SMPL-24, z up, 30 fps) -> one clip; the lowest foot on y = 0."""
    joints = fill_invalid(read_smpl_csv(path), str(path))
    joints[..., 2] -= joints[:, list(SMPL_FEET), 2].min()  # floor: lowest foot at z = 0
    poses = smpl24_to_h36m(joints, z_up=True)
    meta = {"source": str(path), "licence": "CC BY 4.0 (AIST++, Li et al. 2021)",
            "generator": "AIST++ SMPL joints (EDGE slices)"}
    return _write(out_dir, clip_id or safe_clip_id(Path(path).stem), poses, fps, audio, meta)


# ---------------------------------------------------------------- dispatch
LOADERS = ("kakashi", "aistpp", "bvh", "smpl_csv")


def detect_layout(source: str | os.PathLike) -> str:
    """Which loader reads `source` (a file or folder); ValueError when none does."""
    source = Path(source)
    if source.is_dir():
        if any(source.glob("*/*/*.keypoints.npy")):
            return "kakashi"
        for suffix, layout in ((".bvh", "bvh"), (".csv", "smpl_csv")):
            if any(source.glob(f"*{suffix}")):
                return layout
    elif source.is_file():
        suffix = source.suffix.lower()
        if suffix == ".bvh":
            return "bvh"
        if suffix == ".csv":
            return "smpl_csv"
        if suffix in (".pkl", ".npz", ".npy"):
            return "aistpp"
    else:
        raise FileNotFoundError(f"{source}: no such dataset file or folder")
    raise ValueError(f"{source}: unknown dataset layout (one of {', '.join(LOADERS)})")


def load_dataset(source: str | os.PathLike, out_dir: str | os.PathLike, layout: str | None = None,
                 audio: str | os.PathLike | None = None, **options) -> LoadReport:
    """Convert a dataset file or folder to clips, choosing the loader by its layout.

    Folders of .bvh/.csv files take each file's music from a .wav of the same name beside it
    (silence when there is none); a single file takes `audio`.
    """
    layout = layout or detect_layout(source)
    if layout not in LOADERS:
        raise ValueError(f"unknown layout {layout!r}; choose one of {list(LOADERS)}")
    source = Path(source)
    if layout == "kakashi":
        return load_kakashi(source, out_dir, **options)
    one = {"aistpp": lambda f, a: load_aistpp(f, a, out_dir, **options),
           "bvh": lambda f, a: load_bvh(f, a, out_dir, **options),
           "smpl_csv": lambda f, a: load_smpl_csv(f, out_dir, a, **options)}[layout]
    suffix = {"aistpp": "*.np[yz]", "bvh": "*.bvh", "smpl_csv": "*.csv"}[layout]
    files = sorted(source.glob(suffix)) if source.is_dir() else [source]
    report = LoadReport()
    for f in files:
        wav = f.with_suffix(".wav")
        try:
            report.written.append(one(f, audio if not source.is_dir() else (wav if wav.is_file() else None)))
        except (ValueError, OSError) as e:
            report.failed[str(f)] = str(e)
    return report
