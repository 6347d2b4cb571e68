"""Audio augmentation for training: the same song made louder or quieter, brighter or darker,
noisier, roomier, faster or slower, so that a model hears more than the synthetic studio.

Pure functions of (samples [N] float32 mono, sr Hz) and, for the tempo stretch, of the dance
(poses [T, 17, 3] m at fps) too: music and dance stretch together, so moves stay on beats.
The stretch resamples (scipy.signal.resample_poly by a rational factor): the pitch moves with
the tempo, as on a turntable; keeping the pitch is not needed for a dancer's timing.
`augment_song` draws a chain of them from a generator; kakashi.dataset applies it to training
clips only (Preset.augment copies per clip, cached beside the clip's clean features).
"""
from __future__ import annotations

import json
import os
import warnings
import zlib
from fractions import Fraction

import numpy as np
import scipy.signal

from .fileio import atomic_path, write_npz

GAIN_DB = (-9.0, 6.0)          # drawn gain range, dB (the synthetic mix peaks at 0.89)
SHELF_DB = (-9.0, 9.0)         # drawn low/high shelf gains, dB
LOW_SHELF_HZ, HIGH_SHELF_HZ = 200.0, 4000.0  # shelf corner frequencies: below the bass / above the vocals
SNR_DB = (10.0, 35.0)          # drawn signal-to-noise ratio of the added noise, dB
RT60_S = (0.3, 1.8)            # drawn reverberation time (60 dB decay), s: a room to a hall
WET = (0.1, 0.5)               # drawn share of reverberant sound in the mix
STRETCH = (0.85, 1.18)         # drawn duration factor of the tempo stretch (1.18 = 15 % slower)
STRETCH_DENOMINATOR = 64       # the stretch is rounded to a fraction p / q with q <= this
PROBABILITY = 0.6              # each augmentation of the chain is applied with this probability
SHELF_Q = 1 / np.sqrt(2)       # shelf slope (RBJ cookbook S = 1 equivalent)
AUGMENT_VERSION = "1"          # stored with every cached copy; bump when the chain above changes
CACHE_DIR = "augment"          # cached copies, under a clip's features/ folder


def _check(y: np.ndarray, sr: float) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"samples must be mono [N], got shape {y.shape}")
    if sr <= 0:
        raise ValueError(f"sample rate must be positive, got {sr}")
    return y


def rms(y: np.ndarray) -> float:
    """Root mean square of samples [N]."""
    return float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))


def gain(y: np.ndarray, db: float) -> np.ndarray:
    """y [N] scaled by `db` decibels (RMS x 10 ** (db / 20)): [N] float32. May exceed +-1."""
    return (_check(y, 1) * 10.0 ** (db / 20.0)).astype(np.float32)


def _shelf(sr: float, hz: float, db: float, high: bool) -> tuple[np.ndarray, np.ndarray]:
    """Biquad shelf (b, a) of the RBJ Audio EQ Cookbook: `db` above (high) or below `hz`."""
    a_lin = 10.0 ** (db / 40.0)
    w0 = 2 * np.pi * hz / sr
    alpha = np.sin(w0) / (2 * SHELF_Q)
    c, k = np.cos(w0), 2 * np.sqrt(a_lin) * alpha
    s = -1.0 if high else 1.0              # the cookbook's low and high shelves differ by these signs
    b = a_lin * np.array([(a_lin + 1) - s * (a_lin - 1) * c + k,
                          2 * s * ((a_lin - 1) - s * (a_lin + 1) * c),
                          (a_lin + 1) - s * (a_lin - 1) * c - k])
    a = np.array([(a_lin + 1) + s * (a_lin - 1) * c + k,
                  -2 * s * ((a_lin - 1) + s * (a_lin + 1) * c),
                  (a_lin + 1) + s * (a_lin - 1) * c - k])
    return b / a[0], a / a[0]


