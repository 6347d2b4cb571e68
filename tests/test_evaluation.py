"""The `evaluate` command on dance files written in tmp_path: JSON, table, --reference, --audio, bad input."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
import soundfile as sf

from kakashi import metrics as M
from kakashi.cli import main
from kakashi.clips import SR, write_clip
from test_metrics import beat_dance, synth_set

FPS = 24.0


def write_dances(folder, dances, fps=FPS):
    paths = []
    for i, poses in enumerate(dances):
        path = folder / f"dance{i}.npz"
        np.savez(path, poses=np.asarray(poses, np.float32), fps=np.float64(fps))
        paths.append(str(path))
    return paths


def evaluate(capsys, *argv) -> tuple[int, str, str]:
    code = main(["evaluate", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_holds_every_metric_the_dances_allow(tmp_path, capsys):
    dances = synth_set(3, seed=20)
    code, out, _ = evaluate(capsys, *write_dances(tmp_path, dances), "--json", "--out", tmp_path / "m.json")
    assert code == 0
    values = json.loads(out)
    expected = M.evaluate_dances([d.astype(np.float32) for d in dances], FPS)
    assert list(values) == list(expected)
    assert {"speed", "jerk", "frozen_share", "pfc", "div_k", "div_g"} <= set(values)
    assert "fid_k" not in values and "bas_motion" not in values
    for name, value in expected.items():
        assert values[name] == pytest.approx(value, rel=1e-9), name
    assert json.loads((tmp_path / "m.json").read_text()) == values


def test_table_names_each_metric_and_its_unit(tmp_path, capsys):
    code, out, _ = evaluate(capsys, *write_dances(tmp_path, synth_set(1, seed=21)))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["metric", "value", "unit", "better"]
    assert any(line.startswith("speed ") and "m/s" in line for line in lines)
    assert not any(line.startswith("div_k") for line in lines)                 # one dance: no diversity


def test_reference_dataset_gives_fid_and_speed_ratio(tmp_path, capsys):
    gt = synth_set(4, seed=22)
    dataset = tmp_path / "gt"
    for i, poses in enumerate(gt):
        write_clip(dataset, f"clip{i}", poses, FPS, np.zeros(SR, np.float32), {"source": "test"})
    (dataset / "not_a_clip").mkdir()
    gt_files = write_dances(tmp_path, gt)
    code, out, _ = evaluate(capsys, *gt_files, "--reference", dataset, "--json")
    assert code == 0
    values = json.loads(out)
    assert values["fid_k"] == pytest.approx(0.0, abs=1e-6) and values["fid_g"] == pytest.approx(0.0, abs=1e-6)
    assert values["speed_ratio"] == pytest.approx(1.0)
    assert values["div_k_ref"] == pytest.approx(values["div_k"])
    frozen = [np.repeat(d[:1], len(d), axis=0) for d in synth_set(3, seed=23)]
    (tmp_path / "frozen").mkdir()
    code, out, _ = evaluate(capsys, *write_dances(tmp_path / "frozen", frozen), "--reference", dataset, "--json")
    values = json.loads(out)
    assert code == 0 and values["speed_ratio"] == 0.0 and values["fid_k"] > 10


def test_audio_gives_beat_alignment_that_prefers_dancing_on_the_beat(tmp_path, capsys):
    seconds, beat = 8.0, 0.5
    clicks = np.zeros(int(seconds * SR), np.float32)
    for t in np.arange(0.0, seconds, beat):                                     # 120 bpm click track
        start = int(t * SR)
        clicks[start:start + 400] = np.sin(2 * np.pi * 1000 * np.arange(400) / SR) * np.hanning(400)
    song = tmp_path / "clicks.wav"
    sf.write(song, clicks, SR)
    scores = {}
    for name, offset in (("on", 0.0), ("off", 0.25)):
        folder = tmp_path / name
        folder.mkdir()
        code, out, err = evaluate(capsys, *write_dances(folder, [beat_dance(beat, offset)]), "--audio", song, "--json")
        assert code == 0, err
        scores[name] = json.loads(out)
    for key in ("bas_motion", "bas_music"):
        assert scores["on"][key] > scores["off"][key] + 0.3, (key, scores)


@pytest.mark.parametrize("case, message", [
    ("missing", "dance file not found"),
    ("no_poses", "no 'poses' array"),
    ("shape", r"expected shape \[T, 17, 3\], got \[30, 15, 3\]"),
    ("nan", "NaN"),
    ("text", "not a readable .npz"),
    ("short", "at least 4"),
    ("no_fps", "give the frame rate with --fps"),
])
def test_bad_dance_files_end_with_one_error_line_naming_the_file(tmp_path, capsys, case, message):
    path = tmp_path / f"{case}.npz"
    good = synth_set(1, seed=24)[0]
    if case == "no_poses":
        np.savez(path, joints=good, fps=FPS)
    elif case == "shape":
        np.savez(path, poses=good[:30, :15], fps=FPS)
    elif case == "nan":
        good[5, 3, 0] = np.nan
        np.savez(path, poses=good, fps=FPS)
    elif case == "text":
        path.write_text("not numpy")
    elif case == "short":
        np.savez(path, poses=good[:2], fps=FPS)
    elif case == "no_fps":
        np.savez(path, poses=good)
    code, out, err = evaluate(capsys, path)
    assert code == 1 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kakashi evaluate: error:") and str(path) in lines[0]
    assert re.search(message, lines[0]), lines[0]


def test_fps_option_overrides_and_supplies_the_frame_rate(tmp_path, capsys):
    poses = synth_set(1, seed=25)[0]
    path = tmp_path / "nofps.npz"
    np.savez(path, poses=poses)
    code, out, _ = evaluate(capsys, path, "--fps", "48", "--json")
    assert code == 0
    assert json.loads(out)["speed"] == pytest.approx(M.body_speed(poses.astype(np.float32), 48.0), rel=1e-6)
    assert evaluate(capsys, path, "--fps", "0")[0] == 1


def test_bad_audio_and_reference_end_with_one_error_line(tmp_path, capsys):
    dance = write_dances(tmp_path, synth_set(1, seed=26))
    code, _, err = evaluate(capsys, *dance, "--audio", tmp_path / "nope.wav")
    assert code == 1 and "nope.wav" in err and len(err.strip().splitlines()) == 1
    code, _, err = evaluate(capsys, *dance, "--reference", tmp_path / "no_dataset")
    assert code == 1 and "no_dataset: dataset folder not found" in err
    (tmp_path / "empty").mkdir()
    code, _, err = evaluate(capsys, *dance, "--reference", tmp_path / "empty")
    assert code == 1 and "at least 2 ground-truth dances" in err
