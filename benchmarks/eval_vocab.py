"""Whole songs danced by trained runs: does the body hold, and how do the field's metrics read?

    python benchmarks/eval_vocab.py [--runs runs/vocab_motion_vocab_mse runs/best_mdn_lstm_mse]
                                    [--songs 12] [--sheets figures/]

Every run dances each whole validation song of the `quick` synthetic dataset from its first
true pose (seed 0) and prints two tables beside the ground truth: body checks per dance
(share of frames with a knee bent the wrong way, head height over the first and the last
10 s, the lowest ankle's median height, the share of frames with both feet over 10 cm up,
the largest frame-to-frame joint jump at window seams against the 99th percentile elsewhere)
and kakashi.analysis.metric_table's metrics on 5 s windows (speed ratio, beat alignment,
FID_k/FID_g against the validation songs' own dances). With --sheets, a contact sheet of
one validation song and of one real song (../shared/data/music) per run, a pose every few
seconds.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from kakashi import analysis, body, checkpoint
from kakashi.config import RUNS_DIR, SHARED_DATA, get_preset
from kakashi.dataset import load_splits
from kakashi.generate import choreograph, overlap_for
from kakashi.synth import ensure_dataset

WRONG_KNEE_DEG = -5.0   # a knee bent more than this the wrong way counts (near-straight knees are noisy)
HEAD_SECONDS = 10.0     # head height is compared over the first and the last this many seconds
FEET_UP_M = 0.10        # both ankles higher than this above the floor: the dancer floats (or jumps)
SHEET_EVERY_S = 5.0     # contact sheets: one pose every this many seconds
REAL_SONG = "Karissa_Hobbs_-_Lets_Go_Fishin.ogg"


def seam_frames(n: int, window: int) -> np.ndarray:
    """Frame steps (t -> t + 1, indexed by t) inside the cross-faded overlaps of
    kakashi.generate.generate_poses' windows, for a song of n frames."""
    overlap, written, out = overlap_for(window), window, []
    while written < n:
        start = max(written - overlap, 0)
        out.extend(range(max(start - 1, 0), min(written + 1, n - 1)))
        written = start + window
    return np.array(sorted(set(out)), dtype=int)


def body_checks(poses: np.ndarray, fps: float, window: int) -> dict[str, float]:
    """Body numbers of one dance [T, 17, 3] (m, y up, floor at 0)."""
    knees = body.knee_bends(poses)
    n = int(HEAD_SECONDS * fps)
    ankles = poses[:, [3, 6], 1]
    jumps = np.linalg.norm(np.diff(poses, axis=0), axis=-1).max(axis=1)           # [T-1] m per frame
    seams = seam_frames(len(poses), window)
    rest = np.setdiff1d(np.arange(len(jumps)), seams)
    return {"knee_wrong": float((knees < WRONG_KNEE_DEG).any(axis=1).mean()),
            "head_first_m": float(poses[:n, 10, 1].mean()), "head_last_m": float(poses[-n:, 10, 1].mean()),
            "ankle_low_m": float(np.median(ankles.min(axis=1))),
            "feet_up": float((ankles.min(axis=1) > FEET_UP_M).mean()),
            "seam_jump_m": float(jumps[seams].max()) if len(seams) else np.nan,
            "p99_jump_m": float(np.percentile(jumps[rest], 99))}


def sheet(poses: np.ndarray, fps: float, title: str, path: Path) -> None:
    from kakashi.render import plot_poses

    frames = np.arange(0, len(poses), int(SHEET_EVERY_S * fps)).tolist()
    fig = plot_poses(poses, frames=frames, fps=fps, size=200, title=title)
    fig.savefig(path)
    print(f"contact sheet -> {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", nargs="+", default=[str(RUNS_DIR / "vocab_motion_vocab_mse")])
    parser.add_argument("--songs", type=int, default=0, help="validation songs to dance (0: all)")
    parser.add_argument("--sheets", default=None, help="folder for contact sheets (PNG)")
    args = parser.parse_args()
    preset = get_preset("quick", features="rhythm", root_relative=False)
    splits = load_splits(ensure_dataset(preset), preset)
    val = splits.clips["val"][: args.songs or None]
    beats = analysis.song_beats(val)
    truth = [c.clip.poses for c in val]
    dances = {"ground truth": truth}
    windows = {"ground truth": 10 ** 9}
    for run in map(Path, args.runs):
        dances[run.name] = analysis.generate_on(run, val, seed=0)
        windows[run.name] = checkpoint.preset_of(checkpoint.read(run / "best.pt")).seq_len
    checks = pd.DataFrame({name: pd.DataFrame([body_checks(d, preset.fps, windows[name]) for d in ds]).mean()
                           for name, ds in dances.items()}).T
    rows = {name: (ds, beats) for name, ds in dances.items()}
    train = splits.clips["train"][: len(val)]                 # the FID scale: as many train songs
    rows[analysis.TRAIN_TRUTH] = ([c.clip.poses for c in train], analysis.song_beats(train))
    table = analysis.metric_table(rows, truth, beats, preset.fps, progress=False)
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.precision", 3):
        print(f"{len(val)} whole validation songs ({sum(len(t) for t in truth) / preset.fps / 60:.1f} min)")
        print(checks)
        print(table)
    if args.sheets:
        out = Path(args.sheets)
        out.mkdir(parents=True, exist_ok=True)
        for name, ds in dances.items():
            slug = name.replace(" ", "_")
            sheet(ds[0], preset.fps, f"{name}: validation song {val[0].clip.path.name}", out / f"sheet_val_{slug}.png")
        song = SHARED_DATA / "music" / REAL_SONG
        if song.is_file():
            for run in map(Path, args.runs):
                dance = choreograph(song, run / "best.pt", seed=0)
                print(f"{run.name} on {song.name}:", {k: round(v, 3) for k, v in
                                                      body_checks(dance.poses, dance.fps, windows[run.name]).items()})
                sheet(dance.poses, dance.fps, f"{run.name}: {song.stem}", out / f"sheet_real_{run.name}.png")


if __name__ == "__main__":
    main()
