"""From clips on disk to training windows: index, splits, windows, normalisation, DataLoaders.

Windows are `seq_len` frames long and start every `stride` frames; when the last regular
window stops short of the clip's end, one more window is aligned to the end, so every frame
of every clip long enough is covered. Clips shorter than `seq_len` are left out (and listed).
Splits are by clip (DESIGN.md); the paper's leaky split by window is `split_by="window"`.
With `Preset.augment` = K > 0 each training clip also gets K augmented copies (kakashi.augment:
its music and dance changed together) whose windows join the training windows only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .audio import level_columns
from .clips import Clip, list_clips, read_clip
from . import skeleton
from .config import Preset

SPLITS = ("train", "val", "test")


def index(dataset: str | Path) -> list[dict]:
    """One row per clip: id, frames, fps, seconds, and the style/tempo when meta.json has them."""
    rows = []
    for path in list_clips(dataset):
        clip = read_clip(path)
        rows.append({"clip_id": clip.clip_id, "frames": clip.num_frames, "fps": clip.fps,
                     "seconds": round(clip.seconds, 3), "style": clip.meta.get("style"),
                     "tempo": clip.meta.get("tempo"), "source": clip.meta.get("source")})
    return rows


def split_counts(n: int, fractions: tuple[float, float, float]) -> tuple[int, int, int]:
    """Clips per split: rounded fractions, at least one each in val and test when n >= 3."""
    n_val = max(int(round(n * fractions[1])), 1 if n >= 3 else 0)
    n_test = max(int(round(n * fractions[2])), 1 if n >= 3 else 0)
    return n - n_val - n_test, n_val, n_test


def split_items(items: list, fractions=(0.7, 0.2, 0.1), seed: int = 0) -> dict[str, list]:
    """Shuffle items with `seed` and cut them into train/val/test by `fractions`."""
    if abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) < 0:
        raise ValueError(f"split fractions must be >= 0 and sum to 1, got {fractions}")
    order = np.random.default_rng(seed).permutation(len(items))
    n_train, n_val, _ = split_counts(len(items), fractions)
    cuts = {"train": order[:n_train], "val": order[n_train:n_train + n_val],
            "test": order[n_train + n_val:]}
    return {name: [items[i] for i in sorted(idx)] for name, idx in cuts.items()}


def preset_split(items: list, preset: Preset) -> dict[str, list]:
    """Items cut into train/val/test as the preset splits them: by `split` and `split_seed`,
    never by the run's training `seed`, so runs of every seed hold out the same songs."""
    return split_items(items, preset.split, preset.split_seed)


def window_starts(n_frames: int, seq_len: int, stride: int) -> list[int]:
    """Start frames of the windows of one clip (see module docstring); [] when n_frames < seq_len."""
    if seq_len < 2 or stride < 1:
        raise ValueError(f"seq_len must be >= 2 and stride >= 1, got {seq_len}, {stride}")
    if n_frames < seq_len:
        return []
    starts = list(range(0, n_frames - seq_len + 1, stride))
    if starts[-1] + seq_len < n_frames:
        starts.append(n_frames - seq_len)
    return starts


@dataclass
class Normaliser:
    """Per-dimension z-score of audio features, fitted on the training split only. The
    `centred` columns of a song are first moved so that their mean over the song is the training
    mean (the song's own level and timbre taken out, its changes kept); `scaled`, their spread
    over the song is also made the training spread (how much the song's own level and timbre
    change taken out too: each song's centred columns leave with mean 0 and std 1)."""

    mean: np.ndarray
    std: np.ndarray
    centred: tuple[int, ...] = ()
    scaled: bool = False

    @classmethod
    def fit(cls, features: list[np.ndarray]) -> "Normaliser":
        stacked = np.concatenate(features, axis=0).astype(np.float64)  # [sum T, F]
        return cls(mean=stacked.mean(0).astype(np.float32),
                   std=np.maximum(stacked.std(0), 1e-6).astype(np.float32))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """A whole song's features [T, F] -> normalised float32 [T, F]."""
        if self.centred:
            cols = list(self.centred)
            x = np.array(x, dtype=np.float64)
            if self.scaled:
                x[:, cols] *= self.std[cols] / np.maximum(x[:, cols].std(0), 1e-6)
            x[:, cols] += self.mean[cols] - x[:, cols].mean(0)
        return ((x - self.mean) / self.std).astype(np.float32)


