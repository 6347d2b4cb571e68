"""The stage every picture of a dance shares: panels, floor, orbit camera and projection.

Dances are poses [T, 17, 3] in metres, y up, H36M-17 order. The browser player (player.js)
and the video renderer (raster.py) both draw from `Stage`, so a video looks like the player.
Camera angles follow matplotlib's convention (the still figures of kakashi.render): at
azimuth -70 and elevation 15 degrees the camera stands in front of the dancer, a little to
their left, slightly above.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..skeleton import FEET, H36M, NUM_JOINTS, ROOT

LEFT_COLOUR, RIGHT_COLOUR, CENTRE_COLOUR = "#1f77b4", "#d62728", "#333333"  # also the still figures' (kakashi.render)
TRAIL_COLOUR, FLOOR_COLOUR, BACKGROUND = "#ff7f0e", "#bbbbbb", "#ffffff"
# Overlaid dances get one colour each (matplotlib's tab10 after blue and red).
DANCE_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf", "#ff7f0e")
ELEV, AZIM = 15.0, -70.0  # default camera, degrees (as the still figures)
DISTANCE_M = 6.0    # camera distance from the stage centre, metres: a mild perspective
FILL = 0.78         # share of a panel's height the floor and the dancer span at zoom 1
GRID_STEP = 0.5     # metres between floor grid lines (as the still figures)
MARGIN = 0.3        # metres of floor around the dance (as the still figures)
MIN_EXTENT = 1.6    # metres: the smallest floor shown (as the still figures)
LABEL_PX = 22       # pixels above the figure for each dance's name
SIDE = np.zeros(NUM_JOINTS, dtype=np.int8)  # side of each joint: 0 centre
SIDE[list(H36M.joints_left)], SIDE[list(H36M.joints_right)] = 1, 2  # 1 left, 2 right


def for_display(poses: np.ndarray) -> np.ndarray:
    """Poses [T, 17, 3] as shown: root-relative dances get the lower ankle on y = 0 per frame.

    Global dances (the hip away from the origin somewhere) are returned unchanged.
    """
    poses = np.array(poses, dtype=np.float64)
    if np.abs(poses[:, ROOT]).max() < 1e-6:  # root-relative: no floor known
        poses[..., 1] -= poses[:, list(FEET), 1].min(axis=1)[:, None]
    return poses


def camera_basis(elev: float, azim: float) -> np.ndarray:
    """Rows (right, up, back) [3, 3] of the orbit camera; back points from the stage to the eye."""
    e, a = np.radians(elev), np.radians(azim)
    back = np.array([np.cos(e) * np.cos(a), np.sin(e), -np.cos(e) * np.sin(a)])
    right = np.array([back[2], 0.0, -back[0]])  # up (0, 1, 0) x back
    right /= max(np.linalg.norm(right), 1e-9)
    return np.stack([right, np.cross(back, right), back])


def project(points: np.ndarray, target: np.ndarray, elev: float, azim: float,
            scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Points [..., 3] metres -> (screen offsets [..., 2] px from the target, y down; depth [..., ] m).

    scale: pixels per metre at the target's depth; depth grows away from the camera.
    """
    rel = (np.asarray(points, dtype=np.float64) - target) @ camera_basis(elev, azim).T  # [..., 3]
    depth = DISTANCE_M - rel[..., 2]
    k = scale * DISTANCE_M / np.maximum(depth, 0.1)[..., None]
    return np.stack([rel[..., 0], -rel[..., 1]], axis=-1) * k, depth


@dataclass(frozen=True)
class Stage:
    """Dances laid out for drawing: side by side (one panel each) or overlaid (one panel).

    poses: {name: float [T, 17, 3]} as shown (feet on the floor); centres: floor centre (x, z) m
    per panel; half: half the floor side, m (one for all panels); height: m above the floor.
    """
    poses: dict[str, np.ndarray]
    fps: float
    overlay: bool
    centres: np.ndarray  # [panels, 2] metres (x, z)
    half: float
    height: float

    @property
    def num_frames(self) -> int:
        return max(len(p) for p in self.poses.values())

    @property
    def num_panels(self) -> int:
        return 1 if self.overlay else len(self.poses)

    def panel_of(self, i: int) -> int:
        return 0 if self.overlay else i

    def scale(self, size: int, zoom: float = 1.0) -> float:
        """Pixels per metre for a panel `size` px tall."""
        return FILL * size * zoom / max(2 * self.half, self.height)

    def target(self, panel: int) -> np.ndarray:
        """The point [3] (metres) the camera of `panel` looks at."""
        x, z = self.centres[panel]
        return np.array([x, 0.5 * self.height, z])

    def grid(self, panel: int) -> np.ndarray:
        """Floor grid segments [S, 2, 3] metres of `panel`."""
        lo, hi = self.centres[panel] - self.half, self.centres[panel] + self.half
        xs = np.arange(np.ceil(lo[0] / GRID_STEP), np.floor(hi[0] / GRID_STEP) + 1) * GRID_STEP
        zs = np.arange(np.ceil(lo[1] / GRID_STEP), np.floor(hi[1] / GRID_STEP) + 1) * GRID_STEP
        segs = [[(x, 0, lo[1]), (x, 0, hi[1])] for x in xs] + [[(lo[0], 0, z), (hi[0], 0, z)] for z in zs]
        return np.array(segs, dtype=np.float64).reshape(-1, 2, 3)


def make_stage(dances: dict[str, np.ndarray], fps: float, overlay: bool = False) -> Stage:
    """Lay out checked dances {name: [T, 17, 3] metres} on one scale."""
    shown = {name: for_display(p) for name, p in dances.items()}
    floors = [p[..., [0, 2]].reshape(-1, 2) for p in shown.values()]  # each [T * 17, 2] (x, z)
    if overlay:
        floors = [np.concatenate(floors)]
    centres = np.array([0.5 * (f.min(axis=0) + f.max(axis=0)) for f in floors])
    half = 0.5 * max(max(MIN_EXTENT, np.ptp(f, axis=0).max() + 2 * MARGIN) for f in floors)
    height = max(p[..., 1].max() for p in shown.values()) + 0.1
    return Stage(shown, float(fps), bool(overlay), centres, float(half), float(height))
