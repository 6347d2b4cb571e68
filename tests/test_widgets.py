"""The browser player's Python side: what it sends to the browser, its HTML copy, bad input.

What the browser does with it (drawing in sync with the music) is tested in test_browser.py.
"""
from __future__ import annotations

import base64
import json
import re

import anywidget
import numpy as np
import pytest

from kakashi import widgets
from kakashi.player.stage import for_display
from test_render import FPS, dance, tone

SIZE = 96


def decoded(player: widgets.Player, i: int) -> np.ndarray:
    mm = np.frombuffer(base64.b64decode(player.poses[i]), dtype="<i2")
    return mm.reshape(player.frames[i], 17, 3) / 1000.0  # [T, 17, 3] metres


def test_poses_are_sent_once_in_millimetres_with_the_layouts():
    a, b = dance(1.0), dance(0.5, 1.0) - dance(0.5, 1.0)[:, :1]  # b is root-relative
    player = widgets.Player({"a": a, "b": b}, FPS, size=SIZE, title="two")
    assert isinstance(player, anywidget.AnyWidget)
    assert player.names == ["a", "b"] and player.frames == [24, 12] and player.duration == 1.0
    np.testing.assert_allclose(decoded(player, 0), a, atol=0.0005)
    np.testing.assert_allclose(decoded(player, 1), for_display(b), atol=0.0005)  # feet on the floor
    assert len(player.layouts["side"]["centres"]) == 2 and len(player.layouts["overlay"]["centres"]) == 1
    assert player.audio == "" and player.peaks == "" and player.beats == []
    assert player.look["parents"][:4] == [-1, 0, 1, 2] and len(player.look["side"]) == 17
    assert (player.size, player.title, player.overlay) == (SIZE, "two", False)
    assert len(json.dumps(player.state())) < 4 * 24 * 17 * 3 * 2 + 4000  # compact: about 2 bytes a coordinate


def test_music_waveform_and_beats_are_sent():
    beats = [0.25, 0.75]
    player = widgets.Player(dance(1.0), FPS, audio=(tone(1.0, 8000), 8000), beats=beats, size=SIZE)
    assert re.match(r"data:audio/(ogg|wav);base64,", player.audio)
    assert player.audio_seconds == pytest.approx(1.0)
    peaks = np.frombuffer(base64.b64decode(player.peaks), np.int8).reshape(-1, 2)  # [columns, (min, max)]
    assert (peaks[:, 0] <= peaks[:, 1]).all() and peaks.max() == 127 and peaks.min() <= -126
    assert player.beats == beats


def test_waveform_peaks_follow_the_loudness():
    samples = np.concatenate([np.zeros(1000), np.sin(np.arange(1000))]).astype(np.float32)
    peaks = np.frombuffer(widgets.waveform_peaks(samples, columns=10), np.int8).reshape(10, 2)
    assert (peaks[:5] == 0).all() and (peaks[5:, 1] > 120).all() and (peaks[5:, 0] < -120).all()


def test_the_html_copy_is_self_contained_and_script_safe():
    player = widgets.Player({"</script><b>x": dance(0.5)}, FPS, audio=(tone(0.5), 22050), beats=[], size=SIZE)
    page = player.to_html()
    assert page.count("</script>") == 1  # the name cannot close the script early
    assert "http://" not in page and "https://" not in page
    assert f'data-kakashi-standalone="{player.uid}"' in page
    state = json.loads(re.search(r"const state = (.*);\n", page).group(1).replace("<\\/", "</"))
    assert state["names"] == ["</script><b>x"] and state["poses"] == player.poses
    assert "export default { render }" in page.replace("\\n", "\n")  # player.js inlined


def test_displaying_shows_the_widget_and_its_html_copy(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda *objs, **kw: shown.extend(objs))
    player = widgets.show(dance(0.5), FPS, size=SIZE)
    player._ipython_display_()
    assert "application/vnd.jupyter.widget-view+json" in shown[0]
    assert shown[0]["application/vnd.jupyter.widget-view+json"]["model_id"] == player.model_id
    assert set(shown[1]) == {"text/html"} and player.uid in shown[1]["text/html"]


def test_bad_input_fails_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        widgets.Player(dance(0.5), FPS, audio=tmp_path / "missing.wav", size=SIZE)
    with pytest.raises(ValueError, match="NaN"):
        widgets.Player(np.full((4, 17, 3), np.nan), FPS, size=SIZE)
    with pytest.raises(ValueError, match=r"\[T, 17, 3\]"):
        widgets.Player(np.zeros((4, 16, 3)), FPS, size=SIZE)
    with pytest.raises(ValueError, match="size"):
        widgets.Player(dance(0.5), FPS, size=10)
    with pytest.raises(ValueError, match="fps"):
        widgets.Player(dance(0.5), 0.0, size=SIZE)