@dataclass
class ClipData:
    """A clip in memory: normalised features [T, F] and model-space poses [T, 17, 3]."""

    clip: Clip
    features: np.ndarray
    poses: np.ndarray


def pose_space(poses: np.ndarray, root_relative: bool) -> np.ndarray:
    """Poses as the model sees them: root-relative (the paper) or global, [T, 17, 3] float32."""
    return np.ascontiguousarray(skeleton.root_relative(poses) if root_relative else poses, dtype=np.float32)


def seed_pose(dances: list[np.ndarray]) -> np.ndarray:
    """The pose [17, 3] a dance starts from when nothing gives one: of all frames of `dances`
    (each [T, 17, 3], model space), the one whose pose about the hip is nearest the mean one,
    its hip moved over the mean hip's floor point. A real frame, so a real body: the mean pose
    itself is not one (averaging moving limbs shortens them; the upper arms by a quarter)."""
    poses = np.concatenate(dances)
    about_hip = skeleton.root_relative(poses)
    nearest = np.linalg.norm(about_hip - about_hip.mean(0), axis=-1).mean(1).argmin()
    hip = poses[:, skeleton.ROOT].mean(0)
    hip[skeleton.UP] = poses[nearest, skeleton.ROOT, skeleton.UP]
    return (about_hip[nearest] + hip).astype(np.float32)


class WindowDataset(Dataset):
    """Windows (clip index, start) over in-memory clips; items are (audio [T, F], poses [T, 17, 3])."""

    def __init__(self, clips: list[ClipData], windows: list[tuple[int, int]], seq_len: int):
        self.clips, self.windows, self.seq_len = clips, windows, seq_len

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int):
        c, start = self.windows[i]
        stop = start + self.seq_len
        data = self.clips[c]
        return torch.from_numpy(data.features[start:stop]), torch.from_numpy(data.poses[start:stop])


def collate_time_major(batch):
    """[(audio [T, F], poses [T, 17, 3])] * B -> audio [T, B, F], poses [T, B, 17, 3]."""
    audio = torch.stack([a for a, _ in batch], dim=1)  # [T, B, F]
    poses = torch.stack([p for _, p in batch], dim=1)  # [T, B, 17, 3]
    return audio, poses


@dataclass
class Splits:
    """Everything training and evaluation need from a dataset for one preset."""

    clips: dict[str, list[ClipData]]
    windows: dict[str, list[tuple[int, int]]]
    normaliser: Normaliser
    seed_pose: np.ndarray                     # [17, 3] a training pose (`seed_pose`), model space
    feature_dim: int
    skipped: list[str] = field(default_factory=list)  # clips shorter than seq_len
    augmented: list[ClipData] = field(default_factory=list)  # copies of training clips; windows
                                                             # ["train"] index them after clips["train"]

    def dataset(self, split: str, seq_len: int) -> WindowDataset:
        clips = self.clips[split] + self.augmented if split == "train" else self.clips[split]
        return WindowDataset(clips, self.windows[split], seq_len)


