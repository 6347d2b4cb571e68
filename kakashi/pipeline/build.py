"""Dance videos -> a dataset of clips, and the `build` command.

Per source: download (URLs), probe, cut at a constant frame rate, estimate 3D poses, check
quality, extract the music, write the clip. Finished clips (and clips rejected earlier)
are skipped, so an interrupted build resumes. Sources run in parallel in a process pool
(or on a Dask cluster given its scheduler address); a failed source is reported with its
reason and the others still build.

    python -m kakashi build data/manifests/example_local.csv --out data/example
"""
from __future__ import annotations

import functools
import json
import logging
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

from tqdm.auto import tqdm

from ..clips import is_clip, write_clip
from ..config import dataset_dir
from ..fileio import write_json
from ..parallel import imap_items
from ..skeleton import FPS
from . import video
from .download import download, read_note
from .manifest import Source, collect_sources
from .pose import MAX_GAP_S, count_frames, get_estimator, postprocess, read_frames
from .quality import FrameSampler, Thresholds, assess, summary

log = logging.getLogger(__name__)
MAX_VIDEO_FPS = 30.0  # faster videos are cut at this rate before pose estimation
REJECTED = ".rejected"  # notes of clips rejected by quality checks (so a re-run skips them)
WORK = ".work"  # temporary cut videos and audio
DOWNLOADS = ".downloads"  # yt-dlp cache
REPORT = "build_report.json"
ROOT_NOTE = ("root-relative: MediaPipe world landmarks are centred on the hips, so the global "
             "trajectory is not recovered; the root stays at one height per clip, the lowest "
             "ankle touching y = 0")


@dataclass(frozen=True)
class BuildSettings:
    """How each source becomes a clip."""

    estimator: str = "mediapipe"
    estimator_settings: tuple = (("model_complexity", 1),)  # (name, value) pairs, hashable
    fps: float = FPS
    max_video_fps: float = MAX_VIDEO_FPS
    max_gap_s: float = MAX_GAP_S
    thresholds: Thresholds = field(default_factory=Thresholds)
    keep_rejected: bool = False
    allow_file_urls: bool = False


@dataclass
class SourceResult:
    """Outcome of one source: status is built | skipped | rejected | failed."""

    clip_id: str
    source: str
    origin: str
    status: str
    message: str = ""
    path: str | None = None
    video_seconds: float = 0.0
    wall_s: float = 0.0

    def line(self) -> str:
        where = f" ({self.origin})" if self.origin else ""
        return f"{self.status:8s} {self.clip_id}{where}" + (f": {self.message}" if self.message else "")


@dataclass
class BuildReport:
    """Every source's outcome plus the manifest rows that could not be read."""

    out_dir: str
    results: list[SourceResult] = field(default_factory=list)
    manifest_errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    def _with(self, status: str) -> list[SourceResult]:
        return [r for r in self.results if r.status == status]

    @property
    def built(self):
        return self._with("built")

    @property
    def skipped(self):
        return self._with("skipped")

    @property
    def rejected(self):
        return self._with("rejected")

    @property
    def failed(self):
        return self._with("failed")

    @property
    def ok(self) -> bool:
        """True when no source failed and every manifest row was readable."""
        return not self.failed and not self.manifest_errors

    def summary(self) -> str:
        lines = [f"manifest: {e}" for e in self.manifest_errors] + [r.line() for r in self.results]
        lines.append(f"{len(self.built)} built, {len(self.skipped)} skipped, {len(self.rejected)} "
                     f"rejected, {len(self.failed)} failed, {len(self.manifest_errors)} bad manifest "
                     f"rows -> {self.out_dir} ({self.wall_s:.1f} s)")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"out_dir": self.out_dir, "ok": self.ok, "wall_s": self.wall_s,
                "manifest_errors": self.manifest_errors, "results": [asdict(r) for r in self.results]}


@functools.lru_cache(maxsize=4)
def _estimator(name: str, settings: tuple):
    return get_estimator(name, **dict(settings))


