"""Choosing a checkpoint by how it dances: after each epoch, the model dances to the whole
validation songs it never trained on, and the epoch that meets the most targets
(kakashi.scoring) is kept. Training receives a `DanceJudge` as a callable.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from .dataset import Splits
from .inference import generate_poses
from .scoring import GROUND_TRUTH, TARGETS, TRAIN_TRUTH, WINDOW_S, metric_table, song_beats, targets

SELECT_METRICS = tuple(m for m, _, _ in TARGETS if m != "pfc")  # PFC: the synthetic truth's is ~0


class DanceJudge:
    """judge(model, device) -> {"met": targets met, "miss": summed misses, "values": {metric:
    value}} (plain floats): the model dances to each validation song from its first true pose
    (generation windows of `window` frames, torch seeded with `seed`; torch's global random
    state is left as it was), over the whole song or its first `seconds`, measured against the
    ground truth of the same songs with `targets` (SELECT_METRICS). The ground-truth rows do not
    change while a model trains, so they are measured once, here."""

    def __init__(self, splits: Splits, fps: float, window: int, seed: int = 0, seconds: float | None = None):
        self.val, self.fps, self.window, self.seed = splits.clips["val"], fps, window, seed
        self.frames = [len(c.poses) if seconds is None else min(len(c.poses), int(round(seconds * fps)))
                       for c in self.val]
        self.beats = [b[b < n / fps] for b, n in zip(song_beats(self.val), self.frames)]
        if not any(len(b) for b in self.beats):
            raise ValueError("selecting by dance needs music beats in the validation songs, and none "
                             "were found; select by val_loss instead")
        self.seconds_window = min(WINDOW_S, min(self.frames) / fps)
        train = splits.clips["train"]
        rows = {GROUND_TRUTH: (self._truth(), self.beats),
                TRAIN_TRUTH: ([c.poses for c in train], song_beats(train))}
        self.truth = metric_table(rows, rows[GROUND_TRUTH][0], self.beats, fps, self.seconds_window, progress=False)

    def _truth(self) -> list[np.ndarray]:
        return [c.poses[:n] for c, n in zip(self.val, self.frames)]

    def __call__(self, model, device: str = "cpu") -> dict:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            dances = [generate_poses(model, c.features[:n], c.poses[0], window=self.window, device=device)
                      for c, n in zip(self.val, self.frames)]
        row = metric_table({"model": (dances, self.beats)}, self._truth(), self.beats, self.fps,
                           self.seconds_window, progress=False)
        t = targets(pd.concat([self.truth, row]), "model", SELECT_METRICS)
        return {"met": int(t["met"].sum()), "miss": float(t["miss"].sum()),
                "values": {k: float(v) for k, v in t["value"].items()}}
