"""A JupyterLab player for dances, with the music in sync, and a static HTML fallback.

Dances are poses [T, 17, 3] in metres, y up, H36M-17 order, at `fps` frames per second;
several dances play side by side on one time line (see kakashi.render).
"""
from __future__ import annotations

import base64
import html
import io
import math
import os
import re
import threading
import uuid
from pathlib import Path

import ipywidgets as widgets
import numpy as np
from matplotlib import rc_context

from .clips import SR
from .render import AZIM, DPI, ELEV, Scene, animate, as_dances
from .skeleton import FPS

SPEEDS = (0.25, 2.0, 0.25)  # playback speed slider: min, max, step
IDLE_S = 5.0  # seconds the drawing thread waits for a new frame before it ends
# matplotlib's HTML player takes its button icons from a CDN stylesheet; plain symbols instead.
_ICONS = {"fa fa-minus": "&minus;", "fa fa-fast-backward": "&#9198;", "fa fa-step-backward": "&#9664;&#10073;",
          "fa fa-play fa-flip-horizontal": "&#9664;", "fa fa-pause": "&#10073;&#10073;",
          "fa fa-play": "&#9654;", "fa fa-step-forward": "&#10073;&#9654;",
          "fa fa-fast-forward": "&#9197;", "fa fa-plus": "+"}
# Runs in the browser once the audio element has loaded: it follows the Play widget (playing
# or not), the frame slider (seeks) and the speed slider, keeping audio time = frame / fps.
_SYNC_JS = """
if (this.dataset.synced) return; this.dataset.synced = '1';
const audio = this, fps = %(fps)r, uid = %(uid)r;
const find = (name) => document.querySelector('.kakashi-' + name + '-' + uid);
const number = (el) => el ? parseFloat((el.querySelector('.widget-readout') || {}).textContent) : NaN;
const timer = setInterval(() => {
  if (!audio.isConnected) { clearInterval(timer); audio.pause(); return; }
  const play = find('play'), frame = number(find('frame'));
  if (!play || isNaN(frame)) return;
  const icon = play.querySelector('i.fa');
  const playing = !!icon && icon.classList.contains('fa-pause');
  const speed = number(find('speed')) || 1, target = frame / fps;
  const drift = audio.currentTime - target;
  audio.dataset.frame = frame;
  if (playing) {
    if (Math.abs(drift) > 0.25) audio.currentTime = target;
    audio.playbackRate = speed * Math.min(1.1, Math.max(0.9, 1 - drift));
    if (audio.paused && target < audio.duration) audio.play().catch(() => {});
  } else {
    if (!audio.paused) audio.pause();
    if (Math.abs(drift) > 0.5 / fps) audio.currentTime = target;
  }
}, 40);
"""


def music_samples(audio, sr: int = SR) -> tuple[np.ndarray, int] | None:
    """Music as (mono float32 samples [N], sample rate) from a path, (samples, sr) or samples at sr."""
    if audio is None:
        return None
    if isinstance(audio, (str, os.PathLike)):  # any format kakashi.audio reads (mp3, m4a, video, ...)
        from .audio import load_audio

        return load_audio(audio, SR), SR
    if isinstance(audio, tuple) and len(audio) == 2:
        audio, sr = audio
    samples = np.asarray(audio, dtype=np.float32)
    if samples.ndim == 2:
        samples = samples.mean(axis=1)  # [N, channels] -> [N]
    if samples.ndim != 1 or samples.size == 0 or int(sr) <= 0:
        raise ValueError(f"audio: expected samples [N] or [N, channels] at sr > 0, got "
                         f"{list(np.shape(audio))} at {sr} Hz")
    return samples, int(sr)


