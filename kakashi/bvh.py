"""BVH files: read, write (text), and forward kinematics to joint positions. One module, used
by the loaders (motion capture in) and the exporter (dances out).

A channel applies in the order listed (intrinsic rotations, R = R1 @ R2 @ R3, as BVH readers
apply them); position channels give the joint's translation from its parent in place of its
OFFSET (Blender's reading: a root with Xposition Yposition Zposition is where they say).
Positions come out in the file's units and axes (BVH is usually y up, centimetres).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

AXES = "XYZ"


@dataclass
class BVH:
    """A parsed BVH file. offsets [J, 3] and motion [T, C] are in file units, angles in degrees.

    channels[j] lists joint j's channel names in file order; motion's columns follow the joints
    in order. end_sites maps a joint to its End Site offset [3]. Several roots are allowed.
    """

    names: list[str]
    parents: list[int]
    offsets: np.ndarray
    channels: list[list[str]]
    motion: np.ndarray
    frame_time: float
    end_sites: dict[int, np.ndarray] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return len(self.motion)

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time

    def joint_names(self, end_sites: bool = False) -> list[str]:
        """Joint names, then (end_sites) one '<joint>_end' per End Site, as `positions` orders them."""
        return list(self.names) + ([f"{self.names[j]}_end" for j in sorted(self.end_sites)] if end_sites else [])

    def positions(self, scale: float = 1.0, end_sites: bool = False) -> np.ndarray:
        """Forward kinematics: joint positions [T, J, 3] (file units x scale); with `end_sites`,
        the End Sites' positions follow the joints' (joint_names(True) names them)."""
        T, J = self.num_frames, len(self.names)
        positions = np.zeros((T, J, 3))
        rot = np.zeros((T, J, 3, 3))
        column = 0
        for j, parent in enumerate(self.parents):
            translation = np.tile(np.asarray(self.offsets[j], np.float64), (T, 1))  # [T, 3]
            local = np.broadcast_to(np.eye(3), (T, 3, 3))
            for name in self.channels[j]:
                values = self.motion[:, column]
                column += 1
                if name.endswith("position"):
                    translation[:, AXES.index(name[0])] = values
                else:
                    local = local @ axis_rotation(name[0], values)
            if parent < 0:
                rot[:, j], positions[:, j] = local, translation
            else:
                rot[:, j] = rot[:, parent] @ local
                positions[:, j] = positions[:, parent] + np.einsum("tij,tj->ti", rot[:, parent], translation)
        if end_sites and self.end_sites:
            ends = [positions[:, j] + np.einsum("tij,j->ti", rot[:, j], self.end_sites[j]) for j in sorted(self.end_sites)]
            positions = np.concatenate([positions, np.stack(ends, axis=1)], axis=1)
        return positions * scale


def axis_rotation(axis: str, degrees: np.ndarray) -> np.ndarray:
    """Rotations [T, 3, 3] about the x, y or z axis by angles [T] in degrees."""
    t = np.radians(degrees)
    c, s = np.cos(t), np.sin(t)
    r = np.zeros(t.shape + (3, 3))
    i, j = {"X": (1, 2), "Y": (2, 0), "Z": (0, 1)}[axis]
    r[..., 3 - i - j, 3 - i - j] = 1.0
    r[..., i, i], r[..., j, j], r[..., i, j], r[..., j, i] = c, c, -s, s
    return r


def read_bvh(path: str | os.PathLike) -> BVH:
    """Parse a BVH file; ValueError naming the file (and line) when malformed."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: BVH file not found")
    text = path.read_text(errors="replace")
    parts = re.split(r"^\s*MOTION\s*$", text, maxsplit=1, flags=re.M)
    if len(parts) != 2:
        raise ValueError(f"{path}: not a BVH file (no MOTION line)")
    head, motion_text = parts
    tokens = [(tok, n) for n, line in enumerate(head.splitlines(), 1) for tok in line.split()]
    pos = 0

    def take(expected: str | None = None) -> str:
        nonlocal pos
        if pos >= len(tokens):
            raise ValueError(f"{path}: unexpected end of HIERARCHY" + (f", expected {expected!r}" if expected else ""))
        tok, line = tokens[pos]
        pos += 1
        if expected is not None and tok != expected:
            raise ValueError(f"{path}: line {line}: expected {expected!r}, found {tok!r}")
        return tok

    def numbers(count: int) -> np.ndarray:
        line = tokens[min(pos, len(tokens) - 1)][1]
        try:
            return np.array([float(take()) for _ in range(count)])
        except ValueError:
            raise ValueError(f"{path}: line {line}: expected {count} numbers") from None

    names, parents, offsets, channels, end_sites = [], [], [], [], {}

    def joint(parent: int) -> None:
        index = len(names)
        names.append(take())
        parents.append(parent)
        take("{")
        take("OFFSET")
        offsets.append(numbers(3))
        take("CHANNELS")
        count = take()
        if not count.isdigit():
            raise ValueError(f"{path}: line {tokens[pos - 1][1]}: bad channel count {count!r}")
        channels.append([take() for _ in range(int(count))])
        while True:
            tok = take()
            if tok == "}":
                return
            if tok == "JOINT":
                joint(index)
            elif tok == "End":
                take("Site")
                take("{")
                take("OFFSET")
                end_sites[index] = numbers(3)
                take("}")
            else:
                raise ValueError(f"{path}: line {tokens[pos - 1][1]}: unexpected {tok!r}")

    take("HIERARCHY")
    while pos < len(tokens):
        take("ROOT")
        joint(-1)
    if not names:
        raise ValueError(f"{path}: empty HIERARCHY")
    bad = [c for cs in channels for c in cs if c[1:] not in ("position", "rotation") or c[0] not in AXES]
    if bad:
        raise ValueError(f"{path}: unknown channel(s) {sorted(set(bad))}")
    frames, frame_time, values = _parse_motion(path, motion_text)
    width = sum(len(c) for c in channels)
    if values.size != frames * width:
        raise ValueError(f"{path}: expected {frames} motion rows of {width} values, got {values.size} values")
    return BVH(names=names, parents=parents, offsets=np.array(offsets).reshape(-1, 3), channels=channels,
               motion=values.reshape(frames, width), frame_time=frame_time, end_sites=end_sites)


