"""Compare trained runs: their dances on the test songs and on real music, beside baselines.

Dances are compared in the space the model works in (root-relative for the paper's model;
the ground truth is put in the same space) and scored by kakashi.scoring. Baselines: the
ground truth itself, the training set's mean pose held still, a ground-truth dance of another
song, and the mean pose with 2 cm Gaussian noise per frame.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .dataset import ClipData, Splits, pose_space
from .inference import Dancer, dance_clips
from .metrics import evaluate_dances
from .scoring import GROUND_TRUTH, TRAIN_TRUTH, WINDOW_S, metric_table, song_beats

NOISE_M = 0.02


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


def runs_table(runs: dict[str, Path], test: list[ClipData], train: list[ClipData], fps: float,
               seconds: float = WINDOW_S, root_relative: bool = False, seed: int = 0) -> pd.DataFrame:
    """Metric table of runs dancing to the test songs, beside the ground truth of the test songs
    (GROUND_TRUTH) and of the train songs (TRAIN_TRUTH, the FID scale). Global space by default
    (the dancer's travel kept, so PFC and foot skating mean something), or root-relative, where
    the paper's model and the travelling ones compare."""
    beats = song_beats(test)
    truth = lambda clips: [pose_space(c.clip.poses, root_relative) for c in clips]
    rows = {GROUND_TRUTH: (truth(test), beats), TRAIN_TRUTH: (truth(train), song_beats(train))}
    rows.update({name: (dance_clips(Dancer.load(Path(run) / "best.pt"), test, root_relative, seed), beats)
                 for name, run in runs.items()})
    return metric_table(rows, rows[GROUND_TRUTH][0], beats, fps, seconds)


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
