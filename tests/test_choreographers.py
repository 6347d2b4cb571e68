"""The non-learned choreographers: shapes, determinism, seams, beats, ground truth, real songs, bad input."""
from __future__ import annotations

import numpy as np
import pytest

from kakashi import audio, metrics
from kakashi.choreographers import CHOREOGRAPHERS, dance_file, get_choreographer, retrieval
from kakashi.choreographers.listening import listen
from kakashi.choreographers.procedural import describe
from kakashi.clips import SR, list_clips, read_clip
from kakashi.dataset import split_items
from kakashi.synth import build_dataset, make_dance, make_song

FPS = 24.0
# A seam "jumps" when a joint moves farther in one frame than 1.5 x the largest per-frame
# joint displacement of the ground-truth dances (0.35 m on the smoke set). Measured: the
# choreographers' largest steps are 0.10-0.44 m (6 synthetic and 8 real songs, 4 seeds; the
# synthetic dancer's own move changes reach 0.44 m), random segments cross-faded 0.19-0.37 m,
# the same without cross-fades 0.73-0.88 m.
JUMP_FACTOR = 1.5
# A 120 bpm click track: BAS (FACT's, motion beats against the clicks) measured 0.82-0.92
# over 4 seeds (0.71-0.95 at 90-150 bpm); motion unrelated to the beat scores about 0.25.
CLICK_BAS = 0.6
# Procedural dance against the synthetic dancer's own dance to a 40 s song: mean body speed
# ratio measured 0.69-1.05 and BAS difference -0.04..+0.05 over 5 styles x 4 seeds.
SPEED_RATIO = (0.6, 1.5)
BAS_DROP = 0.1
FLOOR_M = 0.03            # the lower ankle's median height above y = 0 on a real song


@pytest.fixture(scope="module")
def smoke_set(tmp_path_factory):
    """The smoke synthetic dataset (6 songs of 8-12 s), built in a temporary folder."""
    out = tmp_path_factory.mktemp("synth_smoke")
    build_dataset(out, n_songs=6, seconds=(8.0, 12.0), seed=0, workers=1)
    return out


@pytest.fixture(scope="module")
def test_song(smoke_set):
    """(audio [N], clip) of the smoke set's test-split song: not in retrieval's library."""
    path = split_items(list_clips(smoke_set), seed=0)["test"][0]
    clip = read_clip(path)
    return audio.load_audio(clip.audio_path), clip


def _dance(name, y, smoke_set, fps=FPS, seed=0):
    context = {"dataset": smoke_set} if name == "retrieval" else {}
    return CHOREOGRAPHERS[name](y, SR, fps, seed=seed, **context)


def _max_step(poses):
    """Largest per-frame displacement (m) of any joint."""
    return float(np.linalg.norm(np.diff(poses, axis=0), axis=-1).max())


def clicks_at(beats: np.ndarray, seconds: float) -> np.ndarray:
    """Audio [N] at SR: a 1 kHz click of 30 ms at each of the times `beats` (s)."""
    y = np.zeros(int(seconds * SR), np.float32)
    t = np.arange(int(0.03 * SR)) / SR
    click = (np.sin(2 * np.pi * 1000 * t) * np.exp(-t / 0.008)).astype(np.float32)
    for b in beats:
        i = int(round(b * SR))
        y[i:i + len(click)] += click[:len(y) - i]
    return 0.5 * y


def click_track(bpm: float, seconds: float, start: float = 0.5):
    """(audio [N] at SR, click times [B] s): a click on every beat at a steady tempo."""
    beats = np.arange(start, seconds - 0.1, 60.0 / bpm)
    return clicks_at(beats, seconds), beats


def test_registry_names_and_unknown():
    assert set(CHOREOGRAPHERS) == {"procedural", "retrieval"}
    assert get_choreographer("procedural") is CHOREOGRAPHERS["procedural"]
    with pytest.raises(ValueError, match="procedural"):
        get_choreographer("nope")


