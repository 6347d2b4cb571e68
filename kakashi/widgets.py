"""A dance player drawn in the browser with the music as its clock, and a matplotlib HTML animation.

Dances are poses [T, 17, 3] in metres, y up, H36M-17 order, at `fps` frames per second;
several dances play side by side or overlaid on one time line with one camera.

`Player` is an anywidget: the poses (int16 millimetres), the music and its waveform are sent
to the browser once, and kakashi/player/player.js draws every frame there from the audio
element's clock, so the picture cannot drift from the music. Its state is saved with the
notebook (ipywidgets widget state), so a reopened notebook plays without a kernel. Displayed
in a notebook it also writes a self-contained HTML copy of itself (the same JavaScript
inlined, no network), which shows wherever the widget cannot: in an `nbconvert --to html`
export, whose widget loader comes from a CDN.
"""
from __future__ import annotations

import base64
import io
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import anywidget
import numpy as np
import traitlets
from matplotlib import rc_context

from .clips import SR
from .player import stage
from .render import AZIM, DPI, ELEV, animate, as_dances
from .skeleton import FPS, H36M

PLAYER_JS = Path(__file__).parent / "player" / "player.js"
SIZE = 400            # default pixels per (square) panel
PEAK_COLUMNS = 1200   # waveform columns (min, max) sent to the browser
AUDIO_BITRATE = "64k"  # Opus in Ogg for the browser: a 211 s song is about 1.7 MB
STAND_IN_MS = 8000    # in Jupyter, how long the HTML copy waits for the live widget before it plays instead
MAX_MM = 32767        # int16 millimetres: positions within +-32.767 m
# matplotlib's HTML player takes its button icons from a CDN stylesheet; plain symbols instead.
_ICONS = {"fa fa-minus": "&minus;", "fa fa-fast-backward": "&#9198;", "fa fa-step-backward": "&#9664;&#10073;",
          "fa fa-play fa-flip-horizontal": "&#9664;", "fa fa-pause": "&#10073;&#10073;",
          "fa fa-play": "&#9654;", "fa fa-step-forward": "&#10073;&#9654;",
          "fa fa-fast-forward": "&#9197;", "fa fa-plus": "+"}
# The HTML copy: plays at once outside Jupyter; inside it stands aside for the live widget with its uid.
_STANDALONE = """<div class="kakashi-standalone" data-kakashi-standalone="%(uid)s"></div>
<script type="module">
const host = document.querySelector('[data-kakashi-standalone="%(uid)s"]');
const live = () => document.querySelector('.kakashi-player[data-kakashi-uid="%(uid)s"]:not(.kakashi-copy)');
const state = %(state)s;
const model = {get: (k) => state[k], set: (k, v) => { state[k] = v; }, save_changes() {}, on() {}, off() {}, send() {}};
let stop = null;
async function mount() {
  if (live() || stop) return;
  stop = () => {};
  const url = URL.createObjectURL(new Blob([%(js)s], {type: "text/javascript"}));
  stop = (await import(url)).default.render({model, el: host});
  host.querySelector(".kakashi-player").classList.add("kakashi-copy");
}
if (!document.querySelector(".jp-LabShell, .jp-NotebookShell, #jp-main-dock-panel")) mount();
else {  // in Jupyter the live widget plays; this copy only stands in while it does not show
  const started = Date.now();
  const watch = setInterval(() => {
    if (live()) { if (stop) { stop(); host.replaceChildren(); } clearInterval(watch); }
    else if (Date.now() - started > %(wait_ms)d) mount();
  }, 500);
}
</script>"""


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


def audio_uri(samples: np.ndarray, sr: int) -> str:
    """The music as a data URI: Opus in Ogg when ffmpeg is there (small), else 16-bit WAV."""
    wav = _wav_bytes(samples, sr)
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg:
        with tempfile.TemporaryDirectory(prefix="kakashi-audio-") as tmp:
            src, dst = Path(tmp) / "music.wav", Path(tmp) / "music.ogg"
            src.write_bytes(wav)
            done = subprocess.run([ffmpeg, "-nostdin", "-loglevel", "error", "-i", str(src), "-c:a", "libopus",
                                   "-b:a", AUDIO_BITRATE, str(dst)], capture_output=True)
            if done.returncode == 0 and dst.stat().st_size > 0:
                return "data:audio/ogg;base64," + base64.b64encode(dst.read_bytes()).decode("ascii")
    return "data:audio/wav;base64," + base64.b64encode(wav).decode("ascii")


def waveform_peaks(samples: np.ndarray, columns: int = PEAK_COLUMNS) -> bytes:
    """(min, max) of each of `columns` equal slices of samples [N], int8 scaled to the loudest: [2 * columns]."""
    columns = max(1, min(columns, len(samples)))
    edges = np.linspace(0, len(samples), columns + 1).astype(int)
    lo = np.minimum.reduceat(samples, edges[:-1])
    hi = np.maximum.reduceat(samples, edges[:-1])
    peak = max(float(np.abs(samples).max()), 1e-9)
    pairs = np.stack([lo, hi], axis=1) / peak * 127  # [columns, 2]
    return np.round(pairs).astype(np.int8).tobytes()


def encode_poses(poses: np.ndarray) -> str:
    """Poses [T, 17, 3] metres -> base64 of little-endian int16 millimetres (1 mm steps)."""
    mm = np.clip(np.round(np.asarray(poses, dtype=np.float64) * 1000), -MAX_MM, MAX_MM)
    return base64.b64encode(mm.astype("<i2").tobytes()).decode("ascii")


