"""Rendering dances: mp4 with the music, GIF, side by side, static figures, OpenCV frames, the ffmpeg pipe."""
from __future__ import annotations

import gc
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
from matplotlib.animation import FuncAnimation
from matplotlib.figure import Figure
from PIL import Image

from kakashi import render, widgets
from kakashi.config import REPO_ROOT
from kakashi.player import ffmpeg as pipe
from kakashi.player.raster import Raster, rgb
from kakashi.player.stage import LEFT_COLOUR, RIGHT_COLOUR, make_stage
from kakashi.skeleton import FEET

FPS = 24.0
SIZE = 96  # pixels per panel: small, the tests check files and behaviour, not looks
STAND = np.array([  # a standing H36M-17 skeleton, metres, y up, hip 0.95 m above the floor
    [0, 0.95, 0], [-0.12, 0.95, 0], [-0.12, 0.52, 0.02], [-0.12, 0.1, 0], [0.12, 0.95, 0],
    [0.12, 0.52, 0.02], [0.12, 0.1, 0], [0, 1.18, 0.01], [0, 1.44, 0], [0, 1.55, 0.06],
    [0, 1.68, 0.04], [0.16, 1.42, 0], [0.42, 1.42, 0], [0.66, 1.42, 0], [-0.16, 1.42, 0],
    [-0.42, 1.42, 0], [-0.66, 1.42, 0],
])


def dance(seconds: float = 2.0, shift: float = 0.0) -> np.ndarray:
    """[T, 17, 3] metres: arms waving, the dancer walking along x."""
    t = np.arange(int(round(seconds * FPS))) / FPS
    poses = np.repeat(STAND[None], len(t), axis=0)
    poses[:, [12, 13, 15, 16], 1] += 0.3 * np.sin(2 * np.pi * t + shift)[:, None]
    poses[..., 0] += 0.4 * t[:, None]
    return poses


def probe(path) -> dict:
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        pytest.skip("ffprobe is not installed")
    out = subprocess.run([ffprobe, "-v", "error", "-show_entries",
                          "stream=codec_type,codec_name,width,height,nb_frames,duration:format=duration",
                          "-of", "json", str(path)], capture_output=True, text=True, check=True).stdout
    info = json.loads(out)
    info["streams"] = {s["codec_type"]: s for s in info["streams"]}
    return info


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def tone(seconds: float, sr: int = 22050) -> np.ndarray:
    return (0.2 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * sr)) / sr)).astype(np.float32)


def test_mp4_lasts_as_long_as_the_dance_with_a_shorter_song(tmp_path, ffmpeg):
    out = render.save_video(dance(2.0), FPS, tmp_path / "clip.mp4", audio=(tone(1.0), 22050),
                            size=SIZE, progress=False)
    info = probe(out)
    assert abs(float(info["format"]["duration"]) - 2.0) <= 1 / FPS
    assert abs(float(info["streams"]["video"]["duration"]) - 2.0) <= 1 / FPS
    assert int(info["streams"]["video"]["nb_frames"]) == 48
    assert info["streams"]["video"]["codec_name"] == "h264"
    assert info["streams"]["audio"]["codec_name"] == "aac"
    assert abs(float(info["streams"]["audio"]["duration"]) - 2.0) <= 1 / FPS  # padded, not cut
    assert leftovers(tmp_path) == ["clip.mp4"]


def test_mp4_cuts_a_longer_song_file(tmp_path, ffmpeg):
    song = tmp_path / "song.wav"
    sf.write(song, tone(3.0), 22050)
    out = render.save_video(dance(1.5), FPS, tmp_path / "clip.mp4", audio=song, size=SIZE,
                            progress=False)
    info = probe(out)
    assert abs(float(info["format"]["duration"]) - 1.5) <= 1 / FPS
    assert "audio" in info["streams"]


def test_three_dances_of_different_lengths_side_by_side(tmp_path, ffmpeg):
    dances = {"ground truth": dance(1.0), "model A": dance(0.5, 1.0), "model B": dance(0.75, 2.0)}
    out = render.save_video(dances, FPS, tmp_path / "cmp.mp4", size=SIZE, progress=False)
    info = probe(out)
    assert int(info["streams"]["video"]["width"]) == 3 * SIZE
    assert int(info["streams"]["video"]["nb_frames"]) == 24  # the longest dance
    assert "audio" not in info["streams"]


