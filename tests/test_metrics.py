"""Sanity tests of every dance metric: known values, invariances, and orderings a wrong metric breaks."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg

from kakashi import metrics as M
from kakashi.metrics.beats import local_minima
from kakashi.skeleton import cmu15_to_h36m, put_on_floor, resample, rotate, smpl24_to_h36m

FPS = 24.0
# A standing H36M-17 body, metres, y up, facing +z, feet on the floor.
REST = np.array([
    [0.0, 0.92, 0.0], [-0.12, 0.92, 0.0], [-0.12, 0.50, 0.0], [-0.12, 0.08, 0.0],
    [0.12, 0.92, 0.0], [0.12, 0.50, 0.0], [0.12, 0.08, 0.0], [0.0, 1.15, 0.0],
    [0.0, 1.40, 0.0], [0.0, 1.52, 0.05], [0.0, 1.66, 0.0], [0.18, 1.38, 0.0],
    [0.20, 1.10, 0.0], [0.21, 0.85, 0.0], [-0.18, 1.38, 0.0], [-0.20, 1.10, 0.0],
    [-0.21, 0.85, 0.0]])
ARMS = [11, 12, 13, 14, 15, 16]
UPPER = [7, 8, 9, 10] + ARMS


def synth_dance(rng: np.random.Generator, seconds: float = 4.0, fps: float = FPS) -> np.ndarray:
    """A varied smooth dance [T, 17, 3]: arm swings, torso sway, a knee bounce, some travel."""
    t = np.arange(int(round(seconds * fps)))[:, None] / fps               # [T, 1]
    tempo = rng.uniform(1.5, 2.5)                                         # beats per second
    energy = rng.uniform(0.3, 1.5)
    poses = np.repeat(REST[None], len(t), axis=0)                         # [T, 17, 3]
    for j in ARMS:
        for axis in range(3):
            amp = energy * rng.uniform(0.0, 0.25) * (1.5 if j in (13, 16) else 1.0)
            poses[:, j, axis] += amp * np.sin(2 * np.pi * tempo * rng.choice([0.5, 1.0]) * t[:, 0]
                                              + rng.uniform(0, 2 * np.pi))
    sway = energy * rng.uniform(0.0, 0.08) * np.sin(np.pi * tempo * t[:, 0] + rng.uniform(0, 6))
    poses[:, UPPER, 0] += sway[:, None]
    bounce = energy * rng.uniform(0.0, 0.05) * (1 - np.cos(2 * np.pi * tempo * t[:, 0]))
    poses[:, [0, 1, 4, 7, 8, 9, 10] + ARMS, 1] -= bounce[:, None]
    poses[:, [2, 5], 2] += 2 * bounce[:, None]                            # knees forward as hips drop
    poses[..., [0, 2]] += rng.uniform(-0.3, 0.3, size=2) * t[:, :, None]  # travel, m/s
    return poses


def synth_set(n: int, seed: int, **kw) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [synth_dance(rng, **kw) for _ in range(n)]


def rotation_y(degrees: float) -> np.ndarray:
    a = np.radians(degrees)
    return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])


# ---------------------------------------------------------------- kinetic features


def test_constant_velocity_gives_exact_energies_and_zero_acceleration():
    t = np.arange(100)[:, None, None] / 60.0
    poses = REST[None] + t * np.array([1.0, 0.0, 0.0])                    # 1 m/s along x
    for shift in (0.0, 5.0):                                              # the reference bug grows with it
        feats = M.kinetic_features(poses + shift, 60).reshape(17, 3)
        np.testing.assert_allclose(feats[:, 0], 1.0, atol=1e-9)           # m^2/s^2
        np.testing.assert_allclose(feats[:, 1], 0.0, atol=1e-9)
        np.testing.assert_allclose(feats[:, 2], 0.0, atol=1e-6)           # m/s^2
        assert M.jerk(poses + shift, 60) < 1e-3
    vertical = REST[None] + t * np.array([0.0, 2.0, 0.0])
    np.testing.assert_allclose(M.kinetic_features(vertical, 60).reshape(17, 3)[:, 1], 4.0, atol=1e-9)


def test_constant_acceleration_expenditure_in_metres_per_second_squared():
    t = np.arange(120)[:, None, None] / 30.0
    poses = REST[None] + 0.5 * 3.0 * t ** 2 * np.array([0.0, 0.0, 1.0])   # 3 m/s^2 along z
    np.testing.assert_allclose(M.kinetic_features(poses, 30).reshape(17, 3)[:, 2], 3.0, rtol=1e-6)


def test_metrics_invariant_under_translation_and_rotation_about_vertical():
    poses = synth_dance(np.random.default_rng(1), seconds=3)
    moved = rotate(poses, rotation_y(37.0)) + np.array([3.0, 0.0, -2.0])
    np.testing.assert_allclose(M.kinetic_features(moved, FPS), M.kinetic_features(poses, FPS), rtol=1e-7, atol=1e-9)
    np.testing.assert_array_equal(M.geometric_features(moved, FPS), M.geometric_features(poses, FPS))
    for name, value in M.dance_metrics(poses, FPS).items():
        assert M.dance_metrics(moved, FPS)[name] == pytest.approx(value, rel=1e-6, abs=1e-9), name


def test_resampling_leaves_speeds_and_kinetic_features_nearly_unchanged():
    poses = synth_dance(np.random.default_rng(2), seconds=4, fps=120)
    base = M.kinetic_features(poses, 120).reshape(17, 3).sum(axis=0)      # [3] summed over joints
    for fps in (24, 30, 60):
        other = resample(poses, 120, fps)
        assert M.body_speed(other, fps) == pytest.approx(M.body_speed(poses, 120), rel=0.03)
        feats = M.kinetic_features(other, fps).reshape(17, 3).sum(axis=0)
        # 120 -> 24 fps loses some of the fastest motion: over 30 other dances the x/y energy moved
        # by up to 5.0 % (this one 2.4 %), the z energy by up to 3.6 %
        np.testing.assert_allclose(feats[:2], base[:2], rtol=0.08)
        np.testing.assert_allclose(feats[2], base[2], rtol=0.15)


# ---------------------------------------------------------------- the paper's failure: frozen, noisy


def test_frozen_pose_has_no_energy_and_frozen_share_one():
    frozen = np.repeat(REST[None], 96, axis=0)
    assert M.body_speed(frozen, FPS) == 0.0
    assert np.abs(M.kinetic_features(frozen, FPS)).max() == 0.0
    assert M.frozen_share(frozen, FPS) == 1.0
    assert len(M.motion_beats(frozen, FPS)) == 0
    assert M.beat_alignment(frozen, FPS, np.arange(0, 4, 0.5)) == 0.0
    dance = synth_dance(np.random.default_rng(3))
    assert M.frozen_share(dance, FPS) < 0.3
    assert M.body_speed(dance, FPS) > 0.1


@pytest.mark.parametrize("seed", range(4))
def test_calm_tells_a_pause_of_seconds_from_a_still_frame_between_moves(seed):
    moves = synth_dance(np.random.default_rng(seed))                       # 4 s
    held = lambda seconds: np.repeat(moves[-1:], int(seconds * FPS), axis=0)
    paused = np.concatenate([moves, held(6.0), moves[::-1]])                # back from where it stopped
    # the 2 s a step's speed is read over reach up to 1 s into the moves on either side
    assert 4.0 < M.longest_calm(paused, FPS) <= 6.0
    assert M.calm_share(paused, FPS) == pytest.approx(M.longest_calm(paused, FPS) * FPS / (len(paused) - 1))
    assert M.calm_share(moves, FPS) == 0.0
    assert M.longest_calm(np.concatenate([moves, held(0.25), moves[::-1]]), FPS) == 0.0
    frozen = np.repeat(REST[None], 96, axis=0)
    assert M.calm_share(frozen, FPS) == 1.0
    assert M.longest_calm(frozen, FPS) == pytest.approx(95 / FPS)


@pytest.mark.parametrize("seed", range(3))
def test_calm_loudness_ranks_where_in_the_music_a_dancer_pauses(seed):
    rng = np.random.default_rng(seed)
    moves = synth_dance(rng)                                               # 4 s
    paused = np.concatenate([moves, np.repeat(moves[-1:], 96, axis=0), moves[::-1]])  # still for 4 s in the middle
    n = len(paused)
    level = rng.normal(0.0, 1.0, n)                                        # loud and busy around the pause
    quiet, loud = level.copy(), level.copy()
    quiet[100:188] -= 10.0                                                 # the pause falls in a quiet passage
    loud[100:188] += 10.0                                                  # ... or in the loudest one
    rank_quiet, calm = M.calm_loudness(paused, FPS, quiet)
    assert calm == int(M.calm_steps(paused, FPS).sum()) > 48
    assert rank_quiet < 0.3 and M.calm_loudness(paused, FPS, loud)[0] > 0.7
    assert M.calm_loudness(paused, FPS, 3.0 * quiet - 7.0)[0] == rank_quiet  # any increasing scale
    unrelated = [M.calm_loudness(paused, FPS, rng.normal(0.0, 1.0, n))[0] for _ in range(20)]
    assert 0.4 < np.mean(unrelated) < 0.6
    never = M.calm_loudness(moves, FPS, level[:len(moves)])
    assert np.isnan(never[0]) and never[1] == 0
    with pytest.raises(ValueError, match="loudness"):
        M.calm_loudness(paused, FPS, np.full(n, np.nan))


def test_noise_raises_jerk_monotonically_and_keeps_a_jittering_pose_frozen():
    rng = np.random.default_rng(4)
    dance = synth_dance(rng)
    noise = rng.normal(size=dance.shape)
    jerks = [M.jerk(dance + s * noise, FPS) for s in (0.0, 0.002, 0.005, 0.01, 0.02)]
    assert all(a < b for a, b in zip(jerks, jerks[1:])), jerks
    jitter = np.repeat(REST[None], len(dance), axis=0) + 0.003 * noise
    assert M.frozen_share(jitter, FPS) == 1.0
    assert M.jerk(jitter, FPS) > M.jerk(dance, FPS)


# ---------------------------------------------------------------- beat alignment


def beat_dance(beat_s: float, offset_s: float, seconds: float = 8.0, fps: float = FPS) -> np.ndarray:
    """Arms swinging so that speed is zero at offset + k * beat (cosine position, |sine| speed)."""
    t = np.arange(int(seconds * fps))[:, None] / fps
    poses = np.repeat(REST[None], len(t), axis=0)
    poses[:, ARMS, 0] += 0.3 * np.cos(np.pi * (t - offset_s) / beat_s)
    return poses


def test_motion_beats_sit_on_the_speed_minima():
    beats = M.motion_beats(beat_dance(0.5, 0.0), FPS)
    np.testing.assert_allclose(beats, 0.5 * np.arange(1, len(beats) + 1), atol=0.5 / FPS)
    assert len(beats) >= 14


def test_local_minima_counts_a_flat_bottom_once_at_its_centre():
    np.testing.assert_array_equal(local_minima(np.array([3.0, 1, 1, 2, 0, 5, 5, 5])), [1.5, 4.0])
    assert len(local_minima(np.ones(10))) == 0


@pytest.mark.parametrize("variant", ["motion", "music"])
def test_beats_on_the_music_score_higher_than_half_a_beat_off(variant):
    music = np.arange(0.5, 8.0, 0.5)             # a beat at t = 0 has no speed sample before it
    on = M.beat_alignment(beat_dance(0.5, 0.0), FPS, music, variant=variant)
    off = M.beat_alignment(beat_dance(0.5, 0.25), FPS, music, variant=variant)
    assert on > 0.9 and off < 0.05, (on, off)
    # sigma is in seconds: a wider tolerance forgives the same offset
    assert M.beat_alignment(beat_dance(0.5, 0.25), FPS, music, variant, sigma=0.5) > 0.8


def test_beat_alignment_rejects_bad_input():
    dance = beat_dance(0.5, 0.0)
    with pytest.raises(ValueError, match="variant"):
        M.beat_alignment(dance, FPS, [1.0], variant="dance")
    with pytest.raises(ValueError, match="no music beats"):
        M.beat_alignment(dance, FPS, [100.0, 200.0])


# ---------------------------------------------------------------- feet


def bouncing_dance(slide_speed: float, fps: float = FPS) -> np.ndarray:
    """Hips bounce (root acceleration); feet on the floor, sliding sideways at slide_speed m/s."""
    t = np.arange(int(4 * fps)) / fps
    poses = np.repeat(REST[None], len(t), axis=0)
    poses[:, [0, 1, 4, 7, 8, 9, 10] + ARMS, 1] += 0.05 * np.sin(2 * np.pi * 2 * t)[:, None]
    slide = slide_speed * 0.25 / np.pi * np.sin(2 * np.pi * 2 * t)           # back and forth
    poses[:, [3, 6], 0] += slide[:, None]
    return poses


def test_sliding_feet_score_worse_pfc_and_foot_skating_than_planted():
    planted, sliding = bouncing_dance(0.0), bouncing_dance(1.0)
    assert M.pfc(planted, FPS) == pytest.approx(0.0, abs=1e-9)
    assert M.pfc(sliding, FPS) > 1.0
    assert M.foot_skating(planted, FPS) == pytest.approx(0.0, abs=1e-9)
    assert M.foot_skating(sliding, FPS) > 0.3
    assert M.foot_contacts(planted).all()


def test_pfc_of_a_root_that_never_accelerates_is_zero():
    poses = bouncing_dance(1.0)
    poses[:, 0] = poses[0, 0]                                                # root-relative style
    assert M.pfc(poses, FPS) == 0.0


# ---------------------------------------------------------------- geometric features


def test_geometric_relations_read_the_pose():
    def feats(pose):
        return dict(zip(M.GEOMETRIC_NAMES, M.geometric_features(np.repeat(pose[None], 5, axis=0), FPS)))

    rest = feats(REST)
    assert rest["r_wrist_above_thorax"] == 0 and rest["ankles_apart"] == 0 and rest["r_knee_bent"] == 0
    assert rest["torso_horizontal"] == 0 and rest["r_wrist_fast"] == 0
    raised = REST.copy()
    raised[[15, 16]] = [[-0.20, 1.65, 0.0], [-0.21, 1.90, 0.0]]           # right arm up
    r = feats(raised)
    assert r["r_wrist_above_thorax"] == 1 and r["l_wrist_above_thorax"] == 0 and r["r_upper_arm_raised"] == 1
    wide = REST.copy()
    wide[[2, 3]] += [-0.3, 0, 0]
    wide[[5, 6]] += [0.3, 0, 0]
    assert feats(wide)["ankles_apart"] == 1
    lying = rotate(REST, np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]]))   # 90 deg about x
    assert feats(lying)["torso_horizontal"] == 1
    assert len(M.GEOMETRIC_NAMES) == 32 == len(rest)


def test_fast_wrist_relation_uses_real_time():
    poses = np.repeat(REST[None], 10, axis=0)
    poses[:, 16, 0] += np.arange(10) * 1.0 / FPS                          # 1 m/s: > 2.5 humerus/s
    assert dict(zip(M.GEOMETRIC_NAMES, M.geometric_features(poses, FPS)))["r_wrist_fast"] == 1
    slow = np.repeat(REST[None], 10, axis=0)
    slow[:, 16, 0] += np.arange(10) * 0.3 / FPS                           # 0.3 m/s: below
    assert dict(zip(M.GEOMETRIC_NAMES, M.geometric_features(slow, FPS)))["r_wrist_fast"] == 0


# ---------------------------------------------------------------- FID and diversity


def test_fid_matches_the_textbook_formula_and_handles_singular_covariances():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(300, 4)), rng.normal(0.5, 2.0, size=(200, 4)) @ rng.normal(size=(4, 4))
    an, bn = M.normalise(a, b), M.normalise(b, b)
    c1, c2 = np.cov(an, rowvar=False), np.cov(bn, rowvar=False)
    d = an.mean(0) - bn.mean(0)
    expected = d @ d + np.trace(c1 + c2 - 2 * linalg.sqrtm(c1 @ c2).real)
    assert M.fid(a, b) == pytest.approx(expected, rel=1e-6)
    assert M.fid(b, b) == pytest.approx(0.0, abs=1e-6)
    few = rng.normal(size=(3, 51))                                         # rank-2 covariances
    value = M.fid(few, rng.normal(size=(5, 51)))
    assert np.isfinite(value) and value > 0
    with pytest.raises(ValueError, match="at least 2"):
        M.fid(few[:1], few)


def test_fid_terms_split_fid_into_mean_and_covariance():
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=(300, 4)), rng.normal(0.5, 2.0, size=(200, 4)) @ rng.normal(size=(4, 4))
    mean, covariance = M.fid_terms(a, b)
    d = M.normalise(a, b).mean(0) - M.normalise(b, b).mean(0)
    assert mean == pytest.approx(d @ d, rel=1e-9) and mean + covariance == pytest.approx(M.fid(a, b), rel=1e-9)
    up = b + 0.5 * b.std(0)                       # every feature half a standard deviation up, spread kept
    mean, covariance = M.fid_terms(up, b)
    assert mean == pytest.approx(4 * 0.25, rel=1e-9) and covariance == pytest.approx(0.0, abs=1e-6)


def test_relation_shift_names_what_dances_do_more_often_than_the_training_dances():
    from types import SimpleNamespace

    from kakashi import analysis
    beats = np.arange(0.25, 8.0, 0.5)
    train = [SimpleNamespace(clip=SimpleNamespace(poses=d, meta={"beats": beats})) for d in synth_set(24, seed=3, seconds=8.0)]
    raised = synth_set(24, seed=4, seconds=8.0)
    for d in raised:                              # the right arm held up: wrist above the head
        d[:, 15, 1] += 0.55
        d[:, 16, 1] += 1.05
    terms, table = analysis.relation_shift({"raised": (raised, [beats] * len(raised)),
                                            "trained": ([c.clip.poses for c in train], [beats] * len(train))},
                                           train, FPS)
    gaps = table["raised"]
    assert {"r_wrist_above_thorax", "r_upper_arm_raised"} <= set(gaps.index[:3])    # what was changed, first
    assert gaps["r_wrist_above_thorax"] > 0.9 and table.loc["r_wrist_above_thorax", "train share"] < 0.05
    assert abs(gaps["l_wrist_above_thorax"]) < 0.1                                # the other arm as trained
    assert gaps["r_upper_arm_raised"] > 0.5
    largest = table[["raised", "trained"]].abs().max(axis=1).to_numpy()
    assert list(largest) == sorted(largest, reverse=True)
    assert terms.loc["raised", "mean_term"] == pytest.approx((gaps ** 2).sum(), rel=1e-9)
    cut = lambda ds: M.dance_set(analysis.windows(ds, [beats] * len(ds), FPS)[0], FPS).geometric
    whole = M.fid(cut(raised), cut([c.clip.poses for c in train]))
    assert terms.loc["raised", "fid_g"] == pytest.approx(whole, rel=1e-9)
    assert terms.loc["trained", "mean_term"] == pytest.approx(0.0, abs=1e-9)
    assert terms.loc["trained", "fid_g"] == pytest.approx(0.0, abs=1e-6)


def test_fid_orders_halves_of_a_set_before_mean_pose_and_noise():
    dances = synth_set(80, seed=6)
    half_a, half_b = dances[:40], dances[40:]
    rng = np.random.default_rng(8)
    mean_pose = [np.repeat(d.mean(axis=0, keepdims=True), len(d), axis=0) for d in half_a]
    noise = [REST + rng.normal(0, 0.1, d.shape) for d in half_a]
    noisy = [d + rng.normal(0, 0.03, d.shape) for d in half_a]
    ref = M.dance_set(half_b, FPS)
    sets = {name: M.dance_set(s, FPS) for name, s in
            (("halves", half_a), ("mean_pose", mean_pose), ("noise", noise), ("noisy", noisy))}
    fid_k = {name: M.fid(s.kinetic, ref.kinetic) for name, s in sets.items()}
    fid_g = {name: M.fid(s.geometric, ref.geometric) for name, s in sets.items()}
    # the smallest ratio (other / halves) here is 5.8 (kinetic) and 10.6 (geometric); over 20 other
    # draws of the sets it fell to 3.2 and 4.0, and noisy / halves (geometric) to 1.5
    assert 2 * fid_k["halves"] < min(fid_k["mean_pose"], fid_k["noise"], fid_k["noisy"]), fid_k
    assert 2 * fid_g["halves"] < min(fid_g["mean_pose"], fid_g["noise"]), fid_g
    assert fid_g["halves"] < fid_g["noisy"], fid_g


def test_diversity_is_mean_pairwise_distance_after_normalising():
    feats = np.array([[0.0, 0.0], [3.0, 4.0]])
    assert M.diversity(feats, np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [-1.0, -1.0]])) == pytest.approx(
        np.hypot(3.0, 4.0) / np.std([0.0, 1, 2, -1]))
    assert M.diversity(np.ones((4, 3))) == 0.0
    rng = np.random.default_rng(9)
    x = rng.normal(size=(20, 5))
    assert M.diversity(x * 7.0 + 3.0) == pytest.approx(M.diversity(x))     # own statistics: scale-free
    frozen = M.dance_set([np.repeat(REST[None], 48, axis=0)] * 3, FPS)
    assert M.diversity(frozen.kinetic) == 0.0


def test_spread_between_splits_the_variance_into_the_groups_means_and_the_rest():
    """Two songs danced each its own way: all the spread is between them; danced alike: none."""
    reference = np.array([[0.0, 0.0], [2.0, 2.0], [4.0, 4.0], [-2.0, -2.0]])          # std sqrt(5) per column
    apart = np.array([[0.0, 1.0], [0.0, 1.0], [2.0, 3.0], [2.0, 3.0]])
    total, between = M.spread_between(apart, ["a", "a", "b", "b"], reference)
    assert total == pytest.approx(2 * 1.0 / 5) and between == pytest.approx(total)
    alike = np.array([[0.0, 1.0], [2.0, 3.0], [0.0, 1.0], [2.0, 3.0]])
    total, between = M.spread_between(alike, ["a", "a", "b", "b"], reference)
    assert total == pytest.approx(2 * 1.0 / 5) and between == pytest.approx(0.0)
    rng = np.random.default_rng(3)
    x, songs = rng.normal(size=(30, 4)), rng.integers(0, 5, 30)
    total, between = M.spread_between(x, songs, x)
    within = sum(((x[songs == k] - x[songs == k].mean(0)) ** 2).sum(0) for k in range(5)) / len(x) / x.var(0)
    assert total == pytest.approx(4.0) and between == pytest.approx(total - within.sum())
    with pytest.raises(ValueError, match="one label per row"):
        M.spread_between(x, songs[:-1], x)


# ---------------------------------------------------------------- registry and evaluate_dances


def test_evaluate_dances_gives_every_metric_the_inputs_allow():
    dances, gt = synth_set(4, seed=10), synth_set(6, seed=11)
    beats = np.arange(0, 4, 0.5)
    full = M.evaluate_dances(dances, FPS, music_beats=beats, reference=gt)
    assert list(full) == list(M.METRICS)
    assert all(np.isfinite(v) for v in full.values())
    assert 0 <= full["bas_motion"] <= 1 and 0 <= full["bas_music"] <= 1
    assert full["speed"] == pytest.approx(np.mean([M.body_speed(d, FPS) for d in dances]))
    bare = M.evaluate_dances(dances[:1], FPS)
    assert set(bare) == {n for n, m in M.METRICS.items() if m.needs == "dance"}
    per_dance = M.evaluate_dances(dances, [FPS] * 4, music_beats=[beats] * 4, metrics=["bas_music", "jerk"])
    assert list(per_dance) == ["bas_music", "jerk"]


def test_a_reference_measured_once_gives_the_same_metrics():
    """Many sets against one reference (a table's rows): its dance_set computed once gives what
    its dances give, and the reference's own pose distance, kept per reference, follows the
    reference it is given."""
    dances, gt, other = synth_set(4, seed=10), synth_set(6, seed=11), synth_set(6, seed=13)
    beats = np.arange(0, 4, 0.5)
    assert M.evaluate_dances(dances, FPS, music_beats=beats, reference=M.dance_set(gt, FPS)) == \
        M.evaluate_dances(dances, FPS, music_beats=beats, reference=gt)
    feats = lambda ds: [M.sample_features(d, FPS) for d in ds]
    first, again, moved = (M.feature_distance(feats(dances), feats(r)) for r in (gt, gt, other))
    assert first == again and moved["reference"] != first["reference"]


def test_evaluate_dances_rejects_bad_input_with_one_clear_error():
    dance = synth_dance(np.random.default_rng(12))
    with pytest.raises(ValueError, match="unknown metric 'fid'.*fid_k"):
        M.evaluate_dances([dance], FPS, metrics=["fid"])
    with pytest.raises(ValueError, match="needs 'reference'"):
        M.evaluate_dances([dance, dance], FPS, metrics=["fid_k"])
    with pytest.raises(ValueError, match=r"dance 1.*\[T, 17, 3\]"):
        M.evaluate_dances([dance, dance[:, :15]], FPS)
    bad = dance.copy()
    bad[3, 2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        M.evaluate_dances([bad], FPS)
    with pytest.raises(ValueError, match="at least 4"):
        M.evaluate_dances([dance[:2]], FPS)
    with pytest.raises(ValueError, match="frame rate"):
        M.evaluate_dances([dance], 0)


# ---------------------------------------------------------------- real motion (../shared/data)


def real_motion(shared_data) -> list[tuple[str, np.ndarray, float]]:
    """(name, poses [T, 17, 3] y up, fps) of the real recordings.

    The CMU file is stored at 60 fps with every frame written twice (frames 2k and 2k+1 are
    identical): its motion is 30 fps, so every other frame is taken.
    """
    motion = shared_data / "motion"
    with np.load(motion / "cmu_55_01_dance.npz") as data:
        positions, fps = data["positions"], float(data["fps"])
    assert np.array_equal(positions[0::2][:100], positions[1::2][:100])
    out = [("cmu_55_01", cmu15_to_h36m(positions[::2]).astype(np.float64), fps / 2)]
    for path in sorted((motion / "aistpp_slices").glob("*.csv")):
        joints = np.loadtxt(path, delimiter=",").reshape(-1, 24, 3)       # z up, 30 fps
        out.append((path.stem.split("_")[1], put_on_floor(smpl24_to_h36m(joints)).astype(np.float64), 30.0))
    return out


def test_real_motion_metrics_are_finite_and_plausible(shared_data):
    rows = real_motion(shared_data)
    print()
    for name, poses, fps in rows:
        values = M.dance_metrics(poses, fps)
        print(name, f"{fps:g} fps", {k: round(v, 4) for k, v in values.items()})
        assert all(np.isfinite(v) for v in values.values())
        assert 0.02 < values["speed"] < 3.0
        assert values["bone_cv"] < 0.05
        assert np.isfinite(M.kinetic_features(poses, fps)).all()
    cmu = rows[0][1]
    assert M.bone_cv(cmu, 30) < 0.02
    assert M.frozen_share(cmu, 30) < 0.1


def test_fid_on_real_motion_halves_far_below_mean_pose_and_noise(shared_data):
    rows = real_motion(shared_data)
    rng = np.random.default_rng(13)
    window = 72                                                            # 2.4 s at 30 fps
    windows = []
    for _ in range(60):
        _, poses, _ = rows[rng.integers(len(rows))]
        start = rng.integers(0, len(poses) - window)
        windows.append(poses[start:start + window])
    half_a, half_b = windows[:30], windows[30:]
    mean_pose = [np.repeat(w.mean(axis=0, keepdims=True), window, axis=0) for w in half_a]
    noise = [w + rng.normal(0, 0.03, w.shape) for w in half_a]
    results = {name: M.evaluate_dances(s, 30.0, reference=half_b, metrics=["fid_k", "fid_g", "speed_ratio"])
               for name, s in (("halves", half_a), ("mean_pose", mean_pose), ("noise", noise))}
    print("\n", results)
    # smallest ratio (other / halves) here 9.3 (fid_k) and 5.8 (fid_g), |speed_ratio - 1| 0.23; over
    # 30 other draws of the windows: down to 6.4 and 3.9, and up to 0.29
    for key in ("fid_k", "fid_g"):
        assert 2 * results["halves"][key] < min(results["mean_pose"][key], results["noise"][key]), key
    assert results["halves"]["speed_ratio"] == pytest.approx(1.0, abs=0.5)
    assert results["mean_pose"]["speed_ratio"] == 0.0


def test_resampling_real_motion_keeps_speed_and_energy(shared_data):
    _, cmu, fps = real_motion(shared_data)[0]
    base = M.kinetic_features(cmu, fps).reshape(17, 3).sum(axis=0)
    for new in (24.0, 60.0):
        other = resample(cmu, fps, new)
        assert M.body_speed(other, new) == pytest.approx(M.body_speed(cmu, fps), rel=0.03)
        np.testing.assert_allclose(M.kinetic_features(other, new).reshape(17, 3).sum(axis=0)[:2], base[:2], rtol=0.06)


def test_facing_share_sees_a_dancer_turning_away_from_the_front():
    """A dance that keeps its front scores 1 however it is turned as a whole; turning evenly all
    the way round, within / 180 of its frames face the front; turned around for half of its
    frames, half. The synthetic dancer keeps its front (each of the smoke songs' dances > 0.85)."""
    from kakashi.clips import list_clips, read_clip
    from kakashi.config import get_preset
    from kakashi.synth import ensure_dataset

    dances = [read_clip(path).poses.astype(np.float64) for path in list_clips(ensure_dataset(get_preset("smoke")))]
    assert min(M.facing_share(d, 24.0) for d in dances) > 0.85
    still = dances[0][:240]
    assert M.facing_share(still, 24.0) > 0.95
    assert M.facing_share(still @ rotation_y(130.0).T, 24.0) == pytest.approx(M.facing_share(still, 24.0))
    turns = np.linspace(0, 360, len(still), endpoint=False)
    spin = np.stack([p @ rotation_y(a).T for p, a in zip(still, turns)])
    assert M.facing_share(spin, 24.0) == pytest.approx(90 / 360, abs=0.03)
    half = np.concatenate([still[:120], still[120:] @ rotation_y(180.0).T])
    assert 0.4 < M.facing_share(half, 24.0) < 0.6