@pytest.mark.parametrize("name", sorted(CHOREOGRAPHERS))
@pytest.mark.parametrize("fps", [24.0, 30.0])
def test_one_pose_per_feature_frame(name, fps, test_song, smoke_set):
    y, _ = test_song
    poses = _dance(name, y, smoke_set, fps=fps)
    assert poses.shape == (len(audio.features(y, SR, fps, "mfcc")), 17, 3)
    assert poses.dtype == np.float32 and np.isfinite(poses).all()


@pytest.mark.parametrize("name", sorted(CHOREOGRAPHERS))
def test_deterministic_per_seed(name, test_song, smoke_set):
    y, _ = test_song
    a, b = _dance(name, y, smoke_set, seed=3), _dance(name, y, smoke_set, seed=3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, _dance(name, y, smoke_set, seed=4))


@pytest.mark.parametrize("name", sorted(CHOREOGRAPHERS))
def test_no_jump(name, smoke_set):
    limit = JUMP_FACTOR * max(_max_step(read_clip(p).poses) for p in list_clips(smoke_set))
    for path in list_clips(smoke_set)[:3]:
        y = audio.load_audio(path / "audio.wav")
        for seed in (0, 1):
            assert _max_step(_dance(name, y, smoke_set, seed=seed)) < limit, (path.name, seed)


def test_retrieval_seams_cross_faded(smoke_set):
    """Segments joined at random (no transition cost) still meet without a jump."""
    y, _ = click_track(128.0, 20.0)
    heard = listen(y, SR, FPS)
    library = retrieval.load_library(smoke_set, "all")
    stretch, starts = retrieval.stretches(heard)
    limit = JUMP_FACTOR * max(_max_step(read_clip(p).poses) for p in list_clips(smoke_set))
    rng = np.random.default_rng(0)
    for _ in range(3):
        chosen = rng.integers(len(library.start), size=len(starts))
        poses = retrieval.stitch(library, chosen, heard, stretch, starts)
        assert len(poses) == heard.n_frames
        assert _max_step(poses) < limit


def test_retrieval_library_is_kept(smoke_set):
    assert retrieval.load_library(smoke_set) is retrieval.load_library(smoke_set)
    with pytest.raises(ValueError, match="split"):
        retrieval.load_library(smoke_set, "everything")


@pytest.mark.parametrize("name", sorted(CHOREOGRAPHERS))
def test_moves_on_the_clicks(name, smoke_set):
    y, clicks = click_track(120.0, 12.0)
    for seed in (0, 1):
        assert metrics.beat_alignment(_dance(name, y, smoke_set, seed=seed), FPS, clicks) > CLICK_BAS


@pytest.mark.parametrize("name", sorted(CHOREOGRAPHERS))
def test_follows_a_changing_tempo(name, smoke_set):
    """Clicks accelerating from 96 to 132 bpm over 20 s: BAS measured 0.71-0.79 over 4 seeds;
    the same dancers following a steady 114 bpm grid score 0.16-0.25 against these clicks."""
    seconds, beats = 20.0, [0.5]
    while beats[-1] + 60.0 / (96 + 36 * beats[-1] / seconds) < seconds - 0.2:
        beats.append(beats[-1] + 60.0 / (96 + 36 * beats[-1] / seconds))
    beats = np.array(beats)
    assert metrics.beat_alignment(_dance(name, clicks_at(beats, seconds), smoke_set), FPS, beats) > CLICK_BAS


def test_steady_clock_is_the_synthetic_dance():
    """make_dance with the default clock written out gives the dataset's dance bit for bit."""
    song = make_song(3, 12.0, style="funk")
    clock = np.arange(int(round(song.seconds * FPS))) / FPS
    np.testing.assert_array_equal(make_dance(song, 4, clock=clock).poses, make_dance(song, 4).poses)


