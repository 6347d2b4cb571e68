"""Video frames of a stage drawn with OpenCV: antialiased bones, joints, floor grid and hip trail.

The same picture as the browser player (player.js) draws, as RGB uint8 [height, width, 3]
frames, several hundred per second on one CPU core (benchmarks/bench_render.py).
"""
from __future__ import annotations

from typing import Iterator

import cv2
import numpy as np

from ..skeleton import H36M, ROOT
from .stage import (AZIM, BACKGROUND, CENTRE_COLOUR, DANCE_COLOURS, ELEV, FLOOR_COLOUR, LABEL_PX,
                    LEFT_COLOUR, RIGHT_COLOUR, SIDE, TRAIL_COLOUR, Stage, project)

SHIFT = 4                 # fractional bits of cv2 coordinates: 1/16 px positions for antialiasing
FONT = cv2.FONT_HERSHEY_SIMPLEX
BONES = np.array(H36M.bones)  # [16, 2] (parent, child)
SIDE_COLOURS = (CENTRE_COLOUR, LEFT_COLOUR, RIGHT_COLOUR)  # by SIDE of a bone's child joint


def rgb(colour: str) -> tuple[int, int, int]:
    """'#rrggbb' -> (r, g, b) 0-255."""
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))


def _fixed(points: np.ndarray) -> np.ndarray:
    """Pixel positions [..., 2] -> cv2 fixed-point int32 with SHIFT fractional bits."""
    return np.round(points * (1 << SHIFT)).astype(np.int32)


