"""Music in, one feature row per pose frame out.

`load_audio` reads any audio or video file a user has (soundfile first, ffmpeg for the rest)
as float32 mono at 22 050 Hz. `features` turns it into [T, F] float32 with exactly one row per
pose frame at any fps; row k describes the audio centred at k / fps seconds.

Kinds (FEATURE_DIMS):
- `mfcc` (20): librosa's MFCCs (the paper's input), computed on frames centred exactly on the
  pose frame times, so that no drift builds up when sr / fps is not an integer.
- `rich` (35): the AI Choreographer / AIST++ layout (RICH_COLUMNS): onset envelope, 20 MFCC,
  12 chroma, onset-peak one-hot, beat one-hot. The chroma is librosa's CENS recipe (L1 norm,
  4-step quantisation, ~1 s Hann smoothing, L2 norm) applied to STFT chroma instead of CQT
  chroma: librosa's `chroma_cens` costs ~2 s per 158 s song on its own, the STFT is shared.
- `rhythm` (44): `rich` plus where each frame sits among the beats (RHYTHM_COLUMNS): sin and
  cos of 2 pi b / P for periods P of 1, 2, 4 and 8 beats, b being the frame's beat count
  (`beat_position`), and the tempo in beats per second. The one-hot beat column marks a beat
  only on its own frame; the phase says at every frame how far the next one is, which is what
  a dancer times a move by.

Everything comes from at most two STFTs (n_fft 2048): one centred on the pose frames (MFCC,
chroma) and one on librosa's default 512-sample grid (onset envelope, onset peaks, beats).
"""
from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
from pathlib import Path

import librosa
import numpy as np
import scipy.fft
import scipy.ndimage
import scipy.signal
import soundfile as sf
from tqdm.auto import tqdm

SR = 22050                  # Hz: the sample rate every song is decoded at (and every clip's audio.wav)
MIN_SECONDS = 0.25          # shortest audio accepted by load_audio
N_FFT = 2048                # STFT window (samples), librosa's default
HOP = 512                   # onset / beat grid (samples), librosa's default: ~43 fps at 22 050 Hz
# librosa's tracked beats fall one onset hop (512 samples, 23 ms) after the beats as heard: the
# median offset on each of 20 songs of the synthetic dataset (whose beats are known) is exactly
# +HOP / SR. `beat_times` takes it off; the features' beat columns (and so the beat phase a model
# hears) keep it.
BEAT_LAG_S = HOP / SR       # s
N_MELS = 128
N_MFCC = 20
N_CHROMA = 12
TOP_DB = 80.0               # dynamic range kept by the log-mel spectrogram (librosa's power_to_db)
AMIN = 1e-10                # power floor before the log: silence stays finite
CENS_SMOOTH_SECONDS = 41 * HOP / SR   # librosa's CENS smoothing window (41 frames of 512) ~0.95 s
CENS_STEPS = (0.4, 0.2, 0.1, 0.05)    # librosa's CENS quantisation thresholds (weight 1/4 each)
BLOCK_FRAMES = 2048         # STFT frames per block: bounds memory on a 10-minute song

BEAT_PERIODS = (1, 2, 4, 8)  # beats per cycle of the `rhythm` phase columns
N_RICH = 1 + N_MFCC + N_CHROMA + 1 + 1
FEATURE_DIMS = {"mfcc": N_MFCC, "rich": N_RICH, "rhythm": N_RICH + 2 * len(BEAT_PERIODS) + 1}
RICH_COLUMNS = {
    "onset": slice(0, 1),
    "mfcc": slice(1, 1 + N_MFCC),
    "chroma": slice(1 + N_MFCC, 1 + N_MFCC + N_CHROMA),
    "onset_peak": slice(1 + N_MFCC + N_CHROMA, 2 + N_MFCC + N_CHROMA),
    "beat": slice(2 + N_MFCC + N_CHROMA, 3 + N_MFCC + N_CHROMA),
}
RHYTHM_COLUMNS = {**RICH_COLUMNS,
                  "phase": slice(N_RICH, N_RICH + 2 * len(BEAT_PERIODS)),
                  "tempo": slice(N_RICH + 2 * len(BEAT_PERIODS), N_RICH + 2 * len(BEAT_PERIODS) + 1)}


