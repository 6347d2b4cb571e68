"""Dancing to unheard music: the target table for trained runs against the ground truth.

    python benchmarks/bench_beyond.py --run best=runs/best_mdn --run paper=runs/quick_mse [--real]

Each run's best checkpoint dances to the held-out test songs of its own preset's dataset split,
from each song's first true pose (seed 0); the dances are compared, in 5 s windows, with the
ground-truth test dances in the run's pose space (global for travelling models, root-relative
for the paper's). `--real` adds the real songs of ../shared/data/music. Prints the metric
tables and the targets met (see `TARGETS`).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from kakashi import analysis, checkpoint
from kakashi.config import SHARED_DATA
from kakashi.dataset import load_splits
from kakashi.metrics import evaluate_dances
from kakashi.synth import ensure_dataset

# target: (metric, relation to the ground truth's own value, bound)
TARGETS = (
    ("bas_motion", ">= gt", 1.0), ("bas_music", ">= gt", 1.0),
    ("speed_ratio", "within", (0.7, 1.3)), ("frozen_share", "<= gt +", 0.05),
    ("jerk", "<= gt x", 1.5), ("fid_k", "<= train/test x", 1.5), ("fid_g", "<= train/test x", 1.5),
    ("div_k", ">= gt x", 0.9), ("div_g", ">= gt x", 0.9), ("pfc", "<= gt x", 1.2), ("bone_cv", "<", 0.02),
)


def table(rows: dict[str, tuple[list, list]], reference: list[np.ndarray], fps: float) -> pd.DataFrame:
    """analysis.metric_table, leaving out 5 s windows without a music beat (BAS needs one)."""
    ref, _ = analysis.windows(reference, [np.zeros(0)] * len(reference), fps)
    out = {}
    for name, (dances, beats) in rows.items():
        cut, cut_beats = analysis.windows(dances, beats, fps)
        keep = [i for i, b in enumerate(cut_beats) if len(b)]
        values = evaluate_dances([cut[i] for i in keep], fps, music_beats=[cut_beats[i] for i in keep],
                                 reference=ref)
        out[name] = {k: values.get(k, np.nan) for k in analysis.TABLE_METRICS}
    return pd.DataFrame(out).T


def run_table(run_dir: Path, seed: int = 0) -> pd.DataFrame:
    """Metric table of one run on its preset's test songs: rows ground truth (test), ground
    truth (train, against test: the FID scale) and the run."""
    preset = checkpoint.preset_of(checkpoint.read(run_dir / "best.pt"))
    splits = load_splits(ensure_dataset(preset), preset)
    test, train = splits.clips["test"], splits.clips["train"]
    beats_test, beats_train = analysis.song_beats(test), analysis.song_beats(train)
    torch.manual_seed(seed)
    dances = analysis.generate_on(run_dir, test)
    rows = {"ground truth": ([c.poses for c in test], beats_test),
            "ground truth (train)": ([c.poses for c in train], beats_train),
            run_dir.name: (dances, beats_test)}
    return table(rows, [c.poses for c in test], preset.fps)


def targets(table: pd.DataFrame, name: str) -> pd.DataFrame:
    """Per target: the run's value, the limit from the ground truth, and whether it is met."""
    gt, tr, run = table.loc["ground truth"], table.loc["ground truth (train)"], table.loc[name]
    out = {}
    for metric, how, bound in TARGETS:
        v = run[metric]
        if how == ">= gt":
            limit, ok = gt[metric] * bound, v >= gt[metric] * bound
        elif how == "within":
            limit, ok = f"{bound[0]}-{bound[1]}", bound[0] <= v <= bound[1]
        elif how == "<= gt +":
            limit, ok = gt[metric] + bound, v <= gt[metric] + bound
        elif how == "<= gt x":
            limit, ok = gt[metric] * bound, v <= gt[metric] * bound
        elif how == "<= train/test x":
            limit, ok = tr[metric] * bound, v <= tr[metric] * bound
        elif how == ">= gt x":
            limit, ok = gt[metric] * bound, v >= gt[metric] * bound
        else:
            limit, ok = bound, v < bound
        out[metric] = {"value": v, "limit": limit, "met": bool(ok)}
    return pd.DataFrame(out).T


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", action="append", default=[], metavar="NAME=DIR", help="a trained run folder")
    parser.add_argument("--real", action="store_true", help="also dance to ../shared/data/music")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 20)
    pd.set_option("display.float_format", lambda v: f"{v:.4g}")
    runs = {}
    for item in args.run:
        name, _, folder = item.partition("=")
        runs[name] = Path(folder or name)
    for name, run_dir in runs.items():
        result = run_table(run_dir, args.seed)
        print(f"\n== {name} ({run_dir}) on the held-out test songs")
        print(result)
        met = targets(result, run_dir.name)
        print(met)
        print(f"targets met: {int(met['met'].sum())} / {len(met)}")
    if args.real:
        music = SHARED_DATA / "music"
        if not music.is_dir():
            print(f"\n(real music not found at {music}; skipped)")
            return
        songs = [s for s in analysis.real_songs(music) if "trumpet" not in s.name]  # 5 s: too short for windows
        print(f"\n== real music ({len(songs)} songs), means over songs")
        print(analysis.real_music_table(runs, songs))


if __name__ == "__main__":
    main()