class Raster:
    """Frames of `stage`: `size` px square panels side by side, one camera for all.

    clock: write the time and frame number in the corner.

    frame(k) draws any frame; frames() draws them in order, faster (the trail grows in place).
    """

    def __init__(self, stage: Stage, size: int = 480, elev: float = ELEV, azim: float = AZIM,
                 zoom: float = 1.0, title: str | None = None, clock: bool = True):
        self.stage, self.size, self.clock = stage, int(size), bool(clock)
        self.top = LABEL_PX if title else 0  # even, as H.264's 4:2:0 wants
        self.width, self.height = self.size * stage.num_panels, self.size + self.top
        self.thickness = max(2, round(self.size / 160))  # px: about matplotlib's 2.2 pt at 480 px
        self.radius = max(2, round(self.size / 180))
        self.font_scale = max(0.35, self.size / 1000)
        scale = stage.scale(self.size, zoom)
        self.dances = []
        for i, (name, poses) in enumerate(stage.poses.items()):
            panel = stage.panel_of(i)
            centre = np.array([0.5 * self.size, self.top + 0.5 * self.size + LABEL_PX / 2])  # in its panel
            target = stage.target(panel)
            screen, depth = project(poses, target, elev, azim, scale)  # [T, 17, 2] px, [T, 17] m
            ground = np.stack([poses[:, ROOT, 0], np.zeros(len(poses)), poses[:, ROOT, 2]], -1)
            trail = project(ground, target, elev, azim, scale)[0] + centre  # [T, 2] px
            mid_depth = depth[:, BONES].mean(axis=2)  # [T, 16] metres from the camera
            colours = ([rgb(DANCE_COLOURS[i % len(DANCE_COLOURS)])] * len(BONES) if stage.overlay
                       else [rgb(SIDE_COLOURS[SIDE[c]]) for _, c in BONES])
            self.dances.append({"name": name, "joints": _fixed(screen + centre), "trail": _fixed(trail),
                                "order": np.argsort(-mid_depth, axis=1), "colours": colours,
                                "panel": panel, "T": len(poses)})
        self.background = self._background(elev, azim, scale, title)

    def _background(self, elev, azim, scale, title) -> np.ndarray:
        image = np.empty((self.height, self.width, 3), np.uint8)
        image[:] = rgb(BACKGROUND)
        floor = rgb(FLOOR_COLOUR)
        for panel in range(self.stage.num_panels):
            centre = np.array([0.5 * self.size, self.top + 0.5 * self.size + LABEL_PX / 2])
            grid = _fixed(project(self.stage.grid(panel), self.stage.target(panel), elev, azim, scale)[0] + centre)
            cv2.polylines(self._panel(image, panel), list(grid), False, floor, 1, cv2.LINE_AA, SHIFT)
        for i, d in enumerate(self.dances):
            if not d["name"]:
                continue
            colour = rgb(DANCE_COLOURS[i % len(DANCE_COLOURS)]) if self.stage.overlay else (0, 0, 0)
            x = (d["panel"] + 0.5) * self.size
            y = self.top + 16 + (18 * i if self.stage.overlay else 0)
            self._text(image, d["name"], x, y, colour, 1.2, centred=True)
        if title:
            self._text(image, title, self.width / 2, 16, (0, 0, 0), 1.3, centred=True)
        return image

    def _panel(self, image: np.ndarray, panel: int) -> np.ndarray:
        """The columns of `panel` in `image` (a view: drawing there stays inside the panel)."""
        return image[:, panel * self.size:(panel + 1) * self.size]

    def _text(self, image, text, x, y, colour, size=1.0, centred=False) -> None:
        text = text.encode("ascii", "replace").decode("ascii")  # Hershey fonts are ASCII only
        scale = self.font_scale * size
        if centred:
            x -= cv2.getTextSize(text, FONT, scale, 1)[0][0] / 2
        cv2.putText(image, text, (int(x), int(y)), FONT, scale, colour, 1, cv2.LINE_AA)

    def _figures(self, image: np.ndarray, frame: int) -> np.ndarray:
        for d in self.dances:
            t = min(frame, d["T"] - 1)  # a shorter dance holds its last frame
            joints, panel = d["joints"][t], self._panel(image, d["panel"])
            for b in d["order"][t]:  # far bones first
                p, c = BONES[b]
                cv2.line(panel, tuple(joints[p]), tuple(joints[c]), d["colours"][b], self.thickness,
                         cv2.LINE_AA, SHIFT)
            for j, colour in zip(joints, self._joint_colours(d)):
                cv2.circle(panel, tuple(j), self.radius << SHIFT, colour, -1, cv2.LINE_AA, SHIFT)
        if self.clock:
            self._text(image, f"{frame / self.stage.fps:7.2f} s   frame {frame}", 6, self.height - 8, (0, 0, 0))
        return image

    def _joint_colours(self, d) -> list:
        if "joint_colours" not in d:
            by_child = {c: d["colours"][b] for b, (_, c) in enumerate(BONES)}
            d["joint_colours"] = [by_child.get(j, d["colours"][0] if self.stage.overlay else rgb(CENTRE_COLOUR))
                                  for j in range(len(SIDE))]
        return d["joint_colours"]

    def _trail(self, image: np.ndarray, d, start: int, stop: int) -> None:
        """Draw the hip's floor path of dance `d` from frame `start` to `stop` (inclusive)."""
        stop = min(stop, d["T"] - 1)
        if stop > start:
            cv2.polylines(self._panel(image, d["panel"]), [d["trail"][start:stop + 1]], False, rgb(TRAIL_COLOUR), 1, cv2.LINE_AA, SHIFT)

    def frame(self, frame: int) -> np.ndarray:
        """RGB uint8 [height, width, 3] of `frame` (clamped)."""
        frame = int(np.clip(frame, 0, self.stage.num_frames - 1))
        image = self.background.copy()
        for d in self.dances:
            self._trail(image, d, 0, frame)
        return self._figures(image, frame)

    def frames(self, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        """Frames start..stop-1 in order; each yielded array is reused for the next frame."""
        stop = self.stage.num_frames if stop is None else min(stop, self.stage.num_frames)
        layer = self.background.copy()  # background and the trail drawn so far
        for d in self.dances:
            self._trail(layer, d, 0, start)
        image = np.empty_like(layer)
        for k in range(start, stop):
            if k > start:
                for d in self.dances:
                    self._trail(layer, d, k - 1, k)
            np.copyto(image, layer)
            yield self._figures(image, k)
