"""Interrupted work: training, dataset builds and the loss sweep killed with SIGKILL, then re-run.

Each long job is started as a real command (`python -m kakashi ...`) in its own process group,
killed with SIGKILL part-way, and run again; the result must equal an uninterrupted run.
Commands run with one torch thread, so CPU results repeat exactly between processes.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from kakashi.clips import is_clip, list_clips, read_clip
from kakashi.config import REPO_ROOT
from kakashi.sweep import is_complete
from kakashi.synth import build_dataset

from helpers import descendants, make_clips

DEADLINE_S = 480  # a command that takes longer has hung (the machine may be shared and busy)


def command_env(tmp_path: Path, **extra) -> dict:
    env = {**os.environ, "KAKASHI_RUNS_DIR": str(tmp_path / "runs"), "KAKASHI_DATA_DIR": str(tmp_path / "data"),
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TQDM_DISABLE": "1", "PYTHONHASHSEED": "0"}
    env.update(extra)
    return env


def start(args: list[str], env: dict) -> subprocess.Popen:
    """`python -m kakashi ARGS` in a new process group (so a kill reaches its workers too)."""
    return subprocess.Popen([sys.executable, "-m", "kakashi", *args], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=DEADLINE_S)
    return proc.returncode, out, err


def kill_group(proc: subprocess.Popen, extra_pids: tuple[int, ...] = ()) -> None:
    """SIGKILL the command's process group (and any process it started in its own session)."""
    for pid in extra_pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate(timeout=60)


def wait_for(condition, proc: subprocess.Popen, what: str, poll: float = 0.02):
    t0 = time.monotonic()
    while time.monotonic() - t0 < DEADLINE_S:
        value = condition()
        if value:
            return value
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the command ended (exit {proc.returncode}) before {what}:\n{out}\n{err}")
        time.sleep(poll)
    kill_group(proc)
    raise AssertionError(f"timed out waiting for {what}")


# ----------------------------------------------------------------------------------------------
# training

def epochs_done(history: Path) -> int:
    try:
        return len(json.loads(history.read_text())["epochs"])
    except (OSError, ValueError, KeyError):
        return 0


@pytest.mark.slow
def test_training_killed_mid_epoch_resumes_to_the_same_weights_and_losses(tmp_path):
    data = make_clips(tmp_path / "tiny dataset", n=6, seconds=(8.0, 10.0))
    env = command_env(tmp_path)
    epochs, k = 5, 2

    def train_cmd(name):
        return ["train", "--preset", "smoke", "--dataset", str(data), "--run-name", name, "--epochs", str(epochs)]

    code, out, err = finish(start(train_cmd("straight"), env))
    assert code == 0, err
    straight = json.loads((tmp_path / "runs" / "straight" / "history.json").read_text())
    epoch_s = min(e["seconds"] for e in straight["epochs"])

    history = tmp_path / "runs" / "cut" / "history.json"
    proc = start(train_cmd("cut"), env)
    wait_for(lambda: epochs_done(history) >= k, proc, f"{k} epochs")
    time.sleep(random.Random(0).uniform(0.2, 0.6) * epoch_s)  # epoch k + 1 is under way
    kill_group(proc)
    assert proc.returncode == -signal.SIGKILL
    done = epochs_done(history)
    assert k <= done < epochs, f"the kill should land before the end ({done} of {epochs} epochs done)"
    assert json.loads(history.read_text())["status"] == "running"
    assert torch.load(history.parent / "last.pt", weights_only=True)["epoch"] == done
    assert not [p.name for p in history.parent.iterdir() if p.name.startswith(".")], "temp files left"

    code, out, err = finish(start(train_cmd("cut"), env))  # the same command resumes
    assert code == 0, err
    resumed = json.loads(history.read_text())
    assert resumed["status"] == "completed" and len(resumed["epochs"]) == epochs
    losses = lambda h: [(e["epoch"], e["train_loss"], e["val_loss"]) for e in h["epochs"]]
    assert losses(resumed) == losses(straight)
    assert (resumed["best_epoch"], resumed["best_val_loss"]) == (straight["best_epoch"], straight["best_val_loss"])
    for name in ("last.pt", "best.pt"):
        a = torch.load(tmp_path / "runs" / "straight" / name, weights_only=True)["state_dict"]
        b = torch.load(tmp_path / "runs" / "cut" / name, weights_only=True)["state_dict"]
        assert a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a), name


# ----------------------------------------------------------------------------------------------
# dataset build

SONGS, SECONDS = 8, (3.0, 5.0)


def check_no_half_clip(folder: Path) -> list[str]:
    """Every visible entry is a complete, readable clip; only hidden temp folders may be partial.

    Returns the ids of the complete clips."""
    complete = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            assert entry.name.endswith((".tmp", ".old")), f"unexpected hidden entry {entry.name}"
            continue
        assert entry.is_dir() and is_clip(entry), f"half-written clip {entry}: {sorted(os.listdir(entry))}"
        read_clip(entry)
        complete.append(entry.name)
    assert [p.name for p in list_clips(folder)] == complete  # temp folders are ignored
    return complete