def load_splits(dataset: str | Path, preset: Preset) -> Splits:
    """Read a dataset, split it as the preset says, compute features and fit the normaliser."""
    from .clips import clip_features

    paths = list_clips(dataset)
    if len(paths) < 3:
        raise ValueError(f"{dataset}: needs at least 3 clips for train/val/test, found {len(paths)}")
    loaded = []
    skipped = []
    for path in paths:
        clip = read_clip(path)
        if clip.num_frames < preset.seq_len:
            skipped.append(clip.clip_id)
            continue
        if abs(clip.fps - preset.fps) > 1e-6:
            raise ValueError(f"{path}: clip is at {clip.fps} fps but the preset expects {preset.fps}")
        loaded.append((clip, clip_features(path, preset.features)))
    if len(loaded) < 3:
        raise ValueError(f"{dataset}: fewer than 3 clips reach {preset.seq_len} frames")

    if preset.split_by == "clip":
        parts = preset_split(list(range(len(loaded))), preset)
        members = {s: [loaded[i] for i in parts[s]] for s in SPLITS}
        windows = {s: [(c, w) for c, (clip, _) in enumerate(members[s])
                       for w in window_starts(clip.num_frames, preset.seq_len, preset.stride)]
                   for s in SPLITS}
    elif preset.split_by == "window":  # the paper's leaky split: one song in several splits
        members = {s: loaded for s in SPLITS}
        every = [(c, w) for c, (clip, _) in enumerate(loaded)
                 for w in window_starts(clip.num_frames, preset.seq_len, preset.stride)]
        windows = preset_split(every, preset)
    else:
        raise ValueError(f"unknown split_by {preset.split_by!r}; choose 'clip' or 'window'")

    norm = Normaliser.fit([f for _, f in members["train"]])
    if preset.scale_songs:   # the training songs heard as every song danced to is
        norm = song_normaliser(norm.mean, norm.std, preset)
    clips = {s: [ClipData(clip, norm(f), pose_space(clip.poses, preset.root_relative))
                 for clip, f in members[s]] for s in SPLITS}
    augmented = _augmented(clips["train"], preset, norm) if preset.augment else []
    windows["train"] += [(len(clips["train"]) + c, w) for c, data in enumerate(augmented)
                         for w in window_starts(len(data.poses), preset.seq_len, preset.stride)]
    return Splits(clips=clips, windows=windows, normaliser=norm,
                  seed_pose=seed_pose([c.poses for c in clips["train"]]),
                  feature_dim=loaded[0][1].shape[1], skipped=skipped, augmented=augmented)


def centred_columns(preset: Preset) -> tuple[int, ...]:
    """The feature columns a song is centred on when the preset's model dances to it
    (Normaliser.centred): the level columns (kakashi.audio.level_columns) when
    preset.centre_songs or preset.scale_songs, else none."""
    wanted = preset.centre_songs or preset.scale_songs
    return tuple(int(c) for c in level_columns(preset.features)) if wanted else ()


def song_normaliser(mean: np.ndarray, std: np.ndarray, preset: Preset) -> Normaliser:
    """How the preset's model hears a song it dances to, given the training statistics mean and
    std [F]: its level columns centred (`centre_songs`) or centred and scaled (`scale_songs`)."""
    return Normaliser(mean, std, centred_columns(preset), preset.scale_songs)


def _augmented(train: list[ClipData], preset: Preset, norm: Normaliser) -> list[ClipData]:
    """preset.augment augmented copies of each training clip (never of validation or test clips),
    normalised with the clean training statistics."""
    from .augment import clip_copies

    if preset.split_by != "clip":
        raise ValueError(f"augment needs split_by='clip' (with {preset.split_by!r} a song's windows "
                         "sit in several splits, so its copies would leak into validation)")
    out = []
    for data in train:
        copies = clip_copies(data.clip, preset.features, preset.augment, preset.seed)
        out += [ClipData(data.clip, norm(f), pose_space(p, preset.root_relative)) for f, p in copies]
    return out


def make_loader(splits: Splits, split: str, preset: Preset, shuffle: bool, seed: int = 0,
                rank: int = 0, world: int = 1) -> DataLoader:
    """A DataLoader of time-major batches; shuffling is seeded so runs repeat exactly.

    With world > 1 (distributed training) process `rank` gets every world-th window of the
    order a single process would visit, so step k of `world` processes with batch b sees the
    windows of step k of one process with batch world x b. The loader draws from its own
    generator, never torch's global one, so each process consumes the random numbers a single
    process does (teacher forcing, dropout).
    """
    data = splits.dataset(split, preset.seq_len)
    generator = torch.Generator().manual_seed(seed)
    if world > 1:
        order = visiting_order(len(data), seed) if shuffle else list(range(len(data)))
        order += order[:-len(order) % world]                   # whole rounds, as DistributedSampler pads
        return DataLoader(data, batch_size=preset.batch_size, sampler=order[rank::world], generator=generator,
                          collate_fn=collate_time_major)
    return DataLoader(data, batch_size=preset.batch_size, shuffle=shuffle, generator=generator,
                      collate_fn=collate_time_major)


def visiting_order(n: int, seed: int) -> list[int]:
    """The order in which a single-process shuffled loader seeded with `seed` visits n items."""
    loader = DataLoader(range(n), batch_size=None, shuffle=True, generator=torch.Generator().manual_seed(seed))
    return [int(i) for i in loader]
