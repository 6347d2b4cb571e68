"""Compare trained runs: their dances on the test songs and on real music, beside baselines.

Dances are compared in the space the model works in (root-relative for the paper's model;
the ground truth is put in the same space), cut into windows of `window_s` seconds so that
the set metrics (FID, diversity) see many samples. Baselines: the ground truth itself, the
training set's mean pose held still, a ground-truth dance of another song, and the mean pose
with 2 cm Gaussian noise per frame.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import checkpoint
from .config import RUNS_DIR
from .dataset import ClipData, Splits, pose_space
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


def generate_on(run_dir: Path, clips: list[ClipData], root_relative: bool = False,
                seed: int = 0) -> list[np.ndarray]:
    """The run's best checkpoint dancing to each clip's song from its first true pose (torch
    seeded with `seed` first, so sampling models repeat their dances).

    The features are the run's own kind, normalised as in its training, so a run of any preset
    dances to the clips of any split. Returns the dances in the run's pose space, made
    root-relative when `root_relative` (so a travelling dance compares with the paper's).
    """
    from .audio import clip_features

    model, state = checkpoint.load_model(Path(run_dir) / "best.pt")
    preset = checkpoint.preset_of(state)
    mean, std = state["norm_mean"].numpy(), state["norm_std"].numpy()
    torch.manual_seed(seed)
    out = []
    for c in clips:
        feats = ((clip_features(c.clip.path, preset.features) - mean) / std).astype(np.float32)
        first = pose_space(c.clip.poses, preset.root_relative)[0]
        dance = generate_poses(model, feats, first, window=preset.seq_len)
        out.append(pose_space(dance, root_relative) if root_relative else dance)
    return out


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
                 reference_beats: list[np.ndarray], fps: float, seconds: float = WINDOW_S,
                 progress: bool | None = None) -> pd.DataFrame:
    """One row per named set of (dances, their songs' beat times), every metric of TABLE_METRICS.

    Dances are cut into `seconds` windows; FID, diversity and the speed ratio are against the
    windows of `reference`.
    """
    ref, _ = windows(reference, reference_beats, fps, seconds)
    table = {}
    for name, (dances, beats) in rows.items():
        cut, cut_beats = windows(dances, beats, fps, seconds)
        values = evaluate_dances(cut, fps, music_beats=cut_beats, reference=ref, progress=progress)
        table[name] = {k: values.get(k, np.nan) for k in TABLE_METRICS}
    return pd.DataFrame(table).T


# target: (metric, how the value must relate to the ground truth's, bound); see `targets`
TARGETS = (
    ("bas_motion", ">= gt x", 1.0), ("bas_music", ">= gt x", 1.0),
    ("speed_ratio", "within", (0.7, 1.3)), ("frozen_share", "<= gt +", 0.05),
    ("jerk", "<= gt x", 1.5), ("fid_k", "<= train x", 1.5), ("fid_g", "<= train x", 1.5),
    ("div_k", ">= gt x", 0.9), ("div_g", ">= gt x", 0.9), ("pfc", "<= gt x", 1.2), ("bone_cv", "<", 0.02),
)
GROUND_TRUTH, TRAIN_TRUTH = "ground truth", "train songs (ground truth)"


def runs_table(runs: dict[str, Path], test: list[ClipData], train: list[ClipData], fps: float,
               seconds: float = WINDOW_S, root_relative: bool = False, seed: int = 0) -> pd.DataFrame:
    """Metric table of runs dancing to the test songs, beside the ground truth of the test songs
    (GROUND_TRUTH) and of the train songs (TRAIN_TRUTH, the FID scale). Global space by default
    (the dancer's travel kept, so PFC and foot skating mean something), or root-relative, where
    the paper's model and the travelling ones compare."""
    beats = song_beats(test)
    truth = lambda clips: [pose_space(c.clip.poses, root_relative) for c in clips]
    rows = {GROUND_TRUTH: (truth(test), beats), TRAIN_TRUTH: (truth(train), song_beats(train))}
    rows.update({name: (generate_on(run, test, root_relative, seed), beats) for name, run in runs.items()})
    return metric_table(rows, rows[GROUND_TRUTH][0], beats, fps, seconds)


def targets(table: pd.DataFrame, row: str, metrics: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Per target of TARGETS: the row's value, its limit, whether it is met, and by how much it
    is missed (`miss`: 0 when met; else the log ratio of value to limit, or for the frozen share
    the excess in units of its 5-point margin).

    Limits come from the table's GROUND_TRUTH row (the test songs' own dances) and, for FID,
    from the TRAIN_TRUTH row (the FID between the ground-truth train and test dances).
    `metrics` picks targets (default all).
    """
    gt, train, v = table.loc[GROUND_TRUTH], table.loc[TRAIN_TRUTH], table.loc[row]
    out = {}
    for metric, how, bound in TARGETS:
        if metrics is not None and metric not in metrics:
            continue
        x = float(v[metric])
        if how == "within":
            limit, miss = f"{bound[0]}-{bound[1]}", max(_excess(bound[0], x), _excess(x, bound[1]))
        elif how == "<":
            limit, miss = bound, _excess(x, bound)
        else:
            ref = float({"gt": gt, "train": train}[how.split()[1]][metric])
            limit = ref + bound if how.endswith("+") else ref * bound
            if how.endswith("+"):
                miss = max(0.0, (x - limit) / bound) if np.isfinite(x) else np.inf
            else:
                miss = _excess(limit, x) if how.startswith(">=") else _excess(x, limit)
        out[metric] = {"value": x, "limit": limit, "met": bool(miss == 0.0), "miss": miss}
    return pd.DataFrame(out).T


def _excess(high: float, low: float) -> float:
    """log(high / low) when high exceeds low, else 0; inf when either is not finite or low <= 0."""
    if not (np.isfinite(high) and np.isfinite(low)):
        return np.inf
    if high <= low:
        return 0.0
    return float(np.log(high / low)) if low > 0 else np.inf


def targets_met(table: pd.DataFrame, rows: list[str], metrics: tuple[str, ...] | None = None) -> pd.DataFrame:
    """One row per table row: which targets it meets (True/False per metric) and how many."""
    met = pd.DataFrame({row: targets(table, row, metrics)["met"] for row in rows}).T.astype(bool)
    met["met"] = met.sum(axis=1)
    return met


SELECT_SECONDS = 30.0   # seconds of each validation song danced when selecting a checkpoint by its dance
SELECT_METRICS = tuple(m for m, _, _ in TARGETS if m != "pfc")  # PFC: the synthetic truth's is ~0


def _check_songs(splits: Splits, fps: float, seconds: float):
    """What dance_check measures on: (frames per song n, the validation songs' beats within
    them, the metric window in seconds: 5 s, shorter for short songs)."""
    n = int(round(seconds * fps))
    val = splits.clips["val"]
    beats = [b[b < n / fps] for b in song_beats(val)]
    if not any(len(b) for b in beats):
        raise ValueError(f"selecting by dance needs music beats in the validation songs' first {seconds:g} s, "
                         "and none were found; select by val_loss instead")
    return n, beats, min(WINDOW_S, min(len(c.poses[:n]) for c in val) / fps)


def dance_truth(splits: Splits, fps: float, seconds: float = SELECT_SECONDS) -> pd.DataFrame:
    """The ground-truth rows dance_check compares a model with (GROUND_TRUTH: the validation
    songs' first `seconds`; TRAIN_TRUTH: the training songs', the FID scale). They do not change
    while a model trains, so a training run measures them once."""
    n, beats, window = _check_songs(splits, fps, seconds)
    train = splits.clips["train"]
    rows = {GROUND_TRUTH: ([c.poses[:n] for c in splits.clips["val"]], beats),
            TRAIN_TRUTH: ([c.poses[:n] for c in train], [b[b < n / fps] for b in song_beats(train)])}
    return metric_table(rows, rows[GROUND_TRUTH][0], beats, fps, window, progress=False)


def dance_check(model, splits: Splits, fps: float, window: int, seed: int = 0,
                seconds: float = SELECT_SECONDS, device: str = "cpu", truth: pd.DataFrame | None = None) -> dict:
    """How well a model dances to the validation songs it never trained on: it dances the first
    `seconds` of each from the first true pose (generation windows of `window` frames, seed
    `seed`; torch's global random state is left as it was), measured against their ground truth
    (`truth`: dance_truth's table, computed when not given) with `targets` (SELECT_METRICS).
    Returns {"met": targets met, "miss": summed misses, "values": {metric: value}} (plain floats)."""
    n, beats, seconds_window = _check_songs(splits, fps, seconds)
    truth = dance_truth(splits, fps, seconds) if truth is None else truth
    val = splits.clips["val"]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        dances = [generate_poses(model, c.features[:n], c.poses[0], window=window, device=device) for c in val]
    row = metric_table({"model": (dances, beats)}, [c.poses[:n] for c in val], beats, fps, seconds_window,
                       progress=False)
    t = targets(pd.concat([truth, row]), "model", SELECT_METRICS)
    return {"met": int(t["met"].sum()), "miss": float(t["miss"].sum()),
            "values": {k: float(v) for k, v in t["value"].items()}}


def song_beats(clips: list[ClipData]) -> list[np.ndarray]:
    """Beat times (s) of each clip's song: meta.json's ground truth, else librosa's tracker
    (kept per song file, so checking a model every epoch tracks each song once)."""
    return [np.asarray(c.clip.meta["beats"]) if "beats" in c.clip.meta
            else _tracked_beats(str(c.clip.audio_path), c.clip.audio_path.stat().st_mtime_ns) for c in clips]


@functools.lru_cache(maxsize=512)
def _tracked_beats(path: str, mtime_ns: int) -> np.ndarray:
    from .audio import SR, beat_times, load_audio

    beats = beat_times(load_audio(path), SR)
    beats.flags.writeable = False
    return beats


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
