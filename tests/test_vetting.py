"""kakashi.vetting: a retrained default model replaces the committed one only within the real-music limits."""
import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from kakashi import analysis, runs, scoring, vetting
from kakashi.dataset import pose_space
from kakashi.metrics import longest_calm


LIMITS = (4.2, 6.7, 15.7)   # FID_g, mean longest calm (s), longest calm of one song (s)


def test_a_verdict_passes_only_within_all_three_limits():
    within = vetting.judge(pd.Series({"fid_g": 2.9, "longest_calm": 3.4, "bas_motion": 0.9}), 9.0, *LIMITS)
    assert within.passes and "FID_g 2.90 (limit 4.20)" in str(within) and "within the limits" in str(within)
    assert "on one song 9.00 s (limit 15.70 s)" in str(within)
    assert not vetting.judge({"fid_g": 4.78, "longest_calm": 6.1}, 9.0, *LIMITS).passes   # too far from the training dances
    assert not vetting.judge({"fid_g": 2.9, "longest_calm": 8.7}, 9.0, *LIMITS).passes    # stands too long on average
    assert "over a limit" in str(vetting.judge({"fid_g": 2.9, "longest_calm": 8.7}, 9.0, *LIMITS))
    # within on average, yet stands through 19.4 s of one song (a retrain's Lets Go Fishin)
    assert not vetting.judge({"fid_g": 2.9, "longest_calm": 6.0}, 19.4, *LIMITS).passes


def test_a_verdict_holds_only_for_the_checkpoint_it_measured(tmp_path):
    (tmp_path / "best.pt").write_bytes(b"weights")
    verdict = vetting.Verdict(2.9, 4.2, 3.4, 6.7, 9.0, 15.7)
    path = vetting.record(tmp_path, verdict, [tmp_path / "a.ogg"])
    assert path.parent == tmp_path and vetting.read(tmp_path) == verdict
    (tmp_path / "best.pt").write_bytes(b"retrained")                  # another best.pt: not measured
    assert vetting.read(tmp_path) is None
    vetting.record(tmp_path, verdict, [])
    path.write_text("{not json")
    assert vetting.read(tmp_path) is None
    vetting.record(tmp_path, verdict, [])
    saved = json.loads(path.read_text())
    del saved["song_calm"], saved["song_calm_limit"]
    path.write_text(json.dumps(saved))                                 # measured under the two-limit rule
    assert vetting.read(tmp_path) is None
    path.unlink()
    assert vetting.read(tmp_path) is None


def test_limits_are_twice_the_test_songs_train_fid_g_and_one_and_a_half_times_the_training_calm():
    """As 05's table measures the training dances against the test songs' ground truth,
    root-relative (the space real_music_table measures the real songs in); one song's calm
    against the training dances' 90th percentile, and the verdict reads it off the dances."""
    from kakashi.synth import make_dance, make_song

    fps = 24.0

    def clips(seeds):
        out = []
        for s in seeds:
            song = make_song(s, 30.0, style=("house", "funk", "hiphop")[s % 3])
            out.append(SimpleNamespace(clip=SimpleNamespace(poses=make_dance(song, seed=s, fps=fps).poses,
                                                            meta={"beats": song.beats})))
        return out

    train, test = clips(range(6)), clips(range(10, 13))
    fid_limit, calm_limit, song_limit = analysis.real_music_limits(test, train, fps)
    space = lambda cs: [pose_space(c.clip.poses, True) for c in cs]
    row = scoring.metric_table({"train": (space(train), scoring.song_beats(train))}, space(test),
                               scoring.song_beats(test), fps, progress=False).loc["train"]
    assert fid_limit == pytest.approx(2 * row["fid_g"], rel=1e-6) and fid_limit > 0
    assert calm_limit == pytest.approx(1.5 * row["longest_calm"], rel=1e-6) and calm_limit > 0
    calms = [longest_calm(d, fps) for d in space(train)]
    assert song_limit == pytest.approx(1.5 * np.percentile(calms, 90), rel=1e-6) and song_limit > calm_limit

    dances = [c.clip.poses for c in test]
    standing = np.concatenate([dances[0], np.repeat(dances[0][-1:], int(song_limit * fps) + 24, axis=0)])
    table = pd.DataFrame({"moves · real": row, "stands · real": row}).T     # within FID_g and the mean calm
    verdicts = analysis.real_music_verdicts(table, {"moves": dances, "stands": dances[1:] + [standing]}, test, train, fps)
    assert verdicts["moves"].passes
    assert verdicts["moves"].song_calm == pytest.approx(max(longest_calm(d, fps) for d in space(test)))
    assert verdicts["stands"].song_calm > song_limit and not verdicts["stands"].passes   # one song stood through
    shown = vetting.verdict_table(verdicts)
    assert list(shown.index) == ["moves", "stands"] and shown["passes"].tolist() == [True, False]
    assert shown.loc["stands", "song_calm_limit"] == pytest.approx(song_limit)


def test_the_default_is_the_run_trained_here_only_when_it_danced_real_music_within_the_limits(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "PRETRAINED", tmp_path / "pretrained.pt")
    assert runs.default_checkpoint("quick", runs_dir=tmp_path) == tmp_path / "quick_mse" / "best.pt"
    trained = tmp_path / "vocab_motion_vocab" / "best.pt"
    trained.parent.mkdir()
    trained.write_bytes(b"x")
    assert runs.default_choice("quick", runs_dir=tmp_path)[0] == trained    # nothing else to dance with
    (tmp_path / "pretrained.pt").write_bytes(b"y")
    ckpt, why = runs.default_choice("quick", runs_dir=tmp_path)
    assert ckpt == tmp_path / "pretrained.pt" and "not measured it on real music" in why and f"-c {trained}" in why
    vetting.record(trained.parent, vetting.Verdict(4.78, 4.2, 6.1, 6.7, 9.0, 15.7), [])
    ckpt, why = runs.default_choice("quick", runs_dir=tmp_path)
    assert ckpt == tmp_path / "pretrained.pt" and "FID_g 4.78 (limit 4.20)" in why
    vetting.record(trained.parent, vetting.Verdict(2.9, 4.2, 3.4, 6.7, 9.0, 15.7), [])
    assert runs.default_checkpoint("quick", runs_dir=tmp_path) == trained
    trained.write_bytes(b"retrained")                                         # its verdict was on other weights
    assert runs.default_checkpoint("quick", runs_dir=tmp_path) == tmp_path / "pretrained.pt"
    trained.unlink()
    assert runs.default_choice("quick", runs_dir=tmp_path) == (tmp_path / "pretrained.pt", "the committed checkpoint")
