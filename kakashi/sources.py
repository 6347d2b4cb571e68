"""One entry point for every kind of source a dataset can be built from (notebook 01).

`synth` (the embedded dataset), a video manifest (.csv with a `source` column), a folder of
videos or one video (kakashi.pipeline), or an existing dataset (kakashi.loaders: the original
Kakashi layout, AIST++ keypoints, BVH files, SMPL-joint CSVs).
"""
from __future__ import annotations

from pathlib import Path

from .config import Preset, dataset_dir
from .pipeline.manifest import VIDEO_SUFFIXES


def kind_of(source: str) -> str:
    """'synth', 'videos' (manifest, folder of videos, a video or URL) or 'dataset'."""
    if source == "synth":
        return "synth"
    if "://" in source:
        return "videos"
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"{source}: no such file or folder")
    if path.is_file():
        if path.suffix.lower() in VIDEO_SUFFIXES:
            return "videos"
        if path.suffix.lower() == ".csv" and path.read_text(errors="replace").lstrip().lower().startswith("source"):
            return "videos"
        return "dataset"
    if any(p.suffix.lower() in VIDEO_SUFFIXES for p in path.iterdir()):
        return "videos"
    return "dataset"


def build(source: str, preset: Preset, dataset: str | None = None, workers: int | None = None) -> Path:
    """Build (or finish building) the dataset `source` describes; returns its folder.

    The output is data/<dataset>, defaulting to the preset's dataset for `synth` and to the
    source's name otherwise. Finished clips are kept, so a re-run only builds what is missing.
    """
    kind = kind_of(source)
    if kind == "synth":
        from dataclasses import replace

        from .synth import ensure_dataset

        return ensure_dataset(replace(preset, dataset=dataset) if dataset else preset)
    out = dataset_dir(dataset or Path(source.rstrip("/")).stem)
    if kind == "videos":
        from .pipeline.build import build_dataset

        report = build_dataset(source, out, workers=workers)
        print(report.summary())
    else:
        from .loaders import load_dataset

        load_dataset(source, out)
    return out


def preset_dataset(preset: Preset) -> Path:
    """The preset's dataset folder (data/<preset.dataset>), the embedded synthetic dataset
    built there when missing or incomplete (a folder of other clips is returned as is)."""
    from .synth import ensure_dataset

    return ensure_dataset(preset)
