"""ffprobe / ffmpeg: probe a video, cut it at a constant frame rate, extract its audio.

Every error names the file and the problem (missing file, unreadable or corrupt video,
no video stream, no audio track, a cut outside the video).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..clips import SR
from ..fileio import atomic_path

MAX_HEIGHT = 720  # trimmed videos are scaled down to at most this many rows (pose models use ~256)
CUT_TOLERANCE_S = 0.5  # a cut may end this far past the probed duration (container rounding)


@dataclass(frozen=True)
class VideoInfo:
    """What ffprobe says about a media file. duration in seconds, fps in frames per second."""

    path: Path
    duration: float
    fps: float
    width: int
    height: int
    has_video: bool
    has_audio: bool


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise FileNotFoundError(f"{name} is not installed (needed to read videos; see the README set-up)")
    return path


def _run(cmd: list[str], what: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        detail = lines[-1] if lines else f"exit status {proc.returncode}"
        raise ValueError(f"{what}: {detail}")
    return proc


def _rate(text: str | None) -> float:
    try:
        num, _, den = (text or "0/0").partition("/")
        return float(num) / float(den or 1)
    except (ValueError, ZeroDivisionError):
        return 0.0


def probe(path: str | os.PathLike) -> VideoInfo:
    """Duration, frame rate, size and streams of a media file (ffprobe)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: video file not found")
    proc = _run([_tool("ffprobe"), "-v", "error", "-print_format", "json", "-show_streams",
                 "-show_format", str(path)], f"{path}: unreadable or corrupt video")
    data = json.loads(proc.stdout or "{}")
    streams = data.get("streams", [])
    video = [s for s in streams if s.get("codec_type") == "video"
             and not s.get("disposition", {}).get("attached_pic")]
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    v = video[0] if video else {}
    fps = _rate(v.get("avg_frame_rate")) or _rate(v.get("r_frame_rate"))
    duration = float(data.get("format", {}).get("duration") or v.get("duration") or 0.0)
    return VideoInfo(path=path, duration=duration, fps=fps, width=int(v.get("width", 0)),
                     height=int(v.get("height", 0)), has_video=bool(video), has_audio=bool(audio))


def check_video(info: VideoInfo, need_audio: bool = True) -> None:
    """Raise ValueError when the file cannot give a dance clip (no picture, no music, no length)."""
    if not info.has_video:
        raise ValueError(f"{info.path}: no video stream (an audio-only or non-video file)")
    if info.fps <= 0 or info.duration <= 0:
        raise ValueError(f"{info.path}: corrupt video (no frame rate or duration)")
    if need_audio and not info.has_audio:
        raise ValueError(f"{info.path}: no audio track (a dance clip needs its music)")


def resolve_cut(info: VideoInfo, start: float | None, end: float | None) -> tuple[float, float]:
    """The cut [start, end] in seconds, defaulting to the whole video; ValueError when outside it."""
    start = 0.0 if start is None else float(start)
    end = info.duration if end is None else float(end)
    if start < 0 or end <= start:
        raise ValueError(f"{info.path}: bad cut {start:g}-{end:g} s (needs 0 <= start < end)")
    if start >= info.duration or end > info.duration + CUT_TOLERANCE_S:
        raise ValueError(f"{info.path}: cut {start:g}-{end:g} s is outside the video "
                         f"(duration {info.duration:.2f} s)")
    return start, min(end, info.duration)


def trim(path: str | os.PathLike, out: str | os.PathLike, start: float, end: float,
         fps: float, max_height: int = MAX_HEIGHT) -> Path:
    """Cut [start, end] s of a video into `out` (H.264, no audio) at a constant `fps`.

    Frame k of the output shows time start + k / fps of the source. Frames taller than
    max_height rows are scaled down (aspect kept).
    """
    out = Path(out)
    vf = f"fps={fps:.6f},scale=-2:'min({max_height},ih)'"
    with atomic_path(out) as tmp:
        _run([_tool("ffmpeg"), "-nostdin", "-v", "error", "-y", "-ss", f"{start:.3f}", "-i", str(path),
              "-t", f"{end - start:.3f}", "-an", "-vf", vf, "-c:v", "libx264", "-preset", "ultrafast",
              "-crf", "18", "-pix_fmt", "yuv420p", str(tmp)], f"{path}: cannot trim the video")
    return out


def extract_audio(path: str | os.PathLike, out: str | os.PathLike, start: float | None = None,
                  end: float | None = None, sr: int = SR) -> Path:
    """The audio of [start, end] s as a mono wav at `sr` Hz (16-bit)."""
    out = Path(out)
    cut = []
    if start is not None:
        cut += ["-ss", f"{start:.3f}"]
    cut_to = [] if end is None else ["-t", f"{end - (start or 0.0):.3f}"]
    with atomic_path(out) as tmp:
        _run([_tool("ffmpeg"), "-nostdin", "-v", "error", "-y", *cut, "-i", str(path), *cut_to,
              "-vn", "-ac", "1", "-ar", str(sr), "-c:a", "pcm_s16le", str(tmp)],
             f"{path}: cannot extract the audio")
    return out