def _parse_motion(path: Path, text: str) -> tuple[int, float, np.ndarray]:
    """(frame count, frame time, all motion values flat) from the text after MOTION."""
    lines = text.strip().splitlines()
    try:
        key1, frames = lines[0].split(":", 1)
        key2, frame_time = lines[1].split(":", 1)
        if key1.strip() != "Frames" or key2.strip() != "Frame Time":
            raise ValueError
        frames, frame_time = int(frames), float(frame_time)
    except (ValueError, IndexError):
        raise ValueError(f"{path}: MOTION must start with 'Frames: N' and 'Frame Time: dt'") from None
    if frame_time <= 0 or frames < 0:
        raise ValueError(f"{path}: bad Frames {frames} or Frame Time {frame_time}")
    try:
        values = np.array(" ".join(lines[2:]).split(), dtype=np.float64)
    except ValueError:
        raise ValueError(f"{path}: MOTION contains a value that is not a number") from None
    return frames, frame_time, values


def format_bvh(bvh: BVH) -> str:
    """The text of a BVH file: HIERARCHY (tab-indented, an End Site for each leaf) and MOTION."""
    children = [[c for c, p in enumerate(bvh.parents) if p == j] for j in range(len(bvh.names))]
    if any(p >= c for c, p in enumerate(bvh.parents) if p >= 0):
        raise ValueError("BVH: every parent must come before its children")
    lines = ["HIERARCHY"]

    def joint(j: int, depth: int) -> None:
        pad = "\t" * depth
        kind = "ROOT" if bvh.parents[j] < 0 else "JOINT"
        lines.extend([f"{pad}{kind} {bvh.names[j]}", f"{pad}{{",
                      f"{pad}\tOFFSET {' '.join(f'{v:.6f}' for v in bvh.offsets[j])}",
                      f"{pad}\tCHANNELS {len(bvh.channels[j])} {' '.join(bvh.channels[j])}"])
        for c in children[j]:
            joint(c, depth + 1)
        if not children[j]:
            end = bvh.end_sites.get(j, np.zeros(3))
            lines.extend([f"{pad}\tEnd Site", f"{pad}\t{{",
                          f"{pad}\t\tOFFSET {' '.join(f'{v:.6f}' for v in end)}", f"{pad}\t}}"])
        lines.append(f"{pad}}}")

    for root in (j for j, p in enumerate(bvh.parents) if p < 0):
        joint(root, 0)
    lines += ["MOTION", f"Frames: {bvh.num_frames}", f"Frame Time: {bvh.frame_time:.8f}"]
    lines += [" ".join(f"{v:.6f}" for v in row) for row in bvh.motion]
    return "\n".join(lines) + "\n"
