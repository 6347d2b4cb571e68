"""Time the README's main job end to end: dataset, the ten-loss sweep, the analysis notebook.

Runs in a temporary runs folder (the dataset under data/ is reused when complete, and its
build is timed on its own row). One repetition by default: the job takes minutes.

    .venv/bin/python benchmarks/bench_main_job.py [--preset quick] [--repeat 1] [--quick]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from timing import print_table, row  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 20 * 60


def timed(cmd: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="the smoke preset, for a fast check")
    args = parser.parse_args(argv)
    preset = "smoke" if args.quick else args.preset
    py = sys.executable
    rows = {"dataset": [], "sweep (10 losses)": [], "05_analysis": [], "total": []}
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as runs:
            env = {**os.environ, "KAKASHI_PRESET": preset, "KAKASHI_RUNS_DIR": runs, "TQDM_DISABLE": "1"}
            steps = [
                ("dataset", [py, "-m", "kakashi", "synth", "--preset", preset]),
                ("sweep (10 losses)", [py, "-m", "kakashi", "sweep", "--preset", preset]),
                ("05_analysis", [py, "-m", "papermill", "notebooks/05_analysis.ipynb",
                                 str(Path(runs) / "05.ipynb"), "--cwd", "notebooks", "-p", "figures", runs]),
            ]
            total = 0.0
            for name, cmd in steps:
                seconds = timed(cmd, env)
                rows[name].append(seconds)
                total += seconds
            rows["total"].append(total)
    print_table([row(name, times, target_s=TARGET_S if name == "total" else "")
                 for name, times in rows.items()], title=f"README main job, preset {preset}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
