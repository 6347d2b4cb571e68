"""Time the embedded synthetic dataset: one song and its dance, and a smoke-size build.

The build row is the size tests/test_synth.py builds (6 songs of 8-12 s, 2 worker processes),
written afresh into a temporary folder on each repetition.

    .venv/bin/python benchmarks/bench_synth.py [--quick] [--workers 2]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # the build's progress bar would break the table
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from timing import measure, print_table, row  # noqa: E402

from kakashi.synth import build_dataset, make_dance, make_song  # noqa: E402

SMOKE_SONGS, SMOKE_SECONDS = 6, (8.0, 12.0)   # the build of tests/test_synth.py
SONG_SECONDS = 30.0                           # one song of the quick preset's length range


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--workers", type=int, default=2, help="build processes (default: %(default)s)")
    args = parser.parse_args(argv)
    repeat = 3 if args.quick else 7

    song = make_song(0, SONG_SECONDS)
    rows = [row(f"make_song ({SONG_SECONDS:g} s)", measure(lambda: make_song(0, SONG_SECONDS), repeat=repeat)),
            row(f"make_dance ({SONG_SECONDS:g} s)", measure(lambda: make_dance(song, 1), repeat=repeat))]

    def build() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            build_dataset(Path(tmp) / "ds", n_songs=SMOKE_SONGS, seconds=SMOKE_SECONDS, seed=0, workers=args.workers)

    rows.append(row(f"build_dataset ({SMOKE_SONGS} songs of {SMOKE_SECONDS[0]:g}-{SMOKE_SECONDS[1]:g} s, "
                    f"{args.workers} workers)", measure(build, repeat=repeat)))
    print_table(rows, title="Embedded synthetic dataset")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
