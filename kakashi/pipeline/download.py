"""Download videos with yt-dlp's Python API into a cache folder.

A finished download is never fetched again (the file and its `.json` note are the cache);
an interrupted one resumes from its `.part` file. File names come from the URL through
`kakashi.clips.safe_clip_id`, so no title or URL can place a file outside the cache.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from ..clips import safe_clip_id
from ..fileio import write_json
from .manifest import default_clip_id

log = logging.getLogger(__name__)
# Video up to 720p (pose models work on ~256 px) merged with the best audio, or one file with both.
FORMAT = "bv*[height<=720]+ba/b[height<=720]/bv*+ba/b"


class DownloadError(ValueError):
    """A video that could not be downloaded (bad URL, removed video, no network)."""


def cache_name(url: str, playlist_index: int | None = None) -> str:
    """Safe file stem for a URL (and playlist entry): readable part + short hash."""
    digest = hashlib.sha1(f"{url}#{playlist_index}".encode()).hexdigest()[:10]
    try:
        readable = default_clip_id(url, None, None, playlist_index)[:80]
    except ValueError:  # nothing readable in the URL (e.g. watch?v=..): the hash alone names it
        readable = "video"
    return safe_clip_id(f"{readable}-{digest}")


def cached(url: str, cache_dir: str | os.PathLike, playlist_index: int | None = None) -> Path | None:
    """The finished download of `url` in cache_dir, or None."""
    note = Path(cache_dir) / f"{cache_name(url, playlist_index)}.json"
    if not note.is_file():
        return None
    try:
        path = Path(cache_dir) / json.loads(note.read_text())["file"]
    except (ValueError, KeyError, TypeError):
        return None
    return path if path.is_file() and path.parent == Path(cache_dir) else None


def read_note(path: str | os.PathLike) -> dict:
    """What the download recorded about a cached video (title, licence, webpage URL), or {}."""
    note = Path(path).with_suffix(".json")
    try:
        return json.loads(note.read_text()) if note.is_file() else {}
    except ValueError:
        return {}


class _Quiet:
    """yt-dlp logger: its messages go to this module's logger, not to the terminal."""

    def debug(self, msg):
        log.debug(msg)

    def info(self, msg):
        log.debug(msg)

    def warning(self, msg):
        log.info("yt-dlp: %s", msg)

    def error(self, msg):
        log.info("yt-dlp: %s", msg)


def download(url: str, cache_dir: str | os.PathLike, playlist_index: int | None = None,
             allow_file_urls: bool = False) -> Path:
    """Path of the downloaded video of `url` (entry `playlist_index`, 1-based, of a playlist).

    Raises DownloadError naming the URL when yt-dlp fails. file:// URLs need allow_file_urls.
    """
    import yt_dlp

    cache_dir = Path(cache_dir)
    hit = cached(url, cache_dir, playlist_index)
    if hit is not None:
        return hit
    cache_dir.mkdir(parents=True, exist_ok=True)
    stem = cache_name(url, playlist_index)
    options = {
        "outtmpl": str(cache_dir / f"{stem}.%(ext)s"),
        "format": FORMAT,
        "merge_output_format": "mp4/mkv",
        "continuedl": True,
        "noplaylist": playlist_index is None,
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "logger": _Quiet(),
        "retries": 3,
        "enable_file_urls": allow_file_urls,
    }
    if playlist_index is not None:
        options["playlist_items"] = str(playlist_index)
    where = url if playlist_index is None else f"{url} (playlist entry {playlist_index})"
    try:
        with yt_dlp.YoutubeDL(options) as ydl:
            info = ydl.extract_info(url, download=True)
    except yt_dlp.utils.YoutubeDLError as e:
        raise DownloadError(f"{where}: download failed: {_short(e)}") from None
    if info and info.get("entries") is not None:
        entries = [e for e in info["entries"] if e]
        if not entries:
            raise DownloadError(f"{where}: the playlist has no such entry")
        info = entries[0]
    files = [Path(d["filepath"]) for d in (info or {}).get("requested_downloads", []) if d.get("filepath")]
    files = [f for f in files if f.is_file() and f.resolve().parent == cache_dir.resolve()]
    if not files:
        raise DownloadError(f"{where}: download failed: yt-dlp wrote no file")
    note = {"file": files[0].name, "url": url, "playlist_index": playlist_index,
            "title": info.get("title"), "webpage_url": info.get("webpage_url"),
            "uploader": info.get("uploader"), "license": info.get("license"),
            "duration": info.get("duration")}
    write_json(cache_dir / f"{stem}.json", note)  # written last: marks the download finished
    log.info("downloaded %s -> %s", where, files[0].name)
    return files[0]


def _short(error: Exception) -> str:
    text = str(error).replace("ERROR: ", "").strip()
    return text.splitlines()[0] if text else type(error).__name__