def assert_same_dataset(a: Path, b: Path) -> None:
    ids = [p.name for p in list_clips(a)]
    assert ids == [p.name for p in list_clips(b)] and len(ids) == SONGS
    for clip_id in ids:
        for name in ("clip.npz", "meta.json", "audio.wav"):
            assert (a / clip_id / name).read_bytes() == (b / clip_id / name).read_bytes(), f"{clip_id}/{name}"
        ya, sra = sf.read(a / clip_id / "audio.wav", dtype="float32")
        yb, srb = sf.read(b / clip_id / "audio.wav", dtype="float32")
        assert sra == srb and np.array_equal(ya, yb)


@pytest.fixture(scope="module")
def reference_synth(tmp_path_factory):
    """The dataset an uninterrupted build writes."""
    out = tmp_path_factory.mktemp("synth_reference") / "ds"
    build_dataset(out, SONGS, SECONDS, seed=0, workers=1)
    return out


def synth_cmd(out: Path, workers: int = 1) -> list[str]:
    return ["synth", "--out", str(out), "--songs", str(SONGS), "--seconds", *map(str, SECONDS),
            "--seed", "0", "--workers", str(workers)]


@pytest.mark.slow
def test_synth_killed_at_random_points_resumes_without_redoing_or_half_clips(tmp_path, reference_synth):
    out = tmp_path / "ds"
    env = command_env(tmp_path)
    rng = random.Random(1234)
    mtimes: dict[str, int] = {}
    # kill after a random number of clips, fewer than half: the two workers cannot finish the
    # rest within the random delay (with up to SONGS - 2, a build once finished before the kill)
    for target in sorted(rng.sample(range(1, SONGS // 2), 2)):
        proc = start(synth_cmd(out, workers=2), env)
        wait_for(lambda: out.is_dir() and len(list_clips(out)) >= target, proc, f"{target} clips", poll=0.005)
        time.sleep(rng.uniform(0.0, 0.05))
        kill_group(proc)
        complete = check_no_half_clip(out)
        assert len(complete) < SONGS, "the build finished before the kill: nothing was interrupted"
        for clip_id in complete:
            stamp = (out / clip_id / "clip.npz").stat().st_mtime_ns
            assert mtimes.setdefault(clip_id, stamp) == stamp, f"{clip_id} was written again"

    code, stdout, err = finish(start(synth_cmd(out), env))
    assert code == 0, err
    assert f"{len(mtimes)} already complete" in stdout
    check_no_half_clip(out)
    for clip_id, stamp in mtimes.items():
        assert (out / clip_id / "clip.npz").stat().st_mtime_ns == stamp, f"{clip_id} was written again"
    assert_same_dataset(out, reference_synth)


def test_synth_killed_inside_a_clip_write_leaves_only_a_hidden_temp_folder(tmp_path, reference_synth):
    """A kill that lands between two files of one clip (deterministically: the npz writer kills
    its own process on the third clip) leaves the clip invisible; the re-run completes it."""
    out = tmp_path / "ds"
    script = (
        "import os, signal, sys\n"
        "from kakashi import clips\n"
        "from kakashi.synth import build_dataset\n"
        "real, n = clips.write_npz, [0]\n"
        "def write_npz(path, **arrays):\n"
        "    real(path, **arrays)\n"
        "    n[0] += 1\n"
        "    if n[0] == 3:\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "clips.write_npz = write_npz\n"
        f"build_dataset({str(out)!r}, {SONGS}, {SECONDS!r}, seed=0, workers=1)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=command_env(tmp_path),
                          capture_output=True, text=True, timeout=DEADLINE_S)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert check_no_half_clip(out) == ["synth_000", "synth_001"]
    temp = [p for p in out.iterdir() if p.name.startswith(".synth_002")]
    assert temp and (temp[0] / "clip.npz").is_file() and not (temp[0] / "meta.json").exists()
    before = {c: (out / c / "clip.npz").stat().st_mtime_ns for c in ("synth_000", "synth_001")}

    build_dataset(out, SONGS, SECONDS, seed=0, workers=1)
    assert {c: (out / c / "clip.npz").stat().st_mtime_ns for c in before} == before
    check_no_half_clip(out)
    assert_same_dataset(out, reference_synth)


# ----------------------------------------------------------------------------------------------
# the loss sweep

@pytest.mark.slow
def test_sweep_killed_while_a_loss_runs_reruns_only_that_loss(tmp_path):
    env = command_env(tmp_path)
    runs = tmp_path / "runs"
    args = ["sweep", "--preset", "smoke", "--losses", "mse,l1", "--workers", "1"]
    proc = start(args, env)
    # the first loss completes, the second one's notebook is running: kill everything
    wait_for(lambda: is_complete(runs / "smoke_mse") and (runs / "smoke_l1").is_dir(), proc,
             "the first loss to complete", poll=0.1)
    kill_group(proc, tuple(descendants(proc.pid)))  # the notebook kernel runs in its own session
    assert is_complete(runs / "smoke_mse") and not is_complete(runs / "smoke_l1")
    kept = {p.name: p.stat().st_mtime_ns for p in (runs / "smoke_mse").iterdir()}

    code, out, err = finish(start(args, env))
    assert code == 0, out + err
    status = {line.split()[0]: line.split()[1] for line in out.splitlines() if line.strip().startswith(("mse", "l1"))}
    assert status == {"mse": "skipped", "l1": "completed"}, out
    assert is_complete(runs / "smoke_l1")
    assert {p.name: p.stat().st_mtime_ns for p in (runs / "smoke_mse").iterdir()} == kept
