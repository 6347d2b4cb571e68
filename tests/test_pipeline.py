"""Dance videos -> clips: manifests, download (offline file URL), ffmpeg, pose, quality, build."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from kakashi.cli import main as cli_main
from kakashi.clips import SR, read_clip
from kakashi.pipeline import download as dl
from kakashi.pipeline import quality, video
from kakashi.pipeline.build import REJECTED, REPORT, BuildSettings, build_dataset
from kakashi.pipeline.manifest import Source, collect_sources, parse_time, read_manifest
from kakashi.skeleton import FEET, HEAD, ROOT, bone_length_cv, fill_gaps, put_on_floor, root_relative


def _lavfi(ffmpeg, out, video=True, audio=True, seconds=2.0):
    """A small test file made with ffmpeg's lavfi sources (testsrc picture, sine tone)."""
    args = [ffmpeg, "-v", "error", "-y"]
    if video:
        args += ["-f", "lavfi", "-i", f"testsrc=size=160x120:rate=10:duration={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
    args += (["-c:v", "libx264", "-pix_fmt", "yuv420p"] if video else []) + (["-c:a", "aac"] if audio and video else [])
    subprocess.run(args + [str(out)], check=True)
    return out


# ---------------------------------------------------------------- manifests
def test_parse_time():
    assert parse_time("1:15") == 75.0 and parse_time("75.5") == 75.5 and parse_time("1:00:05") == 3605.0
    assert parse_time("") is None and parse_time(None) is None
    for bad in ("1:xx", "1:75", "-3", "1:2:3:4"):
        with pytest.raises(ValueError, match="bad time"):
            parse_time(bad)


def test_manifest_rows(tmp_path):
    (tmp_path / "videos").mkdir()
    text = ("source,start,end,label,id\n"
            "videos/a.mp4,0:05,0:20,pop,\n"             # line 2: ok, relative path
            "videos/a.mp4,0:05,0:20,pop,\n"             # line 3: duplicate of line 2
            "videos/b.mp4,1:xx,2:00,,\n"                # line 4: bad time
            "videos/c.mp4,10,5,,\n"                     # line 5: end before start
            "videos/d.mp4,1,2,x,y,extra\n"              # line 6: too many fields
            "https://example.com/watch?v=abc,,,hip,\n"  # line 7: ok, URL
            "videos/e.mp4,,,,../../evil\n")             # line 8: an id cannot leave the folder
    (tmp_path / "m.csv").write_text(text)
    sources, errors = read_manifest(tmp_path / "m.csv")
    assert [s.clip_id for s in sources] == ["a_5-20", "abc", "evil"]
    assert sources[0].source == str((tmp_path / "videos" / "a.mp4").resolve())
    assert sources[0].start == 5.0 and sources[0].end == 20.0 and sources[0].label == "pop"
    assert sources[1].is_url and sources[1].start is None
    assert len(errors) == 4
    assert "line 3: duplicate of m.csv line 2; built once" in errors[0]
    assert "line 4: bad time '1:xx'" in errors[1]
    assert "line 5: end '5' is not after start '10'" in errors[2]
    assert "line 6: too many fields" in errors[3]
    assert all(str(tmp_path / "m.csv") in e for e in errors)


def test_project_manifests(shared_data):
    from kakashi.config import REPO_ROOT

    cuts = [line.split() for line in (shared_data / "kakashi_wod" / "cuts_wod.txt").read_text().splitlines() if line.strip()]
    sources, errors = read_manifest(REPO_ROOT / "data" / "manifests" / "kakashi_wod.csv")
    assert not errors and len(sources) == len(cuts)
    assert [s.playlist_index for s in sources] == list(range(1, len(cuts) + 1))
    assert all("PL8Kqpe3GkRgEgsXA39EE5lsArQPrcZcLj" in s.source for s in sources)
    for s, (a, b) in zip(sources, cuts):
        assert (s.start, s.end) == (parse_time(a), parse_time(b))
    local, errors = read_manifest(REPO_ROOT / "data" / "manifests" / "example_local.csv")
    assert not errors and local[0].source == str((shared_data / "video" / "mgt_dancer.avi").resolve())


# ---------------------------------------------------------------- pure helpers
def test_fill_gaps_and_floor():
    T = 40
    poses = np.zeros((T, 17, 3), np.float32)
    poses[:, :, 0] = np.arange(T)[:, None]  # x = frame index
    valid = np.ones(T, bool)
    valid[[0, 1]] = False      # leading gap: held
    valid[10:13] = False       # short gap: interpolated
    valid[20:35] = False       # 15 frames = 1.5 s at 10 fps: held, not interpolated
    out, conf = fill_gaps(np.where(valid[:, None, None], poses, np.nan), np.ones((T, 17)), valid, 10.0, 0.5)
    assert np.isfinite(out).all()
    assert out[[0, 1], 0, 0] == pytest.approx([2, 2])
    assert out[10:13, 0, 0] == pytest.approx([10, 11, 12])
    assert out[20:28, 0, 0] == pytest.approx([19] * 8) and out[28:35, 0, 0] == pytest.approx([35] * 7)
    assert (conf[~valid] == 0).all() and (conf[valid] == 1).all()
    with pytest.raises(ValueError, match="no person detected"):
        fill_gaps(poses, np.ones((T, 17)), np.zeros(T, bool), 10.0)
    rng = np.random.default_rng(0)
    floored = put_on_floor(root_relative(rng.normal(size=(T, 17, 3)).astype(np.float32)), FEET)
    assert floored[:, FEET, 1].min() == pytest.approx(0.0, abs=1e-6)
    assert np.ptp(floored[:, ROOT, 1]) == pytest.approx(0.0, abs=1e-6)  # root at one height


def test_camera_motion():
    rng = np.random.default_rng(0)
    texture = (rng.random((120, 400)) * 255).astype(np.float32)
    still = [(texture[:, :160], texture[:, :160]) for _ in range(5)]
    pan = [(texture[:, 2 * i:2 * i + 160], texture[:, 2 * i + 2:2 * i + 162]) for i in range(5)]
    flat = [(np.full((120, 160), 80, np.float32),) * 2]
    assert quality.camera_motion(still, 25.0) < 0.005
    assert quality.camera_motion(pan, 25.0) == pytest.approx(2 * 25 / 160, rel=0.1)  # widths/s
    assert quality.camera_motion(flat, 25.0) == 0.0


# ---------------------------------------------------------------- ffmpeg / ffprobe
def test_video_probe_and_errors(tmp_path, ffmpeg):
    both = _lavfi(ffmpeg, tmp_path / "both.mp4")
    info = video.probe(both)
    assert info.has_video and info.has_audio and info.fps == 10.0 and abs(info.duration - 2.0) < 0.1
    assert video.resolve_cut(info, None, None) == (0.0, info.duration)
    with pytest.raises(ValueError, match=r"both.mp4: cut 5-8 s is outside the video \(duration 2"):
        video.resolve_cut(info, 5.0, 8.0)
    wav = video.extract_audio(both, tmp_path / "a.wav", 0.5, 1.5)
    samples, sr = sf.read(wav)
    assert sr == SR and samples.ndim == 1 and abs(len(samples) / SR - 1.0) < 0.03
    cut = video.trim(both, tmp_path / "cut.mp4", 0.5, 1.5, fps=8.0)
    cut_info = video.probe(cut)
    assert cut_info.fps == 8.0 and not cut_info.has_audio and abs(cut_info.duration - 1.0) < 0.15


def test_download_file_url(tmp_path, ffmpeg, monkeypatch):
    src = _lavfi(ffmpeg, tmp_path / "clip.mp4")
    url = src.as_uri()
    cache = tmp_path / "cache"
    path = dl.download(url, cache, allow_file_urls=True)
    assert path.parent == cache and path.stat().st_size == src.stat().st_size
    assert dl.read_note(path)["url"] == url
    import yt_dlp

    def no_network(*args, **kwargs):
        raise AssertionError("a cached video was fetched again")

    monkeypatch.setattr(yt_dlp, "YoutubeDL", no_network)
    assert dl.download(url, cache, allow_file_urls=True) == path
    monkeypatch.undo()
    with pytest.raises(dl.DownloadError, match="missing.mp4: download failed"):
        dl.download((tmp_path / "missing.mp4").as_uri(), cache, allow_file_urls=True)
    name = dl.cache_name("https://x.org/../../etc/passwd?v=../../a b")
    assert "/" not in name and not name.startswith(".")


# ---------------------------------------------------------------- is it a dance?
# A standing skeleton (H36M-17, metres, y up): hips, knees, ankles, spine, arms.
STANDING = np.array([[0, .95, 0], [-.1, .95, 0], [-.1, .52, 0], [-.1, .08, 0], [.1, .95, 0], [.1, .52, 0],
                     [.1, .08, 0], [0, 1.2, 0], [0, 1.45, 0], [0, 1.55, .05], [0, 1.7, 0], [.18, 1.45, 0],
                     [.22, 1.2, 0], [.24, .95, 0], [-.18, 1.45, 0], [-.22, 1.2, 0], [-.24, .95, 0]], np.float32)
SEATED_LEGS = np.array([[-.1, .47, .02], [-.1, .47, .47], [-.1, .05, .47],      # r hip, knee, ankle
                        [.1, .47, .02], [.1, .47, .47], [.1, .05, .47]], np.float32)
JITTER_M = (0.0044, 0.008)  # estimator noise per joint and axis: MediaPipe on mgt_dancer.avi, its
                            # legs minus their 0.2 s moving average, is 4.4 mm rms; twice as noisy
FPS_TEST = 25.0


def person(seconds=20.0, legs="dance", jitter=0.0, seed=0):
    """[T, 17, 3] of a person who moves the arms (playing or dancing) with legs that `dance`
    (steps to 2 Hz), stand still (`still`) or sit (`seated`), plus Gaussian jitter (metres)."""
    t = np.arange(int(seconds * FPS_TEST)) / FPS_TEST
    poses = np.repeat(STANDING[None], len(t), axis=0)
    poses[:, [13, 16], 1] += 0.25 * np.sin(2 * np.pi * 1.5 * t)[:, None]      # wrists
    poses[:, [12, 15], 0] += 0.05 * np.sin(2 * np.pi * 1.5 * t)[:, None]      # elbows
    if legs == "dance":
        lift = np.clip(np.sin(2 * np.pi * 1.0 * t), 0, None)                  # steps, alternate legs
        poses[:, 2, 1:] += 0.15 * lift[:, None] * [1, 0.4]
        poses[:, 3, 1] += 0.15 * lift
        poses[:, 5, 1:] += 0.15 * np.roll(lift, int(FPS_TEST / 2))[:, None] * [1, 0.4]
        poses[:, 6, 1] += 0.15 * np.roll(lift, int(FPS_TEST / 2))
    elif legs == "seated":
        drop = STANDING[0, 1] - SEATED_LEGS[0, 1]
        poses[:, 7:, 1] -= drop
        poses[:, 0] = [0, SEATED_LEGS[0, 1], 0]
        poses[:, 1:7] = SEATED_LEGS
    return poses + np.random.default_rng(seed).normal(0, jitter, poses.shape).astype(np.float32)


def checks(poses, confidence=None):
    confidence = np.ones(poses.shape[:2], np.float32) if confidence is None else confidence
    return {c.name: c for c in quality.dance_checks(poses, confidence, FPS_TEST)}


@pytest.mark.parametrize("jitter", JITTER_M)
@pytest.mark.parametrize("seed", range(5))
def test_dance_checks_tell_a_dancer_from_a_seated_or_still_legged_player(jitter, seed):
    t = quality.Thresholds()
    dancer = checks(person(legs="dance", jitter=jitter, seed=seed))
    assert all(c.passed for c in dancer.values()), dancer
    assert dancer["lower_body_motion"].value > 2 * t.min_leg_motion
    seated = checks(person(legs="seated", jitter=jitter, seed=seed))
    assert not seated["standing"].passed and seated["standing"].value < 0.1
    assert not seated["lower_body_motion"].passed and seated["full_body"].passed
    still = checks(person(legs="still", jitter=jitter, seed=seed))
    assert still["standing"].passed and still["full_body"].passed and not still["lower_body_motion"].passed
    assert still["lower_body_motion"].value < 0.85 * t.min_leg_motion


def test_dance_checks_need_the_legs_visible_and_name_each_reason():
    poses = person(legs="dance", jitter=JITTER_M[0])
    confidence = np.ones(poses.shape[:2], np.float32)
    confidence[:, [2, 3, 5, 6]] = 0.1                        # knees and ankles guessed, not seen
    assert not checks(poses, confidence)["full_body"].passed
    from kakashi.pipeline.pose import PoseTrack

    track = PoseTrack(person(legs="seated", jitter=JITTER_M[0]), np.ones((500, 17), np.float32),
                      np.ones(500, bool), FPS_TEST)
    q = quality.assess(track)
    assert not q["passed"] and {"standing", "lower_body_motion"} <= set(q["rejected_by"])
    line = quality.summary(q)
    assert "standing: FAILED: standing in 0% of frames" in line and "lower_body_motion: FAILED: legs" in line


# ---------------------------------------------------------------- real video, end to end
@pytest.fixture(scope="module")
def dancer_build(shared_data, tmp_path_factory):
    """mgt_dancer.avi, a 15 s cut, built once for the module (pose estimation is the slow part)."""
    out = tmp_path_factory.mktemp("dancer")
    src = Source(str(shared_data / "video" / "mgt_dancer.avi"), 20.0, 35.0, "contemporary", "dancer")
    report = build_dataset([src], out, workers=1, progress=False)
    return out, report


@pytest.mark.slow
def test_dancer_clip(dancer_build):
    out, report = dancer_build
    assert report.ok and [r.status for r in report.results] == ["built"], report.summary()
    clip = read_clip(out / "dancer")
    assert clip.fps == 24.0 and clip.num_frames == 360  # 375 frames at 25 fps -> 24 fps
    q = clip.meta["quality"]
    assert q["passed"] and q["checks"]["person"]["value"] >= 0.95
    assert bone_length_cv(clip.poses) < 0.15
    assert np.mean(clip.poses[:, HEAD, 1] > clip.poses[:, ROOT, 1]) > 0.99
    assert clip.poses[:, FEET, 1].min() == pytest.approx(0.0, abs=1e-5)
    assert clip.confidence.shape == (clip.num_frames, 17) and clip.confidence.mean() > 0.5
    assert clip.meta["generator"] == "mediapipe-0.10.21" and clip.meta["cut"] == {"start": 20.0, "end": 35.0}
    samples, sr = sf.read(clip.audio_path)
    assert sr == SR and samples.ndim == 1 and abs(len(samples) / SR - 15.0) < 0.05
    assert np.abs(samples).max() > 0.05  # the music, not silence
    again = build_dataset([Source(str(clip.meta["source"]), 20.0, 35.0, "", "dancer")], out, workers=1,
                          progress=False)
    assert [r.status for r in again.results] == ["skipped"]  # resumable


@pytest.mark.slow
def test_dancer_passes_the_dance_checks_and_a_seated_player_from_it_does_not(dancer_build):
    out, _ = dancer_build
    clip = read_clip(out / "dancer")
    q = clip.meta["quality"]["checks"]
    for name in ("standing", "full_body", "lower_body_motion"):
        assert q[name]["passed"], q[name]
    t = quality.Thresholds()
    assert q["lower_body_motion"]["value"] > 2 * t.min_leg_motion and q["standing"]["value"] > 0.95
    # the same person's upper body (arms, head: real motion), sitting with still legs
    poses = clip.poses.copy()
    for seed in range(5):
        seated = poses.copy()
        rng = np.random.default_rng(seed)
        seated[:, 1:7] = poses[:, :1] - STANDING[0] + SEATED_LEGS + rng.normal(0, JITTER_M[1], (len(poses), 6, 3))
        result = {c.name: c for c in quality.dance_checks(seated, clip.confidence, clip.fps)}
        assert not result["standing"].passed and not result["lower_body_motion"].passed, result


@pytest.mark.slow
def test_dancer_cut_at_the_waist_is_rejected(shared_data, tmp_path, ffmpeg):
    top = tmp_path / "top half.mp4"
    subprocess.run([ffmpeg, "-v", "error", "-ss", "20", "-t", "8", "-i", str(shared_data / "video" / "mgt_dancer.avi"),
                    "-vf", "crop=iw:ih/2:0:0", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(top)],
                   check=True)
    report = build_dataset([Source(str(top), None, None, "", "waist")], tmp_path / "out", workers=1, progress=False)
    result = report.results[0]
    assert result.status == "rejected" and "full_body: FAILED" in result.message, result.message
    assert not (tmp_path / "out" / "waist").exists()


@pytest.mark.slow
def test_crowd_rejected(shared_data, tmp_path, ffmpeg):
    # The street video has no sound: give its first 8 s a tone so that only the checks decide.
    street = tmp_path / "street.mp4"
    subprocess.run([ffmpeg, "-v", "error", "-i", str(shared_data / "video" / "opencv_vtest_first30s.mp4"),
                    "-f", "lavfi", "-i", "sine=frequency=440", "-t", "8", "-c:v", "copy", "-c:a", "aac",
                    str(street)], check=True)
    src = Source(str(street), 0.0, 8.0, "", "crowd")
    report = build_dataset([src], tmp_path, workers=1, progress=False)
    result = report.results[0]
    assert result.status == "rejected" and "single_person" in result.message, result.message
    assert "more than one person" in result.message
    assert not (tmp_path / "crowd").exists()
    note = json.loads((tmp_path / REJECTED / "crowd.json").read_text())
    assert "single_person" in note["quality"]["rejected_by"]
    again = build_dataset([src], tmp_path, workers=1, progress=False)
    assert again.results[0].status == "skipped" and "rejected earlier" in again.results[0].message


@pytest.mark.slow
def test_bad_sources_do_not_stop_the_build(shared_data, tmp_path, ffmpeg, capsys):
    dancer = shared_data / "video" / "mgt_dancer.avi"
    _lavfi(ffmpeg, tmp_path / "silent.mp4", audio=False)
    _lavfi(ffmpeg, tmp_path / "tone.wav", video=False)
    _lavfi(ffmpeg, tmp_path / "short.mp4")
    (tmp_path / "corrupt.mp4").write_bytes(np.random.default_rng(0).bytes(5000))
    (tmp_path / "m.csv").write_text(
        "source,start,end,label,id\n"
        f"{dancer},30,33,,good\n"
        "missing.mp4,,,,missing\n"
        "silent.mp4,,,,silent\n"
        "tone.wav,,,,tone\n"
        "corrupt.mp4,,,,corrupt\n"
        "short.mp4,5,8,,short\n"
        "short.mp4,0:xx,1,,badrow\n"
        f"{dancer},30,33,,good\n")
    out = tmp_path / "out"
    code = cli_main(["build", str(tmp_path / "m.csv"), "--out", str(out), "--workers", "1"])
    printed = capsys.readouterr().out
    assert code == 1
    report = json.loads((out / REPORT).read_text())
    results = {r["clip_id"]: r for r in report["results"]}
    assert results["good"]["status"] == "built" and read_clip(out / "good").num_frames == 3 * 24
    expected = {"missing": "missing.mp4: video file not found",
                "silent": "silent.mp4: no audio track",
                "tone": "tone.wav: no video stream",
                "corrupt": "corrupt.mp4: unreadable or corrupt video",
                "short": "short.mp4: cut 5-8 s is outside the video"}
    for clip_id, message in expected.items():
        assert results[clip_id]["status"] == "failed" and message in results[clip_id]["message"]
        assert message in printed
    assert any("line 8: bad time '0:xx'" in e for e in report["manifest_errors"])
    assert any("line 9: duplicate of m.csv line 2" in e for e in report["manifest_errors"])
    assert "1 built, 0 skipped, 0 rejected, 5 failed, 2 bad manifest rows" in printed


def test_process_pool_and_sources(tmp_path, ffmpeg):
    """Two workers (process pool): each bad source fails with its own message."""
    (tmp_path / "videos").mkdir()
    _lavfi(ffmpeg, tmp_path / "videos" / "silent.mp4", audio=False)
    (tmp_path / "videos" / "corrupt.mkv").write_bytes(b"not a video")
    sources, errors = collect_sources(tmp_path / "videos")
    assert [s.clip_id for s in sources] == ["corrupt", "silent"] and not errors
    report = build_dataset(tmp_path / "videos", tmp_path / "out", workers=2, progress=False)
    messages = sorted(r.message for r in report.failed)
    assert not report.ok and len(messages) == 2
    assert "corrupt.mkv: unreadable or corrupt video" in messages[0]
    assert "silent.mp4: no audio track" in messages[1]
    with pytest.raises(FileNotFoundError, match="no such manifest, folder or video"):
        collect_sources(tmp_path / "nothing")
    import mediapipe

    lite = Path(mediapipe.__file__).parent / "modules" / "pose_landmark" / "pose_landmark_lite.tflite"
    if lite.exists():
        return  # the lite model was installed by hand: nothing to refuse
    with pytest.raises(FileNotFoundError, match="model_complexity=0"):
        build_dataset(tmp_path / "videos", tmp_path / "out2", workers=1, progress=False,
                      settings=BuildSettings(estimator_settings=(("model_complexity", 0),)))
