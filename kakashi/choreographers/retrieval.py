"""`retrieval`: a motion graph of a dataset's dance segments, ChoreoMaster's idea simply done.

Library (built once per dataset and split, kept in memory): every clip is cut into segments
of SEGMENT_BEATS beats, one starting at each beat; a segment carries the mean of its music
features (the onset strength and MFCC columns of kakashi.audio's `rich` features, z-scored
over its own clip, so that loud and quiet mean loud and quiet within the song, and its
tempo) and its pose where it starts and where it ends (root-relative, turned to the dancer's
own heading, with joint velocities).

A song is cut the same way into stretches of SEGMENT_BEATS beats of its tracked grid. For
each stretch the CANDIDATES segments nearest in music are kept; a Viterbi pass picks one per
stretch, minimising music distance + transition cost (end pose of one against start pose of
the next; zero where the next simply continues the same clip). Each chosen segment is
time-warped beat to beat onto its stretch and the pieces are cross-faded over FADE_S at the
seams in a root-relative space: the body relative to the hip turned to the running heading,
the hip height, and the hip's horizontal travel per frame, integrated afterwards so nothing
jumps. Deterministic per seed: the seed adds a little noise to the music distances.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio import RICH_COLUMNS, SR, beat_position, beat_times, features, load_audio, onset_envelope
from ..clips import clip_features, list_clips, read_clip
from ..dataset import SPLITS, preset_split
from .listening import Heard, listen

SEGMENT_BEATS = 4        # one 4/4 bar: a segment runs from a beat to the beat 4 later
FADE_S = 0.25            # s: cross-fade at each seam (6 frames at 24 fps)
CANDIDATES = 64          # segments kept per stretch of the song, the nearest in music
# The library's cached kakashi.audio features, whose onset and MFCC columns are compared (the
# song's are computed alone: the same numbers without a second beat tracking).
FEATURE_KIND = "rich"
MUSIC_COLUMNS = np.r_[RICH_COLUMNS["onset"], RICH_COLUMNS["mfcc"]]
TEMPO_WEIGHT = 3.0       # weight of the segment's log tempo (z-scored) against one feature column
VELOCITY_S = 0.1         # s: joint velocities (m/s) enter the pose descriptor times this (-> m)
REPEAT_COST = 1.0        # extra cost (in median transition costs) of a segment following itself
MIN_TEMPO_STD = 0.05     # log bpm: a library at one tempo still tells 5 % apart from 50 %
SEED_NOISE = 0.1         # std of the seed's noise on music costs, in median music costs
SCALE_PAIRS = 4096       # random segment pairs whose median sets the cost scales
LEFT_HIP, RIGHT_HIP = 4, 1


@dataclass(frozen=True)
class ClipMotion:
    """One library clip: body [T, 17, 3] relative to the hip (m); root [T, 3] (m); heading [T]
    rad (unwrapped yaw, 0 facing +z); beat count [T] per frame; fps."""

    body: np.ndarray
    root: np.ndarray
    heading: np.ndarray
    beat_count: np.ndarray
    fps: float

    def frame_at(self, beats: np.ndarray) -> np.ndarray:
        """Fractional frame index [n] of beat positions [n] (clamped to the clip)."""
        return np.interp(beats, self.beat_count, np.arange(len(self.beat_count), dtype=np.float64))

    def sample(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(body [n, 17, 3], root [n, 3], heading [n]) at fractional frames [n], linearly interpolated."""
        f = np.clip(frames, 0, len(self.body) - 1)
        i = np.minimum(np.floor(f).astype(np.int64), len(self.body) - 2)
        w = f - i                                                         # [n] in [0, 1]
        return (_lerp(self.body, i, w[:, None, None]), _lerp(self.root, i, w[:, None]),
                _lerp(self.heading, i, w))


@dataclass(frozen=True)
class Library:
    """Segments of a dataset split: clip [M] index, start [M] beat; music [M, D] descriptors;
    entry, exit [M, E] pose descriptors; tempo_mean, tempo_std of log bpm over the segments;
    music_scale, move_scale: median costs of random pairs."""

    clips: tuple[ClipMotion, ...]
    clip: np.ndarray
    start: np.ndarray
    music: np.ndarray
    entry: np.ndarray
    exit: np.ndarray
    tempo_mean: float
    tempo_std: float
    music_scale: float
    move_scale: float