def build_source(source: Source, out_dir: str | os.PathLike, settings: BuildSettings) -> SourceResult:
    """Turn one source into one clip under out_dir; never raises for a bad source."""
    out_dir = Path(out_dir)
    start_time = time.perf_counter()
    result = SourceResult(source.clip_id, source.source, source.origin, "failed")
    try:
        _build(source, out_dir, settings, result)
    except Exception as e:  # one bad source must not stop the others: report it
        kind = "" if isinstance(e, (ValueError, OSError)) else f"{type(e).__name__}: "
        result.status, result.message = "failed", f"{kind}{e}"
        log.error("%s: %s", source.describe(), result.message)
    result.wall_s = time.perf_counter() - start_time
    return result


def _build(source: Source, out_dir: Path, settings: BuildSettings, result: SourceResult) -> None:
    target = out_dir / source.clip_id
    note = out_dir / REJECTED / f"{source.clip_id}.json"
    if is_clip(target):
        result.status, result.message, result.path = "skipped", "already built", str(target)
        return
    if note.is_file() and not settings.keep_rejected:
        result.status, result.message = "skipped", "rejected earlier: " + json.loads(note.read_text())["reason"]
        return
    downloaded = {}
    if source.is_url:
        path = download(source.source, out_dir / DOWNLOADS, source.playlist_index, settings.allow_file_urls)
        downloaded = read_note(path)
    else:
        path = Path(source.source)
    info = video.probe(path)
    video.check_video(info)
    start, end = video.resolve_cut(info, source.start, source.end)
    fps = min(info.fps, settings.max_video_fps)
    result.video_seconds = end - start
    estimator = _estimator(settings.estimator, settings.estimator_settings)
    (out_dir / WORK).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir / WORK, prefix=f"{source.clip_id}.") as work:
        cut = video.trim(path, Path(work) / "video.mp4", start, end, fps)
        wav = video.extract_audio(path, Path(work) / "audio.wav", start, end)
        sampler = FrameSampler(fps, count_frames(cut))
        raw = estimator.estimate(sampler.wrap(read_frames(cut)), fps)
        quality = assess(raw, sampler, settings.thresholds)
        if not quality["passed"] and not settings.keep_rejected:
            reason = summary(quality)
            write_json(note, {"source": source.source, "origin": source.origin, "reason": reason,
                              "quality": quality})
            result.status, result.message = "rejected", reason
            log.warning("%s: rejected: %s", source.describe(), reason)
            return
        track = postprocess(raw, settings.fps, settings.max_gap_s)
        meta = {
            "source": source.source, "origin": source.origin, "label": source.label,
            "title": downloaded.get("title") or Path(path).stem,
            "webpage_url": downloaded.get("webpage_url"), "playlist_index": source.playlist_index,
            "licence": downloaded.get("license") or source.extra.get("licence") or source.extra.get("license"),
            "cut": {"start": start, "end": end},
            "video": {"fps": info.fps, "duration": info.duration, "width": info.width,
                      "height": info.height, "analysed_fps": fps},
            "generator": getattr(estimator, "generator", estimator.name),
            "generator_settings": {**estimator.settings, "max_gap_s": settings.max_gap_s},
            "root": ROOT_NOTE,
            "detected_fraction": raw.detected_fraction,
            "quality": quality,
            **{k: v for k, v in source.extra.items() if k not in ("licence", "license")},
        }
        target = write_clip(out_dir, source.clip_id, track.poses, track.fps, wav, meta, track.confidence)
    note.unlink(missing_ok=True)
    result.path = str(target)
    if quality["passed"]:
        result.status = "built"
        flagged = quality["flagged"]
        result.message = f"flagged: {summary(quality)}" if flagged else ""
    else:
        result.status, result.message = "rejected", f"kept (--keep-rejected): {summary(quality)}"


