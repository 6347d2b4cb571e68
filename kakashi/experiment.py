"""One training run from a preset, as `python -m kakashi train`, the sweep (through
notebooks/04_train.ipynb) and notebooks start it: the dataset (the preset's, built when it is
the embedded one, or a given folder), its splits, the run's folder, the dance judge when the
preset selects checkpoints by their dances, then kakashi.train.
"""
from __future__ import annotations

import sys
from pathlib import Path

from .config import Preset, dataset_dir, get_preset
from .dataset import Splits, load_splits
from .runs import run_dir_for
from .train import TrainingDiverged, train


def dataset_folder(preset: Preset, dataset: str | None = None) -> Path:
    """The folder of `dataset` (a name under data/ or a folder), or the preset's dataset (built
    when it is the embedded one)."""
    from .sources import preset_dataset

    return dataset_dir(dataset) if dataset else preset_dataset(preset)


def load_data(preset: Preset, dataset: str | None = None) -> Splits:
    """The splits of dataset_folder(preset, dataset)."""
    return load_splits(dataset_folder(preset, dataset), preset)


def train_run(preset: Preset, run: str | None = None, runs_dir: str | Path | None = None,
              dataset: str | None = None, splits: Splits | None = None, resume: bool = True,
              progress: bool = True) -> tuple[dict, Path]:
    """Train the preset into runs_dir/<run> (default: RUNS_DIR/models.run_name(preset)), on
    `splits` or on load_data(preset, dataset). Returns (history, run folder)."""
    run_dir = run_dir_for(preset, run, runs_dir)
    splits = load_data(preset, dataset) if splits is None else splits
    judge = None
    if preset.select_by == "dance":
        from .selection import DanceJudge

        judge = DanceJudge(splits, preset.fps, preset.seq_len, preset.seed)
    return train(preset, run_dir, splits, resume=resume, progress=progress, judge=judge), run_dir


def with_model_options(preset: Preset, **options) -> Preset:
    """The preset with `options` (those not None) added to its model's constructor arguments,
    checked by building the model (a bad value fails before any work)."""
    from dataclasses import replace

    from .audio import FEATURE_DIMS
    from .train import build_for

    options = {k: v for k, v in options.items() if v is not None}
    if not options:
        return preset
    preset = replace(preset, model_options=tuple({**dict(preset.model_options), **options}.items()))
    try:
        build_for(preset, FEATURE_DIMS[preset.features])
    except TypeError:
        raise ValueError(f"{', '.join('--' + k.replace('_', '-') for k in options)}: not an option of "
                         f"model {preset.model!r}") from None
    return preset


def configure(parser) -> None:
    parser.add_argument("--preset", default=None, help="paper | quick | smoke | best (default: $KAKASHI_PRESET or quick)")
    parser.add_argument("--loss", default=None, help="one of kakashi.losses.LOSSES (default: the preset's)")
    parser.add_argument("--model", default=None, help="one of kakashi.models.MODELS")
    parser.add_argument("--dataset", default=None, help="dataset name under data/ or a folder")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--ema", type=float, default=None, metavar="DECAY",
                        help="keep a moving average of the weights, this decay per step (default: the preset's)")
    parser.add_argument("--scale-songs", action="store_true", default=None,
                        help="hear every song's onset and MFCC centred and scaled over the song, in training "
                             "as at generation (Preset.scale_songs)")
    parser.add_argument("--music-dropout", type=float, default=None, metavar="P",
                        help="motion_vocab: hear this share of the training windows as silence, so the model "
                             "can be guided (kakashi.models.vocab; default: the preset's)")
    parser.add_argument("--music-noise", type=float, default=None, metavar="STD",
                        help="motion_vocab: hear each training window's onset, MFCC and chroma shifted and "
                             "noisy by this std (normalised units; default: the preset's)")
    parser.add_argument("--copy", action="store_true", default=None,
                        help="motion_vocab: a copy head that can draw the code of one move before again "
                             "(kakashi.models.vocab; default: the preset's)")
    parser.add_argument("--turns", action="store_true", default=None,
                        help="motion_vocab: the codec's velocity term on the body as it travels and turns, "
                             "seen from its heading (kakashi.models.vocab; default: the preset's)")
    parser.add_argument("--polish", type=int, default=None, metavar="EPOCHS",
                        help="motion_vocab: epochs after the others in which only its decoders train on, on the "
                             "body as it travels and turns (Preset.polish; 0: none; default: the preset's)")
    parser.add_argument("--guidance", type=float, default=None, metavar="W",
                        help="motion_vocab trained with --music-dropout: how far its codes follow the music, "
                             "0 deaf to it, 1 as heard (default: the preset's)")
    parser.add_argument("--run-name", default=None, help="folder under runs/ (default: models.run_name)")
    parser.add_argument("--no-resume", action="store_true", help="start over instead of resuming")


def run(args) -> int:
    import math

    from .arguments import check_input, check_name, check_outputs, check_range, check_seed
    from .losses import get_loss
    from .models import MODELS
    from .runs import RUNS_DIR
    from .train import check_polish

    check_range("--epochs", args.epochs, 1, math.inf)
    check_range("--polish", args.polish, 0, math.inf)
    check_seed("--seed", args.seed)
    if args.ema is not None and not 0.0 <= args.ema < 1.0:   # also refuses NaN
        raise ValueError(f"--ema must be at least 0 and below 1, got {args.ema:g}")
    check_name("--run-name", args.run_name, RUNS_DIR)
    preset = get_preset(args.preset, loss=args.loss, model=args.model, dataset=args.dataset,
                        epochs=args.epochs, seed=args.seed, ema=args.ema, scale_songs=args.scale_songs,
                        polish=args.polish)
    preset = with_model_options(preset, music_dropout=args.music_dropout, music_noise=args.music_noise,
                                guidance=args.guidance, copy=args.copy, turns=args.turns)
    get_loss(preset.loss)
    if preset.model not in MODELS:
        raise ValueError(f"unknown model {preset.model!r}; choose one of {sorted(MODELS)}")
    check_polish(preset)
    check_outputs([("run folder", run_dir_for(preset, args.run_name), None)])
    if args.dataset:
        check_input("--dataset", dataset_dir(args.dataset), kind="folder", what="dataset")
    try:
        history, run_dir = train_run(preset, args.run_name, dataset=args.dataset, resume=not args.no_resume)
    except TrainingDiverged as e:  # the run's own outcome, reported in one line like user errors
        print(f"kakashi train: stopped: {e}", file=sys.stderr)
        return 1
    print(f"{run_dir}: best validation loss {history['best_val_loss']:.5g} at epoch {history['best_epoch']}")
    return 0
