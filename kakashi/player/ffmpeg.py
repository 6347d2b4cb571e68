"""Raw frames piped into ffmpeg, written whole or not at all.

While ffmpeg writes, the video is `<name>.<pid>.partial` beside its final name (named so a
reader sees it is unfinished; not playable by its suffix); it is renamed on success. On an
exception or SIGTERM ffmpeg is killed and the partial file removed; ffmpeg also dies with
its parent (Linux), and partial files left by a killed process are removed the next time
the same video is written.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Iterable, Iterator

from tqdm.auto import tqdm

PARTIAL = ".partial"   # suffix of a video still being written
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
# x264 speed preset: "ultrafast" encodes about twice as fast as "veryfast" for line drawings on
# white, at the same crf and about three times the bytes (~1.5 MB a minute at 480 px).
X264_PRESET = "ultrafast"
PR_SET_PDEATHSIG = 1   # prctl option (linux/prctl.h): a signal sent to the child when its parent dies


class VideoWriteError(OSError, RuntimeError):
    """ffmpeg could not write the video (full disk, bad codec settings); names the file."""


def ffmpeg_path(path: str | os.PathLike) -> str:
    """A file name ffmpeg reads as a file, never as a protocol (`remix:v2.wav` -> `file:/abs/remix:v2.wav`)."""
    return "file:" + str(Path(path).absolute())


def partial_path(out_path: Path) -> Path:
    """Where `out_path` is written until it is complete."""
    return out_path.with_name(f"{out_path.name}.{os.getpid()}{PARTIAL}")


def remove_stale_partials(out_path: Path) -> list[Path]:
    """Remove partial files of `out_path` whose writing process is gone; returns them."""
    removed = []
    prefix = f"{out_path.name}."
    for path in out_path.parent.glob(f"*{PARTIAL}"):
        pid = path.name[len(prefix):-len(PARTIAL)]
        if not path.name.startswith(prefix) or not pid.isdigit() or _alive(int(pid)):
            continue
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # our own leftovers: nothing of ours writes this file now
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


@contextlib.contextmanager
def stop_signals_held() -> Iterator[None]:
    """Within the block, Ctrl-C and SIGTERM wait: they are noted and raised again as it ends,
    to whatever handled them before (main thread only). Starting ffmpeg and keeping hold of it
    is then one step, so a signal cannot leave it running unseen, writing its file after the
    cleanup has run."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: caught.append(signum)) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        for s in caught:
            signal.raise_signal(s)


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block, SIGTERM raises SystemExit(143) so that cleanup runs (main thread only),
    unless SIGTERM already has a handler (kakashi.cli's unwinds the command and ends the process
    by the signal) or is ignored."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield
        return

    def _exit(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def write_video(frames: Iterable, num_frames: int, size: tuple[int, int], fps: float, out_path: Path,
                audio_path: Path | None, ffmpeg: str, crf: int, log_path: Path, pix_fmt: str = "rgb24",
                progress: bool = True) -> None:
    """Pipe `frames` (buffers of `pix_fmt` pixels, `size` = (width, height)) into an H.264 mp4.

    audio_path: muxed as AAC, padded with silence or cut to num_frames / fps seconds.
    """
    width, height = size
    duration = num_frames / fps
    cmd = [ffmpeg, "-nostdin", "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", pix_fmt,
           "-s", f"{width}x{height}", "-r", f"{fps}", "-i", "pipe:0"]
    if audio_path is not None:
        cmd += ["-i", ffmpeg_path(audio_path), "-map", "0:v", "-map", "1:a:0", "-af", "apad",
                "-c:a", "aac", "-b:a", "160k"]
    cmd += ["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-c:v", "libx264", "-preset", X264_PRESET,
            "-crf", str(int(crf)), "-pix_fmt", "yuv420p", "-t", f"{duration:.6f}",
            "-movflags", "+faststart", "-f", "mp4"]
    remove_stale_partials(out_path)
    tmp = partial_path(out_path)
    proc = None
    try:
        with sigterm_raises(), open(log_path, "wb") as err:
            with stop_signals_held():
                proc = subprocess.Popen(cmd + [ffmpeg_path(tmp)], stdin=subprocess.PIPE, stderr=err,
                                        preexec_fn=_die_with_parent)
            try:
                for frame in tqdm(frames, total=num_frames, desc=f"video {out_path.name}", unit="frame",
                                  disable=not progress):
                    proc.stdin.write(frame)
                proc.stdin.close()
            except BrokenPipeError:
                pass  # ffmpeg stopped early: its exit code and log say why
            code = proc.wait()
        if code != 0:
            message = log_path.read_text(errors="replace").strip().splitlines()[-5:]
            raise VideoWriteError(f"{out_path}: ffmpeg failed (exit {code}): " + " | ".join(message))
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, out_path)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
