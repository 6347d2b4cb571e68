"""Dance pictures: still figures and animations with matplotlib, fast mp4 (with the music) and GIF.

Dances are poses [T, 17, 3] in metres, y up, H36M-17 order, at `fps` frames per second.
Several dances share one time line; a shorter one holds its last frame. Root-relative dances
(hip at the origin) are lifted so that the lower ankle touches the floor (y = 0) in each frame.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from pathlib import Path

import cv2
import numpy as np
from matplotlib.animation import FuncAnimation
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from mpl_toolkits.mplot3d.art3d import Line3D, Line3DCollection
from tqdm.auto import tqdm

from .fileio import atomic_path
from .player.ffmpeg import write_video
from .player.raster import Raster
from .player.stage import (AZIM, CENTRE_COLOUR, ELEV, FLOOR_COLOUR, GRID_STEP, LEFT_COLOUR, MARGIN,  # noqa: F401
                           MIN_EXTENT, RIGHT_COLOUR, TRAIL_COLOUR, for_display, make_stage)
from .skeleton import FPS, H36M, ROOT, check_poses

ZOOM = 1.4                # 3D box zoom within its panel
SIZE, DPI = 480, 96       # default pixels per panel (square) and dots per inch
LABEL_CHARS = 24          # a dance's name beside a contact sheet's rows, at most (a longer one is cut)

def as_dances(dances: dict[str, np.ndarray] | np.ndarray) -> dict[str, np.ndarray]:
    """One dance [T, 17, 3] or {name: dance} -> {name: float64 [T, 17, 3]}, checked."""
    if not isinstance(dances, dict):
        dances = {"": dances}
    if not dances:
        raise ValueError("no dance given: expected poses [T, 17, 3] or a non-empty dict of them")
    checked = {}
    for name, poses in dances.items():
        what = f"dance {name!r}" if name else "dance"
        poses = check_poses(poses, what=what).astype(np.float64)
        if len(poses) == 0:
            raise ValueError(f"{what}: no frames")
        if not np.isfinite(poses).all():
            raise ValueError(f"{what}: poses contain NaN or inf")
        checked[str(name)] = poses
    return checked


def _bone_paths(bones) -> np.ndarray:
    """Joint indices of polylines [parent, child, NaN, ...]; index -1 picks the NaN row."""
    return np.array([j for p, c in bones for j in (p, c, -1)], dtype=int)


def _to_plot(points: np.ndarray) -> np.ndarray:
    """Scene (x, y up, z) -> matplotlib 3D axes (x, -z, y) with the vertical last: [..., 3]."""
    return np.stack([points[..., 0], -points[..., 2], points[..., 1]], axis=-1)


class Scene:
    """One figure with a 3D panel per dance, redrawn in place frame by frame.

    dances: {title: poses [T, 17, 3] metres}; all panels share the same scale and camera.
    blit=True keeps the floor, grid and titles as a cached background and redraws only the
    skeletons, trails and time label (for videos and widgets); blit=False draws everything
    on each figure draw (for FuncAnimation and static figures).
    """

    def __init__(self, dances: dict[str, np.ndarray] | np.ndarray, fps: float = FPS,
                 size: int = SIZE, dpi: float = DPI, elev: float = ELEV, azim: float = AZIM,
                 title: str | None = None, blit: bool = True):
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.dances = {k: for_display(v) for k, v in as_dances(dances).items()}
        self.fps = float(fps)
        self.num_frames = max(len(p) for p in self.dances.values())
        self.blit = blit
        self.elev, self.azim = float(elev), float(azim)
        n = len(self.dances)
        self.figure = Figure(figsize=(n * size / dpi, size / dpi), dpi=dpi)
        self.canvas = FigureCanvasAgg(self.figure)
        top = 1.0  # figure fraction above the panels: a title line, then a name line
        if title:
            self.figure.text(0.5, 1.0 - 4 / size, title, ha="center", va="top", fontsize=11)
            top -= 24 / size
        if any(self.dances):
            for i, name in enumerate(self.dances):
                self.figure.text((i + 0.5) / n, top - 4 / size, name, ha="center", va="top", fontsize=10)
            top -= 20 / size
        sides = [(H36M.joints_left, LEFT_COLOUR), (H36M.joints_right, RIGHT_COLOUR)]
        side_of = {c: colour for joints, colour in sides for c in joints}
        groups = {LEFT_COLOUR: [], RIGHT_COLOUR: [], CENTRE_COLOUR: []}
        for p, c in H36M.bones:
            groups[side_of.get(c, CENTRE_COLOUR)].append((p, c))
        self._paths = {colour: _bone_paths(b) for colour, b in groups.items()}
        self._side_joints = {LEFT_COLOUR: list(H36M.joints_left), RIGHT_COLOUR: list(H36M.joints_right)}
        half = 0.5 * max(self._extent(p) for p in self.dances.values())  # one scale for all panels
        height = max(p[..., 1].max() for p in self.dances.values()) + 0.1
        self.panels = []
        for i, (name, poses) in enumerate(self.dances.items()):
            ax = self.figure.add_axes((i / n, 0.0, 1.0 / n, top), projection="3d")
            self.panels.append(self._make_panel(ax, name, poses, half, height))
        self.time_text = self.figure.text(0.01, 0.01, "", fontsize=9, family="monospace",
                                          animated=blit)
        self._background = None
        self.set_view(elev, azim)
        self.frame = 0
        self.update(0)

    @staticmethod
    def _extent(poses: np.ndarray) -> float:
        """Side in metres of the square floor that holds this dance with a margin."""
        span = np.ptp(poses[..., [0, 2]].reshape(-1, 2), axis=0).max()  # [T*17, 2] -> metres
        return max(MIN_EXTENT, span + 2 * MARGIN)

    def _make_panel(self, ax, name: str, poses: np.ndarray, half: float, height: float) -> dict:
        ax.set_axis_off()
        floor = poses[..., [0, 2]].reshape(-1, 2)  # [T * 17, 2] scene (x, z)
        centre = 0.5 * (floor.min(axis=0) + floor.max(axis=0))
        lo, hi = centre - half, centre + half  # scene (x, z) bounds of the floor
        bottom = min(0.0, poses[..., 1].min())
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(-hi[1], -lo[1])
        ax.set_zlim(bottom, height)
        ax.set_box_aspect((2 * half, 2 * half, height - bottom), zoom=ZOOM)
        ticks_x = np.arange(np.ceil(lo[0] / GRID_STEP), np.floor(hi[0] / GRID_STEP) + 1) * GRID_STEP
        ticks_z = np.arange(np.ceil(lo[1] / GRID_STEP), np.floor(hi[1] / GRID_STEP) + 1) * GRID_STEP
        segments = [[(x, 0, lo[1]), (x, 0, hi[1])] for x in ticks_x]
        segments += [[(lo[0], 0, z), (hi[0], 0, z)] for z in ticks_z]
        grid = _to_plot(np.array(segments, dtype=np.float64))  # [S, 2, 3]
        ax.add_collection3d(Line3DCollection(grid, colors=FLOOR_COLOUR, linewidths=0.6))
        trail = Line3D([], [], [], color=TRAIL_COLOUR, lw=1.2, alpha=0.8, animated=self.blit)
        ax.add_line(trail)
        bones = {}
        for colour in self._paths:
            line = Line3D([], [], [], color=colour, lw=2.2, marker="o", markersize=2.5,
                          solid_capstyle="round", animated=self.blit)
            ax.add_line(line)
            bones[colour] = line
        ground = _to_plot(np.stack([poses[:, ROOT, 0], np.zeros(len(poses)), poses[:, ROOT, 2]], -1))
        return {"ax": ax, "poses": poses, "plot": _to_plot(poses), "ground": ground,
                "trail": trail, "bones": bones}

    def set_view(self, elev: float | None = None, azim: float | None = None) -> None:
        """Point the camera of every panel (degrees); the cached background is redrawn."""
        self.elev = self.elev if elev is None else float(elev)
        self.azim = self.azim if azim is None else float(azim)
        for panel in self.panels:
            panel["ax"].view_init(elev=self.elev, azim=self.azim)
        self._background = None
        eye = np.radians([self.elev, self.azim])
        self._eye = np.array([np.cos(eye[0]) * np.cos(eye[1]), np.cos(eye[0]) * np.sin(eye[1]),
                              np.sin(eye[0])])

    def update(self, frame: int) -> list:
        """Move every artist to `frame` (clamped per dance); returns the changed artists."""
        frame = int(np.clip(frame, 0, self.num_frames - 1))
        self.frame = frame
        changed = []
        for panel in self.panels:
            t = min(frame, len(panel["poses"]) - 1)
            pts = np.vstack([panel["plot"][t], np.full((1, 3), np.nan)])  # [18, 3], row -1 = NaN
            for colour, line in panel["bones"].items():
                xyz = pts[self._paths[colour]]  # [3 * bones, 3]
                line.set_data_3d(xyz[:, 0], xyz[:, 1], xyz[:, 2])
            ground = panel["ground"][: t + 1]
            panel["trail"].set_data_3d(ground[:, 0], ground[:, 1], ground[:, 2])
            # The limb side farther from the camera is drawn first.
            depth = {c: pts[j] @ self._eye for c, j in self._side_joints.items()}
            far, near = sorted(depth, key=lambda c: depth[c].mean())
            for z, colour in ((2.0, far), (2.2, CENTRE_COLOUR), (2.4, near)):
                panel["bones"][colour].set_zorder(z)
            changed += [panel["trail"], *sorted(panel["bones"].values(), key=lambda a: a.get_zorder())]
        self.time_text.set_text(f"{frame / self.fps:7.2f} s   frame {frame}")
        return changed + [self.time_text]

    def render(self, frame: int) -> memoryview:
        """Draw `frame` and return the canvas pixels, RGBA uint8 [height, width, 4] (a view)."""
        changed = self.update(frame)
        if not self.blit:
            self.canvas.draw()
            return self.canvas.buffer_rgba()
        if self._background is None:
            self.canvas.draw()
            self._background = self.canvas.copy_from_bbox(self.figure.bbox)
        self.canvas.restore_region(self._background)
        for artist in changed:
            (artist.axes or self.figure).draw_artist(artist)
        return self.canvas.buffer_rgba()

    @property
    def pixel_size(self) -> tuple[int, int]:
        """(width, height) of rendered frames in pixels."""
        width, height = self.canvas.get_width_height()
        return int(width), int(height)


def animate(dances: dict[str, np.ndarray] | np.ndarray, fps: float = FPS, size: int = 320,
            dpi: float = DPI, elev: float = ELEV, azim: float = AZIM,
            title: str | None = None) -> FuncAnimation:
    """A FuncAnimation of one dance or {title: dance} side by side, at `fps` (one time line).

    Show it in a notebook with `HTML(anim.to_jshtml())`, or save it with `anim.save(...)`;
    for long dances `save_video` is much faster.
    """
    scene = Scene(dances, fps, size=size, dpi=dpi, elev=elev, azim=azim, title=title, blit=False)
    anim = FuncAnimation(scene.figure, scene.update, frames=scene.num_frames,
                         interval=1000.0 / scene.fps, blit=False)
    anim.scene = scene
    return anim


def plot_poses(poses: np.ndarray, frames: list[int] | None = None, fps: float = FPS,
               size: int = 240, dpi: float = DPI, elev: float = ELEV, azim: float = AZIM,
               title: str | None = None) -> Figure:
    """A static strip of key frames of one dance [T, 17, 3] (default: 6 evenly spaced).

    Every panel has the same scale and camera, titled with its time in seconds.
    """
    poses = for_display(as_dances(poses)[""])
    if frames is None:
        frames = np.linspace(0, len(poses) - 1, min(6, len(poses))).round().astype(int).tolist()
    frames = [int(k) for k in frames]
    bad = [k for k in frames if not -len(poses) <= k < len(poses)]
    if not frames or bad:
        raise ValueError(f"frames {bad or frames} out of range for a dance of {len(poses)} frames")
    frames = list(dict.fromkeys(k % len(poses) for k in frames))  # one panel per frame
    strip = {f"{k / fps:.2f} s": poses[k:k + 1] for k in frames}
    scene = Scene(strip, fps, size=size, dpi=dpi, elev=elev, azim=azim, title=title, blit=False)
    scene.time_text.set_visible(False)
    return scene.figure


def key_frame_grid(dances: dict[str, np.ndarray] | np.ndarray, fps: float = FPS, frames: list[int] | None = None,
                   size: int = 200, elev: float = ELEV, azim: float = AZIM, title: str | None = None) -> Figure:
    """Still key frames of one dance or {name: dance}: a row per dance, a column per time.

    Drawn as the browser player and the videos draw (kakashi.player.raster), each row on its own
    floor; frames: indices (default 6 evenly spaced over the longest dance; a shorter dance
    holds its last pose). What a notebook keeps when its animations are stripped.
    """
    dances = as_dances(dances)
    longest = max(len(p) for p in dances.values())
    if frames is None:
        frames = np.linspace(0, longest - 1, min(6, longest)).round().astype(int).tolist()
    bad = [k for k in frames if not 0 <= int(k) < longest]
    if not frames or bad:
        raise ValueError(f"frames {bad or frames} out of range for dances of {longest} frames")
    rows, cols = len(dances), len(frames)
    figure = Figure(figsize=(cols * size / DPI, rows * size / DPI + (0.3 if title else 0)), dpi=DPI,
                    layout="constrained")
    FigureCanvasAgg(figure)
    grid = figure.subplots(rows, cols, squeeze=False)
    for r, (name, poses) in enumerate(dances.items()):
        raster = Raster(make_stage({"": poses}, fps), size, elev=elev, azim=azim, clock=False)
        for c, k in enumerate(frames):
            ax = grid[r, c]
            _pose_panel(ax, raster.frame(int(k)))
            if r == 0:
                ax.set_title(f"{int(k) / fps:.2f} s", fontsize=9)
            if c == 0 and name:
                ax.set_ylabel(name, fontsize=9)
    if title:
        figure.suptitle(title, fontsize=11)
    return figure


def contact_sheet(dances: dict[str, np.ndarray] | np.ndarray, fps: float = FPS, every_s: float = 8.0,
                  cols: int = 10, size: int = 120, title: str | None = None) -> Figure:
    """Whole dances at a glance: one pose every `every_s` seconds from the first frame to the
    last, `cols` to a row (fewer when no dance has as many poses), each dance [T, 17, 3] in rows
    of its own (its name on the first, cut to LABEL_CHARS), each pose titled with its time
    (m:ss). Drawn as `key_frame_grid` draws."""
    dances = as_dances(dances)
    if not every_s > 0 or cols < 1:
        raise ValueError(f"every_s must be > 0 and cols >= 1, got {every_s} and {cols}")
    step = max(1, int(round(every_s * fps)))
    cols = min(cols, -(-max(len(p) for p in dances.values()) // step))   # no blank columns for short dances
    rows = [(name, np.arange(0, len(poses), step)[i:i + cols])
            for name, poses in dances.items() for i in range(0, -(-len(poses) // step), cols)]
    figure = Figure(figsize=(cols * size / DPI, len(rows) * (size / DPI + 0.2) + (0.3 if title else 0)),
                    dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    grid = figure.subplots(len(rows), cols, squeeze=False)
    rasters = {name: Raster(make_stage({"": poses}, fps), size, elev=ELEV, azim=AZIM, clock=False)
               for name, poses in dances.items()}
    for r, (name, chunk) in enumerate(rows):
        for ax in grid[r, len(chunk):]:
            ax.set_axis_off()
        for ax, k in zip(grid[r], chunk):
            _pose_panel(ax, rasters[name].frame(int(k)))
            seconds = int(k / fps)
            ax.set_title(f"{seconds // 60}:{seconds % 60:02d}", fontsize=7, pad=2)
        if name and chunk[0] == 0:
            grid[r, 0].set_ylabel(name if len(name) <= LABEL_CHARS else name[:LABEL_CHARS - 1] + "…", fontsize=8)
    if title:
        figure.suptitle(title, fontsize=10)
    return figure


def _pose_panel(ax, image: np.ndarray) -> None:
    """One drawn pose in a figure panel, framed lightly, without ticks."""
    ax.imshow(image)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_color("#dddddd")


def _check_target(out_path: Path) -> None:
    """Fail early, naming the file, when the output folder cannot be made or written."""
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PermissionError(f"{out_path}: cannot create the folder {out_path.parent} ({e.strerror})") from None
    if not os.access(out_path.parent, os.W_OK):
        raise PermissionError(f"{out_path}: the folder {out_path.parent} is not writable")
    if out_path.is_dir():
        raise ValueError(f"{out_path}: is a folder, expected a video file name")


def _audio_file(audio, workdir: Path) -> Path | None:
    """A path ffmpeg can read for `audio` (a file path or (samples, sr)); None when no audio."""
    if audio is None:
        return None
    if isinstance(audio, (str, os.PathLike)):
        path = Path(audio)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: audio file not found")
        return path
    if isinstance(audio, tuple) and len(audio) == 2:
        import soundfile as sf

        samples, sr = np.asarray(audio[0], dtype=np.float32), int(audio[1])
        if samples.ndim not in (1, 2) or samples.size == 0 or sr <= 0:
            raise ValueError(f"audio: expected (samples [N] or [N, channels], sr > 0), got "
                             f"samples {list(samples.shape)} at {sr} Hz")
        path = workdir / "audio.wav"
        sf.write(path, samples, sr, subtype="FLOAT")
        return path
    raise ValueError(f"audio: expected a file path or (samples, sr), got {type(audio).__name__}")


ENGINES = ("opencv", "matplotlib")  # how save_video draws frames: the fast path, or the still figures' look


def save_video(dances: dict[str, np.ndarray] | np.ndarray, fps: float, out_path: str | os.PathLike,
               audio=None, gif: bool = False, size: int = SIZE, dpi: float = DPI,
               elev: float = ELEV, azim: float = AZIM, title: str | None = None,
               crf: int = 23, progress: bool = True, engine: str = "opencv") -> Path:
    """Write one dance or {title: dance} side by side as an mp4 (H.264) or a GIF; returns the path.

    audio: the song, a file path or (samples, sr); muxed into the mp4 (AAC), padded with
    silence or cut so that the video lasts exactly T / fps seconds (T = the longest dance).
    gif: write a GIF (also chosen by a .gif suffix; the suffix becomes .gif); a GIF has no
    audio and is built in memory, one byte per pixel and frame (meant for short excerpts).
    size: pixels per (square) panel. engine: "opencv" draws the browser player's picture
    (hundreds of frames per second), "matplotlib" the still figures' 3D axes (slow; dpi is
    used only there). The file appears whole or not at all (kakashi.player.ffmpeg).
    """
    out_path = Path(out_path)
    gif = bool(gif) or out_path.suffix.lower() == ".gif"
    if gif:
        out_path = out_path.with_suffix(".gif")
    if engine not in ENGINES:
        raise ValueError(f"engine {engine!r}: expected one of {', '.join(ENGINES)}")
    size = int(size) + int(size) % 2  # H.264 wants even sides
    checked = as_dances(dances)  # bad input fails before any work
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    _check_target(out_path)
    if gif and audio is not None:
        warnings.warn(f"{out_path}: a GIF has no sound; the audio is left out", stacklevel=2)
    ffmpeg = None if gif else shutil.which("ffmpeg")
    if not gif and ffmpeg is None:
        raise FileNotFoundError("ffmpeg not found on PATH: it is needed to write mp4 videos")
    with tempfile.TemporaryDirectory(prefix="kakashi-video-") as workdir:
        audio_path = None if gif else _audio_file(audio, Path(workdir))
        if engine == "opencv":
            raster = Raster(make_stage(checked, fps), size, elev=elev, azim=azim, title=title)
            num, pixels = raster.stage.num_frames, (raster.width, raster.height)
            if gif:
                frames, fmt = raster.frames(), "rgb24"
            else:  # ffmpeg's own RGB -> YUV conversion is slower than OpenCV's (sides are even)
                frames, fmt = (cv2.cvtColor(f, cv2.COLOR_RGB2YUV_I420) for f in raster.frames()), "yuv420p"
        else:
            scene = Scene(checked, fps, size=size, dpi=dpi, elev=elev, azim=azim, title=title)
            frames = (scene.render(k) for k in range(scene.num_frames))
            num, pixels, fmt = scene.num_frames, scene.pixel_size, "rgba"
        if gif:
            _write_gif(frames, num, pixels, fmt, fps, out_path, progress)
        else:
            write_video(frames, num, pixels, float(fps), out_path, audio_path, ffmpeg, crf,
                        Path(workdir) / "ffmpeg.log", pix_fmt=fmt, progress=progress)
    return out_path


def _write_gif(frames, num_frames: int, size: tuple[int, int], pix_fmt: str, fps: float, out_path: Path,
               progress: bool) -> None:
    from PIL import Image

    mode = {"rgb24": "RGB", "rgba": "RGBA"}[pix_fmt]
    images, palette = [], None
    for frame in tqdm(frames, total=num_frames, desc=f"gif {out_path.name}", unit="frame", disable=not progress):
        rgb = Image.frombuffer(mode, size, frame, "raw", mode, 0, 1).convert("RGB")
        if palette is None:  # one palette for every frame: no flicker, 1 byte per pixel
            palette = rgb.quantize(colors=64, method=Image.Quantize.MEDIANCUT)
        images.append(rgb.quantize(palette=palette, dither=Image.Dither.NONE))
    with atomic_path(out_path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                       duration=1000.0 / fps, loop=0)
