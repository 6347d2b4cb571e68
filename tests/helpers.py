"""Small data builders and process helpers shared by the tests."""
from pathlib import Path

import numpy as np

from kakashi import clips


def make_clips(root, n=6, seconds=(4.0, 6.0), fps=24.0, seed=0):
    """n small clips: a tone-and-pulse song and a dancer whose hip bobs (global positions)."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        dur = rng.uniform(*seconds)
        t = np.arange(int(dur * clips.SR)) / clips.SR
        song = 0.3 * np.sin(2 * np.pi * (200 + 40 * i) * t) * (1 + np.sin(2 * np.pi * 2 * t))
        frames = int(round(dur * fps))
        poses = np.tile(rng.normal(size=(1, 17, 3)) * 0.2, (frames, 1, 1))
        poses[:, :, 1] += 1.0 + 0.05 * np.sin(2 * np.pi * np.arange(frames) / fps)[:, None]
        clips.write_clip(root, f"clip_{i:02d}", poses, fps, song.astype(np.float32),
                         {"source": "test", "style": "test", "tempo": 120})
    return root


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` (read from /proc), children first."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def overfit(model, audio, poses, steps: int, lr: float = 3e-3) -> list[float]:
    """Train `model` on one batch (audio [T, B, F], poses [T, B, 17, 3]) with full teacher
    forcing and Adam for `steps` steps; the objective after each step's forward, as floats."""
    import torch

    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = model.objective(model(audio, poses[0], target=poses, teacher_forcing=1.0), poses)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    return losses
