"""Compare trained runs: their dances on the test songs and on real music, beside baselines.

Dances are compared in the space the model works in (root-relative for the paper's model;
the ground truth is put in the same space), cut into windows of `window_s` seconds so that
the set metrics (FID, diversity) see many samples. Baselines: the ground truth itself, the
training set's mean pose held still, a ground-truth dance of another song, and the mean pose
with 2 cm Gaussian noise per frame.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from . import checkpoint
from .config import RUNS_DIR
from .dataset import ClipData, Splits
from .generate import generate_poses
from .metrics import evaluate_dances

WINDOW_S = 5.0
NOISE_M = 0.02
TABLE_METRICS = ("fid_k", "fid_g", "div_k", "div_g", "bas_motion", "bas_music", "speed_ratio",
                 "speed", "jerk", "frozen_share", "bone_cv", "foot_skating", "pfc")


def completed_runs(preset: str, runs_dir: str | Path = RUNS_DIR) -> dict[str, Path]:
    """Run folders of a preset that finished training, keyed by run name, sorted."""
    from .losses import LOSSES

    runs = {}
    order = {loss: i for i, loss in enumerate(LOSSES)}  # the paper's order of experiments
    paths = sorted(Path(runs_dir).glob("*/history.json"))
    for history_path in sorted(paths, key=lambda p: (order.get(_loss_of(p), len(order)), str(p))):
        run_dir = history_path.parent
        config = json.loads((run_dir / "config.json").read_text()) if (run_dir / "config.json").is_file() else {}
        history = json.loads(history_path.read_text())
        if config.get("name") == preset and history.get("status") == "completed" and (run_dir / "best.pt").is_file():
            runs[run_dir.name] = run_dir
    return runs


def _loss_of(history_path: Path) -> str:
    try:
        return json.loads(history_path.read_text()).get("loss", "")
    except (OSError, ValueError):
        return ""


def histories(runs: dict[str, Path]) -> dict[str, dict]:
    """history.json of each run, keyed by its loss (or run name when two share a loss)."""
    out = {}
    for name, run_dir in runs.items():
        history = json.loads((run_dir / "history.json").read_text())
        out[history["loss"] if history["loss"] not in out else name] = history
    return out


def generate_on(run_dir: Path, clips: list[ClipData]) -> list[np.ndarray]:
    """The run's best checkpoint dancing to each clip's song from its first true pose."""
    model, state = checkpoint.load_model(Path(run_dir) / "best.pt")
    seq_len = checkpoint.preset_of(state).seq_len
    return [generate_poses(model, c.features, c.poses[0], window=seq_len) for c in clips]


def baselines(splits: Splits, clips: list[ClipData], seed: int = 0) -> dict[str, list[np.ndarray]]:
    """Ground truth, the still mean pose, another song's dance, and noise, one dance per clip."""
    rng = np.random.default_rng(seed)
    others = [c.poses for c in splits.clips["train"]]
    out = {"ground truth": [c.poses for c in clips],
           "mean pose": [np.repeat(splits.seed_pose[None], len(c.poses), 0) for c in clips],
           "other song": [], "noise": []}
    for c in clips:
        other = others[rng.integers(len(others))]
        reps = int(np.ceil(len(c.poses) / len(other)))
        out["other song"].append(np.concatenate([other] * reps)[:len(c.poses)])
        out["noise"].append(splits.seed_pose[None] + rng.normal(0, NOISE_M, (len(c.poses), 17, 3)).astype(np.float32))
    return out


def windows(dances: list[np.ndarray], beats: list[np.ndarray], fps: float,
            seconds: float = WINDOW_S) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Cut dances (and their songs' beat times, s) into windows of `seconds`, half overlapping.

    Windows without a music beat (a silent intro or ending) are left out: beat alignment is
    undefined there. Every set of dances to the same songs loses the same windows.
    """
    n = int(round(seconds * fps))
    cut, cut_beats = [], []
    for dance, b in zip(dances, beats):
        b = np.asarray(b)
        for start in range(0, len(dance) - n + 1, max(n // 2, 1)):
            t0 = start / fps
            inside = b[(b >= t0) & (b < t0 + (n - 1) / fps)] - t0
            if len(inside):
                cut.append(dance[start:start + n])
                cut_beats.append(inside)
    return cut, cut_beats


def metric_table(rows: dict[str, tuple[list[np.ndarray], list[np.ndarray]]], reference: list[np.ndarray],
                 reference_beats: list[np.ndarray], fps: float, seconds: float = WINDOW_S) -> pd.DataFrame:
    """One row per named set of (dances, their songs' beat times), every metric of TABLE_METRICS.

    Dances are cut into `seconds` windows; FID, diversity and the speed ratio are against the
    windows of `reference`.
    """
    ref, _ = windows(reference, reference_beats, fps, seconds)
    table = {}
    for name, (dances, beats) in rows.items():
        cut, cut_beats = windows(dances, beats, fps, seconds)
        values = evaluate_dances(cut, fps, music_beats=cut_beats, reference=ref)
        table[name] = {k: values.get(k, np.nan) for k in TABLE_METRICS}
    return pd.DataFrame(table).T


def song_beats(clips: list[ClipData]) -> list[np.ndarray]:
    """Beat times (s) of each clip's song: meta.json's ground truth, else librosa's tracker."""
    from .audio import SR, beat_times, load_audio

    return [np.asarray(c.clip.meta["beats"]) if "beats" in c.clip.meta
            else beat_times(load_audio(c.clip.audio_path), SR) for c in clips]


def real_music_table(runs: dict[str, Path], songs: list[Path]) -> pd.DataFrame:
    """Per run, BAS / speed / jerk / frozen share / PFC over whole real songs (means over songs)."""
    from .audio import SR, beat_times, load_audio
    from .generate import choreograph

    beats = [beat_times(load_audio(s), SR) for s in songs]
    table = {}
    for name, run_dir in runs.items():
        dances = [choreograph(s, run_dir / "best.pt") for s in songs]
        values = evaluate_dances([d.poses for d in dances], dances[0].fps, music_beats=beats,
                                 metrics=("bas_motion", "bas_music", "speed", "jerk", "frozen_share", "pfc"))
        table[name] = values
    return pd.DataFrame(table).T


def real_songs(folder: str | Path) -> list[Path]:
    """The songs of a folder of music (.ogg/.mp3/.wav/.flac), one encoding per song (no .hq copies)."""
    songs = [p for p in sorted(Path(folder).iterdir())
             if p.suffix.lower() in (".ogg", ".mp3", ".wav", ".flac") and ".hq." not in p.name]
    if not songs:
        raise FileNotFoundError(f"{folder}: no music files")
    return songs