def _wav_bytes(samples: np.ndarray, sr: int) -> bytes:
    """16-bit mono WAV bytes, at most SR (22 050 Hz) to keep the notebook light."""
    import soundfile as sf
    from scipy.signal import resample_poly

    if sr > SR:
        common = math.gcd(int(sr), SR)
        samples, sr = resample_poly(samples, SR // common, int(sr) // common), SR
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(samples, -1.0, 1.0), sr, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def audio_html(samples: np.ndarray, sr: int, fps: float, uid: str) -> str:
    """An <audio> element (WAV as a data URI, no network) whose script follows the player `uid`."""
    data = base64.b64encode(_wav_bytes(samples, sr)).decode("ascii")
    script = html.escape(_SYNC_JS % {"fps": float(fps), "uid": uid}, quote=True)
    return (f'<audio class="kakashi-audio-{uid}" preload="auto" onloadedmetadata="{script}" '
            f'src="data:audio/wav;base64,{data}"></audio>'
            f'<span style="font-size:12px;color:#666">&#9835; music follows play, pause and seek</span>')


class Player(widgets.VBox):
    """Play one dance [T, 17, 3] or {title: dance} side by side, with the music in sync.

    audio: the song as a path, (samples, sr) or samples at `sr`; None for silence.
    Controls: play/pause, a frame slider, speed (0.25x - 2x), camera azimuth and elevation.
    Frames are drawn by matplotlib (one figure, artists updated in place) into a PNG image,
    in a background thread that always draws the latest requested frame: when drawing is
    slower than playback, frames are skipped instead of queueing up.
    """

    def __init__(self, dances: dict[str, np.ndarray] | np.ndarray, fps: float = FPS, audio=None,
                 sr: int = SR, size: int = 400, dpi: float = DPI, elev: float = ELEV,
                 azim: float = AZIM, title: str | None = None):
        music = music_samples(audio, sr)  # a missing song fails before any drawing
        self.scene = Scene(dances, fps, size=size, dpi=dpi, elev=elev, azim=azim, title=title, blit=True)
        self.fps = self.scene.fps
        self.uid = uuid.uuid4().hex[:12]
        self._wake = threading.Condition()
        self._wanted, self._view, self._pending, self._drawing, self._worker = 0, None, False, False, None
        last = self.scene.num_frames - 1
        width, height = self.scene.pixel_size
        self.image = widgets.Image(format="png", value=self._png(0),
                                   layout=widgets.Layout(width=f"{width}px", height=f"{height}px"))
        self.play = widgets.Play(value=0, min=0, max=last, step=1, interval=self._interval(1.0),
                                 description="play")
        self.slider = widgets.IntSlider(value=0, min=0, max=last, description="frame",
                                        continuous_update=True, layout=widgets.Layout(width="60%"))
        widgets.jslink((self.play, "value"), (self.slider, "value"))
        self.speed = widgets.FloatSlider(value=1.0, min=SPEEDS[0], max=SPEEDS[1], step=SPEEDS[2],
                                         description="speed", readout_format=".2f")
        self.azimuth = widgets.FloatSlider(value=azim, min=-180, max=180, step=5, description="azimuth")
        self.elevation = widgets.FloatSlider(value=elev, min=-10, max=90, step=5, description="elevation")
        for name, widget in (("play", self.play), ("frame", self.slider), ("speed", self.speed),
                             ("image", self.image)):
            widget.add_class(f"kakashi-{name}-{self.uid}")
        self.slider.observe(lambda change: self._request(frame=change["new"]), names="value")
        self.speed.observe(lambda change: setattr(self.play, "interval", self._interval(change["new"])),
                           names="value")
        self.azimuth.observe(self._on_camera, names="value")
        self.elevation.observe(self._on_camera, names="value")
        self.audio = widgets.HTML(audio_html(*music, self.fps, self.uid)) if music else None
        rows = [self.image, widgets.HBox([self.play, self.slider]),
                widgets.HBox([self.speed, self.azimuth, self.elevation])]
        super().__init__(children=rows + ([self.audio] if self.audio else []))

    def _interval(self, speed: float) -> int:
        """Milliseconds between frames at `speed` times real time."""
        return max(1, round(1000.0 / (self.fps * speed)))

    def _png(self, frame: int) -> bytes:
        """PNG bytes of `frame` as the player shows it."""
        from PIL import Image

        pixels = self.scene.render(frame)
        image = Image.frombuffer("RGBA", self.scene.pixel_size, pixels, "raw", "RGBA", 0, 1)
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="PNG", compress_level=1)
        return buffer.getvalue()

    def show_frame(self, frame: int, timeout: float = 10.0) -> None:
        """Draw `frame` into the image now (the slider does this as it moves)."""
        self._request(frame=frame)
        self.wait(timeout)

    def wait(self, timeout: float = 10.0) -> bool:
        """Block until the requested frame and camera are drawn; False on timeout."""
        with self._wake:
            return self._wake.wait_for(lambda: not (self._pending or self._drawing), timeout)

    @property
    def frame(self) -> int:
        """The frame the image shows."""
        return self.scene.frame

    def _on_camera(self, _change=None) -> None:
        self._request(view=(self.elevation.value, self.azimuth.value))

    def _request(self, frame: int | None = None, view: tuple[float, float] | None = None) -> None:
        with self._wake:
            if frame is not None:
                self._wanted = int(frame)
            if view is not None:
                self._view = view
            self._pending = True
            if self._worker is None:
                self._worker = threading.Thread(target=self._draw_loop, name=f"kakashi-player-{self.uid}",
                                                daemon=True)
                self._worker.start()
            self._wake.notify_all()

    def _draw_loop(self) -> None:
        while True:
            with self._wake:
                if not self._wake.wait_for(lambda: self._pending, IDLE_S):
                    self._worker = None
                    return
                frame, view = self._wanted, self._view
                self._pending, self._view, self._drawing = False, None, True
            try:
                if view is not None:
                    self.scene.set_view(*view)
                self.image.value = self._png(frame)
            except BaseException:
                with self._wake:
                    self._worker = None  # the next request starts a new thread
                raise
            finally:
                with self._wake:
                    self._drawing = False
                    self._wake.notify_all()