@pytest.mark.parametrize("style", ["dnb", "hiphop"])
def test_procedural_close_to_ground_truth(style):
    song = make_song(7, 40.0, style=style)
    truth = make_dance(song, 8).poses
    poses = CHOREOGRAPHERS["procedural"](song.audio, SR, FPS, seed=0)
    ratio = metrics.body_speed(poses, FPS) / metrics.body_speed(truth, FPS)
    assert SPEED_RATIO[0] < ratio < SPEED_RATIO[1]
    assert (metrics.beat_alignment(poses, FPS, song.beats)
            > metrics.beat_alignment(truth, FPS, song.beats) - BAS_DROP)
    described, _ = describe(song.audio, SR, listen(song.audio, SR, FPS))
    assert described.style == style
    phrase_s = 8 * 60.0 / song.bpm
    middles = np.arange(0.5 * phrase_s, song.seconds, phrase_s)
    agree = np.mean([described.section_at(t).name == song.section_at(t).name for t in middles])
    assert agree >= 0.8


@pytest.mark.parametrize("name", sorted(CHOREOGRAPHERS))
def test_real_song(name, shared_data, smoke_set):
    path = shared_data / "music" / "Kevin_MacLeod_-_Vibe_Ace.ogg"
    context = {"dataset": smoke_set} if name == "retrieval" else {}
    poses = dance_file(name, path, FPS, **context)
    assert len(poses) == len(audio.features(audio.load_audio(path), SR, FPS, "mfcc"))
    assert np.isfinite(poses).all()
    lower_ankle = poses[:, [3, 6], 1].min(axis=1)
    assert lower_ankle.min() > -FLOOR_M and np.median(lower_ankle) < FLOOR_M
    assert metrics.frozen_share(poses, FPS) < 0.5


@pytest.mark.parametrize("name", sorted(CHOREOGRAPHERS))
def test_draws_of_one_hearing_are_each_seeds_own_dance(name, test_song, smoke_set):
    """dance_file with draws decodes and hears the song once; every draw is the dance its seed
    gives alone, and the draws differ."""
    _, clip = test_song
    context = {"dataset": smoke_set} if name == "retrieval" else {}
    drawn = dance_file(name, clip.audio_path, FPS, seed=3, draws=2, **context)
    alone = [dance_file(name, clip.audio_path, FPS, seed=s, **context) for s in (3, 4)]
    assert len(drawn) == 2 and all(np.array_equal(a, b) for a, b in zip(drawn, alone))
    assert not np.array_equal(*drawn)


@pytest.mark.parametrize("name", sorted(CHOREOGRAPHERS))
@pytest.mark.parametrize("y, problem", [
    (np.zeros(5 * SR, np.float32), "silent"),
    (np.random.default_rng(0).uniform(-0.5, 0.5, SR // 2).astype(np.float32), "too short"),
    (np.full(3 * SR, np.nan, np.float32), "NaN"),
    (np.zeros((3 * SR, 2), np.float32), "mono"),
])
def test_bad_input(name, y, problem, smoke_set):
    with pytest.raises(ValueError, match=problem):
        _dance(name, y, smoke_set)


def test_bad_file_is_named(tmp_path):
    import soundfile as sf

    path = tmp_path / "quiet.wav"
    sf.write(path, np.zeros(3 * SR, np.float32), SR)
    with pytest.raises(ValueError, match=f"{path}: audio is silent"):
        dance_file("procedural", path, FPS)


def test_choreograph_command(tmp_path, test_song):
    from kakashi.cli import main

    _, clip = test_song
    out = tmp_path / "dance.npz"
    assert main(["choreograph", str(clip.audio_path), "-c", "procedural", "--npz", str(out)]) == 0
    with np.load(out) as data:
        assert data["poses"].shape == (clip.num_frames, 17, 3)
        assert str(data["checkpoint"]) == "procedural"


def test_retrieval_hears_the_library_features(test_song):
    """The song's music columns are the very numbers of the library's cached `rich` features."""
    y, _ = test_song
    heard = listen(y, SR, FPS)
    rich = audio.features(y, SR, FPS, "rich", n_frames=heard.n_frames)
    np.testing.assert_array_equal(retrieval.song_music(y, SR, heard), rich[:, retrieval.MUSIC_COLUMNS])
