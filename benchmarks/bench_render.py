"""Frames per second of the dance renderers: OpenCV (kakashi.player.raster) beside matplotlib.

Rows, each the median of several runs in this one process: drawing frames only, and a whole
mp4 (drawing piped into ffmpeg's H.264 encoder), for the OpenCV path and the matplotlib path
it replaces; 480 px panels. With --choreograph, also the end-to-end command
`python -m kakashi choreograph` on a song of --song-seconds (npz + BVH + mp4) with a checkpoint
(a smoke one is trained when none is given), against a tenth of the song's length.

    .venv/bin/python benchmarks/bench_render.py [--quick] [--choreograph] [-c CHECKPOINT]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from timing import measure, print_table, row  # noqa: E402

from kakashi.config import REPO_ROOT, SHARED_DATA  # noqa: E402
from kakashi.player.raster import Raster  # noqa: E402
from kakashi.player.stage import make_stage  # noqa: E402
from kakashi.render import Scene, as_dances, save_video  # noqa: E402

SIZE = 480                  # pixels per panel
TARGET_FPS = 500.0          # frames drawn per second on the OpenCV path
SONG = SHARED_DATA / "music" / "Kevin_MacLeod_-_Vibe_Ace.ogg"
STAND = np.array([[0, .95, 0], [-.12, .95, 0], [-.12, .52, .02], [-.12, .1, 0], [.12, .95, 0],
                  [.12, .52, .02], [.12, .1, 0], [0, 1.18, .01], [0, 1.44, 0], [0, 1.55, .06],
                  [0, 1.68, .04], [.16, 1.42, 0], [.42, 1.42, 0], [.66, 1.42, 0], [-.16, 1.42, 0],
                  [-.42, 1.42, 0], [-.66, 1.42, 0]])  # a standing H36M-17 skeleton, metres


def dance(frames: int, fps: float = 24.0) -> np.ndarray:
    """[T, 17, 3] metres: arms waving at 1 Hz, the dancer walking in a circle of 1 m."""
    t = np.arange(frames) / fps
    poses = np.repeat(STAND[None], frames, axis=0)
    poses[:, [12, 13, 15, 16], 1] += 0.3 * np.sin(2 * np.pi * t)[:, None]
    poses[..., 0] += np.cos(0.2 * t)[:, None]
    poses[..., 2] += np.sin(0.2 * t)[:, None]
    return poses


def draw_opencv(poses: np.ndarray) -> None:
    for _ in Raster(make_stage(as_dances(poses), 24.0), SIZE).frames():
        pass


def draw_matplotlib(poses: np.ndarray) -> None:
    scene = Scene(poses, 24.0, size=SIZE)
    for k in range(scene.num_frames):
        scene.render(k)


def choreograph_row(checkpoint: Path | None, seconds: float, workdir: Path) -> dict:
    import soundfile as sf

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
    if checkpoint is None:
        checkpoint = REPO_ROOT / "runs" / "smoke_mse" / "best.pt"
        if not checkpoint.exists():
            subprocess.run([sys.executable, "-m", "kakashi", "train", "--preset", "smoke"], env=env, check=True,
                           cwd=REPO_ROOT)
    y, sr = sf.read(SONG, dtype="float32")
    song = workdir / "song.wav"
    sf.write(song, np.tile(y, int(seconds * sr) // len(y) + 1)[: int(seconds * sr)], sr)  # the song, looped
    out = workdir / "dance"
    cmd = [sys.executable, "-m", "kakashi", "choreograph", str(song), "-c", str(checkpoint),
           "-o", f"{out}.mp4", "--bvh", f"{out}.bvh", "--npz", f"{out}.npz"]
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    spent = time.perf_counter() - start
    return row(f"choreograph {seconds:.0f} s song -> npz+bvh+mp4", [spent], target_s=seconds / 10,
               meets=spent <= seconds / 10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer frames and runs")
    parser.add_argument("--choreograph", action="store_true", help="also time `kakashi choreograph` end to end")
    parser.add_argument("-c", "--checkpoint", type=Path, default=None)
    parser.add_argument("--song-seconds", type=float, default=211.0)
    args = parser.parse_args(argv)
    repeat = 3 if args.quick else 5
    long, short = (480, 48) if args.quick else (1440, 120)  # frames: matplotlib is ~30x slower
    rows = []
    with tempfile.TemporaryDirectory(prefix="kakashi-bench-") as tmp:
        tmp = Path(tmp)
        cases = [("opencv draw", long, lambda: draw_opencv(dance(long))),
                 ("matplotlib draw", short, lambda: draw_matplotlib(dance(short))),
                 ("opencv mp4", long, lambda: save_video(dance(long), 24.0, tmp / "a.mp4", size=SIZE,
                                                         progress=False)),
                 ("matplotlib mp4", short, lambda: save_video(dance(short), 24.0, tmp / "b.mp4", size=SIZE,
                                                              progress=False, engine="matplotlib"))]
        for name, frames, fn in cases:
            times = measure(fn, repeat=repeat, warmup=1)
            r = row(f"{name} ({frames} frames, {SIZE} px)", times)
            r["frames_per_s"] = frames / r["median_s"]
            rows.append(r)
        rows[0]["target_fps"] = TARGET_FPS
        rows[0]["meets"] = rows[0]["frames_per_s"] >= TARGET_FPS
        rows[0]["vs_matplotlib"] = rows[0]["frames_per_s"] / rows[1]["frames_per_s"]
        rows[2]["vs_matplotlib"] = rows[2]["frames_per_s"] / rows[3]["frames_per_s"]
        print_table(rows, f"render frames/s, medians of {repeat} runs (1 warm-up), {os.cpu_count()} CPUs")
        if args.choreograph:
            print_table([choreograph_row(args.checkpoint, args.song_seconds, tmp)], "end to end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