def show(dances: dict[str, np.ndarray] | np.ndarray, fps: float = FPS, audio=None, **kwargs) -> Player:
    """A Player for `dances` (the last expression of a cell displays it); kwargs go to Player."""
    return Player(dances, fps, audio=audio, **kwargs)


def to_jshtml(dances: dict[str, np.ndarray] | np.ndarray, fps: float = FPS, max_frames: int = 240,
              size: int = 320, dpi: float = DPI, elev: float = ELEV, azim: float = AZIM,
              title: str | None = None) -> str:
    """A self-contained HTML animation (matplotlib's JS player, frames as embedded PNGs).

    Long dances are subsampled to at most `max_frames` frames (every k-th frame, shown at
    fps / k), so that exported notebooks stay small. No audio.
    """
    dances = as_dances(dances)
    if max_frames < 1:
        raise ValueError(f"max_frames must be at least 1, got {max_frames}")
    step = math.ceil(max(len(p) for p in dances.values()) / max_frames)
    dances = {name: poses[::step] for name, poses in dances.items()}  # [ceil(T / step), 17, 3]
    anim = animate(dances, fps / step, size=size, dpi=dpi, elev=elev, azim=azim, title=title)
    with rc_context({"animation.embed_limit": 500.0}):  # megabytes
        page = anim.to_jshtml(fps=fps / step, default_mode="loop")
    return _offline(page)


def _offline(page: str) -> str:
    """matplotlib's animation HTML without its CDN stylesheet (no network needed to show it)."""
    page = re.sub(r'<link rel="stylesheet"\s+href="https?://[^"]*font-awesome[^"]*">', "", page)
    return re.sub(r'<i class="(fa [^"]*)"></i>', lambda m: _ICONS.get(m.group(1), ""), page)
