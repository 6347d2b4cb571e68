"""kakashi.augment and its hook in kakashi.dataset: each augmentation does what it says, the
tempo stretch keeps music and dance together, and validation and test never see a copy."""
from __future__ import annotations

import zlib

import librosa
import numpy as np
import pytest

from kakashi import augment
from kakashi.clips import SR
from kakashi.config import get_preset
from kakashi.dataset import load_splits
from kakashi.synth import build_dataset, dance_to, make_song
from test_synth import _beat_hit_rate, beat_f_measure

FPS = 24.0
SEEDS = range(5)


def _tone(hz: float, seconds: float = 2.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _db(a: np.ndarray, b: np.ndarray) -> float:
    return 20 * np.log10(augment.rms(a) / augment.rms(b))


@pytest.fixture(scope="module")
def song_and_dance():
    song = make_song(3, 20.0, style="pop")
    return song, dance_to(song, 4, fps=FPS)


def test_gain_scales_rms():
    y = _tone(440.0)
    for db in (-12.0, -3.0, 0.0, 4.5):
        out = augment.gain(y, db)
        assert out.shape == y.shape and out.dtype == np.float32
        assert _db(out, y) == pytest.approx(db, abs=1e-4)


def test_shelves_lift_their_band_only():
    low, high = _tone(50.0), _tone(9000.0)
    mid = _tone(1000.0)
    for db in (-6.0, 6.0):
        # a shelf reaches its full gain an octave or more past the corner frequency
        assert _db(augment.shelf_eq(low, SR, low_db=db), low) == pytest.approx(db, abs=0.5)
        assert _db(augment.shelf_eq(high, SR, low_db=db), high) == pytest.approx(0.0, abs=0.1)
        assert _db(augment.shelf_eq(high, SR, high_db=db), high) == pytest.approx(db, abs=0.5)
        assert _db(augment.shelf_eq(low, SR, high_db=db), low) == pytest.approx(0.0, abs=0.1)
        assert abs(_db(augment.shelf_eq(mid, SR, low_db=db, high_db=db), mid)) < abs(db) / 2
    assert augment.shelf_eq(mid, SR).tobytes() == mid.tobytes()             # 0 dB: unchanged
    with pytest.raises(ValueError, match="shelf frequency"):
        augment.shelf_eq(mid, SR, low_db=3.0, low_hz=SR)


def test_noise_reaches_the_snr(song_and_dance):
    y = song_and_dance[0].audio
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        for snr in (5.0, 20.0, 35.0):
            out = augment.add_noise(y, snr, rng)
            assert out.shape == y.shape and out.dtype == np.float32
            assert _db(y, out - y) == pytest.approx(snr, abs=0.5)


def test_reverb_keeps_length_and_level_and_decays():
    rng = np.random.default_rng(0)
    click = np.zeros(3 * SR, np.float32)
    click[SR // 10] = 1.0
    rt60 = 1.0
    out = augment.reverb(click, SR, rt60, wet=1.0, rng=rng)
    assert out.shape == click.shape and augment.rms(out) == pytest.approx(augment.rms(click), rel=1e-4)
    start = SR // 10
    early = augment.rms(out[start:start + SR // 20])
    later = augment.rms(out[start + SR // 2:start + SR // 2 + SR // 20])    # rt60 / 2 on: -30 dB
    assert 20 * np.log10(later / early) == pytest.approx(-30.0, abs=4.0)
    y = _tone(440.0)
    dry = augment.reverb(y, SR, 0.5, wet=0.0, rng=rng)
    assert np.allclose(dry, y, atol=1e-6)
    with pytest.raises(ValueError, match="rt60"):
        augment.reverb(y, SR, 0.0, 0.5, rng)


@pytest.mark.parametrize("factor", [0.87, 1.15])
def test_tempo_stretch_keeps_music_and_dance_together(song_and_dance, factor):
    song, dance = song_and_dance
    music, poses = augment.tempo_stretch(song.audio, SR, dance.poses, FPS, factor)
    f = float(augment.stretch_ratio(factor))
    assert abs(f - factor) < 1e-3
    assert len(music) == pytest.approx(len(song.audio) * f, abs=1)
    assert len(poses) == round(len(dance.poses) * f) and poses.shape[1:] == (17, 3)
    assert round(len(music) / SR * FPS) == len(poses)                      # one pose per feature frame
    beats = song.beats * f                                                  # beat times scale by f
    _, found = librosa.beat.beat_track(y=music, sr=SR, units="time", trim=False)
    assert beat_f_measure(beats, found) >= 0.9
    on = _beat_hit_rate(poses, beats)
    off = _beat_hit_rate(poses, (beats[:-1] + beats[1:]) / 2)
    print(f"stretch {f:.3f}: motion beats on the stretched beats {on:.2f}, half a beat off {off:.2f}")
    assert on >= 0.6 and on > off + 0.3
    same, same_poses = augment.tempo_stretch(song.audio, SR, dance.poses, FPS, 1.0)
    assert np.allclose(same, song.audio, atol=1e-6) and np.array_equal(same_poses, dance.poses)


def test_augment_song_is_deterministic_and_keeps_shapes(song_and_dance):
    song, dance = song_and_dance
    seen = set()
    for seed in SEEDS:
        y1, p1, applied = augment.augment_song(song.audio, SR, dance.poses, FPS, np.random.default_rng(seed))
        y2, p2, _ = augment.augment_song(song.audio, SR, dance.poses, FPS, np.random.default_rng(seed))
        assert y1.tobytes() == y2.tobytes() and p1.tobytes() == p2.tobytes()
        assert y1.dtype == np.float32 and y1.ndim == 1 and np.isfinite(y1).all()
        f = applied.get("stretch", 1.0)
        assert len(p1) == round(len(dance.poses) * f) and p1.shape[1:] == (17, 3)
        assert len(y1) == pytest.approx(len(song.audio) * f, abs=1)
        seen |= set(applied)
    assert seen == {"stretch", "eq", "reverb", "noise", "gain"}


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    return build_dataset(tmp_path_factory.mktemp("aug") / "ds", 5, (5.0, 6.0), seed=0, workers=1)[0].parent


def test_copies_join_training_only(small_dataset):
    base = get_preset("smoke", features="mfcc")
    clean = load_splits(small_dataset, base)
    aug = load_splits(small_dataset, get_preset("smoke", features="mfcc", augment=2))
    assert clean.augmented == [] and len(aug.augmented) == 2 * len(aug.clips["train"])
    train_ids = {c.clip.clip_id for c in aug.clips["train"]}
    assert {c.clip.clip_id for c in aug.augmented} == train_ids
    for split in ("val", "test"):
        assert aug.windows[split] == clean.windows[split]
        assert len(aug.dataset(split, base.seq_len)) == len(clean.dataset(split, base.seq_len))
        for a, c in zip(aug.clips[split], clean.clips[split]):
            assert a.clip.clip_id == c.clip.clip_id
            assert a.features.tobytes() == c.features.tobytes() and a.poses.tobytes() == c.poses.tobytes()
    n_clean = len(clean.windows["train"])
    assert aug.windows["train"][:n_clean] == clean.windows["train"]
    assert len(aug.windows["train"]) > n_clean
    assert all(c >= len(aug.clips["train"]) for c, _ in aug.windows["train"][n_clean:])
    assert np.array_equal(aug.normaliser.mean, clean.normaliser.mean)     # the yardstick is the clean songs
    data = aug.dataset("train", base.seq_len)
    audio, poses = data[len(data) - 1]                                      # a window of a copy
    assert audio.shape == (base.seq_len, 20) and poses.shape == (base.seq_len, 17, 3)
    for copy in aug.augmented:
        assert len(copy.features) == len(copy.poses)


def test_copies_use_the_clean_feature_recipe(small_dataset):
    from kakashi.audio import features, load_audio
    from kakashi.clips import list_clips, read_clip

    clip = read_clip(list_clips(small_dataset)[0])
    y = load_audio(clip.audio_path)
    copies = augment.augmented_copies(y, SR, clip.poses, clip.fps, "rich", 2, seed=0, name=clip.clip_id)
    for k, (f, p, applied) in enumerate(copies):
        rng = np.random.default_rng([0, zlib.crc32(clip.clip_id.encode()), k])
        samples, dance, same = augment.augment_song(y, SR, clip.poses, clip.fps, rng)
        assert same == applied and np.array_equal(dance, p)
        assert np.array_equal(f, features(samples, SR, clip.fps, "rich", n_frames=len(dance)))
    assert not np.array_equal(copies[0][1], copies[1][1]) or copies[0][2] != copies[1][2]


def test_copies_are_cached(small_dataset, monkeypatch):
    from kakashi.audio import load_audio
    from kakashi.clips import list_clips, read_clip

    clip = read_clip(list_clips(small_dataset)[1])
    first = augment.clip_copies(clip, "mfcc", 2, seed=5)
    files = sorted((clip.path / "features" / augment.CACHE_DIR).glob("mfcc_s5_*.npz"))
    assert [f.name for f in files] == ["mfcc_s5_0.npz", "mfcc_s5_1.npz"]
    fresh = augment.augmented_copies(load_audio(clip.audio_path), SR, clip.poses, clip.fps, "mfcc", 2,
                                     seed=5, name=clip.clip_id)
    for (f, p), (f2, p2, _) in zip(first, fresh):
        assert np.array_equal(f, f2) and np.array_equal(p, p2.astype(np.float32))
    stamps = [f.stat().st_mtime_ns for f in files]
    again = augment.clip_copies(clip, "mfcc", 3, seed=5)                    # two read back, one new
    assert [f.stat().st_mtime_ns for f in files] == stamps and len(again) == 3
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(first, again))
    monkeypatch.setattr(augment, "AUGMENT_VERSION", "changed")              # a stale cache is redone
    augment.clip_copies(clip, "mfcc", 1, seed=5)
    assert files[0].stat().st_mtime_ns != stamps[0]


def test_bad_input(small_dataset):
    with pytest.raises(ValueError, match="split_by='clip'"):                # copies would leak
        load_splits(small_dataset, get_preset("smoke", features="mfcc", split_by="window", augment=1))
    with pytest.raises(ValueError, match="stretch factor"):
        augment.stretch_ratio(10.0)
    with pytest.raises(ValueError, match="mono"):
        augment.gain(np.zeros((2, 10)), 3.0)
    with pytest.raises(ValueError, match="copies"):
        augment.augmented_copies(_tone(100.0), SR, np.zeros((48, 17, 3)), FPS, "mfcc", -1, 0)


# kakashi.feature_shift: the distance the benchmark reports (benchmarks/bench_feature_shift.py)

def _rich(rng, n, shift=0.0, scale=1.0):
    from kakashi.audio import FEATURE_DIMS
    return (rng.normal(shift, scale, (n, FEATURE_DIMS["rich"]))).astype(np.float32)


def test_feature_shift_sanity():
    from kakashi.feature_shift import GROUPS, feature_shift, frechet

    rng = np.random.default_rng(0)
    train = [_rich(rng, 400) for _ in range(3)]
    same = feature_shift(train, train)
    assert same["frechet"] == pytest.approx(0.0, abs=1e-6)
    assert all(same[f"outside/{g}"] == 0.0 and same[f"frechet/{g}"] == pytest.approx(0, abs=1e-6) for g in GROUPS)
    near = feature_shift([_rich(rng, 1200)], train)                       # the same distribution
    far = feature_shift([_rich(rng, 1200, shift=1.0, scale=2.0)], train)  # moved and wider
    assert far["frechet"] > 10 * near["frechet"]
    assert all(far[f"outside/{g}"] > near[f"outside/{g}"] for g in GROUPS)
    # two Gaussians, one dimension: (mu_a - mu_b)^2 + (s_a - s_b)^2
    a, b = rng.normal(0.0, 1.0, (20000, 1)), rng.normal(2.0, 3.0, (20000, 1))
    assert frechet(a, b) == pytest.approx(4.0 + 4.0, rel=0.05)
    with pytest.raises(ValueError, match="rich"):
        feature_shift([np.zeros((10, 20))], [np.zeros((10, 20))])