def level_columns(kind: str) -> np.ndarray:
    """Columns of features of `kind` that carry a recording's overall loudness and timbre as
    well as the music's changes (onset strength, MFCC), not where the beats are."""
    if kind not in FEATURE_DIMS:
        raise ValueError(f"unknown feature kind {kind!r}; choose one of {sorted(FEATURE_DIMS)}")
    if kind == "mfcc":
        return np.arange(N_MFCC)
    return np.arange(RICH_COLUMNS["onset"].start, RICH_COLUMNS["mfcc"].stop)


FEATURE_VERSION = "1"       # stored with every cached feature file (kakashi.clips); bump when features change

_OGG_MAX_PAGE = 27 + 255 + 255 * 255     # largest possible Ogg page, bytes


# ----------------------------------------------------------------------------------------------
# loading

def load_audio(path: str | os.PathLike, sr: int = SR) -> np.ndarray:
    """Any audio or video file -> float32 mono [N] at `sr` Hz.

    soundfile reads what it can (wav, flac, ogg, mp3, ...), chosen by content, not extension;
    anything else (m4a, webm, mp4, avi, mkv, ...) is decoded by ffmpeg, which also downmixes
    and resamples it. soundfile's output is averaged over channels and resampled with soxr.
    Raises FileNotFoundError / ValueError whose message starts with the path: missing, empty,
    not audio, truncated Ogg, no audio stream, shorter than MIN_SECONDS, non-finite samples.
    """
    path = Path(path)
    if not isinstance(sr, (int, np.integer)) or sr <= 0:
        raise ValueError(f"{path}: sample rate must be a positive integer, got {sr!r}")
    if not path.exists():
        raise FileNotFoundError(f"{path}: file not found")
    if not path.is_file():
        raise ValueError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: empty file (0 bytes)")
    _check_ogg_complete(path)
    decoded = _read_soundfile(path)
    if decoded is None:
        y, native_sr = _read_ffmpeg(path, sr), sr
    else:
        y, native_sr = decoded
    seconds = len(y) / native_sr
    if seconds < MIN_SECONDS:
        raise ValueError(f"{path}: audio is {seconds:.3f} s long; at least {MIN_SECONDS} s is needed")
    if not np.isfinite(y).all():
        raise ValueError(f"{path}: audio contains NaN or infinite samples")
    if native_sr != sr:
        y = librosa.resample(y, orig_sr=native_sr, target_sr=sr, res_type="soxr_hq")
    return np.ascontiguousarray(y, dtype=np.float32)