def dance(y: np.ndarray, sr: int, fps: float, seed: int = 0, dataset: str | os.PathLike | None = None,
          split: str = "train", heard: Heard | None = None) -> np.ndarray:
    """Poses [T, 17, 3] (metres, y up, global) for the song y [N] (mono at sr Hz) at `fps`,
    stitched from the segments of `dataset` (default: the embedded synthetic dataset of the
    preset in $KAKASHI_PRESET) in `split` (train | val | test | all). `heard`: listen(y, sr,
    fps), when already heard."""
    heard = heard if heard is not None else listen(y, sr, fps)
    library = load_library(dataset, split)
    feats = song_music(y, sr, heard)
    stretch, starts = stretches(heard)
    music = _describe_music(feats, heard.beat_count, stretch, len(starts), fps, library)
    chosen = choose(library, music, np.random.default_rng(seed))
    return stitch(library, chosen, heard, stretch, starts)


# ----------------------------------------------------------------------------------------------
# the library

def load_library(dataset: str | os.PathLike | None = None, split: str = "train") -> Library:
    """The library of a dataset split, built on first use and kept (rebuilt when a clip changes)."""
    if split not in (*SPLITS, "all"):
        raise ValueError(f"unknown split {split!r}; choose one of {[*SPLITS, 'all']}")
    if dataset is None:
        from ..config import get_preset
        from ..sources import preset_dataset

        dataset = preset_dataset(get_preset())
    paths = list_clips(dataset)
    stamp = tuple((p.name, (p / "clip.npz").stat().st_mtime_ns, (p / "audio.wav").stat().st_mtime_ns)
                  for p in paths)
    return _build_library(str(Path(dataset).resolve()), split, stamp)


@functools.lru_cache(maxsize=4)
def _build_library(dataset: str, split: str, stamp: tuple) -> Library:
    from ..config import get_preset

    preset = get_preset()
    clips = [read_clip(Path(dataset) / name) for name, _, _ in stamp]
    clips = [c for c in clips if c.num_frames >= max(preset.seq_len, 2)]   # as kakashi.dataset keeps them
    if split != "all":
        if len(clips) < 3:
            raise ValueError(f"{dataset}: needs at least 3 clips to split, found {len(clips)}")
        clips = preset_split(clips, preset)[split]
    motions, feats, rows = [], [], []
    for clip in clips:                 # beats: known (synthetic clips' meta.json), else tracked
        beats = np.asarray(clip.meta["beats"], float) if clip.meta.get("beats") else beat_times(
            load_audio(clip.audio_path, SR), SR)
        if len(beats) < 2:
            continue
        count, _ = beat_position(beats, clip.fps, clip.num_frames)
        motion = _clip_motion(clip.poses, count, clip.fps)
        first, last = int(np.ceil(count[0])), int(np.floor(count[-1])) - SEGMENT_BEATS
        for b in range(first, last + 1):
            rows.append((len(motions), b))
        motions.append(motion)
        feats.append(clip_features(clip.path, FEATURE_KIND)[:, MUSIC_COLUMNS])
    if not rows:
        raise ValueError(f"{dataset}: no clip in split {split!r} has a whole {SEGMENT_BEATS}-beat segment")
    clip_idx = np.array([r[0] for r in rows])
    start = np.array([r[1] for r in rows], float)
    music, tempo = [], []
    for c, motion in enumerate(motions):
        mine = clip_idx == c
        m, t = _segment_music(standardise(feats[c]), motion.beat_count, start[mine], motion.fps)
        music.append(m)
        tempo.append(t)
    music, tempo = np.concatenate(music), np.concatenate(tempo)
    tempo_mean, tempo_std = float(tempo.mean()), max(float(tempo.std()), MIN_TEMPO_STD)
    music = np.concatenate([music, TEMPO_WEIGHT * ((tempo - tempo_mean) / tempo_std)[:, None]], 1)
    entry = np.concatenate([_pose_descriptor(m, m.frame_at(start[clip_idx == c])) for c, m in enumerate(motions)])
    exit_ = np.concatenate([_pose_descriptor(m, m.frame_at(start[clip_idx == c] + SEGMENT_BEATS))
                            for c, m in enumerate(motions)])
    rng = np.random.default_rng(0)
    a, b = rng.integers(len(start), size=(2, SCALE_PAIRS))
    music_scale = float(np.median(np.mean((music[a] - music[b]) ** 2, 1))) or 1.0
    move_scale = float(np.median(np.sum((exit_[a] - entry[b]) ** 2, 1))) or 1.0
    return Library(clips=tuple(motions), clip=clip_idx, start=start, music=music.astype(np.float32),
                   entry=entry.astype(np.float32), exit=exit_.astype(np.float32),
                   tempo_mean=tempo_mean, tempo_std=tempo_std, music_scale=music_scale,
                   move_scale=move_scale)


