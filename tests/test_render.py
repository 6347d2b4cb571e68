"""Rendering dances: mp4 with the music, GIF, side by side, static figures, the notebook player."""
from __future__ import annotations

import gc
import json
import os
import shutil
import subprocess

import ipywidgets
import numpy as np
import pytest
import soundfile as sf
from matplotlib.animation import FuncAnimation
from matplotlib.figure import Figure
from PIL import Image

from kakashi import render, widgets
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


def test_player_slider_redraws_and_controls_exist():
    player = widgets.Player({"a": dance(1.0), "b": dance(0.5)}, FPS, audio=(tone(1.0), 22050), size=SIZE)
    assert isinstance(player, ipywidgets.VBox)
    first = bytes(player.image.value)
    assert first.startswith(b"\x89PNG")
    player.slider.value = 12
    assert player.wait()
    assert player.frame == 12 and bytes(player.image.value) != first
    assert isinstance(player.play, ipywidgets.Play) and player.play.max == 23
    assert (player.speed.min, player.speed.max) == (0.25, 2.0)
    player.speed.value = 2.0
    assert player.play.interval == round(1000 / (2 * FPS))
    before = bytes(player.image.value)
    player.azimuth.value = 30.0
    assert player.wait()
    assert bytes(player.image.value) != before
    player.elevation.value = 60.0
    assert player.wait() and player.scene.elev == 60.0
    for frame in range(24):  # a fast scrub: the latest frame is drawn, stale ones may be skipped
        player.slider.value = frame
    assert player.wait() and player.frame == 23
    html = player.audio.value
    assert "data:audio/wav;base64," in html and "onloadedmetadata=" in html
    assert f"kakashi-audio-{player.uid}" in html and player.uid in html.split("onloadedmetadata=")[1]
    assert f"kakashi-play-{player.uid}" in player.play._dom_classes
    assert "http" not in html


def test_player_without_music_and_bad_music(tmp_path):
    assert widgets.show(dance(0.5), FPS, size=SIZE).audio is None
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        widgets.Player(dance(0.5), FPS, audio=tmp_path / "missing.wav", size=SIZE)


def test_to_jshtml_caps_frames_and_needs_no_network():
    page = widgets.to_jshtml(dance(2.0), FPS, max_frames=10, size=SIZE)
    assert "<script" in page and "Animation" in page
    assert 1 <= page.count("data:image/png;base64") <= 10
    assert "https://" not in page
