"""A small BVH reader: hierarchy + motion -> global joint positions by forward kinematics.

Positions come out in the file's units, in the file's axes (BVH is usually y up). Rotation
channels are applied in the order listed (intrinsic), as the format specifies.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

_AXES = {"Xrotation": "X", "Yrotation": "Y", "Zrotation": "Z"}
_POS = {"Xposition": 0, "Yposition": 1, "Zposition": 2}


@dataclass
class BVH:
    """names [J] (End Sites named '<parent>_end'), parents [J], offsets [J, 3], channels per
    joint, motion [T, C] (degrees and file units), fps."""

    names: list[str]
    parents: list[int]
    offsets: np.ndarray
    channels: list[list[str]]
    motion: np.ndarray
    fps: float

    def positions(self) -> np.ndarray:
        """Global joint positions [T, J, 3] in file units (forward kinematics)."""
        T, J = len(self.motion), len(self.names)
        rot = np.zeros((T, J, 3, 3))
        pos = np.zeros((T, J, 3))
        col = 0
        for j, (parent, chans) in enumerate(zip(self.parents, self.channels)):
            values = self.motion[:, col:col + len(chans)]
            col += len(chans)
            local_t = np.broadcast_to(self.offsets[j], (T, 3)).copy()
            order = "".join(_AXES[c] for c in chans if c in _AXES)
            for k, c in enumerate(chans):
                if c in _POS:
                    local_t[:, _POS[c]] = values[:, k]  # position channels replace the offset
            angles = values[:, [k for k, c in enumerate(chans) if c in _AXES]]
            local_r = Rotation.from_euler(order, angles, degrees=True).as_matrix() if order else np.eye(3)
            if parent < 0:
                rot[:, j], pos[:, j] = local_r, local_t
            else:
                rot[:, j] = rot[:, parent] @ local_r
                pos[:, j] = pos[:, parent] + np.einsum("tij,tj->ti", rot[:, parent], local_t)
        return pos


def read_bvh(path: str | os.PathLike) -> BVH:
    """Parse a BVH file; ValueError naming the file (and line) on a malformed one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: BVH file not found")
    lines = path.read_text(errors="replace").splitlines()
    tokens = [(n + 1, tok) for n, line in enumerate(lines) for tok in line.split()]
    names, parents, offsets, channels = [], [], [], []
    stack: list[int] = []
    pos = 0

    def take() -> tuple[int, str]:
        nonlocal pos
        if pos >= len(tokens):
            raise ValueError(f"{path}: unexpected end of file")
        pos += 1
        return tokens[pos - 1]

    def number(kind=float):
        line, tok = take()
        try:
            return kind(tok)
        except ValueError:
            raise ValueError(f"{path}: line {line}: expected a number, got {tok!r}") from None

    line, tok = take()
    if tok != "HIERARCHY":
        raise ValueError(f"{path}: line {line}: expected HIERARCHY, got {tok!r}")
    while True:
        line, tok = take()
        if tok == "MOTION":
            break
        if tok in ("ROOT", "JOINT", "End"):
            name = take()[1]
            if tok == "End":
                if not names:
                    raise ValueError(f"{path}: line {line}: End Site outside a joint")
                name = f"{names[stack[-1]]}_end"
            names.append(name)
            parents.append(stack[-1] if stack else -1)
            channels.append([])
            offsets.append(np.zeros(3))
        elif tok == "{":
            stack.append(len(names) - 1)
        elif tok == "}":
            if not stack:
                raise ValueError(f"{path}: line {line}: unbalanced '}}'")
            stack.pop()
        elif tok == "OFFSET":
            offsets[-1] = np.array([number() for _ in range(3)])
        elif tok == "CHANNELS":
            chans = [take()[1] for _ in range(number(int))]
            bad = [c for c in chans if c not in _AXES and c not in _POS]
            if bad:
                raise ValueError(f"{path}: line {line}: unknown channel(s) {', '.join(bad)}")
            channels[-1] = chans
        else:
            raise ValueError(f"{path}: line {line}: unexpected {tok!r} in HIERARCHY")
    if not names or stack:
        raise ValueError(f"{path}: unbalanced braces or empty hierarchy")
    if take()[1] != "Frames:":
        raise ValueError(f"{path}: expected 'Frames:' after MOTION")
    frames = number(int)
    if (take()[1], take()[1]) != ("Frame", "Time:"):
        raise ValueError(f"{path}: expected 'Frame Time:' after Frames")
    frame_time = number()
    n_channels = sum(len(c) for c in channels)
    values = [tok for _, tok in tokens[pos:]]
    if len(values) != frames * n_channels:
        raise ValueError(f"{path}: expected {frames} motion rows of {n_channels} values, "
                         f"got {len(values)} values")
    try:
        motion = np.array(values, np.float64).reshape(frames, n_channels)  # [T, C]
    except ValueError:
        raise ValueError(f"{path}: non-numeric motion values") from None
    if frame_time <= 0:
        raise ValueError(f"{path}: bad Frame Time {frame_time}")
    return BVH(names, parents, np.array(offsets), channels, motion, 1.0 / frame_time)
