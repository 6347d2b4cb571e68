"""A killed command leaves no process behind: pool workers end with their parent.

`train` (while it builds the synthetic dataset on a process pool), `build` (pose estimation
on a spawned pool) and `sweep` (workers running the training notebook in Jupyter kernels) are
started as real commands, their workers waited for, and then only the parent is killed with
SIGKILL (no chance to clean up): every process it had started must end.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kakashi.config import REPO_ROOT

from helpers import descendants

DEADLINE_S = 240   # a command that takes longer to start its workers has hung
GRACE_S = 20       # the workers (and a running ffmpeg) have this long to end after the parent


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie, dead but not yet reaped, counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def python_children(pid: int, marker: str = "") -> list[int]:
    """Python processes below `pid` whose command line contains `marker`."""
    found = []
    for child in descendants(pid):
        try:
            argv = Path(f"/proc/{child}/cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if "python" in argv[0] and marker in " ".join(argv):
            found.append(child)
    return found


def kill_parent_when_workers_run(args: list[str], env: dict, workers: int, marker: str = "") -> list[int]:
    """Start `python -m kakashi ARGS`, wait for `workers` Python processes below it (whose
    command line holds `marker`), SIGKILL the parent only; returns the processes it had started."""
    proc = subprocess.Popen([sys.executable, "-m", "kakashi", *args], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    t0 = time.monotonic()
    try:
        while len(python_children(proc.pid, marker)) < workers:
            if proc.poll() is not None:
                pytest.fail(f"the command ended (exit {proc.returncode}) before its workers ran: "
                            f"{proc.stderr.read()[-2000:]}")
            assert time.monotonic() - t0 < DEADLINE_S, "the workers never started"
            time.sleep(0.01)
        started = descendants(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return started


def assert_all_end(started: list[int]) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < GRACE_S and any(alive(p) for p in started):
        time.sleep(0.1)
    left = [p for p in started if alive(p)]
    for pid in left:  # do not leave them to the next test
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert not left, f"{len(left)} of {len(started)} processes outlived their killed parent"


def env_for(tmp_path: Path) -> dict:
    return {**os.environ, "KAKASHI_RUNS_DIR": str(tmp_path / "runs"), "KAKASHI_DATA_DIR": str(tmp_path / "data"),
            "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TQDM_DISABLE": "1"}


def test_train_killed_while_building_its_dataset_leaves_no_worker(tmp_path):
    # the smoke preset's synthetic dataset is built on a two-process pool before training
    started = kill_parent_when_workers_run(["train", "--preset", "smoke", "--run-name", "killed"],
                                           env_for(tmp_path), workers=2)
    assert_all_end(started)


@pytest.mark.slow
def test_build_killed_during_pose_estimation_leaves_no_worker(tmp_path, ffmpeg):
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("a", "b"):
        subprocess.run([ffmpeg, "-v", "error", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25",
                        "-f", "lavfi", "-i", "sine=frequency=440", "-t", "20", "-c:v", "libx264",
                        "-pix_fmt", "yuv420p", "-c:a", "aac", str(videos / f"{name}.mp4")], check=True)
    started = kill_parent_when_workers_run(["build", str(videos), "--out", str(tmp_path / "ds"), "--workers", "2"],
                                           env_for(tmp_path), workers=2)
    assert_all_end(started)


@pytest.mark.slow
def test_sweep_killed_while_notebooks_run_leaves_no_worker_or_kernel(tmp_path):
    started = kill_parent_when_workers_run(["sweep", "--preset", "smoke", "--losses", "mse,l1", "--workers", "2"],
                                           env_for(tmp_path), workers=2, marker="ipykernel")
    assert len(started) >= 4  # two workers, each with its notebook's kernel
    assert_all_end(started)
