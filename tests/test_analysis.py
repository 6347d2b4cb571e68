"""kakashi.scoring: the target checks that judge a model against the ground truth; kakashi.analysis:
what the default model's codes keep and how often it repeats a move."""
import numpy as np
import pandas as pd
import pytest

from kakashi import analysis, scoring
from kakashi.scoring import GROUND_TRUTH, TRAIN_TRUTH
from kakashi.config import get_preset
from kakashi.selection import SELECT_METRICS


def table(**model) -> pd.DataFrame:
    gt = dict(bas_motion=0.8, bas_music=0.8, speed_ratio=1.0, frozen_share=0.2, jerk=50.0, fid_k=0.0,
              fid_g=0.0, div_k=9.0, div_g=7.0, pfc=1e-3, bone_cv=0.0, plausible_share=1.0, drift=0.0)
    train = {**gt, "fid_k": 10.0, "fid_g": 3.0}
    return pd.DataFrame({GROUND_TRUTH: gt, TRAIN_TRUTH: train, "model": {**gt, **model}}).T


def test_targets_limits_and_misses():
    ok = scoring.targets(table(fid_k=14.9, fid_g=4.4), "model")
    assert ok["met"].all() and (ok["miss"] == 0).all()
    assert ok.loc["fid_k", "limit"] == pytest.approx(15.0) and ok.loc["jerk", "limit"] == pytest.approx(75.0)
    bad = scoring.targets(table(bas_motion=0.4, speed_ratio=0.35, frozen_share=0.35, jerk=150.0, fid_g=45.0,
                                 div_k=4.5, bone_cv=0.04, pfc=np.nan, plausible_share=0.97, drift=0.3), "model")
    missed = set(bad.index[~bad["met"].astype(bool)])
    assert missed == {"bas_motion", "speed_ratio", "frozen_share", "jerk", "fid_g", "div_k", "bone_cv", "pfc",
                      "plausible_share", "drift"}
    assert bad.loc["plausible_share", "miss"] == pytest.approx(2.0)        # 3 points under: two 1-point margins past
    assert bad.loc["drift", "miss"] == pytest.approx(np.log(3))
    assert scoring.targets(table(plausible_share=0.991, drift=-0.05), "model")["met"].all()
    assert bad.loc["bas_motion", "miss"] == pytest.approx(np.log(2))       # half the ground truth's BAS
    assert bad.loc["speed_ratio", "miss"] == pytest.approx(np.log(0.7 / 0.35))
    assert bad.loc["frozen_share", "miss"] == pytest.approx(2.0)           # 10 points over: two margins
    assert bad.loc["jerk", "miss"] == pytest.approx(np.log(2))
    assert bad.loc["fid_g", "miss"] == pytest.approx(np.log(10))
    assert bad.loc["pfc", "miss"] == np.inf                                # not measured is not met
    fast = scoring.targets(table(speed_ratio=2.6), "model", ("speed_ratio",))
    assert list(fast.index) == ["speed_ratio"] and fast.loc["speed_ratio", "miss"] == pytest.approx(np.log(2))


def test_targets_met_counts_per_row():
    t = table(jerk=150.0)
    met = scoring.targets_met(t, [GROUND_TRUTH, "model"], SELECT_METRICS)
    assert "pfc" not in met.columns
    assert met.loc["model", "met"] == len(SELECT_METRICS) - 1 and not met.loc["model", "jerk"]


def test_targets_over_draws_count_the_draws_each_target_is_met_in():
    """Three draws: jerk missed in one, BAS in two; the other targets in all three."""
    draws = [table(jerk=150.0), table(bas_motion=0.4), table(bas_motion=0.4)]
    over = scoring.targets_over_draws(draws, [GROUND_TRUTH, "model"], SELECT_METRICS)
    assert over.loc["model", "jerk"] == 2 and over.loc["model", "bas_motion"] == 1
    assert over.loc["model", "bas_music"] == 3 and "pfc" not in over.columns
    assert over.loc["model", "every draw"] == len(SELECT_METRICS) - 2
    assert over.loc[GROUND_TRUTH, "every draw"] == len(SELECT_METRICS)
    with pytest.raises(ValueError, match="one per draw"):
        scoring.targets_over_draws([], ["model"])


def test_whole_dances_tell_a_dancer_who_stands_for_half_a_song():
    """calm_share and longest_calm are read on each whole dance: a dancer who stands for 30 s of a
    minute scores them there, where every 5-s window of that stretch would look like a pause."""
    from kakashi.synth import make_dance, make_song

    fps = 24.0
    moving = make_dance(make_song(5, 60.0, style="house"), seed=5, fps=fps).poses   # a minute of dance
    standing = moving.copy()
    standing[720:] = standing[719]                                         # still for the second half
    values = {name: scoring.whole_dances([d], fps) for name, d in (("moving", moving), ("standing", standing))}
    assert values["moving"]["calm_share"] < 0.05 and values["moving"]["longest_calm"] < 3.0
    assert 0.48 < values["standing"]["calm_share"] < 0.5 + values["moving"]["calm_share"]
    assert 29.0 < values["standing"]["longest_calm"] < 31.0
    assert set(scoring.DANCE_METRICS) <= set(values["standing"])