def shelf_eq(y: np.ndarray, sr: float, low_db: float = 0.0, high_db: float = 0.0,
             low_hz: float = LOW_SHELF_HZ, high_hz: float = HIGH_SHELF_HZ) -> np.ndarray:
    """y [N] through a low shelf (`low_db` below low_hz) and a high shelf (`high_db` above high_hz)."""
    out = _check(y, sr).astype(np.float64)
    for hz, db, high in ((low_hz, low_db, False), (high_hz, high_db, True)):
        if db:
            if not 0 < hz < sr / 2:
                raise ValueError(f"shelf frequency must lie in (0, {sr / 2}) Hz, got {hz}")
            out = scipy.signal.lfilter(*_shelf(sr, hz, db, high), out)
    return out.astype(np.float32)


def add_noise(y: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """y [N] plus white Gaussian noise scaled to exactly `snr_db` (signal power / noise power, dB)."""
    y = _check(y, 1)
    noise = rng.standard_normal(len(y))
    scale = rms(y) / max(rms(noise), 1e-12) * 10.0 ** (-snr_db / 20.0)
    return (y + scale * noise).astype(np.float32)


def reverb(y: np.ndarray, sr: float, rt60: float, wet: float, rng: np.random.Generator) -> np.ndarray:
    """y [N] in a room: convolved with exponentially decaying noise (60 dB down after `rt60` s),
    mixed `wet` : 1 - wet with the dry sound at equal RMS; same length and RMS as y."""
    y = _check(y, sr)
    if rt60 <= 0 or not 0 <= wet <= 1:
        raise ValueError(f"reverb needs rt60 > 0 s and 0 <= wet <= 1, got {rt60}, {wet}")
    t = np.arange(int(rt60 * sr)) / sr
    impulse = rng.standard_normal(len(t)) * np.exp(-np.log(1000.0) * t / rt60)   # -60 dB at rt60
    tail = scipy.signal.fftconvolve(y.astype(np.float64), impulse)[:len(y)]
    tail *= rms(y) / max(rms(tail), 1e-12)
    out = (1 - wet) * y + wet * tail
    return (out * rms(y) / max(rms(out), 1e-12)).astype(np.float32)


def stretch_ratio(factor: float) -> Fraction:
    """The duration factor as the fraction (<= STRETCH_DENOMINATOR below) that the stretch uses."""
    if not 0.25 <= factor <= 4.0:
        raise ValueError(f"tempo stretch factor must lie in [0.25, 4], got {factor}")
    return Fraction(factor).limit_denominator(STRETCH_DENOMINATOR)


def tempo_stretch(y: np.ndarray, sr: float, poses: np.ndarray, fps: float,
                  factor: float) -> tuple[np.ndarray, np.ndarray]:
    """Music and dance `factor` times longer (factor > 1: slower), together.

    y [N] at sr -> [ceil(N * f)]: resampled by f = stretch_ratio(factor) and played at sr, so a
    beat at t s moves to t * f s (pitch moves by 1 / f). poses [T, 17, 3] at fps ->
    [round(T * f), 17, 3]: frame k shows the pose at k / f frames, linearly interpolated.
    """
    y = _check(y, sr)
    poses = np.asarray(poses)
    if poses.ndim != 3 or poses.shape[-1] != 3:
        raise ValueError(f"poses must be [T, J, 3], got shape {poses.shape}")
    ratio = stretch_ratio(factor)
    music = scipy.signal.resample_poly(y.astype(np.float64), ratio.numerator, ratio.denominator)
    n_frames = int(round(len(poses) * float(ratio)))
    src = np.minimum(np.arange(n_frames) / float(ratio), len(poses) - 1)   # source frame of each frame
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, len(poses) - 1)
    w = (src - lo)[:, None, None]
    dance = poses[lo] * (1 - w) + poses[hi] * w                                # [T', J, 3]
    return music.astype(np.float32), dance.astype(poses.dtype)