def test_shorter_dance_holds_its_last_frame():
    scene = render.Scene({"long": dance(1.0), "short": dance(0.5, 1.0)}, FPS, size=SIZE)
    width = scene.pixel_size[0]
    # The short dance's panel, above the time label (which spills over at this small size).
    right = lambda frame: np.asarray(scene.render(frame))[:-20, width // 2:].copy()
    held, later, earlier = right(11), right(23), right(5)
    assert np.array_equal(held, later)
    assert not np.array_equal(held, earlier)


def test_gif_by_suffix_and_by_flag(tmp_path):
    out = render.save_video(dance(0.5), FPS, tmp_path / "a.gif", size=SIZE, progress=False)
    with Image.open(out) as gif:
        assert gif.n_frames == 12 and gif.size == (SIZE, SIZE)
        assert gif.info["duration"] == pytest.approx(1000 / FPS, abs=2)
    flagged = render.save_video(dance(0.5), FPS, tmp_path / "b.mp4", gif=True, size=SIZE, progress=False)
    assert flagged == tmp_path / "b.gif"
    assert leftovers(tmp_path) == ["a.gif", "b.gif"]


def test_bad_input_fails_clearly_and_leaves_nothing(tmp_path, ffmpeg):
    out = tmp_path / "out" / "clip.mp4"
    with pytest.raises(ValueError, match=r"dance 'b'.*\[T, 17, 3\]"):
        render.save_video({"a": dance(0.5), "b": np.zeros((12, 16, 3))}, FPS, out, size=SIZE)
    with pytest.raises(ValueError, match="NaN"):
        render.save_video(np.full((4, 17, 3), np.nan), FPS, out, size=SIZE)
    with pytest.raises(FileNotFoundError, match="no_song.ogg"):
        render.save_video(dance(0.5), FPS, out, audio=tmp_path / "no_song.ogg", size=SIZE)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError, match="cannot create the folder"):
        render.save_video(dance(0.5), FPS, blocker / "clip.mp4", size=SIZE)
    broken = tmp_path / "broken.wav"
    broken.write_text("not audio")  # ffmpeg fails mid-way: the partial mp4 is removed
    with pytest.raises(RuntimeError, match="ffmpeg failed"):
        render.save_video(dance(0.5), FPS, out, audio=broken, size=SIZE, progress=False)
    assert not out.exists()
    assert leftovers(out.parent) == []
    assert leftovers(tmp_path) == ["a_file", "broken.wav", "out"]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can write any folder")
