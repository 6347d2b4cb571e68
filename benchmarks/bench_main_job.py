"""Time the README's main job end to end: dataset, the ten-loss sweep with the default model
(the `vocab` preset) trained beside it (as `make run` does), the analysis notebook.

Runs in a temporary runs folder, which also takes the figures, or in `--runs DIR` (a new folder,
kept: the trained models and 05 with its figures). The dataset under data/ is reused when
complete; its build is timed on its own row. One repetition by default: the job takes minutes.
The last row is the machine's pace: the seconds of each epoch the job trained of the default
model (or, without it, of the mse run), as its history.json records them, which tell a fast
machine from a slow one (the job's time follows that epoch's).

    .venv/bin/python benchmarks/bench_main_job.py [--preset quick] [--repeat 1] [--quick] [--runs DIR]
"""
from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from timing import print_table, row  # noqa: E402

from kakashi.config import get_preset  # noqa: E402
from kakashi.runs import read_history, run_dir_for  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 20 * 60


def timed(cmds: list[list[str]], env: dict) -> float:
    """Seconds until every command, all started at once, has finished."""
    start = time.perf_counter()
    procs = [subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL) for cmd in cmds]
    failed = [cmd for cmd, proc in zip(cmds, procs) if proc.wait() != 0]
    if failed:
        raise RuntimeError(f"failed: {' '.join(failed[0])}")
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="the smoke preset, for a fast check")
    parser.add_argument("--runs", type=Path, help="a new folder for the runs and figures, kept (one repetition)")
    args = parser.parse_args(argv)
    if args.runs:
        in_use = args.runs.exists() and (not args.runs.is_dir() or any(args.runs.iterdir()))
        if in_use or args.repeat != 1:
            parser.error(f"--runs {args.runs}: must be a new or empty folder, with --repeat 1")
        args.runs.mkdir(parents=True, exist_ok=True)
    preset = "smoke" if args.quick else args.preset
    py = sys.executable
    beyond = "" if preset == "smoke" else "vocab"     # as the Makefile's BEYOND
    sweep = "sweep (10 losses)" + (" + the default model" if beyond else "")
    paced = get_preset(beyond or preset, loss="mse")      # the run whose epochs show the pace, as the sweep names it
    pace = f"an epoch of {run_dir_for(paced).name}"
    rows = {"dataset": [], sweep: [], "05_analysis": [], "total": [], pace: []}
    for _ in range(args.repeat):
        with (contextlib.nullcontext(str(args.runs)) if args.runs else tempfile.TemporaryDirectory()) as runs:
            env = {**os.environ, "KAKASHI_PRESET": preset, "KAKASHI_RUNS_DIR": runs, "KAKASHI_FIGURES_DIR": runs,
                   "TQDM_DISABLE": "1"}
            default = [[py, "-m", "kakashi", "sweep", "--preset", beyond, "--losses", "mse", "--workers", "1"]]
            steps = [
                ("dataset", [[py, "-m", "kakashi", "synth", "--preset", preset]]),
                (sweep, [[py, "-m", "kakashi", "sweep", "--preset", preset, "--nice", "10"],   # as the Makefile
                         *(default if beyond else [])]),
                ("05_analysis", [[py, "-m", "papermill", "notebooks/05_analysis.ipynb", str(Path(runs) / "05.ipynb"),
                                  "--cwd", "notebooks", "-p", "figures", runs, "-p", "beyond", f"{beyond},best"]]),
            ]
            total = 0.0
            for name, cmds in steps:
                seconds = timed(cmds, env)
                rows[name].append(seconds)
                total += seconds
            rows["total"].append(total)
            rows[pace] += [e["seconds"] for e in read_history(run_dir_for(paced, runs_dir=runs)).get("epochs", [])]
    print_table([row(name, times, target_s=TARGET_S if name == "total" else "")
                 for name, times in rows.items() if times], title=f"README main job, preset {preset}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