def augment_song(y: np.ndarray, sr: float, poses: np.ndarray, fps: float,
                 rng: np.random.Generator, probability: float = PROBABILITY):
    """A random chain (each step with `probability`): tempo stretch, shelf EQ, reverb, noise, gain.

    Returns (samples [N'], poses [T', 17, 3], what was applied as {name: parameters}).
    """
    applied = {}
    draw = lambda: rng.random() < probability  # noqa: E731
    if draw():
        factor = float(stretch_ratio(rng.uniform(*STRETCH)))
        y, poses = tempo_stretch(y, sr, poses, fps, factor)
        applied["stretch"] = factor
    if draw():
        low, high = rng.uniform(*SHELF_DB), rng.uniform(*SHELF_DB)
        y = shelf_eq(y, sr, low, high)
        applied["eq"] = (float(low), float(high))
    if draw():
        rt60, wet = rng.uniform(*RT60_S), rng.uniform(*WET)
        y = reverb(y, sr, rt60, wet, rng)
        applied["reverb"] = (float(rt60), float(wet))
    if draw():
        snr = rng.uniform(*SNR_DB)
        y = add_noise(y, snr, rng)
        applied["noise"] = float(snr)
    if draw():
        db = rng.uniform(*GAIN_DB)
        y = gain(y, db)
        applied["gain"] = float(db)
    return np.asarray(y, np.float32), np.asarray(poses), applied


def augmented_copy(y: np.ndarray, sr: float, poses: np.ndarray, fps: float, kind: str, seed: int,
                   name: str = "", index: int = 0) -> tuple[np.ndarray, np.ndarray, dict]:
    """The index-th augmented version of one training clip: (features [T', F] computed by
    kakashi.audio.features exactly as for clean audio, poses [T', 17, 3], what was applied).

    Deterministic from (seed, name, index), each copy drawn on its own: the same clip gets the
    same copies in every run, whatever the number of copies asked for.
    """
    from .audio import features

    rng = np.random.default_rng([seed, zlib.crc32(name.encode()), index])
    samples, dance, applied = augment_song(y, sr, poses, fps, rng)
    return features(samples, int(sr), fps, kind, n_frames=len(dance)), dance, applied


def augmented_copies(y: np.ndarray, sr: float, poses: np.ndarray, fps: float, kind: str, copies: int,
                     seed: int, name: str = "") -> list[tuple[np.ndarray, np.ndarray, dict]]:
    """Copies 0 .. copies - 1 of `augmented_copy`."""
    if copies < 0:
        raise ValueError(f"number of augmented copies must be >= 0, got {copies}")
    return [augmented_copy(y, sr, poses, fps, kind, seed, name, k) for k in range(copies)]


def clip_copies(clip, kind: str, copies: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """`augmented_copy` 0 .. copies - 1 of a clip (kakashi.clips.Clip): (features, poses) each,
    cached as <clip>/features/augment/<kind>_s<seed>_<k>.npz, stamped like the clean features'
    cache (FEATURE_VERSION, AUGMENT_VERSION, fps, sizes and times of audio.wav and clip.npz)."""
    from .audio import FEATURE_VERSION, load_audio
    from .clips import FEATURES_DIR, POSES, SR

    if copies < 0:
        raise ValueError(f"number of augmented copies must be >= 0, got {copies}")
    sources = [os.stat(clip.audio_path), os.stat(clip.path / POSES)]
    stamp = json.dumps({"feature_version": FEATURE_VERSION, "augment_version": AUGMENT_VERSION, "kind": kind,
                        "fps": clip.fps, "seed": seed, "sources": [(s.st_size, s.st_mtime_ns) for s in sources]})
    out, y = [], None
    for k in range(copies):
        path = clip.path / FEATURES_DIR / CACHE_DIR / f"{kind}_s{seed}_{k}.npz"
        cached = _read_copy(path, stamp)
        if cached is None:
            y = load_audio(clip.audio_path, SR) if y is None else y
            feats, poses, _ = augmented_copy(y, SR, clip.poses, clip.fps, kind, seed, clip.clip_id, k)
            cached = (feats, poses.astype(np.float32))
            try:
                with atomic_path(path) as tmp:
                    write_npz(tmp, features=feats, poses=cached[1], stamp=np.array(stamp))
            except OSError as e:       # a read-only dataset or a full disk: the copy is still right
                warnings.warn(f"{clip.path}: augmented copy not cached ({e})", stacklevel=2)
        out.append(cached)
    return out


def _read_copy(path, stamp: str) -> tuple[np.ndarray, np.ndarray] | None:
    """A cached copy (features, poses) when its stamp matches, else None."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["stamp"]) != stamp:
                return None
            feats, poses = data["features"], data["poses"]
    except (OSError, ValueError, KeyError):
        return None
    if len(feats) != len(poses) or not (np.isfinite(feats).all() and np.isfinite(poses).all()):
        return None
    return feats, poses
