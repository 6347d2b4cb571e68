"""Dancing to unheard music: the target table for trained runs and the non-learned
choreographers against the ground truth, on whole songs.

    python benchmarks/bench_beyond.py --run runs/vocab_motion_vocab --run runs/best_mdn_lstm --run runs/quick_mse [--real]

Every run's best checkpoint dances to each whole held-out test song of the embedded dataset
(`--split val`: the validation songs, where generation settings are tuned without looking at
the test songs),
from its first true pose (seed 0), and so do `procedural` and `retrieval` (from the training
split). Window metrics are taken on 5 s windows covering the whole songs; plausible share and
drift on each whole dance (kakashi.scoring). Two tables: every row root-relative (the paper's
pose space, where its models compare with the travelling ones), and the travelling rows in
global space (where PFC, foot skating and support mean something), each with the targets met.
`--real` adds the real songs of ../shared/data/music, against the training ground truth,
beside the same dancers on the test songs, and each dancer's verdict under the default rule
(kakashi.vetting: the limits a retrained default model is held to). A dancer that samples
dances every song as many times as make its dances as long as the training songs'
(kakashi.scoring.draws_to_match), so its FID compares with the train-vs-test FID (`--draws 1`:
once). `--codec` sets beside each motion_vocab run its codec's row (the held-out true dances
through its codes and back, kakashi.analysis.codec_dances) and how often its drawn codes repeat
a move against the true dances' codes (kakashi.analysis.move_repeats): what its vocabulary
loses against what its transformer loses. `--generation accent_width=0.02` dances every
motion_vocab run with that generation setting in place of its checkpoint's (any of
kakashi.models.vocab.GENERATION; repeatable), its rows keeping the run's name. `--seeds
0,1,2,3` draws the tables once per sampling seed (in place of `--seed`; the real songs and move
repeats with the first) and ends each with the number of draws in which every row meets each
target, and how many targets it meets in every draw.
"""
from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import pandas as pd

from kakashi import analysis, checkpoint, scoring, vetting
from kakashi.choreographers import CHOREOGRAPHERS
from kakashi.config import SHARED_DATA, get_preset
from kakashi.dataset import pose_space
from kakashi.experiment import load_data
from kakashi.inference import Dancer
from kakashi.models.vocab import GENERATION
from kakashi.runs import read_config
from kakashi.sources import preset_dataset


def _seeds(text: str) -> list[int]:
    """--seeds: whole numbers separated by commas, each once."""
    try:
        seeds = [int(s) for s in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give whole numbers separated by commas, e.g. 0,1,2,3") from None
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"{text!r}: a seed given twice")
    return seeds


def _setting(text: str) -> tuple[str, float]:
    """--generation: NAME=VALUE, NAME one of a motion_vocab's generation settings, VALUE a number."""
    name, _, value = text.partition("=")
    if name not in GENERATION:
        raise argparse.ArgumentTypeError(f"{text!r}: give NAME=VALUE, NAME one of {', '.join(GENERATION)}")
    try:
        return name, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: {value!r} is not a number") from None


def with_settings(runs: dict[str, Path], settings: dict[str, float], folder: Path) -> dict[str, Path]:
    """The runs, each motion_vocab one replaced by a copy in folder/<name> whose checkpoint
    dances with `settings` (its weights the same); ValueError when no run is a motion_vocab or a
    setting is out of a run's range (naming the run: the model is built with it)."""
    import torch

    from kakashi.fileio import write_json

    out = dict(runs)
    for name, run in runs.items():
        state = checkpoint.read(run / "best.pt")
        if state["model"].get("name") != "motion_vocab":
            continue
        state = {**state, "model": {**state["model"], **{k: type(state["model"].get(k, v))(v)
                                                         for k, v in settings.items()}}}
        try:
            checkpoint.load_model(run / "best.pt", state=state)         # builds it: a bad value fails here
        except ValueError as e:
            raise ValueError(f"{run}: --generation {', '.join(settings)}: {e}") from None
        (folder / name).mkdir(parents=True)
        torch.save(state, folder / name / "best.pt")
        write_json(folder / name / "config.json", read_config(run))
        out[name] = folder / name
    if out == runs:
        raise ValueError("--generation changes how a motion_vocab run dances: give one with --run")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", action="append", default=[], metavar="DIR", help="a trained run folder")
    parser.add_argument("--preset", default="quick", help="the preset whose dataset's songs are danced")
    parser.add_argument("--split", default="test", choices=("test", "val"), help="the songs danced and measured")
    parser.add_argument("--real", action="store_true", help="also dance to ../shared/data/music")
    seeding = parser.add_mutually_exclusive_group()
    seeding.add_argument("--seed", type=int, default=0)
    seeding.add_argument("--seeds", type=_seeds, default=None, metavar="S,S,...",
                         help="draw the tables once per sampling seed, then count the draws each target is met in")
    parser.add_argument("--draws", type=int, default=None, help="dances per song (default: as many as make "
                        "the dances as long as the training songs')")
    parser.add_argument("--quick", action="store_true", help="two songs, one draw each (make bench)")
    parser.add_argument("--codec", action="store_true", help="also each motion_vocab run's codec row and move repeats")
    parser.add_argument("--generation", type=_setting, action="append", default=[], metavar="NAME=VALUE",
                        help="dance the motion_vocab runs with this generation setting (e.g. accent_width=0.02)")
    args = parser.parse_args(argv)
    if args.real and args.split != "test":
        parser.error("--real sets the real songs beside the test songs, so it takes no --split val")
    with tempfile.TemporaryDirectory() as folder:
        runs = {Path(r).name: Path(r) for r in args.run}
        if args.generation:
            try:
                runs = with_settings(runs, dict(args.generation), Path(folder))
            except (ValueError, FileNotFoundError) as e:
                parser.error(str(e))
        _tables(args, runs)