def test_unwritable_folder(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(PermissionError, match="not writable"):
        render.save_video(dance(0.5), FPS, locked / "clip.mp4", size=SIZE)


def test_root_relative_dances_stand_on_the_floor():
    poses = dance(1.0)
    relative = poses - poses[:, :1]
    shown = render.for_display(relative)
    np.testing.assert_allclose(shown[:, list(FEET), 1].min(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(shown - shown[:, :1], relative)
    np.testing.assert_array_equal(render.for_display(poses), poses)  # global: unchanged


@pytest.mark.filterwarnings("ignore:Animation was deleted without rendering")
def test_animate_and_key_frame_strip():
    anim = render.animate({"a": dance(0.5), "b": dance(1.0)}, FPS, size=SIZE)
    assert isinstance(anim, FuncAnimation) and anim.scene.num_frames == 24
    line = anim.scene.panels[0]["bones"][render.LEFT_COLOUR]
    anim.scene.update(0)
    first = np.array(line.get_data_3d())
    anim.scene.update(6)
    assert not np.allclose(first, np.array(line.get_data_3d()), equal_nan=True)
    del anim, line  # never shown on screen: matplotlib's warning about that is expected here
    gc.collect()
    fig = render.plot_poses(dance(1.0), frames=[0, 6, 12, 18], title="strip")
    assert isinstance(fig, Figure) and len(fig.axes) == 4
    with pytest.raises(ValueError, match="out of range"):
        render.plot_poses(dance(1.0), frames=[0, 99])


def test_to_jshtml_caps_frames_and_needs_no_network():
    page = widgets.to_jshtml(dance(2.0), FPS, max_frames=10, size=SIZE)
    assert "<script" in page and "Animation" in page
    assert 1 <= page.count("data:image/png;base64") <= 10
    assert "https://" not in page


# ----------------------------------------------------------------------------------------------
# the OpenCV frames (kakashi.player.raster) and the ffmpeg pipe (kakashi.player.ffmpeg)

class Stop(Exception):
    """Raised by a frame source half-way."""


def colour_pixels(image: np.ndarray, colour: str) -> int:
    return int(np.all(np.abs(image.astype(int) - rgb(colour)) < 30, axis=-1).sum())


def test_raster_frames_in_order_equal_frames_drawn_alone():
    raster = Raster(make_stage({"a": dance(1.0), "b": dance(0.5, 1.0)}, FPS), SIZE, title="t")
    assert (raster.width, raster.height) == (2 * SIZE, SIZE + 22)
    in_order = [frame.copy() for frame in raster.frames()]
    assert len(in_order) == 24
    for k in (0, 5, 11, 12, 23):
        np.testing.assert_array_equal(in_order[k], raster.frame(k))
    assert not np.array_equal(in_order[0], in_order[6])  # the arms move
    right = lambda k: in_order[k][:-20, SIZE:]  # the short dance's panel, above the time label
    np.testing.assert_array_equal(right(11), right(23))  # it holds its last frame
    assert not np.array_equal(right(5), right(11))


def test_raster_draws_left_blue_and_right_red_where_the_camera_sees_them():
    image = Raster(make_stage({"": dance(0.5)}, FPS), 240).frame(0)
    assert image.dtype == np.uint8 and image.shape == (240, 240, 3)
    # The default camera stands in front of the dancer: their left (+x) is on the picture's right.
    for colour, columns in ((LEFT_COLOUR, slice(120, 240)), (RIGHT_COLOUR, slice(0, 120))):
        assert colour_pixels(image[:, columns], colour) > 30
    overlaid = Raster(make_stage({"a": dance(0.5), "b": dance(0.5, 2.0)}, FPS, overlay=True), 240)
    assert overlaid.width == 240


def test_song_and_video_names_with_a_colon(tmp_path, ffmpeg, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sf.write("remix:v2.wav", tone(1.0), 22050)
    out = render.save_video(dance(1.0), FPS, "dance:v2.mp4", audio="remix:v2.wav", size=SIZE, progress=False)
    info = probe(tmp_path / out)
    assert "audio" in info["streams"] and int(info["streams"]["video"]["nb_frames"]) == 24
    assert leftovers(tmp_path) == ["dance:v2.mp4", "remix:v2.wav"]
    assert pipe.ffmpeg_path("remix:v2.wav") == f"file:{tmp_path}/remix:v2.wav"


def test_an_exception_mid_render_kills_ffmpeg_and_leaves_nothing(tmp_path, ffmpeg, monkeypatch):
    started = []
    real_popen = subprocess.Popen

    def popen(*args, **kwargs):
        started.append(real_popen(*args, **kwargs))
        return started[-1]

    def frames():
        raster = Raster(make_stage({"": dance(2.0)}, FPS), SIZE)
        for k, frame in enumerate(raster.frames()):
            if k == 10:
                assert [p.name for p in tmp_path.glob("*.partial")], "ffmpeg writes a .partial file"
                raise Stop
            yield frame

    monkeypatch.setattr(pipe.subprocess, "Popen", popen)
    with pytest.raises(Stop):
        pipe.write_video(frames(), 48, (SIZE, SIZE), FPS, tmp_path / "x.mp4", None, shutil.which("ffmpeg"),
                         23, tmp_path / "log.txt", progress=False)
    assert started and started[0].poll() is not None  # ffmpeg is gone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.txt"]


RENDER_LONG = """
import sys, numpy as np
from kakashi.render import save_video
t = np.arange(24 * 600) / 24  # ten minutes: still rendering when the signal comes
poses = np.zeros((len(t), 17, 3)) + np.linspace(0, 1.7, 17)[None, :, None] * [0, 1, 0]
poses[:, 13, 0] += np.sin(t)
save_video(poses, 24.0, sys.argv[1], size=480, progress=False)
"""


def _render_in_a_child(out):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
    child = subprocess.Popen([sys.executable, "-c", RENDER_LONG, str(out)], env=env)
    deadline = time.monotonic() + 60
    while not list(out.parent.glob("*.partial")):
        assert child.poll() is None and time.monotonic() < deadline, "the render did not start"
        time.sleep(0.05)
    time.sleep(0.5)
    return child


def _ffmpeg_children_of(pid: int) -> list[int]:
    found = []
    for status in glob.glob("/proc/[0-9]*/status"):
        try:
            text = open(status).read()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)
        if fields.get("Name", "").strip() == "ffmpeg" and fields.get("PPid", "").strip() == str(pid):
            found.append(int(fields["Pid"]))
    return found


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads child processes from /proc")
def test_sigterm_mid_render_kills_ffmpeg_and_removes_the_partial_file(tmp_path, ffmpeg):
    child = _render_in_a_child(tmp_path / "dance.mp4")
    workers = _ffmpeg_children_of(child.pid)
    assert workers, "ffmpeg runs under the render"
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=30) == 128 + signal.SIGTERM
    time.sleep(0.2)
    assert not [pid for pid in workers if os.path.exists(f"/proc/{pid}") and
                "zombie" not in open(f"/proc/{pid}/status").read()], "ffmpeg outlived the render"
    assert leftovers(tmp_path) == []


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads child processes from /proc")
def test_after_sigkill_the_partial_file_is_named_so_and_removed_by_the_next_render(tmp_path, ffmpeg):
    out = tmp_path / "dance.mp4"
    child = _render_in_a_child(out)
    workers = _ffmpeg_children_of(child.pid)
    child.kill()
    child.wait(timeout=30)
    deadline = time.monotonic() + 10  # ffmpeg dies with its parent (PR_SET_PDEATHSIG)
    while any(os.path.exists(f"/proc/{pid}") for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = leftovers(tmp_path)
    assert left == [f"dance.mp4.{child.pid}.partial"], left  # no file that passes for the video
    render.save_video(dance(0.5), FPS, out, size=SIZE, progress=False)
    assert leftovers(tmp_path) == ["dance.mp4"]


def test_key_frame_grid_has_a_row_per_dance_and_a_column_per_time():
    fig = render.key_frame_grid({"a": dance(1.0), "b": dance(0.5, 1.0)}, FPS, frames=[0, 12, 23], size=64)
    assert isinstance(fig, Figure) and len(fig.axes) == 6
    assert [ax.get_title() for ax in fig.axes[:3]] == ["0.00 s", "0.50 s", "0.96 s"]
    assert [fig.axes[0].get_ylabel(), fig.axes[3].get_ylabel()] == ["a", "b"]
    held, moved = fig.axes[4].images[0].get_array(), fig.axes[5].images[0].get_array()
    np.testing.assert_array_equal(held, moved)  # the shorter dance holds its last pose
    assert not np.array_equal(fig.axes[1].images[0].get_array(), fig.axes[2].images[0].get_array())
    with pytest.raises(ValueError, match="out of range"):
        render.key_frame_grid(dance(1.0), FPS, frames=[0, 24])


def test_contact_sheet_shows_each_whole_dance_in_rows_of_cols_poses():
    long, short = dance(10.0), dance(3.0, 1.0)
    fig = render.contact_sheet({"a": long, "b": short}, FPS, every_s=2.0, cols=3, size=64)
    assert [ax.get_title() for ax in fig.axes] == ["0:00", "0:02", "0:04", "0:06", "0:08", "", "0:00", "0:02", ""]
    assert [ax.get_ylabel() for ax in fig.axes[::3]] == ["a", "", "b"]
    assert [ax.axison for ax in fig.axes[3:6]] == [True, True, False]   # a row's empty end is blank
    drawn = Raster(make_stage({"": long}, FPS), 64, elev=render.ELEV, azim=render.AZIM, clock=False)
    np.testing.assert_array_equal(fig.axes[4].images[0].get_array(), drawn.frame(192))   # 8 s
    named = render.contact_sheet({"a song named at some length, by a careful person": short}, FPS, every_s=2.0)
    assert named.axes[0].get_ylabel() == "a song named at some le…"           # cut to LABEL_CHARS
    with pytest.raises(ValueError, match="every_s"):
        render.contact_sheet(long, FPS, every_s=0.0)


def test_loss_curve_epochs_are_whole_numbers():
    from kakashi.plots import loss_curve

    history = {"loss": "mse", "epochs": [{"epoch": e, "train_loss": 1 / e, "val_loss": 2 / e} for e in (1, 2, 3)]}
    ax = loss_curve(history)
    ax.figure.canvas.draw()
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)
