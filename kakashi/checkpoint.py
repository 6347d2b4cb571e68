"""Self-describing checkpoints: a model, its sizes, its preset, features and normalisation.

Files load with `torch.load(weights_only=True)`: only tensors and plain Python values, no
pickled code, so a checkpoint from someone else cannot run anything on load.
"""
from __future__ import annotations

import dataclasses
import json
import math
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
    validate(state, path)
    return state


REQUIRED = {"model": dict, "state_dict": dict, "preset": dict, "norm_mean": torch.Tensor,
            "norm_std": torch.Tensor, "seed_pose": torch.Tensor}  # what `save` writes
POSE_SHAPE = (17, 3)  # the seed pose: H36M-17 joints, metres


def validate(state: dict, path: str | os.PathLike) -> None:
    """ValueError naming `path` when a checkpoint of the right format misses a field or holds
    values generation cannot use: a model without a name or feature count, a normalisation of
    another length, with a zero, negative or non-finite spread, a preset that does not load,
    a non-positive frame rate or window, a seed pose that is not [17, 3] finite metres."""
    bad = lambda problem: ValueError(f"{path}: damaged Kakashi checkpoint: {problem}")
    for key, kind in REQUIRED.items():
        if key not in state:
            raise bad(f"no {key!r} field")
        if not isinstance(state[key], kind):
            raise bad(f"{key!r} is a {type(state[key]).__name__}, not a {kind.__name__}")
    model = state["model"]
    if not isinstance(model.get("name"), str):
        raise bad("the model has no name")
    in_dim = model.get("in_dim")
    if not isinstance(in_dim, int) or isinstance(in_dim, bool) or in_dim < 1:
        raise bad(f"the model's feature count in_dim is {in_dim!r}")
    mean, std = state["norm_mean"], state["norm_std"]
    for name, t in (("norm_mean", mean), ("norm_std", std)):
        if tuple(t.shape) != (in_dim,):
            raise bad(f"{name} has shape {list(t.shape)}, the model reads {in_dim} features")
        if not torch.isfinite(t).all():
            raise bad(f"{name} holds NaN or infinite values")
    if not (std > 0).all():
        raise bad(f"norm_std has {int((std <= 0).sum())} zero or negative value(s): features cannot "
                  "be normalised")
    if tuple(state["seed_pose"].shape) != POSE_SHAPE or not torch.isfinite(state["seed_pose"]).all():
        raise bad(f"seed_pose must be finite {list(POSE_SHAPE)}, got shape {list(state['seed_pose'].shape)}")
    try:
        preset = preset_of(state)
    except (TypeError, ValueError) as e:
        raise bad(f"its preset does not load ({e})") from None
    if not (isinstance(preset.fps, (int, float)) and preset.fps > 0 and math.isfinite(preset.fps)):
        raise bad(f"frame rate {preset.fps!r} in its preset")
    if not (isinstance(preset.seq_len, int) and preset.seq_len >= 1):
        raise bad(f"window length seq_len {preset.seq_len!r} in its preset")
    from .audio import FEATURE_DIMS

    if preset.features not in FEATURE_DIMS:
        raise bad(f"unknown feature kind {preset.features!r} in its preset (one of {sorted(FEATURE_DIMS)})")


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
    try:
        model = build_model(**config)
    except (TypeError, ValueError) as e:  # sizes or options the model does not accept
        raise ValueError(f"{path}: the model it describes cannot be built ({str(e).splitlines()[0][:160]})") from None
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


def config_mismatch(saved: dict, wanted: dict, ignore: tuple[str, ...] = ("epochs", "polish", "threads")) -> list[str]:
    """Human-readable differences between two preset dicts, ignoring `ignore` fields. A field
    missing from `saved` (a run from before the field existed) counts as its default."""
    defaults = {f.name: f.default for f in dataclasses.fields(Preset)}
    saved = {**{k: v for k, v in defaults.items() if k in wanted}, **saved}
    keys = sorted((set(saved) | set(wanted)) - set(ignore))
    norm = lambda v: json.loads(json.dumps(v))  # tuples and lists compare equal
    return [f"{k}: {norm(saved.get(k))!r} on disk vs {norm(wanted.get(k))!r} asked"
            for k in keys if norm(saved.get(k)) != norm(wanted.get(k))]