@contextlib.contextmanager
def _quiet_c_stderr():
    """Silence what C libraries print on file descriptor 2 (libmpg123's resync notes on
    files that are not mp3), so the user sees only our one-line error."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to silence
        yield
        return
    with open(os.devnull, "wb") as null:
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


# A file may decode to this much less than its header announces before it counts as truncated:
# about one MPEG audio frame (1152 samples, 0.026-0.072 s at 16-44.1 kHz), the decoder's slack.
TRUNCATION_SLACK_S = 0.1


def _read_soundfile(path: Path) -> tuple[np.ndarray, int] | None:
    """(mono float32 [N], rate) through libsndfile, read in blocks; None if it cannot open it.

    Only the samples actually decoded are kept: libsndfile takes an mp3's length from its
    header, and its block reader pads a truncated file to that length with stale data. A file
    that decodes to less than its header announces is reported as truncated.
    """
    try:
        with _quiet_c_stderr():
            f = sf.SoundFile(path)
    except (sf.LibsndfileError, RuntimeError, TypeError):
        return None
    blocks = []
    try:
        with f, _quiet_c_stderr():
            native_sr, announced = f.samplerate, f.frames
            while True:
                block = f.read(1 << 20, dtype="float32", always_2d=True)   # [n, C], n = decoded
                if not len(block):
                    break
                blocks.append(block.mean(axis=1, dtype=np.float32))   # [n, C] -> [n]
    except (sf.LibsndfileError, RuntimeError) as e:
        raise ValueError(f"{path}: corrupt audio data ({e})") from None
    decoded = sum(len(b) for b in blocks)
    if 0 < announced < 2**62 and announced - decoded > TRUNCATION_SLACK_S * native_sr:
        raise ValueError(f"{path}: truncated audio file: {decoded / native_sr:.2f} s decoded of the "
                         f"{announced / native_sr:.2f} s its header announces")
    y = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
    return y, native_sr


def _read_ffmpeg(path: Path, sr: int) -> np.ndarray:
    """First audio stream of any file ffmpeg reads -> float32 mono [N] at `sr`."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise ValueError(f"{path}: not a format soundfile reads, and ffmpeg (needed for it) is not installed")
    cmd = [exe, "-nostdin", "-hide_banner", "-v", "error", "-i", f"file:{path.resolve()}",
           "-map", "0:a:0", "-vn", "-sn", "-dn", "-ac", "1", "-ar", str(sr),
           "-f", "f32le", "-acodec", "pcm_f32le", "pipe:1"]
    proc = subprocess.run(cmd, capture_output=True)
    err = proc.stderr.decode(errors="replace").strip()
    if proc.returncode != 0:
        if "matches no streams" in err:
            raise ValueError(f"{path}: no audio stream in this file")
        last = err.splitlines()[-1] if err else f"ffmpeg exit code {proc.returncode}"
        last = last.replace(f"file:{path.resolve()}", "").lstrip(": ")
        raise ValueError(f"{path}: not a readable audio or video file ({last})")
    return np.frombuffer(proc.stdout, dtype="<f4").astype(np.float32)


def _check_ogg_complete(path: Path) -> None:
    """ValueError when an Ogg file does not end with a whole end-of-stream page (truncated).

    libsndfile decodes a cut Ogg file up to the cut without complaint; a complete stream ends
    with a page whose header-type flag has the end-of-stream bit (0x04).
    """
    with open(path, "rb") as f:
        if f.read(4) != b"OggS":
            return
        size = f.seek(0, os.SEEK_END)
        start = max(0, size - _OGG_MAX_PAGE)
        f.seek(start)
        tail = f.read()
    pos = tail.rfind(b"OggS")
    while pos >= 0:                       # from the end: the last complete page must end the stream
        page = tail[pos:]
        if len(page) >= 27 and len(page) >= 27 + page[26]:
            n_seg = page[26]
            if 27 + n_seg + sum(page[27:27 + n_seg]) <= len(page):
                if page[5] & 0x04:
                    return
                break
        pos = tail.rfind(b"OggS", 0, pos)
    raise ValueError(f"{path}: truncated or corrupt Ogg file (it does not end with a complete "
                     f"end-of-stream page)")


# ----------------------------------------------------------------------------------------------
# spectra

