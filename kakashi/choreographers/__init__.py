"""Non-learned choreographers: the bars every learned model must clear.

Each is a function `dance(y, sr, fps, seed=0, dataset=None, heard=None) -> poses [T, 17, 3]`
(metres, y up, global, floor at y = 0, one pose per feature frame of kakashi.audio at `fps`),
deterministic per seed, for any music; `dataset` is the folder of clips it may learn from
(default: the embedded dataset of $KAKASHI_PRESET's preset; only its training split is read);
`heard` the song as `listening.listen` hears it, when already heard:
- `procedural`: the synthetic dataset's own dancer, driven by the song's tracked beats,
  tempo, loudness and sections (kakashi.choreographers.procedural);
- `retrieval`: a motion graph of a dataset's dance segments cut at beats, chosen by the
  similarity of their music to the song's and stitched with cross-fades
  (kakashi.choreographers.retrieval).
"""
from __future__ import annotations

import os
from typing import Callable

import numpy as np

from . import procedural, retrieval
from .listening import listen

CHOREOGRAPHERS: dict[str, Callable[..., np.ndarray]] = {
    "procedural": procedural.dance,
    "retrieval": retrieval.dance,
}


def get_choreographer(name: str) -> Callable[..., np.ndarray]:
    """The choreographer called `name`; ValueError listing the valid names otherwise."""
    if name not in CHOREOGRAPHERS:
        raise ValueError(f"unknown choreographer {name!r}; choose one of {sorted(CHOREOGRAPHERS)}")
    return CHOREOGRAPHERS[name]


def dance_file(name: str, path: str | os.PathLike, fps: float, seed: int = 0,
               dataset: str | os.PathLike | None = None, draws: int | None = None) -> np.ndarray | list[np.ndarray]:
    """Poses [T, 17, 3] of choreographer `name` dancing to the music file `path`; errors name the
    file. With `draws`: that many dances (seeds seed, seed + 1, ...) from one decoding and one
    hearing of the song."""
    from ..audio import SR, load_audio

    choreographer = get_choreographer(name)
    y = load_audio(path, SR)
    try:
        heard = listen(y, SR, fps)
        dances = [choreographer(y, SR, fps, seed=s, dataset=dataset, heard=heard) for s in range(seed, seed + (draws or 1))]
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    return dances if draws else dances[0]
