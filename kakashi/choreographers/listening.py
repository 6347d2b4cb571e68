"""What a non-learned choreographer hears of a song: its frames, its beat grid and its loudness.

Both choreographers share this: the song is checked (mono, finite, long enough, not silent),
its beats tracked as heard (kakashi.audio.beat_times), and every pose frame given a beat count b
(kakashi.audio.beat_position: 0 at the first beat of a grid that starts at the song's start,
+1 per beat, linear between beats). T = round(N / sr * fps), the feature frames of
kakashi.audio.features.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..audio import beat_position, beat_times, check_fps, check_signal

MIN_SECONDS = 1.0        # shorter audio is refused, as kakashi.generate refuses it
SILENCE_RMS = 1e-4       # RMS amplitude (full scale 1) of silence, as in kakashi.generate
MIN_BEATS = 4            # fewer tracked beats: no pulse heard, dance on a steady grid instead
STEADY_BPM = 110.0       # tempo of that grid: the middle of the synthetic styles' 80-175 bpm


@dataclass(frozen=True)
class Heard:
    """A song as heard at the pose frames: n_frames T; fps; beats [B] s (tracked, or the
    steady grid); beat count b [T] per frame; tempo in bpm (median beat period); frame
    loudness [T] RMS amplitude (full scale 1) of the samples of each frame."""

    n_frames: int
    fps: float
    beats: np.ndarray
    beat_count: np.ndarray
    bpm: float
    loudness: np.ndarray
    tracked: bool


def check_song(y: np.ndarray, sr: int, fps: float) -> np.ndarray:
    """y as float32 [N]; ValueError naming the problem: shape, NaN, rate, too short, silent."""
    y, _ = check_signal(y, sr), check_fps(fps)
    seconds = len(y) / sr
    if seconds < MIN_SECONDS:
        raise ValueError(f"audio is too short to dance to: {seconds:.2f} s (at least {MIN_SECONDS} s)")
    if np.sqrt(float(np.dot(y, y)) / len(y)) < SILENCE_RMS:
        raise ValueError("audio is silent: nothing to dance to")
    return y


def listen(y: np.ndarray, sr: int, fps: float) -> Heard:
    """Check a song [N] at sr Hz and hear it at `fps` pose frames per second."""
    y = check_song(y, sr, fps)
    n_frames = int(round(len(y) / sr * fps))
    beats = beat_times(y, sr)
    tracked = len(beats) >= MIN_BEATS
    if not tracked:
        beats = np.arange(0.0, len(y) / sr, 60.0 / STEADY_BPM)
    count, tempo = beat_position(beats, fps, n_frames)                 # [T], beats per second
    return Heard(n_frames=n_frames, fps=float(fps), beats=beats, beat_count=count,
                 bpm=60.0 * tempo, loudness=frame_loudness(y, sr, fps, n_frames), tracked=tracked)


def frame_loudness(y: np.ndarray, sr: int, fps: float, n_frames: int) -> np.ndarray:
    """RMS amplitude [T] of the samples nearest each frame (frame k: k / fps +- half a frame)."""
    edges = np.round((np.arange(n_frames + 1) - 0.5) * sr / fps).astype(np.int64)
    edges = np.clip(edges, 0, len(y))
    power = np.add.reduceat(np.square(y, dtype=np.float32), np.minimum(edges[:-1], len(y) - 1))
    power = power.astype(np.float64)
    width = np.diff(edges)
    power = np.where(width > 0, power, 0.0) / np.maximum(width, 1)   # reduceat of an empty range
    return np.sqrt(power)
