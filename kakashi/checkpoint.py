"""Self-describing checkpoints: a model, its sizes, its preset, features and normalisation.

Files load with `torch.load(weights_only=True)`: only tensors and plain Python values, no
pickled code, so a checkpoint from someone else cannot run anything on load.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import torch

from .config import Preset
from .fileio import atomic_path

FORMAT = 1


def save(path: str | os.PathLike, model: torch.nn.Module, preset: Preset, normaliser, seed_pose,
         **extra) -> None:
    """Write a checkpoint atomically. extra: epoch, val_loss, optimizer state, history, ..."""
    state = {
        "format": FORMAT,
        "model": dict(model.config),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "preset": dataclasses.asdict(preset),
        "norm_mean": torch.as_tensor(normaliser.mean),
        "norm_std": torch.as_tensor(normaliser.std),
        "seed_pose": torch.as_tensor(np.asarray(seed_pose, np.float32)),
        **extra,
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def read(path: str | os.PathLike, map_location: str = "cpu") -> dict:
    """Load a checkpoint's contents safely; ValueError naming the file when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: empty file (0 bytes), not a Kakashi checkpoint")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated zip, random bytes, pickled code refused by weights_only
        raise ValueError(f"{path}: not a readable Kakashi checkpoint ({type(e).__name__}: "
                         f"{(str(e).splitlines() or [''])[0][:120]})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT or "model" not in state:
        raise ValueError(f"{path}: not a Kakashi checkpoint (format {FORMAT} expected)")
    return state


def load_model(path: str | os.PathLike, expect_model: str | None = None, device: str = "cpu",
               state: dict | None = None) -> tuple[torch.nn.Module, dict]:
    """Rebuild the model a checkpoint describes and load its weights (eval mode).

    state: the checkpoint's contents when already read (`read(path)`), so it is not read twice.
    """
    from .models import build_model

    state = read(path) if state is None else state
    config = dict(state["model"])
    if expect_model is not None and config.get("name") != expect_model:
        raise ValueError(f"{path}: checkpoint holds model {config.get('name')!r}, expected {expect_model!r}")
    model = build_model(**config)
    try:
        model.load_state_dict(state["state_dict"])
    except RuntimeError as e:
        raise ValueError(f"{path}: weights do not match the model it describes "
                         f"({str(e).splitlines()[0][:160]})") from None
    return model.to(device).eval(), state


def preset_of(state: dict) -> Preset:
    """The Preset a checkpoint was trained with (lists turned back into tuples)."""
    fields = {f.name for f in dataclasses.fields(Preset)}
    deep_tuple = lambda v: tuple(deep_tuple(x) for x in v) if isinstance(v, (list, tuple)) else v
    values = {k: deep_tuple(v) for k, v in state["preset"].items() if k in fields}
    return Preset(**values)


def config_mismatch(saved: dict, wanted: dict, ignore: tuple[str, ...] = ("epochs", "threads")) -> list[str]:
    """Human-readable differences between two preset dicts, ignoring `ignore` fields. A field
    missing from `saved` (a run from before the field existed) counts as its default."""
    defaults = {f.name: f.default for f in dataclasses.fields(Preset)}
    saved = {**{k: v for k, v in defaults.items() if k in wanted}, **saved}
    keys = sorted((set(saved) | set(wanted)) - set(ignore))
    norm = lambda v: json.loads(json.dumps(v))  # tuples and lists compare equal
    return [f"{k}: {norm(saved.get(k))!r} on disk vs {norm(wanted.get(k))!r} asked"
            for k in keys if norm(saved.get(k)) != norm(wanted.get(k))]
