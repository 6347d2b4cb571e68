"""`python -m kakashi evaluate DANCE.npz [...] [--audio SONG] [--reference DATASET] [--fps F] [--json] [--per-minute]`.

Prints every metric of kakashi.metrics that the inputs allow, with its unit and which way is
better: the per-dance ones always (among them whether the body stays a human one: anatomy,
balance and their drift), beat alignment with --audio (the song's beats, one song for all the
dances), FID / speed ratio / pose distance with --reference (a dataset folder of clips: the
ground truth), diversity with two dances or more. --per-minute adds each dance's anatomy checks
minute by minute. A dance file is an .npz holding `poses` [T, 17, 3] (metres, y up) and `fps`.
"""
from __future__ import annotations

import argparse
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from .clips import SR, list_clips, read_clip
from .fileio import write_json
from .metrics import METRICS, anatomy_per_minute, check_dance, evaluate_dances
from .metrics.drift import MINUTE, minute_bounds


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dances", nargs="+", metavar="DANCE.npz",
                        help="dance files: npz with poses [T, 17, 3] metres (y up) and fps")
    parser.add_argument("--audio", metavar="SONG", help="the music the dances were made for (beat alignment)")
    parser.add_argument("--reference", metavar="GT_DATASET",
                        help="dataset folder of clips whose dances are the ground truth (FID, speed ratio)")
    parser.add_argument("--fps", type=float, help="frame rate of every dance (overrides the files' fps)")
    parser.add_argument("--json", action="store_true", help="print {metric: value} as JSON instead of a table")
    parser.add_argument("--out", metavar="FILE.json", help="also write {metric: value} to this JSON file")
    parser.add_argument("--per-minute", action="store_true",
                        help="also give each dance's anatomy checks per minute (with --json: "
                             "{\"metrics\": {...}, \"per_minute\": {dance: {series: [per minute]}}})")


def load_dance(path: str | os.PathLike, fps: float | None = None) -> tuple[np.ndarray, float]:
    """(poses float64 [T, 17, 3], fps) of a dance npz; ValueError / FileNotFoundError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: dance file not found")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise ValueError(f"{path}: not a readable .npz file ({type(e).__name__})") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError(f"{path}: a single .npy array, not an .npz with 'poses' and 'fps'")
    with data:
        if "poses" not in data.files:
            raise ValueError(f"{path}: no 'poses' array (the file holds {sorted(data.files) or 'nothing'})")
        try:
            poses = np.asarray(data["poses"])
            file_fps = float(data["fps"]) if "fps" in data.files else None
        except (OSError, ValueError, TypeError, zipfile.BadZipFile, EOFError) as e:
            raise ValueError(f"{path}: unreadable 'poses' or 'fps' ({e})") from None
    rate = fps if fps is not None else file_fps
    if rate is None:
        raise ValueError(f"{path}: no 'fps' in the file; give the frame rate with --fps")
    if not np.issubdtype(poses.dtype, np.number):
        raise ValueError(f"{path}: 'poses' is not numeric ({poses.dtype})")
    return check_dance(poses, rate, str(path)), rate


def song_beats(path: str | os.PathLike) -> np.ndarray:
    """Beat times in seconds [B] of a music file (kakashi.audio's loader and beat tracker)."""
    from .audio import beat_times, load_audio  # heavy (librosa); only when --audio is given

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: audio file not found")
    beats = beat_times(load_audio(path, sr=SR), sr=SR)
    if len(beats) == 0:
        raise ValueError(f"{path}: no beats found in the music")
    return beats


def load_reference(dataset: str | os.PathLike) -> tuple[list[np.ndarray], list[float]]:
    """Ground-truth dances and their frame rates from a dataset folder of clips (two at least)."""
    clips = [read_clip(p) for p in list_clips(dataset)]
    if len(clips) < 2:
        raise ValueError(f"{dataset}: {len(clips)} clip(s); FID needs at least 2 ground-truth dances")
    return [c.poses for c in clips], [c.fps for c in clips]


def format_table(values: dict[str, float]) -> str:
    """Aligned text table: metric, value, unit, which way is better, what it measures."""
    rows = [(name, f"{v:.4g}", METRICS[name].unit, METRICS[name].better, METRICS[name].description)
            for name, v in values.items()]
    head = ("metric", "value", "unit", "better", "")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(4)]
    fmt = lambda r: "  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4]
    return "\n".join([fmt(head).rstrip(), fmt(tuple("-" * w for w in widths) + ("",)).rstrip()]
                     + [fmt(r) for r in rows])


def format_minutes(series: dict[str, np.ndarray], n_frames: int, fps: float, window: float = MINUTE) -> str:
    """Aligned text table of anatomy_per_minute's series: one row per window (its span in seconds)."""
    spans = [f"{a / fps:.0f}-{b / fps:.0f} s" for a, b in minute_bounds(n_frames, fps, window)]
    names = list(series)
    rows = [[span] + [f"{series[n][i]:.3g}" for n in names] for i, span in enumerate(spans)]
    head = ["window"] + names
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head] + rows)


MAX_FPS = 1000.0  # frames per second; mocap runs at 60-240, so more is a typing error


def run(args: argparse.Namespace) -> int:
    from .arguments import check_input, check_outputs

    if args.fps is not None and not 0 < args.fps <= MAX_FPS:
        raise ValueError(f"--fps must be positive and at most {MAX_FPS:g}, got {args.fps}")
    if args.audio:
        check_input("--audio", args.audio, what="audio file")
    if args.reference:
        check_input("--reference", args.reference, kind="folder", what="dataset folder")
    check_outputs([("--out", args.out, (".json",))], inputs=[*args.dances, args.audio, args.reference])
    loaded = [load_dance(p, args.fps) for p in args.dances]
    dances, rates = [d for d, _ in loaded], [r for _, r in loaded]
    beats = song_beats(args.audio) if args.audio else None
    reference, reference_fps = load_reference(args.reference) if args.reference else (None, None)
    values = evaluate_dances(dances, rates, music_beats=None if beats is None else [beats] * len(dances),
                             reference=reference, reference_fps=reference_fps)
    if args.out:
        write_json(args.out, values)
    minutes = {p: anatomy_per_minute(d, r) for p, d, r in zip(args.dances, dances, rates)} if args.per_minute else {}
    if args.json:
        per_minute = {p: {k: v.tolist() for k, v in m.items()} for p, m in minutes.items()}
        print(json.dumps({"metrics": values, "per_minute": per_minute} if args.per_minute else values, indent=2))
        return 0
    print(format_table(values))
    for (path, series), dance, rate in zip(minutes.items(), dances, rates):
        print(f"\n{path}: anatomy per minute (shares of frames passing; head height in body heights; degrees)")
        print(format_minutes(series, len(dance), rate))
    return 0
