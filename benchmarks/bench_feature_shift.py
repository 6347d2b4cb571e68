"""How far real songs sit from the training songs, before and after widening them.

Rows: the real songs of ../shared/data/music against (1) today's training songs (the first N
songs of the embedded dataset's plan), (2) the same number of songs cycling through all
styles including kakashi.synth.music.WIDE_STYLES, (3) today's songs plus one augmented copy
each (kakashi.augment), (4) wide styles plus copies, (5) today's songs with every song's onset
and MFCC scaled over the song itself, as `Preset.scale_songs` hears them (real songs too); and,
as the yardstick of "no shift", other synthetic songs of today's styles (another seed) against
today's, as they are and scaled. Columns: Frechet distance of z-normalised `rich` frames (all,
and per group) and the share of frames outside the training range per group
(kakashi.feature_shift). Each row is the median over --seeds draws of the training songs and
copies (min and max beside it for the total Frechet distance).

    .venv/bin/python benchmarks/bench_feature_shift.py [--quick] [--songs N] [--seeds K]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from timing import print_table  # noqa: E402

from kakashi import audio  # noqa: E402
from kakashi.augment import augment_song, rms  # noqa: E402
from kakashi.config import SHARED_DATA, get_preset  # noqa: E402
from kakashi.dataset import song_normaliser  # noqa: E402
from kakashi.feature_shift import GROUPS, feature_shift  # noqa: E402
from kakashi.synth import make_clip, song_plan  # noqa: E402
from kakashi.synth.music import ALL_STYLES  # noqa: E402

MUSIC = SHARED_DATA / "music"
FPS = 24.0
LEVELS: dict[tuple[tuple[str, ...], bool], list[tuple[float, float]]] = {}   # (styles, augmented) -> levels


def level(y: np.ndarray) -> tuple[float, float]:
    """Loudness of samples [N]: RMS (dB full scale) and crest factor (peak / RMS, dB)."""
    r = max(rms(y), 1e-9)
    return 20 * np.log10(r), 20 * np.log10(max(float(np.abs(y).max()), 1e-9) / r)


def real_songs(folder: Path) -> tuple[list[np.ndarray], list[tuple[float, float]]]:
    """`rich` features and `level` of every mono .ogg song in folder (the 44.1 kHz .hq copies left out)."""
    files = sorted(p for p in folder.glob("*.ogg") if not p.name.endswith(".hq.ogg"))
    songs = [audio.load_audio(p) for p in files]
    return [audio.features(y, audio.SR, FPS, "rich") for y in songs], [level(y) for y in songs]


def synthetic(n: int, seconds: tuple[float, float], seed: int, styles: tuple[str, ...],
              copies: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """`rich` features of n planned synthetic songs, and of `copies` augmented copies of each;
    the `level` of each song and copy is added to LEVELS[styles, copies > 0]."""
    clean, augmented = [], []
    rng = np.random.default_rng([seed, 7])
    for job in song_plan(n, seconds, seed, styles):
        song, dance = make_clip(job, FPS)
        clean.append(audio.features(song.audio, audio.SR, FPS, "rich", n_frames=len(dance.poses)))
        LEVELS.setdefault((styles, False), []).append(level(song.audio))
        for _ in range(copies):
            y, poses, _ = augment_song(song.audio, audio.SR, dance.poses, FPS, rng)
            augmented.append(audio.features(y, audio.SR, FPS, "rich", n_frames=len(poses)))
            LEVELS.setdefault((styles, True), []).append(level(y))
    return clean, augmented


def scaled(songs: list[np.ndarray]) -> list[np.ndarray]:
    """`rich` features [T, 35] with each song's onset and MFCC columns z-scored over the song itself,
    as a preset with `scale_songs` hears them (kakashi.dataset.song_normaliser); the rest as they are."""
    dims = audio.FEATURE_DIMS["rich"]
    norm = song_normaliser(np.zeros(dims, np.float32), np.ones(dims, np.float32),
                           get_preset("quick", features="rich", scale_songs=True))
    return [norm(song) for song in songs]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 songs, one draw")
    parser.add_argument("--songs", type=int, default=16, help="training songs per set")
    parser.add_argument("--seeds", type=int, default=3, help="draws of each training set")
    args = parser.parse_args(argv)
    if not MUSIC.is_dir():
        print(f"{MUSIC}: real songs not found (the shared data folder is needed)", file=sys.stderr)
        return 1
    n, seeds = (8, 1) if args.quick else (args.songs, args.seeds)
    seconds = get_preset("quick").synth_seconds
    wide = tuple(sorted(ALL_STYLES))
    started = time.perf_counter()
    real, real_levels = real_songs(MUSIC)
    results: dict[str, list[dict]] = {}
    for seed in range(seeds):
        today, today_copies = synthetic(n, seconds, seed, (), copies=1)
        widened, wide_copies = synthetic(n, seconds, seed, wide, copies=1)
        other, _ = synthetic(max(n // 2, 3), seconds, 1000 + seed, ())
        for name, songs, train in (("today's songs", real, today), ("wide styles", real, widened),
                                   ("today's + 1 augmented copy", real, today + today_copies),
                                   ("wide styles + 1 augmented copy", real, widened + wide_copies),
                                   ("today's songs, each scaled", scaled(real), scaled(today)),
                                   ("yardstick: synthetic vs today's", other, today),
                                   ("yardstick: synthetic vs today's, each scaled", scaled(other), scaled(today))):
            results.setdefault(name, []).append(feature_shift(songs, train))
    rows = []
    for name, draws in results.items():
        total = [d["frechet"] for d in draws]
        row = {"songs vs training": name if name.startswith("yardstick") else f"real vs {name}",
               "frechet": statistics.median(total), "min": min(total), "max": max(total)}
        row |= {f"fd_{g}": statistics.median(d[f"frechet/{g}"] for d in draws) for g in GROUPS}
        row |= {f"out_{g}": statistics.median(d[f"outside/{g}"] for d in draws) for g in GROUPS}
        rows.append(row)
    print_table(rows, title=f"Feature shift ({len(real)} real songs; {n} training songs per set, "
                            f"median of {seeds} draws; out_* = share of frames outside the training range)")
    named = {"real songs": real_levels, "today's styles": LEVELS[((), False)],
             "wide styles": LEVELS[(wide, False)], "augmented copies of today's": LEVELS[((), True)]}
    print_table([{"songs": name, "songs_n": len(v), "rms_dbfs": float(np.median([x[0] for x in v])),
                  "crest_db": float(np.median([x[1] for x in v]))} for name, v in named.items()],
                title="Loudness (median over songs): RMS in dB full scale, crest factor = peak / RMS in dB")
    print(f"\n{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