def _layout(laid: stage.Stage) -> dict:
    return {"centres": laid.centres.tolist(), "half": laid.half, "height": laid.height}


class Player(anywidget.AnyWidget):
    """Play one dance [T, 17, 3] or {name: dance} side by side (or overlaid), with the music.

    audio: the song as a path, (samples, sr) or samples at `sr`; None for silence (a wall clock).
    beats: beat times in seconds for the strip under the picture; None to track them in the music.
    In the browser: drag to orbit, scroll to zoom, double-click to reset; space plays and
    pauses, left/right arrows seek 5 s (with shift one frame); click the waveform to seek;
    speed, volume, mute, layout, size and full screen in the bar. size: pixels per panel.
    """

    _esm = PLAYER_JS.read_text()
    uid = traitlets.Unicode().tag(sync=True)
    fps = traitlets.Float(FPS).tag(sync=True)
    names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    poses = traitlets.List(traitlets.Unicode()).tag(sync=True)       # base64 int16 mm, one per dance
    frames = traitlets.List(traitlets.Int()).tag(sync=True)          # T of each dance
    duration = traitlets.Float().tag(sync=True)                      # seconds of the longest dance
    layouts = traitlets.Dict().tag(sync=True)                        # {"side", "overlay"}: floor centres, sizes
    look = traitlets.Dict().tag(sync=True)                           # colours, skeleton, camera constants
    audio = traitlets.Unicode("").tag(sync=True)                     # data URI, "" for silence
    audio_seconds = traitlets.Float(0.0).tag(sync=True)
    peaks = traitlets.Unicode("").tag(sync=True)                     # base64 int8 (min, max) per column
    beats = traitlets.List(traitlets.Float()).tag(sync=True)         # seconds
    size = traitlets.Int(SIZE).tag(sync=True)
    overlay = traitlets.Bool(False).tag(sync=True)
    elevation = traitlets.Float(ELEV).tag(sync=True)                 # degrees
    azimuth = traitlets.Float(AZIM).tag(sync=True)                   # degrees
    zoom = traitlets.Float(1.0).tag(sync=True)
    default_view = traitlets.List(traitlets.Float()).tag(sync=True)  # (elevation, azimuth) of "reset"
    title = traitlets.Unicode("").tag(sync=True)

    def __init__(self, dances: dict[str, np.ndarray] | np.ndarray, fps: float = FPS, audio=None,
                 sr: int = SR, size: int = SIZE, dpi: float = DPI, elev: float = ELEV,
                 azim: float = AZIM, title: str | None = None, beats=None, overlay: bool = False):
        music = music_samples(audio, sr)  # a missing song fails before any work
        dances = as_dances(dances)
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if int(size) < 64:
            raise ValueError(f"size must be at least 64 pixels, got {size}")
        side, over = stage.make_stage(dances, fps), stage.make_stage(dances, fps, overlay=True)
        state = dict(uid=uuid.uuid4().hex[:12], fps=float(fps), names=list(dances),
                     poses=[encode_poses(p) for p in side.poses.values()],
                     frames=[len(p) for p in dances.values()], duration=side.num_frames / float(fps),
                     layouts={"side": _layout(side), "overlay": _layout(over)}, look=_look(),
                     size=int(size), overlay=bool(overlay) and len(dances) > 1, elevation=float(elev),
                     azimuth=float(azim), zoom=1.0, default_view=[float(elev), float(azim)], title=title or "")
        if music is not None:
            samples, rate = music
            if beats is None:
                from .audio import beat_times

                beats = beat_times(samples, rate)
            state.update(audio=audio_uri(samples, rate), audio_seconds=len(samples) / rate,
                         peaks=base64.b64encode(waveform_peaks(samples)).decode("ascii"))
        state["beats"] = [float(b) for b in np.asarray(beats if beats is not None else [], dtype=float).ravel()]
        super().__init__(**state)

    def state(self) -> dict:
        """What the browser is sent (JSON-ready)."""
        base = anywidget.AnyWidget.class_trait_names(sync=True)
        return {name: getattr(self, name) for name in self.trait_names(sync=True) if name not in base and not name.startswith("_")}

    def to_html(self) -> str:
        """A self-contained HTML player (the same JavaScript inlined, no network): save it or embed it."""
        state = json.dumps(self.state())
        return _STANDALONE % {"uid": self.uid, "state": _script_safe(state), "wait_ms": STAND_IN_MS,
                              "js": _script_safe(json.dumps(PLAYER_JS.read_text()))}

    def _ipython_display_(self):
        from IPython.display import display

        bundle = self._repr_mimebundle_()  # ipywidgets: (data, metadata)
        data, metadata = bundle if isinstance(bundle, tuple) else (bundle, {})
        display(data, metadata=metadata, raw=True)          # the live widget (saved widget state)
        display({"text/html": self.to_html()}, raw=True)    # its copy for HTML exports


def _script_safe(text: str) -> str:
    """JSON that can sit inside a <script> element."""
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def _look() -> dict:
    """The constants player.js draws with, from kakashi.player.stage (one source for video and browser)."""
    return {"parents": list(H36M.parents), "side": stage.SIDE.tolist(),
            "side_colours": [stage.CENTRE_COLOUR, stage.LEFT_COLOUR, stage.RIGHT_COLOUR],
            "dance_colours": list(stage.DANCE_COLOURS), "trail": stage.TRAIL_COLOUR, "floor": stage.FLOOR_COLOUR,
            "background": stage.BACKGROUND, "distance": stage.DISTANCE_M, "fill": stage.FILL,
            "grid_step": stage.GRID_STEP, "label_px": stage.LABEL_PX}


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