def _tables(args: argparse.Namespace, runs: dict[str, Path]) -> None:
    """Print the tables of `main` for the runs {name: folder}."""
    seeds = args.seeds or [args.seed]
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 30)
    pd.set_option("display.float_format", lambda v: f"{v:.4g}")
    preset = get_preset(args.preset)
    splits, dataset = load_data(preset), preset_dataset(preset)
    held_out, train = splits.clips[args.split][:2 if args.quick else None], splits.clips["train"]
    travelling = {name: run for name, run in runs.items()
                  if not checkpoint.preset_of(checkpoint.read(run / "best.pt")).root_relative}
    choreographers = tuple(CHOREOGRAPHERS)
    workers = os.cpu_count() or 1   # dancers, and table rows, at once: a process each
    kw = dict(seed=seeds[0], choreographers=choreographers, dataset=dataset, workers=workers)
    draws = args.draws or (1 if args.quick else analysis.matched_draws(held_out, train))
    vocab = {name: Dancer.load(run / "best.pt") for name, run in runs.items()
             if args.codec and read_config(run).get("model") == "motion_vocab"}
    for title, table_runs, relative in (("every row, root-relative", runs, True),
                                        ("the travelling rows, global", travelling, False)):
        no_pfc = tuple(m for m, _, _ in scoring.TARGETS if m != "pfc") if relative else None
        codecs = {f"{name} codec": [pose_space(d, relative) for d in analysis.codec_dances(dancer, held_out)]
                  for name, dancer in vocab.items()}              # drawn by no seed: once
        tables = []
        for seed in seeds:
            dances = {**analysis.test_dances(table_runs, held_out, relative, draws=draws, **{**kw, "seed": seed}),
                      **codecs}
            tables.append(analysis.runs_table(table_runs, held_out, train, preset.fps, root_relative=relative,
                                              dances=dances, workers=workers))
            rows = [*dances]
            print(f"\n== {title}, on the held-out {args.split} songs (whole songs), {draws} draws of a sampling dancer"
                  + (f", sampling seed {seed}" if args.seeds else ""))
            print(tables[-1])
            print(scoring.targets_met(tables[-1], rows, no_pfc))
        if args.seeds:
            print(f"\n== {title}: in how many of the {len(seeds)} sampling seeds ({','.join(map(str, seeds))}) "
                  "each target is met")
            print(scoring.targets_over_draws(tables, rows, no_pfc))
    for name, dancer in vocab.items():
        print(f"\n== {name}: the share of codes that repeat the move danced `lag` beats before, {args.split} songs")
        print(analysis.move_repeats(dancer, held_out, seed=seeds[0]))
    if args.real:
        music = SHARED_DATA / "music"
        if not music.is_dir():
            print(f"\n(real music not found at {music}; skipped)")
            return
        songs = analysis.real_songs(music)
        real_draws = args.draws or analysis.matched_song_draws(songs, train)
        real = analysis.song_dances(travelling, songs, draws=real_draws, **kw)
        print(f"\n== real music (whole songs, {real_draws} draws) and the test songs, against the training ground truth")
        print(analysis.real_music_table(real, songs, dances, held_out, train, preset.fps, workers=workers))
        relative = analysis.real_music_table(real, songs, {}, held_out, train, preset.fps, root_relative=True,
                                             workers=workers)
        verdicts = analysis.real_music_verdicts(relative, real, splits.clips["test"], train, preset.fps)
        print("\n== the default rule on the real songs (kakashi.vetting: root-relative, every test song's limits)")
        print(vetting.verdict_table(verdicts))


if __name__ == "__main__":
    main()
