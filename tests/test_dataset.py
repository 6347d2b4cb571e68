"""Clip store, windows, splits and loaders."""

import dataclasses

import numpy as np
import pytest
import torch

from kakashi import clips, dataset
from kakashi.config import get_preset

from helpers import make_clips


def test_clip_round_trip_and_atomicity(tmp_path):
    poses = np.random.default_rng(1).normal(size=(30, 17, 3)).astype(np.float32)
    path = clips.write_clip(tmp_path, "a", poses, 24, np.zeros(22050, np.float32), {"source": "x"})
    clip = clips.read_clip(path)
    np.testing.assert_array_equal(clip.poses, poses)
    assert clip.fps == 24 and clip.meta["source"] == "x" and clip.confidence.shape == (30, 17)
    with pytest.raises(ValueError, match="NaN"):
        clips.write_clip(tmp_path, "b", np.full((3, 17, 3), np.nan), 24, np.zeros(100), {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]  # nothing half-written
    with pytest.raises(ValueError, match="unsafe clip id"):
        clips.write_clip(tmp_path, "../escape", poses, 24, np.zeros(100), {})
    assert clips.safe_clip_id("../../etc/My Video: #1!") == "etc_My_Video_1"
    (path / clips.POSES).write_bytes(b"not an npz")
    with pytest.raises(ValueError, match=str(path)):
        clips.read_clip(path)


@pytest.mark.parametrize("n,seq,stride", [(100, 20, 20), (100, 20, 7), (20, 20, 5), (37, 10, 10), (19, 20, 5)])
def test_windows_cover_every_frame(n, seq, stride):
    starts = dataset.window_starts(n, seq, stride)
    if n < seq:
        assert starts == []
        return
    covered = np.zeros(n, bool)
    for s in starts:
        assert 0 <= s and s + seq <= n
        covered[s:s + seq] = True
    assert covered.all()
    assert starts[:-1] == list(range(0, starts[-2] + 1, stride)) if len(starts) > 1 else True


def test_split_is_by_clip_and_deterministic():
    items = list(range(60))
    a = dataset.split_items(items, (0.7, 0.2, 0.1), seed=3)
    b = dataset.split_items(items, (0.7, 0.2, 0.1), seed=3)
    assert a == b and [len(a[s]) for s in dataset.SPLITS] == [42, 12, 6]
    assert sorted(a["train"] + a["val"] + a["test"]) == items
    assert dataset.split_items(items, (0.7, 0.2, 0.1), seed=4) != a
    assert [len(x) for x in dataset.split_items(list(range(6)), (0.7, 0.2, 0.1)).values()] == [4, 1, 1]


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    return make_clips(tmp_path_factory.mktemp("ds"))


def test_load_splits_never_share_a_clip(small_dataset):
    preset = get_preset("smoke", seq_len=24, stride=12, batch_size=3)
    splits = dataset.load_splits(small_dataset, preset)
    ids = {s: {c.clip.clip_id for c in splits.clips[s]} for s in dataset.SPLITS}
    assert not (ids["train"] & ids["val"]) and not (ids["train"] & ids["test"]) and not (ids["val"] & ids["test"])
    assert sum(len(v) for v in ids.values()) == 6
    # the normaliser is fitted on the training clips only
    train_feats = np.concatenate([c.features for c in splits.clips["train"]])
    np.testing.assert_allclose(train_feats.mean(0), 0, atol=1e-4)
    assert splits.feature_dim == 20
    # root-relative poses, time-major batches
    audio, poses = next(iter(dataset.make_loader(splits, "train", preset, shuffle=True)))
    assert audio.shape == (24, 3, 20) and poses.shape == (24, 3, 17, 3)
    assert torch.allclose(poses[:, :, 0], torch.zeros(1))


def test_a_training_seed_does_not_split_the_songs_again(small_dataset):
    """Runs of every training seed learn from the same songs and are measured on the same
    held-out songs: the split follows `split_seed` alone."""
    def members(preset):
        splits = dataset.load_splits(small_dataset, preset)
        return {s: sorted(c.clip.clip_id for c in splits.clips[s]) for s in dataset.SPLITS}

    base = get_preset("smoke", seq_len=24, stride=12)
    assert members(dataclasses.replace(base, seed=7)) == members(base)
    assert members(dataclasses.replace(base, split_seed=1)) != members(base)


def test_centred_songs_are_heard_the_same_at_any_level_and_timbre(small_dataset):
    from kakashi.audio import FEATURE_DIMS, level_columns

    rich = level_columns("rich")
    assert list(rich) == list(range(21)) and list(level_columns("rhythm")) == list(rich)   # onset + 20 MFCC
    assert list(level_columns("mfcc")) == list(range(FEATURE_DIMS["mfcc"]))
    rng = np.random.default_rng(0)
    songs = [rng.normal(size=(50, 4)) + rng.normal(scale=5.0, size=4) for _ in range(4)]   # each its own offset
    plain = dataset.Normaliser.fit(songs)
    norm = dataset.Normaliser(plain.mean, plain.std, centred=(0, 1))
    louder = songs[0] + np.array([3.0, -2.0, 0.0, 0.0])          # the same song, other level and timbre
    np.testing.assert_allclose(norm(louder)[:, :2], norm(songs[0])[:, :2], atol=1e-5)
    np.testing.assert_allclose(norm(songs[0])[:, :2].mean(0), 0, atol=1e-5)               # at the training mean
    np.testing.assert_allclose(norm(songs[0])[:, :2].std(0), plain(songs[0])[:, :2].std(0), rtol=1e-5)  # changes kept
    np.testing.assert_allclose(norm(songs[1])[:, 2:], plain(songs[1])[:, 2:], atol=1e-6)  # other columns as before
    assert abs(plain(louder)[:, 0].mean() - plain(songs[0])[:, 0].mean()) > 0.2          # uncentred: heard louder
    # a preset that centres songs at generation: training is not changed
    preset = get_preset("smoke", seq_len=24, stride=12)
    centring = get_preset("smoke", seq_len=24, stride=12, centre_songs=True)
    assert dataset.centred_columns(preset) == () and dataset.centred_columns(centring) == tuple(range(20))
    a, b = dataset.load_splits(small_dataset, preset), dataset.load_splits(small_dataset, centring)
    for x, y in zip(a.clips["train"], b.clips["train"]):
        np.testing.assert_array_equal(x.features, y.features)


def test_scaled_songs_are_heard_the_same_at_any_level_and_dynamic_range(small_dataset):
    """Preset.scale_songs: every song's level columns (onset, MFCC), in training as at generation,
    leave with mean 0 and std 1 over the song, however loud, bright or compressed it is."""
    rng = np.random.default_rng(1)
    songs = [rng.normal(size=(60, 4)) * rng.uniform(0.5, 3.0, 4) + rng.normal(scale=5.0, size=4) for _ in range(4)]
    plain = dataset.Normaliser.fit(songs)
    centre = dataset.Normaliser(plain.mean, plain.std, centred=(0, 1))
    scale = dataset.Normaliser(plain.mean, plain.std, centred=(0, 1), scaled=True)
    wider = songs[0] * np.array([2.5, 0.4, 1.0, 1.0]) + np.array([3.0, -2.0, 0.0, 0.0])   # louder swings, flatter timbre
    np.testing.assert_allclose(scale(wider)[:, :2], scale(songs[0])[:, :2], atol=1e-5)
    assert not np.allclose(centre(wider)[:, :2], centre(songs[0])[:, :2], atol=0.1)        # centring keeps the spread
    for song in songs:
        np.testing.assert_allclose(scale(song)[:, :2].mean(0), 0, atol=1e-5)
        np.testing.assert_allclose(scale(song)[:, :2].std(0), 1, atol=1e-5)
        np.testing.assert_allclose(scale(song)[:, 2:], plain(song)[:, 2:], atol=1e-6)     # other columns as before
    flat = songs[1].copy()
    flat[:, 0] = 7.0                                                                        # a silent column stays finite
    assert np.isfinite(scale(flat)).all()
    # the preset scales the training songs too (and so every split), each clip on its own
    scaling = get_preset("smoke", seq_len=24, stride=12, scale_songs=True)
    assert dataset.centred_columns(scaling) == tuple(range(20))
    splits = dataset.load_splits(small_dataset, scaling)
    for split in dataset.SPLITS:
        for data in splits.clips[split]:
            np.testing.assert_allclose(data.features[:, :20].mean(0), 0, atol=1e-4)
            np.testing.assert_allclose(data.features[:, :20].std(0), 1, atol=1e-3)
    plain_splits = dataset.load_splits(small_dataset, get_preset("smoke", seq_len=24, stride=12))
    assert splits.normaliser.scaled and not plain_splits.normaliser.scaled


def test_leaky_split_by_window(small_dataset):
    preset = get_preset("smoke", seq_len=24, stride=12, split_by="window")
    splits = dataset.load_splits(small_dataset, preset)
    clips_of = {s: {splits.clips[s][c].clip.clip_id for c, _ in splits.windows[s]} for s in dataset.SPLITS}
    assert clips_of["train"] & clips_of["val"]  # the paper's split puts one song in several splits
    n = sum(len(w) for w in splits.windows.values())
    assert n == sum(len(dataset.window_starts(c.clip.num_frames, 24, 12)) for c in splits.clips["train"])


def test_global_poses_option_and_short_clips(small_dataset):
    preset = get_preset("smoke", seq_len=110, stride=110, root_relative=False)
    splits = dataset.load_splits(small_dataset, preset)
    assert splits.skipped  # clips under 110 frames are listed, not silently lost
    assert splits.clips["train"][0].poses[:, 0, 1].mean() > 0.5  # hip height kept


def test_the_seed_pose_is_a_training_frame_not_the_shrunken_mean(small_dataset):
    """Songs without a first pose are danced from the seed pose, whose bones a body-building model
    keeps: it must be a real frame (its bones a dancer's), placed over the mean hip."""
    rng = np.random.default_rng(0)
    angle = rng.uniform(-1.5, 1.5, 50)
    frames = np.zeros((50, 17, 3))
    frames[:, :, 1] = 1.0
    frames[:, 1, [0, 2]] = 0.3 * np.stack([np.cos(angle), np.sin(angle)], axis=1)  # a 0.3 m bone turning
    frames += rng.normal(0.0, 0.5, (50, 1, 3)) * [1, 0, 1]                          # travelling
    seed = dataset.seed_pose([frames[:20], frames[20:]])
    about_hip = frames - frames[:, :1]
    assert np.abs(about_hip - (seed - seed[0])).max(axis=(1, 2)).min() < 1e-6      # one of the frames,
    assert abs(np.linalg.norm(seed[1] - seed[0]) - 0.3) < 1e-6                      # with its bone
    assert np.linalg.norm(about_hip.mean(0)[1]) < 0.25                              # (the mean's is short)
    np.testing.assert_allclose(seed[0], frames[:, 0].mean(0), atol=1e-6)           # over the mean hip
    splits = dataset.load_splits(small_dataset, get_preset("smoke", seq_len=24, stride=12, root_relative=False))
    train = np.concatenate([c.poses for c in splits.clips["train"]])
    seed = splits.seed_pose
    assert np.abs((train - train[:, :1]) - (seed - seed[0])).max(axis=(1, 2)).min() < 1e-6


def test_index(small_dataset):
    rows = dataset.index(small_dataset)
    assert len(rows) == 6 and rows[0]["clip_id"] == "clip_00" and rows[0]["fps"] == 24
    assert 4 <= rows[0]["seconds"] <= 6


def test_errors_name_the_dataset(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset folder not found"):
        dataset.load_splits(tmp_path / "nope", get_preset("smoke"))
    make_clips(tmp_path / "two", n=2)
    with pytest.raises(ValueError, match="at least 3 clips"):
        dataset.load_splits(tmp_path / "two", get_preset("smoke"))
