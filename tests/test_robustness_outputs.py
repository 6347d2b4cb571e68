"""Outputs appear whole, together, under their exact names, or not at all: on errors, on
Ctrl-C and SIGTERM, and when two runs write the same outputs at once (kakashi.fileio.output_set)."""
from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from kakashi import clips
from kakashi.config import REPO_ROOT, get_preset
from kakashi.dataset import load_splits
from kakashi.fileio import atomic_path, output_set
from kakashi.train import train

from helpers import make_clips

DEADLINE_S = 240  # a command that takes longer has hung (the machine may be shared and busy)


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or ".tmp" in p.name)


def test_output_set_renames_all_outputs_together(tmp_path):
    out = tmp_path / "out"
    (tmp_path / "target.bvh").write_text("earlier")
    out.mkdir()
    (out / "link.bvh").symlink_to(tmp_path / "target.bvh")
    with output_set([out / "a.NPZ", out / "link.bvh"]) as (npz, bvh):
        assert npz.suffix == ".npz" and npz.parent == out and bvh.parent == tmp_path
        np.savez(npz, x=np.arange(3))
        bvh.write_text("new")
        assert sorted(p.name for p in out.iterdir()) == sorted([npz.name, "link.bvh"])  # nothing final yet
    assert np.load(out / "a.NPZ")["x"].tolist() == [0, 1, 2]
    assert (out / "link.bvh").is_symlink() and (tmp_path / "target.bvh").read_text() == "new"
    assert not hidden(out) and not hidden(tmp_path)


@pytest.mark.parametrize("stop", [ValueError("bad"), KeyboardInterrupt()], ids=["error", "ctrl-c"])
def test_output_set_leaves_nothing_when_stopped(tmp_path, stop):
    (tmp_path / "b.bvh").write_text("earlier")
    with pytest.raises(type(stop)):
        with output_set([tmp_path / "new" / "folders" / "a.npz", tmp_path / "b.bvh"]) as (npz, bvh):
            np.savez(npz, x=np.arange(3))
            bvh.write_text("half")
            raise stop
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.bvh"]
    assert (tmp_path / "b.bvh").read_text() == "earlier"


def test_output_set_refuses_a_missing_output(tmp_path):
    with pytest.raises(OSError, match=r"b\.bvh: nothing was written"):
        with output_set([tmp_path / "a.npz", tmp_path / "b.bvh"]) as (npz, _):
            np.savez(npz, x=np.arange(3))
    assert list(tmp_path.iterdir()) == []


def test_numpy_suffix_twin_becomes_the_exact_name(tmp_path):
    for name in ("dance", "dance.NPZ", "dance.Npz"):
        with atomic_path(tmp_path / name) as tmp:
            np.savez(tmp, poses=np.ones((2, 17, 3)))   # numpy appends .npz to names not ending in it
        with np.load(tmp_path / name) as data:
            assert data["poses"].shape == (2, 17, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dance", "dance.NPZ", "dance.Npz"]


def test_a_second_run_waits_for_the_folder_lock(tmp_path):
    """The renames run under an flock on the output folder: while another holder has it, no
    output appears; once released, the whole set does."""
    out = tmp_path / "out"
    out.mkdir()
    fd = os.open(out, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    done = threading.Event()

    def write():
        with output_set([out / "a.npz", out / "a.bvh"]) as (npz, bvh):
            npz.write_bytes(b"run 2")
            bvh.write_bytes(b"run 2")
        done.set()

    thread = threading.Thread(target=write)
    thread.start()
    try:
        time.sleep(0.5)
        assert not done.is_set() and not (out / "a.npz").exists() and not (out / "a.bvh").exists()
    finally:
        os.close(fd)
    thread.join(10)
    assert done.is_set() and (out / "a.npz").read_bytes() == (out / "a.bvh").read_bytes() == b"run 2"


# ----------------------------------------------------------------------------------------------
# signals: the command unwinds, removes its temporaries, writes no output and ends by the signal

@pytest.fixture(scope="module")
def model_and_song(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("signals")
    preset = get_preset("smoke", seq_len=24, stride=12, hidden=8, batch_size=4, epochs=1)
    train(preset, root / "run", splits=load_splits(make_clips(root / "ds", n=4), preset), progress=False)
    t = np.arange(30 * clips.SR) / clips.SR
    sf.write(root / "song.wav", (0.3 * np.sin(2 * np.pi * 330 * t) * (1 + np.sin(2 * np.pi * 2 * t))).astype(np.float32),
             clips.SR)
    return root / "run" / "best.pt", root / "song.wav"


def _interruptible() -> None:
    """In the child before exec: Ctrl-C's default action, even when the test runner was started
    in the background (a shell's background jobs ignore SIGINT, and a child inherits that)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, -signal.SIGTERM), (signal.SIGINT, 130)],
                         ids=["SIGTERM", "SIGINT"])
def test_a_signal_during_writing_leaves_no_output(tmp_path, model_and_song, signum, status, ffmpeg):
    ckpt, song = model_and_song
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "kakashi", "choreograph", str(song), "-c", str(ckpt),
                             "--npz", str(out / "d.npz"), "--bvh", str(out / "d.bvh"), "-o", str(out / "d.mp4"),
                             "--size", "1024"],  # large frames: the video is still being written at the signal
                            cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_interruptible)
    t0 = time.monotonic()
    while not any(n.endswith(".partial") for n in os.listdir(out)):  # npz and bvh staged, ffmpeg writing
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - t0 < DEADLINE_S, "the video was not started"
        time.sleep(0.005)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=DEADLINE_S)
    assert proc.returncode == status, err
    assert err.strip().splitlines()[-1] in ("kakashi choreograph: terminated", "kakashi choreograph: interrupted")
    assert "Traceback" not in err
    assert os.listdir(out) == [], "a temporary or partial output was left"


def test_a_signal_while_ffmpeg_starts_arrives_once_the_process_is_held():
    """A stop signal that lands while ffmpeg is being started is delivered after `proc` is held,
    so the cleanup kills ffmpeg before removing its partial file (unheld, ffmpeg ran on and
    wrote the file after the cleanup)."""
    from kakashi.player.ffmpeg import stop_signals_held

    class Stopped(Exception):
        pass

    def stop(signum, frame):
        raise Stopped

    previous = signal.signal(signal.SIGTERM, stop)
    reached = False
    try:
        with pytest.raises(Stopped):
            with stop_signals_held():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)
                reached = True
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert reached
