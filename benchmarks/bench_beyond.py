"""Dancing to unheard music: the target table for trained runs against the ground truth.

    python benchmarks/bench_beyond.py --run runs/best_mdn_lstm --run runs/quick_mse [--real]

Every run's best checkpoint dances to the held-out test songs of the embedded dataset, from
each song's first true pose (seed 0), and is measured in 5 s windows against the test songs'
ground truth (scoring.targets; FID against the FID between the ground-truth train and test
dances). Two tables: all runs root-relative (the paper's pose space, where its models can be
compared with the travelling ones), and the travelling runs in global space (where PFC and
foot skating mean something). `--real` adds the real songs of ../shared/data/music.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from kakashi import analysis, checkpoint, scoring
from kakashi.config import SHARED_DATA, get_preset
from kakashi.experiment import load_data


def tables(runs: dict[str, Path], seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(root-relative table of every run, global table of the travelling runs), each with the
    ground-truth rows of the test and the train songs."""
    preset = get_preset("quick")
    splits = load_data(preset)
    test, train = splits.clips["test"], splits.clips["train"]
    travelling = {name: run for name, run in runs.items()
                  if not checkpoint.preset_of(checkpoint.read(run / "best.pt")).root_relative}
    return (analysis.runs_table(runs, test, train, preset.fps, root_relative=True, seed=seed),
            analysis.runs_table(travelling, test, train, preset.fps, seed=seed))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", action="append", default=[], metavar="DIR", help="a trained run folder")
    parser.add_argument("--real", action="store_true", help="also dance to ../shared/data/music")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 20)
    pd.set_option("display.float_format", lambda v: f"{v:.4g}")
    runs = {Path(r).name: Path(r) for r in args.run}
    rel, glob = tables(runs, args.seed)
    no_pfc = tuple(m for m, _, _ in scoring.TARGETS if m != "pfc")
    print("\n== every run, root-relative, on the held-out test songs")
    print(rel)
    print(scoring.targets_met(rel, list(runs), no_pfc))
    print("\n== the travelling runs, global (the dancer travels), on the held-out test songs")
    print(glob)
    for name in glob.index.drop([scoring.GROUND_TRUTH, scoring.TRAIN_TRUTH]):
        print(f"\n{name}")
        met = scoring.targets(glob, name)
        print(met)
        print(f"targets met: {int(met['met'].sum())} / {len(met)}")
    if args.real:
        music = SHARED_DATA / "music"
        if not music.is_dir():
            print(f"\n(real music not found at {music}; skipped)")
            return
        print("\n== real music, means over songs")
        print(analysis.real_music_table(runs, analysis.real_songs(music)))


if __name__ == "__main__":
    main()
