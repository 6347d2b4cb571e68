"""Time the non-learned choreographers on one core, and measure their dances.

Speed: seconds per song (median of several runs after a warm-up; retrieval's library built
beforehand, its cold build timed on its own row) for a real song and a 10-minute one (the
real song repeated), as real-time factors against the target of 50x (judged on the process's
CPU time, which a machine shared with other work leaves honest), with the peak memory that
numpy allocates (tracemalloc, one extra run).

With --quality: body speed (m/s), BAS (FACT's, against the known beats of the synthetic
test songs; against kakashi.audio's tracked beats for the real songs) and frozen share of
each choreographer beside the ground truth. With --sheets DIR: a contact sheet (a pose every
few seconds) per choreographer of one real song.

    .venv/bin/python benchmarks/bench_choreographers.py [--quick] [--quality] [--sheets DIR]
                     [--dataset DIR] [--file SONG]
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")                   # one core, set before numpy is imported

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from timing import measure, print_table, row  # noqa: E402

from kakashi import audio, metrics  # noqa: E402
from kakashi.choreographers import CHOREOGRAPHERS, retrieval  # noqa: E402
from kakashi.clips import SR, list_clips, read_clip  # noqa: E402
from kakashi.config import SHARED_DATA, get_preset  # noqa: E402
from kakashi.dataset import preset_split  # noqa: E402
from kakashi.plots import save_figure  # noqa: E402
from kakashi.render import contact_sheet  # noqa: E402

SONG = SHARED_DATA / "music" / "supertux_chipdisko.ogg"
SHEET_SONG = SHARED_DATA / "music" / "Kevin_MacLeod_-_Vibe_Ace.ogg"
LONG_S = 600.0            # the bounded-memory case: a 10-minute song
TARGET_X = 50.0           # real-time factor every choreographer must reach on one core
FPS = 24.0
SHEET_EVERY_S = 4.0       # seconds between the poses of a contact sheet
SHEET_COLS = 8


def _call(name: str, y: np.ndarray, dataset) -> np.ndarray:
    context = {"dataset": dataset} if name == "retrieval" else {}
    return CHOREOGRAPHERS[name](y, SR, FPS, seed=0, **context)


def speed_rows(y: np.ndarray, label: str, dataset, repeat: int) -> list[dict]:
    """Per choreographer: wall seconds (median, range), CPU seconds of this process (median:
    the one-core cost even on a shared machine), real-time factors, peak numpy memory."""
    seconds = len(y) / SR
    rows = []
    for name in CHOREOGRAPHERS:
        cpu = []

        def run():
            start = time.process_time()
            _call(name, y, dataset)
            cpu.append(time.process_time() - start)
        times = measure(run, repeat=repeat, warmup=1)
        cpu_s = float(np.median(cpu[1:]))
        tracemalloc.start()
        _call(name, y, dataset)
        peak = tracemalloc.get_traced_memory()[1] / 2 ** 20
        tracemalloc.stop()
        wall_s = float(np.median(times))
        rows.append(row(f"{name} {label}", times, cpu_s=cpu_s, song_s=seconds,
                        realtime_x=seconds / wall_s, cpu_realtime_x=seconds / cpu_s, target_x=TARGET_X,
                        ok=seconds / cpu_s >= TARGET_X, peak_numpy_mib=peak))
    return rows


def library_row(dataset) -> dict:
    def cold():
        retrieval._build_library.cache_clear()
        retrieval.load_library(dataset)
    return row("retrieval library build (features cached)", measure(cold, repeat=3, warmup=1))


def quality_rows(dataset: Path, real: list[Path]) -> list[dict]:
    rows = []
    preset = get_preset()
    for path in preset_split(list_clips(dataset), preset)["test"]:
        clip = read_clip(path)
        y = audio.load_audio(clip.audio_path)
        beats = np.asarray(clip.meta["beats"])
        dances = {"ground truth": clip.poses, **{n: _call(n, y, dataset) for n in CHOREOGRAPHERS}}
        rows += [_metrics(path.name, who, poses, beats) for who, poses in dances.items()]
    for path in real:
        y = audio.load_audio(path)
        beats = audio.beat_times(y)
        rows += [_metrics(path.stem[:28], n, _call(n, y, dataset), beats) for n in CHOREOGRAPHERS]
    return rows


def _metrics(song: str, who: str, poses: np.ndarray, beats: np.ndarray) -> dict:
    return {"song": song, "dancer": who, "speed_m_s": metrics.body_speed(poses, FPS),
            "bas": metrics.beat_alignment(poses, FPS, beats),
            "frozen": metrics.frozen_share(poses, FPS),
            "max_step_m": float(np.linalg.norm(np.diff(poses, axis=0), axis=-1).max())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, no 10-minute song")
    parser.add_argument("--quality", action="store_true", help="also measure the dances")
    parser.add_argument("--sheets", default=None, help="folder for contact sheets of one real song")
    parser.add_argument("--dataset", default=None, help="retrieval's dataset (default: the preset's synthetic one)")
    parser.add_argument("--file", default=str(SONG), help="the real song to time")
    args = parser.parse_args(argv)
    if args.dataset is None:
        from kakashi.sources import preset_dataset

        args.dataset = preset_dataset(get_preset())
    dataset = Path(args.dataset)
    song = Path(args.file)
    if not song.is_file():
        print(f"{song}: song not found (the real songs are in {SHARED_DATA / 'music'})", file=sys.stderr)
        return 1
    y = audio.load_audio(song)
    retrieval.load_library(dataset)                           # features of the library cached
    rows = [library_row(dataset)]
    repeat = 2 if args.quick else 5
    rows += speed_rows(y, f"{song.stem[:20]}", dataset, repeat)
    if not args.quick:
        long = np.tile(y, int(np.ceil(LONG_S * SR / len(y))))[:int(LONG_S * SR)]
        rows += speed_rows(long, "10-minute song", dataset, 3)
    print_table(rows, f"choreographers on one core (dataset {dataset}, {FPS:g} fps)")
    if args.quality:
        real = sorted(p for p in (SHARED_DATA / "music").glob("*.ogg") if ".hq." not in p.name)
        print_table(quality_rows(dataset, real), "dances: body speed, BAS (motion beats vs music beats), frozen share")
    if args.sheets:
        for name in CHOREOGRAPHERS:
            out = Path(args.sheets) / f"contact_{name}_{SHEET_SONG.stem}.png"
            sheet = contact_sheet(_call(name, audio.load_audio(SHEET_SONG), dataset), FPS, SHEET_EVERY_S, SHEET_COLS,
                                  title=f"{name}: {SHEET_SONG.stem}, a pose every {SHEET_EVERY_S:g} s")
            save_figure(sheet, out)
            print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