@functools.lru_cache(maxsize=8)
def _filters(sr: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Hann window [N_FFT], mel filters [N_FFT//2+1, N_MELS], chroma filters [N_FFT//2+1, 12])."""
    window = scipy.signal.get_window("hann", N_FFT, fftbins=True).astype(np.float32)
    mel = librosa.filters.mel(sr=sr, n_fft=N_FFT, n_mels=N_MELS).T.astype(np.float32)
    chroma = librosa.filters.chroma(sr=sr, n_fft=N_FFT, n_chroma=N_CHROMA).T.astype(np.float32)
    return window, np.ascontiguousarray(mel), np.ascontiguousarray(chroma)


def _spectra(y: np.ndarray, sr: int, centres: np.ndarray, chroma: bool = False):
    """Mel power [T, N_MELS] (and raw STFT chroma [T, 12]) of Hann frames centred on `centres`.

    y: [N] float32; centres: [T] int sample indices in [0, N]. The signal is zero-padded by
    N_FFT // 2 on both sides, as librosa's centred STFT does.
    """
    window, mel_fb, chroma_fb = _filters(sr)
    ypad = np.pad(y, N_FFT // 2)
    windows = np.lib.stride_tricks.sliding_window_view(ypad, N_FFT)   # [N+1, N_FFT], a view
    mel = np.empty((len(centres), N_MELS), np.float32)
    chr_ = np.empty((len(centres), N_CHROMA), np.float32) if chroma else None
    starts = range(0, len(centres), BLOCK_FRAMES)
    bar = {} if len(starts) >= 32 else {"disable": True}   # a bar only for very long songs
    for s in tqdm(starts, desc="audio features", unit="block", leave=False, **bar):
        c = centres[s:s + BLOCK_FRAMES]
        frames = windows[c] * window                          # [b, N_FFT]
        spec = scipy.fft.rfft(frames, axis=-1)               # [b, N_FFT//2+1] complex64
        power = spec.real ** 2 + spec.imag ** 2              # [b, N_FFT//2+1]
        mel[s:s + len(c)] = power @ mel_fb
        if chroma:
            chr_[s:s + len(c)] = power @ chroma_fb
    return (mel, chr_) if chroma else mel


def _power_to_db(power: np.ndarray) -> np.ndarray:
    """librosa.power_to_db(power, ref=1, amin=AMIN, top_db=TOP_DB): finite for silence."""
    db = 10.0 * np.log10(np.maximum(power, AMIN))
    if db.size:
        db = np.maximum(db, db.max() - TOP_DB)
    return db.astype(np.float32)


def _mfcc(mel_power: np.ndarray) -> np.ndarray:
    """[T, N_MELS] mel power -> [T, N_MFCC] MFCC (DCT-II, orthonormal), as librosa.feature.mfcc."""
    return scipy.fft.dct(_power_to_db(mel_power), type=2, norm="ortho", axis=-1)[:, :N_MFCC]


def _cens(chroma: np.ndarray, fps: float) -> np.ndarray:
    """[T, 12] raw chroma energy -> CENS chroma [T, 12] (unit L2 rows; silent rows stay 0)."""
    l1 = chroma.sum(axis=1, keepdims=True)
    chroma = np.divide(chroma, l1, out=np.zeros_like(chroma), where=l1 > 0)
    quant = sum((chroma > step).astype(np.float32) for step in CENS_STEPS) / len(CENS_STEPS)
    win_len = max(1, int(round(CENS_SMOOTH_SECONDS * fps)))
    win = scipy.signal.get_window("hann", win_len + 2, fftbins=False)[1:-1]
    smooth = scipy.ndimage.convolve1d(quant, (win / win.sum()).astype(np.float32), axis=0,
                                      mode="constant")
    l2 = np.linalg.norm(smooth, axis=1, keepdims=True)
    return np.divide(smooth, l2, out=np.zeros_like(smooth), where=l2 > 1e-8)


# ----------------------------------------------------------------------------------------------
# onsets and beats (librosa's 512-sample grid)

def _fine_onset(y: np.ndarray, sr: int) -> np.ndarray:
    """Onset strength [n] on the HOP grid (frame j at j * HOP samples), = librosa's onset_strength.

    Spectral flux of the log-mel spectrogram, rectified, averaged over bands, and delayed by
    N_FFT // 2 samples as librosa does, so that a peak marks when the new sound starts.
    """
    n = 1 + len(y) // HOP
    db = _power_to_db(_spectra(y, sr, np.arange(n) * HOP))          # [n, N_MELS]
    flux = np.maximum(0.0, db[1:] - db[:-1]).mean(axis=1)            # [n-1]
    delay = 1 + N_FFT // (2 * HOP)
    env = np.zeros(n, np.float32)
    env[delay:] = flux[:max(0, n - delay)]
    return env


def _beats_from_onset(env: np.ndarray, sr: int) -> np.ndarray:
    """Beat times in seconds [B] from a HOP-grid onset envelope (librosa's beat tracker)."""
    if len(env) < 2 or not np.any(env > 0):
        return np.zeros(0)
    _, beats = librosa.beat.beat_track(onset_envelope=env, sr=sr, hop_length=HOP, units="time")
    return np.asarray(beats, dtype=np.float64)


def _peaks_from_onset(env: np.ndarray, sr: int) -> np.ndarray:
    """Onset-peak times in seconds [P] from a HOP-grid onset envelope (librosa's peak picker)."""
    if len(env) < 2 or not np.any(env > 0):
        return np.zeros(0)
    peaks = librosa.onset.onset_detect(onset_envelope=env, sr=sr, hop_length=HOP, units="time")
    return np.asarray(peaks, dtype=np.float64)


def beat_times(y: np.ndarray, sr: int = SR) -> np.ndarray:
    """Beat times in seconds [B] as heard: librosa's beat tracker less its lag (BEAT_LAG_S at SR,
    HOP / sr at another rate); empty for silence. y: [N] mono at sr. (The features' beat columns
    keep the tracker's own times.)"""
    y = check_signal(y, sr)
    beats = _beats_from_onset(_fine_onset(y, sr), sr) - HOP / sr
    return beats[beats >= 0]


def beat_frames(times: np.ndarray, fps: float, n_frames: int) -> np.ndarray:
    """Indices [B'] of the frames nearest to event `times` (seconds), unique, within [0, n_frames)."""
    times = np.asarray(times, dtype=np.float64).reshape(-1)
    idx = np.unique(np.round(times * fps).astype(np.int64))
    return idx[(idx >= 0) & (idx < n_frames)]


def beat_position(beats: np.ndarray, fps: float, n_frames: int) -> tuple[np.ndarray, float]:
    """(b [n_frames], tempo): the beat count b of every frame (0 at the first beat of a grid
    that starts at the song's start, +1 per beat, linear between beats) and the median tempo
    in beats per second, from beat times (s). Before the first and after the last beat the
    count runs on at the median period; a beat tracker that misses the first beats of a song
    still counts from the song's start. Fewer than two beats: b = 0 and tempo 0."""
    beats = np.sort(np.asarray(beats, dtype=np.float64).reshape(-1))
    t = np.arange(n_frames) / fps
    if len(beats) < 2:
        return np.zeros(n_frames), 0.0
    period = float(np.median(np.diff(beats)))
    count = np.arange(len(beats)) + np.round(beats[0] / period)      # beats before the first one heard
    b = np.interp(t, beats, count)
    b = np.where(t < beats[0], count[0] + (t - beats[0]) / period, b)
    b = np.where(t > beats[-1], count[-1] + (t - beats[-1]) / period, b)
    return b, 1.0 / period


def beat_phase(beats: np.ndarray, fps: float, n_frames: int) -> np.ndarray:
    """The `rhythm` columns after `rich` [n_frames, 2 len(BEAT_PERIODS) + 1]: sin and cos of
    2 pi b / P per period P (beats) and the tempo (beats per second), b from `beat_position`."""
    b, tempo = beat_position(beats, fps, n_frames)
    angles = 2 * np.pi * b[:, None] / np.asarray(BEAT_PERIODS, dtype=np.float64)[None]  # [T, P]
    phase = np.stack([np.sin(angles), np.cos(angles)], axis=-1).reshape(n_frames, -1)
    return np.concatenate([phase, np.full((n_frames, 1), tempo)], axis=1).astype(np.float32)


def _one_hot(times: np.ndarray, fps: float, n_frames: int) -> np.ndarray:
    col = np.zeros(n_frames, np.float32)
    col[beat_frames(times, fps, n_frames)] = 1.0
    return col


def _pool_to_frames(env: np.ndarray, sr: int, fps: float, n_frames: int) -> np.ndarray:
    """HOP-grid envelope [n] -> [n_frames]: max over the grid points nearest each frame.

    Frames that no grid point falls on (fps above ~43) take the linear interpolation.
    """
    t_grid = np.arange(len(env)) * HOP / sr
    out = np.interp(np.arange(n_frames) / fps, t_grid, env).astype(np.float32)
    nearest = np.round(t_grid * fps).astype(np.int64)
    keep = nearest < n_frames
    pooled = np.full(n_frames, -np.inf, np.float32)
    np.maximum.at(pooled, nearest[keep], env[keep])
    return np.where(np.isfinite(pooled), pooled, out)


def onset_envelope(y: np.ndarray, sr: int, fps: float, n_frames: int | None = None) -> np.ndarray:
    """Onset strength at the pose frames [T] float32 (>= 0; 0 for silence). y: [N] mono at sr."""
    y = check_signal(y, sr)
    n_frames = _n_frames(len(y), sr, fps, n_frames)
    return _pool_to_frames(_fine_onset(y, sr), sr, fps, n_frames)


# ----------------------------------------------------------------------------------------------
# features

def features(y: np.ndarray, sr: int, fps: float, kind: str = "mfcc",
             n_frames: int | None = None) -> np.ndarray:
    """Audio features [T, FEATURE_DIMS[kind]] float32, one row per pose frame.

    y: [N] mono samples at sr Hz; fps: pose frame rate. T = n_frames when given, else
    round(N / sr * fps). Row k describes the audio centred at k / fps seconds; rows past the
    end of the audio repeat the last row (one-hot columns are 0 there).
    """
    if kind not in FEATURE_DIMS:
        raise ValueError(f"unknown feature kind {kind!r}; choose one of {sorted(FEATURE_DIMS)}")
    y = check_signal(y, sr)
    fps = check_fps(fps)
    n_frames = _n_frames(len(y), sr, fps, n_frames)
    if n_frames == 0:
        return np.zeros((0, FEATURE_DIMS[kind]), np.float32)
    if len(y) == 0:
        raise ValueError(f"cannot compute {n_frames} feature frames from an empty signal")
    # rows whose centre lies within the audio are computed (at least the natural T, so that a
    # trimmed result is the start of the full one); later rows repeat the last one
    natural = _n_frames(len(y), sr, fps, None)
    n_inside = min(max(n_frames, natural), int(np.floor(len(y) * fps / sr + 1e-9)) + 1)
    centres = np.minimum(np.round(np.arange(n_inside) * (sr / fps)).astype(np.int64), len(y))
    if kind == "mfcc":
        out = _mfcc(_spectra(y, sr, centres))                        # [T', 20]
        return _pad_rows(out, n_frames)
    mel, chroma = _spectra(y, sr, centres, chroma=True)              # [T', 128], [T', 12]
    env = _fine_onset(y, sr)                                         # [n] on the HOP grid
    out = np.zeros((n_frames, FEATURE_DIMS[kind]), np.float32)
    beats = _beats_from_onset(env, sr)
    out[:, RICH_COLUMNS["onset"]] = _pool_to_frames(env, sr, fps, n_frames)[:, None]
    out[:, RICH_COLUMNS["mfcc"]] = _pad_rows(_mfcc(mel), n_frames)
    out[:, RICH_COLUMNS["chroma"]] = _pad_rows(_cens(chroma, fps), n_frames)
    out[:, RICH_COLUMNS["onset_peak"]] = _one_hot(_peaks_from_onset(env, sr), fps, n_frames)[:, None]
    out[:, RICH_COLUMNS["beat"]] = _one_hot(beats, fps, n_frames)[:, None]
    if kind == "rhythm":
        out[:, N_RICH:] = beat_phase(beats, fps, n_frames)
    return out


def _pad_rows(x: np.ndarray, n: int) -> np.ndarray:
    """[T', F] -> [n, F]: trim, or repeat the last row."""
    if len(x) >= n:
        return np.ascontiguousarray(x[:n], dtype=np.float32)
    return np.pad(x, ((0, n - len(x)), (0, 0)), mode="edge").astype(np.float32)


def check_signal(y, sr) -> np.ndarray:
    """Mono samples y as float32 [N]; ValueError on a bad sample rate, shape or NaN/inf."""
    if not isinstance(sr, (int, np.integer)) or sr <= 0:
        raise ValueError(f"sample rate must be a positive integer, got {sr!r}")
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"audio must be a mono signal [N], got shape {y.shape}")
    if not np.isfinite(y).all():
        raise ValueError("audio contains NaN or infinite samples")
    return y


def check_fps(fps) -> float:
    """fps as a float; ValueError unless a positive finite number."""
    fps = float(fps)
    if not np.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    return fps


def _n_frames(n_samples: int, sr: int, fps: float, n_frames: int | None) -> int:
    if n_frames is None:
        return int(round(n_samples / sr * fps))
    if int(n_frames) != n_frames or n_frames < 0:
        raise ValueError(f"n_frames must be a non-negative integer, got {n_frames!r}")
    return int(n_frames)