def test_calm_loudness_table_pools_every_calm_step_of_every_draw():
    from kakashi.analysis import calm_loudness_table
    from kakashi.metrics import calm_loudness
    from kakashi.synth import make_dance, make_song

    fps = 24.0
    moving = make_dance(make_song(5, 30.0, style="house"), seed=5, fps=fps).poses   # 720 frames
    paused = moving.copy()
    paused[60:300] = paused[59]                                            # still for 10 s, early on
    level = np.linspace(0.0, 1.0, len(paused))                             # a song growing louder
    table = calm_loudness_table({"early pause": [paused, paused]}, [level], fps)
    one = calm_loudness(paused, fps, level)
    assert table.loc["early pause", "calm_loudness"] == pytest.approx(one[0], abs=1e-12)  # two equal draws pool to one's
    assert 0.1 < one[0] < 0.4
    assert table.loc["early pause", "calm_share"] == pytest.approx(one[1] / (len(paused) - 1))


def test_repeat_share_pools_every_sequence():
    alternating = np.array([0, 1, 0, 1, 0, 1])
    assert analysis.repeat_share([alternating], 2) == 1.0 and analysis.repeat_share([alternating], 1) == 0.0
    assert analysis.repeat_share([alternating[:4], np.array([5, 5, 6])], 1) == pytest.approx(1 / 5)
    assert analysis.repeat_share([alternating, np.array([7])], 2) == 1.0          # too short to count
    for lag in (0, 6):
        with pytest.raises(ValueError, match="lag must be"):
            analysis.repeat_share([alternating], lag)


def hips_frame(poses: np.ndarray) -> np.ndarray:
    """Poses [T, 17, 3] relative to the hip and turned so the hips face one way in every frame."""
    from kakashi.metrics.motion import heading

    angle, q = -heading(poses)[:, None], poses - poses[:, :1]
    return np.stack([np.cos(angle) * q[..., 0] - np.sin(angle) * q[..., 2], q[..., 1],
                     np.sin(angle) * q[..., 0] + np.cos(angle) * q[..., 2]], -1)


def test_the_committed_models_codes_keep_the_dance_and_move_repeats_reads_them():
    """Through the committed model's codes and back (codec_dances), each held-out true dance keeps
    its body: every joint within 3 cm of the truth on average in the hips' frame (0.8-1.0 cm on
    three test songs; its heading, integrated from decoded turns, drifts). move_repeats: the
    true dances' codes repeat the move of two beats before (the synthetic dancer's moves are
    two-beat cycles held for a phrase: 0.43 of them on the six test songs, 0.01 at one beat)
    whatever the seed; the drawn codes are drawn (the model, with its copy head, repeats it in
    0.28-0.33 of them on these three test songs, sampling seeds 0-1, where the dancer's repeat
    it in 0.37)."""
    from kakashi import runs
    from kakashi.experiment import load_data
    from kakashi.inference import Dancer

    clips = load_data(get_preset("vocab")).clips["test"][:3]
    dancer = Dancer.load(runs.PRETRAINED)
    for codec, clip in zip(analysis.codec_dances(dancer, clips), clips):
        assert codec.shape == clip.poses.shape
        assert np.linalg.norm(hips_frame(codec) - hips_frame(clip.poses), axis=-1).mean() < 0.03
    shares = [analysis.move_repeats(dancer, clips, lags=(1, 2), seed=seed) for seed in (0, 1)]
    assert shares[0].loc["ground truth"].equals(shares[1].loc["ground truth"])
    assert not shares[0].loc["drawn"].equals(shares[1].loc["drawn"])
    truth = shares[0].loc["ground truth"]
    assert truth[2] > 0.3 > 0.1 > truth[1]


def test_codec_and_move_repeats_ask_for_a_motion_vocab():
    from pathlib import Path

    from kakashi.inference import Dancer
    from kakashi.models import build_model

    paper = Dancer(build_model("seq2seq_lstm", in_dim=20, hidden=8, layers=1), get_preset("smoke"), np.zeros(20),
                   np.ones(20), np.zeros((17, 3)), Path("runs/paper/best.pt"))
    for fn in (analysis.codec_dances, analysis.move_repeats):
        with pytest.raises(ValueError, match=r"runs/paper/best.pt: \w+ needs a motion_vocab"):
            fn(paper, [])
