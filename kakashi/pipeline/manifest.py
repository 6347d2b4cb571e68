"""Video lists with cuts: manifests (CSV), folders of videos, single videos -> Source items.

A manifest has the columns `source` (URL or path), `start`, `end` (seconds or [H:]M:SS; empty =
whole video) and optionally `label`, `id` and `playlist_index` (1-based entry of a playlist
URL). Relative paths resolve against the manifest's folder. A bad row is reported and
skipped; a duplicate row is reported and built once.
"""
from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from ..clips import safe_clip_id

VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv")
COLUMNS = ("source", "start", "end", "label", "id", "playlist_index")


@dataclass(frozen=True)
class Source:
    """One video to turn into one clip. start/end in seconds (None = from the start / to the end)."""

    source: str
    start: float | None = None
    end: float | None = None
    label: str = ""
    clip_id: str = ""
    playlist_index: int | None = None
    origin: str = ""  # "manifest.csv line 4", for messages
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def is_url(self) -> bool:
        return is_url(self.source)

    @property
    def key(self) -> tuple:
        """Identity of the cut: two rows with the same key build the same clip."""
        return (self.source, self.playlist_index, self.start, self.end)

    def describe(self) -> str:
        where = f" ({self.origin})" if self.origin else ""
        return f"{self.clip_id or self.source}{where}"


def is_url(text: str) -> bool:
    return urlparse(str(text)).scheme in ("http", "https", "file", "ftp")


def parse_time(text: str | float | None) -> float | None:
    """'75', '75.5', '1:15', '0:01:15' -> seconds; '' or None -> None; ValueError otherwise."""
    if text is None:
        return None
    text = str(text).strip()
    if not text:
        return None
    parts = text.split(":")
    if len(parts) > 3:
        raise ValueError(f"bad time {text!r} (use seconds or [H:]M:SS)")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"bad time {text!r} (use seconds or [H:]M:SS)") from None
    if any(v < 0 for v in values) or any(v >= 60 for v in values[1:]):
        raise ValueError(f"bad time {text!r} (use seconds or [H:]M:SS)")
    seconds = 0.0
    for v in values:
        seconds = seconds * 60 + v
    return seconds


def default_clip_id(source: str, start: float | None, end: float | None,
                    playlist_index: int | None = None) -> str:
    """A readable, safe clip id: the video's name (or URL's video id), entry and cut."""
    if is_url(source):
        url = urlparse(source)
        query = parse_qs(url.query)
        name = (query.get("v") or query.get("list") or [Path(url.path).stem or url.netloc])[0]
        if playlist_index is None and not query.get("v"):
            name += "_" + hashlib.sha1(source.encode()).hexdigest()[:6]
    else:
        name = Path(source).stem
    if playlist_index is not None:
        name += f"_{playlist_index:03d}"
    if start is not None or end is not None:
        name += f"_{_fmt(start or 0.0)}-{_fmt(end) if end is not None else 'end'}"
    return safe_clip_id(name)


def _fmt(seconds: float) -> str:
    return f"{seconds:g}".replace(".", "p")


def _make_source(row: dict, base: Path, origin: str) -> Source:
    raw = (row.get("source") or "").strip()
    if not raw:
        raise ValueError("empty source")
    source = raw if is_url(raw) else str((base / os.path.expanduser(raw)).resolve())
    start, end = parse_time(row.get("start")), parse_time(row.get("end"))
    if start is not None and end is not None and end <= start:
        raise ValueError(f"end {row.get('end')!r} is not after start {row.get('start')!r}")
    index_text = (row.get("playlist_index") or "").strip()
    playlist_index = None
    if index_text:
        if not index_text.isdigit() or int(index_text) < 1:
            raise ValueError(f"bad playlist_index {index_text!r} (a whole number from 1)")
        playlist_index = int(index_text)
    given = (row.get("id") or "").strip()
    clip_id = safe_clip_id(given) if given else default_clip_id(source, start, end, playlist_index)
    extra = {k: v for k, v in row.items() if k and k not in COLUMNS and v not in (None, "")}
    return Source(source=source, start=start, end=end, label=(row.get("label") or "").strip(),
                  clip_id=clip_id, playlist_index=playlist_index, origin=origin, extra=extra)


def read_manifest(path: str | os.PathLike) -> tuple[list[Source], list[str]]:
    """Sources of a manifest CSV and the list of row problems (each naming the file and line).

    Raises FileNotFoundError / ValueError only when the file as a whole is unusable.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: manifest not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text (UTF-8) CSV file") from None
    reader = csv.DictReader(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    columns = [c.strip() for c in reader.fieldnames or []]
    if "source" not in columns:
        raise ValueError(f"{path}: manifest needs a 'source' column (columns: {', '.join(COLUMNS)})")
    reader.fieldnames = columns
    sources: list[Source] = []
    errors: list[str] = []
    seen_keys: dict[tuple, str] = {}
    seen_ids: dict[str, str] = {}
    data_lines = [i + 1 for i, line in enumerate(text.splitlines())
                  if line.strip() and not line.lstrip().startswith("#")][1:]
    for line_no, row in zip(data_lines, reader):
        origin = f"{path.name} line {line_no}"
        if None in row:
            errors.append(f"{path}: line {line_no}: too many fields ({len(columns) + len(row[None])}"
                          f" for {len(columns)} columns); row skipped")
            continue
        try:
            src = _make_source(row, path.parent, origin)
        except ValueError as e:
            errors.append(f"{path}: line {line_no}: {e}; row skipped")
            continue
        if src.key in seen_keys:
            errors.append(f"{path}: line {line_no}: duplicate of {seen_keys[src.key]}; built once")
            continue
        if src.clip_id in seen_ids:
            errors.append(f"{path}: line {line_no}: id {src.clip_id!r} already used by "
                          f"{seen_ids[src.clip_id]}; row skipped")
            continue
        seen_keys[src.key] = seen_ids[src.clip_id] = origin
        sources.append(src)
    return sources, errors


def collect_sources(path: str | os.PathLike) -> tuple[list[Source], list[str]]:
    """Sources from a manifest CSV, a folder of videos (whole videos) or a single video or URL."""
    text = str(path)
    if is_url(text):
        return [Source(source=text, clip_id=default_clip_id(text, None, None), origin="command line")], []
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such manifest, folder or video")
    if path.is_dir():
        videos = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
        if not videos:
            raise ValueError(f"{path}: folder has no videos ({', '.join(VIDEO_SUFFIXES)})")
        return [Source(source=str(v.resolve()), clip_id=default_clip_id(str(v), None, None),
                       label=path.name, origin=v.name) for v in videos], []
    if path.suffix.lower() in (".csv", ".tsv", ".txt"):
        return read_manifest(path)
    return [Source(source=str(path.resolve()), clip_id=default_clip_id(str(path), None, None),
                   origin=path.name)], []