def build_dataset(sources, out_dir: str | os.PathLike, workers: int | None = None,
                  settings: BuildSettings | None = None, scheduler: str | None = None,
                  progress: bool = True) -> BuildReport:
    """Build clips from `sources` into out_dir and return (and save) the report.

    sources: a manifest CSV, a folder of videos, a video path or URL, or a list of Source.
    workers: processes (default: CPU count); 1 builds in this process. scheduler: the address
    of a Dask distributed scheduler to run on instead of the local pool.
    """
    settings = settings or BuildSettings()
    out_dir = Path(out_dir)
    start_time = time.perf_counter()
    if isinstance(sources, (str, os.PathLike)):
        sources, manifest_errors = collect_sources(sources)
    else:
        sources, manifest_errors = list(sources), []
    for error in manifest_errors:
        log.error("%s", error)
    report = BuildReport(str(out_dir), manifest_errors=list(manifest_errors))
    pending, seen = [], set()
    for src in sources:
        if src.clip_id in seen:
            report.results.append(SourceResult(src.clip_id, src.source, src.origin, "failed",
                                               f"clip id {src.clip_id!r} is used by another source"))
        elif is_clip(out_dir / src.clip_id):
            report.results.append(SourceResult(src.clip_id, src.source, src.origin, "skipped",
                                               "already built", str(out_dir / src.clip_id)))
        else:
            pending.append(src)
        seen.add(src.clip_id)
    if pending:  # a bad estimator setting is the user's error for the whole build
        _estimator(settings.estimator, settings.estimator_settings)
    out_dir.mkdir(parents=True, exist_ok=True)
    workers = max(1, min(workers or os.cpu_count() or 1, len(pending) or 1))
    bar = tqdm(total=len(pending), desc="build", unit="video", disable=not progress or None)
    jobs = [(src, out_dir, settings) for src in pending]  # MediaPipe cannot be forked: spawned workers
    for _, result in imap_items(build_source, jobs, workers, scheduler, mp_context=get_context("spawn")):
        report.results.append(result)
        bar.set_postfix_str(f"{result.status} {result.clip_id}", refresh=False)
        bar.update()
    bar.close()
    try:
        (out_dir / WORK).rmdir()  # only when empty: nothing else is running there
    except OSError:
        pass
    report.wall_s = time.perf_counter() - start_time
    write_json(out_dir / REPORT, report.to_dict())
    return report


def configure(parser) -> None:
    parser.add_argument("source", help="manifest CSV, folder of videos, video file or URL")
    parser.add_argument("--out", help="dataset folder (default: data/<source name>)")
    parser.add_argument("--workers", type=int, default=None, help="parallel videos (default: CPU count)")
    parser.add_argument("--keep-rejected", action="store_true",
                        help="write clips that fail the quality checks (marked in meta.json)")
    parser.add_argument("--model-complexity", type=int, default=1, choices=(0, 1, 2),
                        help="MediaPipe Pose model (1 ships with mediapipe; 0 and 2 need a download)")
    parser.add_argument("--fps", type=float, default=FPS, help="frame rate of the clips (default 24)")
    parser.add_argument("--scheduler", default=None, help="Dask scheduler address (default: local processes)")
    parser.add_argument("--allow-file-urls", action="store_true", help="let yt-dlp read file:// URLs")


MIN_CLIP_FPS = 1.0  # clip frame rates accepted by --fps: at least one pose a second ...
MAX_CLIP_FPS = 120.0  # ... at most what high-speed phone video gives


def run(args) -> int:
    from ..arguments import check_outputs, check_range

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    check_range("--workers", args.workers, 1, math.inf)
    check_range("--fps", args.fps, MIN_CLIP_FPS, MAX_CLIP_FPS, "frames/s")
    source = str(args.source)
    out = Path(args.out) if args.out else dataset_dir(Path(source.rstrip("/")).stem or "videos")
    local = Path(source) if "://" not in source else None
    if local is not None and not local.exists():
        raise FileNotFoundError(f"{local}: source not found (a manifest CSV, a folder of videos, a video or a URL)")
    check_outputs([("--out", out, None)], inputs=[local])
    settings = BuildSettings(estimator_settings=(("model_complexity", args.model_complexity),),
                             fps=args.fps, keep_rejected=args.keep_rejected,
                             allow_file_urls=args.allow_file_urls)
    report = build_dataset(source, out, workers=args.workers, settings=settings, scheduler=args.scheduler)
    print(report.summary())
    return 0 if report.ok else 1
