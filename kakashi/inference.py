"""Inference from a checkpoint: a song's features, normalised as in training, danced window by
window with seamless joins. Used by choreographing (kakashi.generate), the comparison of runs
(kakashi.analysis) and training's dance check (kakashi.selection).

Long songs are generated in windows of the checkpoint's training length, each window seeded
with a pose written near the end of the one before and cross-faded into it, so memory stays
bounded and the dance is continuous at the seams. Generation is deterministic given the seed
of torch's global generator.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import checkpoint
from .config import Preset
from .dataset import ClipData, pose_space, song_normaliser

MIN_SONG_SECONDS = 1.0   # shorter audio is refused: too little to dance to
SILENCE_RMS = 1e-4       # RMS amplitude (full scale = 1) below which a song counts as silent


@dataclass
class Dancer:
    """A trained model ready to dance: the model (eval mode, on `device`), its preset, the
    feature normalisation of its training set (mean, std [F]) and its seed pose [17, 3]."""

    model: torch.nn.Module
    preset: Preset
    mean: np.ndarray
    std: np.ndarray
    seed_pose: np.ndarray
    path: Path
    device: str = "cpu"

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | None = None, state: dict | None = None) -> "Dancer":
        """The checkpoint at `path` (its contents `state` when already read)."""
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        state = checkpoint.read(path) if state is None else state
        model, state = checkpoint.load_model(path, device=device, state=state)
        return cls(model, checkpoint.preset_of(state), state["norm_mean"].numpy(), state["norm_std"].numpy(),
                   state["seed_pose"].numpy(), Path(path), device)

    def normalise(self, feats: np.ndarray) -> np.ndarray:
        """A whole song's raw features [T, F] of the preset's kind -> normalised float32 [T, F]."""
        if feats.shape[1] != self.model.config["in_dim"]:
            raise ValueError(f"{self.path}: model expects {self.model.config['in_dim']} features, "
                             f"{self.preset.features!r} gives {feats.shape[1]}")
        return song_normaliser(self.mean, self.std, self.preset)(feats)

    def dance(self, feats: np.ndarray, first_pose: np.ndarray | None = None, draws: int | None = None) -> np.ndarray:
        """Poses [T, 17, 3] (the model's pose space) to raw features [T, F], from `first_pose`
        (default: the training set's seed pose); with `draws`, that many dances drawn at once
        (one batch: a sampling model's draws differ) [draws, T, 17, 3]."""
        first = self.seed_pose if first_pose is None else np.asarray(first_pose, np.float32)
        first = first if draws is None else np.repeat(first[None], draws, 0)
        poses = generate_poses(self.model, self.normalise(feats), first, window=max(self.preset.seq_len, 2),
                               device=self.device)
        return poses if draws is None else np.ascontiguousarray(poses.transpose(1, 0, 2, 3))


def song_features(path: str | os.PathLike, kind: str, fps: float) -> np.ndarray:
    """Load a song and compute its features [T, F]; ValueError when too short or silent.

    The last few songs' features are kept (keyed by path, size and modification time), so
    dancing one song with many checkpoints decodes it once.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: song not found")
    stat = path.stat()
    return _song_features(str(path), stat.st_size, stat.st_mtime_ns, kind, float(fps)).copy()


@functools.lru_cache(maxsize=8)
def _song_features(path: str, size: int, mtime_ns: int, kind: str, fps: float) -> np.ndarray:
    from .audio import SR, features, load_audio

    y = load_audio(path)
    seconds = len(y) / SR
    if seconds < MIN_SONG_SECONDS:
        raise ValueError(f"{path}: {seconds:.2f} s of audio is too short to dance to "
                         f"(at least {MIN_SONG_SECONDS} s)")
    if float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) < SILENCE_RMS:
        raise ValueError(f"{path}: the audio is silent: nothing to dance to")
    return features(y, SR, fps, kind=kind)


def generate_poses(model, feats: np.ndarray, first_pose: np.ndarray, window: int,
                   device: str = "cpu") -> np.ndarray:
    """Run the model over normalised features [T, F] in windows, from first_pose [17, 3] ->
    poses [T, 17, 3]; from first poses [D, 17, 3] -> D dances at once (one batch) [T, D, 17, 3].

    Each window after the first starts `overlap_for(window)` frames before the end of what is
    written, from the pose written there, and is cross-faded into it over those frames, so the
    dance stays continuous where windows meet. Memory is bounded by one window. A model that
    dances `whole_songs` gets the whole song at once.
    """
    single = np.ndim(first_pose) == 2
    first_pose = np.asarray(first_pose, np.float32)
    first_pose = first_pose[None] if single else first_pose
    D = len(first_pose)
    if getattr(model, "whole_songs", False):
        audio = torch.as_tensor(feats, device=device)[:, None].expand(-1, D, -1)
        out = model.generate(audio, torch.as_tensor(first_pose, device=device)).cpu().numpy()
        return out[:, 0] if single else out
    out = np.empty((len(feats), *first_pose.shape), np.float32)
    overlap = overlap_for(window)
    seed = first_pose
    written = start = 0
    while written < len(feats):
        chunk = torch.as_tensor(feats[start:start + window], device=device)[:, None].expand(-1, D, -1)  # [t, D, F]
        poses = model.generate(chunk, torch.as_tensor(seed, device=device)).cpu().numpy()         # [t, D, 17, 3]
        shared = written - start
        fade = (np.arange(1, shared + 1) / (shared + 1))[:, None, None, None]                    # 0 -> 1
        out[start:written] = (1 - fade) * out[start:written] + fade * poses[:shared]
        out[written:start + len(poses)] = poses[shared:]
        written = start + len(poses)
        start = max(written - overlap, 0)
        seed = out[start]
    return out[:, 0] if single else out


def overlap_for(window: int) -> int:
    """Frames shared by consecutive generation windows: a quarter window, at most 1 s at 24 fps."""
    return max(1, min(window // 4, 24))


def dance_clips(dancer: Dancer, clips: list[ClipData], root_relative: bool = False,
                seed: int = 0, draws: int = 1) -> list[np.ndarray]:
    """The dancer dancing to each clip's song from its first true pose (torch seeded with `seed`
    first, so sampling models repeat their dances); each song danced `draws` times at once, the
    dances one draw after the other, each draw in clip order.

    The features are the dancer's own kind, normalised as in its training, so a run of any
    preset dances to the clips of any split. Returns the dances in the run's pose space, made
    root-relative when `root_relative` (so a travelling dance compares with the paper's).
    """
    from .clips import clip_features

    torch.manual_seed(seed)
    out = []
    for c in clips:
        first = pose_space(c.clip.poses, dancer.preset.root_relative)[0]
        dances = dancer.dance(clip_features(c.clip.path, dancer.preset.features), first, draws)
        out.append([pose_space(d, root_relative) if root_relative else d for d in dances])
    return [song[k] for k in range(draws) for song in out]
