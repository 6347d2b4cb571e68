"""Time kakashi.audio.features on a real song against the original system's per-frame MFCC.

The reference is the original Kakashi's recipe: split the audio into T equal chunks (one per
pose frame) and average librosa's MFCC over each chunk, one librosa call per frame.
Decoding is timed on its own row; feature rows start from the decoded samples.

    .venv/bin/python benchmarks/bench_features.py [--quick] [--file SONG] [--fps 24]
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import librosa
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from timing import measure, print_table, row  # noqa: E402

from kakashi import audio  # noqa: E402
from kakashi.config import SHARED_DATA  # noqa: E402

SONG = SHARED_DATA / "music" / "supertux_chipdisko.ogg"
TARGETS_S = {"mfcc": 0.15, "rich": 1.5}
TARGET_SPEEDUP = 50.0


def per_chunk_mfcc(y: np.ndarray, sr: int, n_frames: int) -> np.ndarray:
    """The original recipe: [T, 20], row k = mean over time of librosa's MFCC of chunk k of T."""
    chunks = np.array_split(y, n_frames)
    with warnings.catch_warnings():   # every chunk (~918 samples) is shorter than n_fft = 2048
        warnings.simplefilter("ignore", UserWarning)
        return np.stack([librosa.feature.mfcc(y=c, sr=sr, n_mfcc=audio.N_MFCC).mean(axis=1)
                         for c in chunks])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--file", type=Path, default=SONG, help="song to time (default: %(default)s)")
    parser.add_argument("--fps", type=float, default=24.0, help="pose frame rate")
    args = parser.parse_args(argv)
    if not args.file.is_file():
        print(f"{args.file}: song not found (the shared data folder is needed)", file=sys.stderr)
        return 1
    repeat, ref_repeat = (3, 1) if args.quick else (10, 3)

    load_times = measure(lambda: audio.load_audio(args.file), repeat=max(1, repeat // 3), warmup=1)
    y = audio.load_audio(args.file)
    sr, seconds = audio.SR, len(y) / audio.SR
    n_frames = int(round(seconds * args.fps))

    rows = [row(f"load_audio ({args.file.suffix[1:]}, decode + resample)", load_times)]
    times = {}
    for kind in ("mfcc", "rich"):
        times[kind] = measure(lambda: audio.features(y, sr, args.fps, kind), repeat=repeat, warmup=1)
    per_chunk_mfcc(y[: sr * 5], sr, 50)                                # warm librosa's own path
    last = {}
    times["reference"] = measure(lambda: last.update(ref=per_chunk_mfcc(y, sr, n_frames)),
                                 repeat=ref_repeat, warmup=0)

    ref_median = float(np.median(times["reference"]))
    for kind in ("mfcc", "rich"):
        med = float(np.median(times[kind]))
        rows.append(row(f"features {kind}", times[kind], target_s=TARGETS_S[kind],
                        speedup_vs_reference=ref_median / med,
                        met="yes" if med <= TARGETS_S[kind] else "NO"))
    rows.append(row("reference: one librosa MFCC per frame", times["reference"], speedup_vs_reference=1.0))

    fast = audio.features(y, sr, args.fps, "mfcc")
    ref = last["ref"]
    corr = [np.corrcoef(fast[:, i], ref[:, i])[0, 1] for i in range(audio.N_MFCC)]
    print_table(rows, title=f"{args.file.name}: {seconds:.1f} s, {n_frames} frames at {args.fps:g} fps")
    speedup = ref_median / float(np.median(times["mfcc"]))
    print(f"\nmfcc speed-up over the per-frame reference: {speedup:.0f}x (target >= {TARGET_SPEEDUP:.0f}x)")
    print(f"agreement with the reference per coefficient: correlation median {np.median(corr):.3f}, "
          f"min {min(corr):.3f} (centred 2048-sample frames vs. the mean over each chunk)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
