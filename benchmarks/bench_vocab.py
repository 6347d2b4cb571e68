"""Whole songs with motion_vocab: generation speed, memory and seams on a 9-minute song.

    python benchmarks/bench_vocab.py [--checkpoint runs/vocab_motion_vocab/best.pt] [--minutes 9]

Generation alone (kakashi.inference.generate_poses over normalised features; the features of
a real song, or of a synthetic one, repeated to the length asked): median seconds of several
runs on `--threads` CPU threads, the real-time factor, the resident memory the process grew
by, and the largest frame-to-frame joint jump where generation joins its pieces against the
99th percentile of the other frames. motion_vocab dances a whole song in one call, drawing its
codes a chunk at a time (kakashi.models.vocab CHUNK): its joins are where one chunk's codes
meet the next's; a model danced in windows joins them at the windows' cross-faded overlaps.
Without a checkpoint, an untrained model of the `vocab` preset (the speed is the same). The CPU
seconds per song (all threads) are printed beside the wall clock: on a shared machine they say
what an idle one would take.
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import measure, print_table, row  # noqa: E402

from kakashi import checkpoint  # noqa: E402
from kakashi.config import RUNS_DIR, SHARED_DATA, get_preset  # noqa: E402
from kakashi.inference import generate_poses, overlap_for, song_features  # noqa: E402

SONG = SHARED_DATA / "music" / "supertux_chipdisko.ogg"


def chunk_seams(model, feats: np.ndarray) -> np.ndarray:
    """Frame steps (t -> t + 1, indexed by t) where a whole-song model's code chunks meet (one
    frame either side), for normalised features [n, F]."""
    from kakashi.models.vocab import CHUNK

    n = len(feats)
    if model.beat_steps:
        step = model.beat_grid(torch.as_tensor(feats)[:, None])[1][:, 0].numpy()  # grid position of each frame
    else:
        step = np.arange(n, dtype=float)
    chunk = np.floor(step / (model.segment * CHUNK))
    at = np.flatnonzero(np.diff(chunk))
    return np.unique(np.clip(np.concatenate([at - 1, at, at + 1]), 0, n - 2))


def seam_frames(n: int, window: int) -> np.ndarray:
    """Frame steps (t -> t + 1, indexed by t) inside the cross-faded overlaps of
    kakashi.inference.generate_poses' windows, for a song of n frames."""
    overlap, written, out = overlap_for(window), window, []
    while written < n:
        start = max(written - overlap, 0)
        out.extend(range(max(start - 1, 0), min(written + 1, n - 1)))
        written = start + window
    return np.array(sorted(set(out)), dtype=int)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=str(RUNS_DIR / "vocab_motion_vocab" / "best.pt"))
    parser.add_argument("--minutes", type=float, default=9.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a 1-minute song, once (make bench)")
    args = parser.parse_args()
    if args.quick:
        args.minutes, args.repeat = 1.0, 1
    torch.set_num_threads(args.threads)
    preset = get_preset("vocab")
    if Path(args.checkpoint).is_file():
        model, state = checkpoint.load_model(args.checkpoint)
        preset = checkpoint.preset_of(state)
        mean, std, first = state["norm_mean"].numpy(), state["norm_std"].numpy(), state["seed_pose"].numpy()
        what = args.checkpoint
    else:
        from kakashi.train import build_for

        from kakashi.clips import list_clips, read_clip
        from kakashi.synth import ensure_dataset

        torch.manual_seed(0)
        model = build_for(preset, 44)
        mean, std = 0.0, 1.0
        first = read_clip(list_clips(ensure_dataset(get_preset("smoke")))[0]).poses[0]   # a standing dancer
        what = "untrained vocab preset"
    if SONG.is_file():
        feats = song_features(SONG, preset.features, preset.fps)
    else:
        feats = np.random.default_rng(0).normal(size=(int(60 * preset.fps), 44)).astype(np.float32)
    n = int(args.minutes * 60 * preset.fps)
    feats = ((np.resize(feats, (n, feats.shape[1])) - mean) / std).astype(np.float32)     # [n, F]
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = {}

    def dance():
        torch.manual_seed(0)
        out["poses"] = generate_poses(model, feats, first, window=preset.seq_len)

    cpu0 = time.process_time()
    times = measure(dance, repeat=args.repeat, warmup=0)
    cpu = (time.process_time() - cpu0) / args.repeat                                # CPU seconds per song
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    poses = out["poses"]
    jumps = np.linalg.norm(np.diff(poses, axis=0), axis=-1).max(axis=1)              # [n-1] m per frame
    whole = getattr(model, "whole_songs", False)
    seams = chunk_seams(model, feats) if whole else seam_frames(n, preset.seq_len)
    rest = np.setdiff1d(np.arange(len(jumps)), seams)
    seconds = n / preset.fps
    pieces = "the whole song at once" if whole else f"windows of {preset.seq_len} frames"
    print(f"{what}: {args.minutes:g} min song ({n} frames), {pieces}, {args.threads} threads")
    print_table([row("generate_poses", times, realtime_x=seconds / float(np.median(times)), cpu_s=cpu,
                     realtime_x_cpu=seconds / cpu,
                     rss_growth_mb=grown_mb, seam_jump_m=float(jumps[seams].max()),
                     p99_jump_m=float(np.percentile(jumps[rest], 99)), max_jump_m=float(jumps.max()))])


if __name__ == "__main__":
    main()