def heading(poses: np.ndarray) -> np.ndarray:
    """Yaw [T] rad (unwrapped; 0 = facing +z) of poses [T, 17, 3] from the right -> left hip."""
    left = poses[:, LEFT_HIP] - poses[:, RIGHT_HIP]                       # [T, 3]
    return np.unwrap(np.arctan2(-left[:, 2], left[:, 0]))


def turn(x: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """Rotate points x [..., 3] about the vertical by yaw (scalar or broadcastable to x[..., 0])."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.stack([c * x[..., 0] + s * x[..., 2], x[..., 1], -s * x[..., 0] + c * x[..., 2]], -1)


def _clip_motion(poses: np.ndarray, count: np.ndarray, fps: float) -> ClipMotion:
    poses = poses.astype(np.float64)
    root = poses[:, 0].copy()
    return ClipMotion(body=poses - root[:, None], root=root, heading=heading(poses),
                      beat_count=count, fps=float(fps))


def _pose_descriptor(motion: ClipMotion, frames: np.ndarray) -> np.ndarray:
    """[n, 17*3*2 + 1] per fractional frame: the body turned to its own heading, its velocity
    (times VELOCITY_S) and the hip height."""
    dt = 0.5                                                              # frames each side
    body, root, yaw = motion.sample(frames)
    before, _, _ = motion.sample(frames - dt)
    after, _, _ = motion.sample(frames + dt)
    vel = (after - before) * motion.fps / (2 * dt)                       # [n, 17, 3] m/s
    own = turn(body, -yaw[:, None])
    vel = turn(vel, -yaw[:, None]) * VELOCITY_S
    return np.concatenate([own.reshape(len(frames), -1), vel.reshape(len(frames), -1), root[:, 1:2]], 1)


def _segment_music(feats: np.ndarray, count: np.ndarray, starts: np.ndarray, fps: float):
    """(mean features [n, F] over each segment's frames, log bpm [n]) of segments starting at beats [n]."""
    cum = np.concatenate([np.zeros((1, feats.shape[1])), np.cumsum(feats, 0)])   # [T+1, F]
    idx = np.arange(len(count), dtype=np.float64)
    f0 = np.ceil(np.interp(starts, count, idx)).astype(np.int64)
    f1 = np.maximum(np.ceil(np.interp(starts + SEGMENT_BEATS, count, idx)).astype(np.int64), f0 + 1)
    f1 = np.minimum(f1, len(count))
    f0 = np.minimum(f0, f1 - 1)
    mean = (cum[f1] - cum[f0]) / (f1 - f0)[:, None]
    seconds = (np.interp(starts + SEGMENT_BEATS, count, idx) - np.interp(starts, count, idx)) / fps
    return mean, np.log(60.0 * SEGMENT_BEATS / np.maximum(seconds, 1e-3))


# ----------------------------------------------------------------------------------------------
# a song

def stretches(heard: Heard) -> tuple[np.ndarray, np.ndarray]:
    """(stretch index [T] of every frame, first beat [S] of each stretch) on the song's beat grid."""
    first = np.floor(heard.beat_count[0])
    stretch = np.floor((heard.beat_count - first) / SEGMENT_BEATS).astype(np.int64)   # [T]
    return stretch, first + SEGMENT_BEATS * np.arange(stretch[-1] + 1)


def song_music(y: np.ndarray, sr: int, heard: Heard) -> np.ndarray:
    """The song's MUSIC_COLUMNS [T, 21]: onset strength and MFCC at the pose frames."""
    onset = onset_envelope(y, sr, heard.fps, heard.n_frames)[:, None]    # [T, 1]
    return np.concatenate([onset, features(y, sr, heard.fps, "mfcc", n_frames=heard.n_frames)], 1)


def _describe_music(feats: np.ndarray, count: np.ndarray, stretch: np.ndarray, n: int, fps: float,
                    library: Library) -> np.ndarray:
    """Music descriptors [S, D] of the song's stretches, as the library's segments are described."""
    z = standardise(feats)                                               # [T, F]
    frames = np.bincount(stretch, None, n)
    mean = np.stack([np.bincount(stretch, z[:, d], n) for d in range(z.shape[1])], 1) / frames[:, None]
    rate = np.gradient(count) * fps if len(count) > 1 else np.ones(1)    # beats per second [T]
    bpm = 60.0 * np.bincount(stretch, rate, n) / frames
    tempo = (np.log(np.maximum(bpm, 1e-3)) - library.tempo_mean) / library.tempo_std
    return np.concatenate([mean, TEMPO_WEIGHT * tempo[:, None]], 1)


def choose(library: Library, music: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Segment index [S] per stretch: Viterbi over the CANDIDATES nearest in music."""
    lib = library.music.astype(np.float64)
    k = min(CANDIDATES, len(lib))
    cost = (np.sum(music ** 2, 1)[:, None] + np.sum(lib ** 2, 1)[None] - 2 * music @ lib.T)  # [S, M]
    cost = np.maximum(cost, 0.0) / (music.shape[1] * library.music_scale)
    cand = np.argpartition(cost, k - 1, axis=1)[:, :k] if k < len(lib) else np.tile(np.arange(k), (len(music), 1))
    cand = np.sort(cand, axis=1)                                          # [S, K] deterministic order
    node = np.take_along_axis(cost, cand, 1) + SEED_NOISE * rng.standard_normal(cand.shape)
    total, back = node[0], np.zeros(cand.shape, np.int64)
    for s in range(1, len(cand)):
        a, b = library.exit[cand[s - 1]].astype(np.float64), library.entry[cand[s]].astype(np.float64)
        move = np.maximum(np.sum(a ** 2, 1)[:, None] + np.sum(b ** 2, 1)[None] - 2 * a @ b.T, 0.0)
        move = move / library.move_scale + REPEAT_COST * (cand[s - 1][:, None] == cand[s][None])  # [K, K]
        step = total[:, None] + move
        back[s] = np.argmin(step, 0)
        total = step[back[s], np.arange(k)] + node[s]
    path = np.zeros(len(cand), np.int64)
    path[-1] = int(np.argmin(total))
    for s in range(len(cand) - 1, 0, -1):
        path[s - 1] = back[s, path[s]]
    return cand[np.arange(len(cand)), path]


def stitch(library: Library, chosen: np.ndarray, heard: Heard, stretch: np.ndarray,
           starts: np.ndarray) -> np.ndarray:
    """Poses [T, 17, 3]: the chosen segments warped onto their stretches and cross-faded."""
    n = heard.n_frames
    half = max(1, int(round(FADE_S * heard.fps / 2)))                     # frames each side of a seam
    body, height, travel = np.zeros((n, 17, 3)), np.zeros(n), np.zeros((n, 3))
    weight = np.zeros(n)
    bounds = np.searchsorted(stretch, np.arange(len(starts) + 1))         # first frame of each stretch
    facing = 0.0
    for s, seg in enumerate(chosen):
        motion, begin = library.clips[library.clip[seg]], library.start[seg]
        lo, hi = max(bounds[s] - half, 0), min(bounds[s + 1] + half, n)
        frames = np.arange(lo - 1, hi)                                    # one before, for travel
        src = motion.frame_at(begin + heard.beat_count[np.clip(frames, 0, n - 1)] - starts[s])
        if lo == 0:
            src[0] = src[1]
        b, root, _ = motion.sample(src)
        yaw0 = motion.sample(motion.frame_at(np.array([begin])))[2][0]
        yaw1 = motion.sample(motion.frame_at(np.array([begin + SEGMENT_BEATS])))[2][0]
        rot = facing - yaw0
        w = np.ones(hi - lo)
        t = np.arange(lo, hi) + 0.5                                        # frame centres, seams at bounds
        if s > 0:
            w *= _smoothstep((t - bounds[s] + half) / (2 * half))
        if s < len(chosen) - 1:
            w *= 1 - _smoothstep((t - bounds[s + 1] + half) / (2 * half))
        body[lo:hi] += w[:, None, None] * turn(b[1:], rot)
        height[lo:hi] += w * root[1:, 1]
        travel[lo:hi] += w[:, None] * turn(np.diff(root, axis=0), rot)
        weight[lo:hi] += w
        facing += yaw1 - yaw0
    weight = np.maximum(weight, 1e-9)
    body /= weight[:, None, None]
    root = np.cumsum(travel / weight[:, None], axis=0)
    root[:, 1] = height / weight
    return (body + root[:, None]).astype(np.float32)


def standardise(feats: np.ndarray) -> np.ndarray:
    """Features [T, F] z-scored over their own song: loud and quiet, bright and dull, relative
    to the rest of the song, whatever its mastering and instruments."""
    return (feats - feats.mean(0)) / np.maximum(feats.std(0), 1e-6)


def _lerp(x: np.ndarray, i: np.ndarray, w: np.ndarray) -> np.ndarray:
    """x[i] + w (x[i + 1] - x[i]): rows of x [T, ...] between frames i [n] and i + 1."""
    return (1 - w) * x[i] + w * x[i + 1]


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)
