"""Pose estimation frames/s on the real dance video, and dataset build throughput.

    .venv/bin/python benchmarks/bench_pose.py [--quick] [--runs N]

Target: >= 25 frames/s of MediaPipe Pose (model_complexity 1) on 2 CPU cores. Needs
../shared/data (mgt_dancer.avi: 62.9 s, 25 fps, 518x496).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.timing import print_table, row  # noqa: E402
from kakashi.config import REPO_ROOT, SHARED_DATA  # noqa: E402
from kakashi.pipeline.build import build_dataset  # noqa: E402
from kakashi.pipeline.pose import MediaPipePose, read_frames  # noqa: E402

VIDEO = SHARED_DATA / "video" / "mgt_dancer.avi"
TARGET_FPS = 25.0
CHUNK = 100  # frames per timed chunk


def pose_rates(path: Path, max_frames: int | None, complexity: int) -> tuple[list[float], float, int]:
    """Frames/s of each CHUNK-frame chunk, overall frames/s and frame count (decode included)."""
    stamps = [time.perf_counter()]

    def timed(frames):
        for i, frame in enumerate(frames, 1):
            yield frame
            if i % CHUNK == 0:
                stamps.append(time.perf_counter())

    track = MediaPipePose(model_complexity=complexity).estimate(
        timed(islice(read_frames(path), max_frames)), 25.0)
    total = time.perf_counter() - stamps[0]
    rates = [CHUNK / (b - a) for a, b in zip(stamps, stamps[1:])]
    return rates, len(track.poses) / total, len(track.poses)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="first 10 s of video, one run (CI)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None, help="build workers (default: CPU count)")
    args = parser.parse_args()
    if not VIDEO.is_file():
        print(f"skipped: {VIDEO} not found (the project's shared/data folder)")
        return 0
    runs = 1 if args.quick else args.runs
    max_frames = 250 if args.quick else None
    rows = []
    chunk_rates, overall = [], []
    for _ in range(runs):
        rates, fps, n = pose_rates(VIDEO, max_frames, 1)
        chunk_rates += rates
        overall.append(fps)
    rows.append(row("mediapipe pose, model_complexity=1", [n / f for f in overall], frames=n,
                    fps_median=statistics.median(overall), chunk_fps_median=statistics.median(chunk_rates),
                    target_fps=TARGET_FPS, meets=statistics.median(overall) >= TARGET_FPS))
    print_table(rows, f"Pose estimation on {VIDEO.name} (decode + MediaPipe, {runs} run(s))")

    with tempfile.TemporaryDirectory() as tmp:
        manifest = REPO_ROOT / "data" / "manifests" / "example_local.csv"
        if args.quick:
            manifest = Path(tmp) / "quick.csv"
            manifest.write_text(f"source,start,end,id\n{VIDEO},0,10,quick\n")
        times, video_s, clips = [], 0.0, 0
        for i in range(runs):
            report = build_dataset(manifest, Path(tmp) / f"ds{i}", workers=args.workers, progress=False)
            if report.failed or not report.built:
                print(report.summary())
                return 1
            times.append(report.wall_s)
            video_s = sum(r.video_seconds for r in report.built)
            clips = len(report.built)
    med = statistics.median(times)
    print_table([row(f"build {manifest.name}", times, clips=clips, video_s=video_s,
                     clips_per_min=60 * clips / med, video_s_per_wall_s=video_s / med)],
                "Dataset build throughput (download skipped: local file)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
