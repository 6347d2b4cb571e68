"""The opt-in wide styles of kakashi.synth: each builds, a standard tracker finds its beats where
the song says (ramps and steps included), the dancer's motion beats land on them, and the
embedded dataset the presets build is unchanged."""
from __future__ import annotations

import hashlib
import json

import librosa
import numpy as np
import pytest
import soundfile as sf

from kakashi.clips import AUDIO, META, POSES, SR, read_clip
from kakashi.config import PRESETS, get_preset
from kakashi.synth import build_dataset, dance_to, make_song, song_plan
from kakashi.synth.moves import SECTION_ENERGY
from kakashi.synth.music import STYLES, WIDE_STYLES, _step_time
from test_synth import _beat_hit_rate, beat_f_measure

FPS = 24.0
SECONDS = 20.0
SEEDS = (11, 12, 13)
# Measured over 11 seeds per style (20 s songs): beat F-measure >= 0.98 for steady tempi, >= 0.84
# where the tempo steps or ramps (librosa holds one tempo), mean 0.97-1.0 per style; motion beats
# on music beats >= 0.82, half a beat off <= 0.04. The thresholds leave a margin below those.
MIN_F_STEADY, MIN_F_VARYING, MIN_MEAN_F = 0.9, 0.75, 0.9
# sha256 over clip.npz bytes, audio.wav samples and meta.json of the smoke preset's dataset, as
# built before the wide styles existed (numpy 1.26.4, the pinned version).
SMOKE_HASH = "74d36ce639bf01ed9588044aed23ba143492ce566eed1152b70df18c32a885d6"
PINNED_NUMPY = "1.26.4"


@pytest.fixture(scope="module")
def songs():
    out = []
    for style in sorted(WIDE_STYLES):
        for seed in SEEDS:
            song = make_song(seed, SECONDS, style=style)
            out.append((song, dance_to(song, seed + 1, fps=FPS)))
    return out


def test_each_style_builds(songs):
    assert {s.style for s, _ in songs} == set(WIDE_STYLES) and len(WIDE_STYLES) >= 4
    assert not set(WIDE_STYLES) & set(STYLES)
    for song, dance in songs:
        assert song.audio.dtype == np.float32 and len(song.audio) == round(SECONDS * SR)
        assert 0.5 < np.abs(song.audio).max() <= 0.9 and np.isfinite(song.audio).all()
        assert np.all(np.diff(song.beats) > 0) and song.beats[0] == 0.0 and song.beats[-1] < SECONDS
        assert np.allclose(song.downbeats, song.beats[::song.meter])
        assert song.sections[0].start == 0.0 and song.sections[-1].end == pytest.approx(SECONDS)
        for a, b in zip(song.sections, song.sections[1:]):
            assert a.end == pytest.approx(b.start)
            assert np.min(np.abs(song.beats - a.end)) < 1e-3            # sections change on a beat
        assert {s.name for s in song.sections} <= set(SECTION_ENERGY)
        assert dance.poses.shape == (round(SECONDS * FPS), 17, 3) and np.isfinite(dance.poses).all()
        assert dance.moves[0][1] == 0.0 and dance.moves[-1][2] >= SECONDS - 1e-6


def test_style_features_are_present(songs):
    by_style = {}
    for song, _ in songs:
        by_style.setdefault(song.style, []).append(song)
    assert all(s.meter == 3 for s in by_style["waltz"]) and all(s.meter == 4 for s in by_style["swing"])
    for song in by_style["strings"]:                                     # a ramp: tempo changes bar by bar
        periods = np.diff(song.beats)
        assert song.tempo_varies and abs(periods[-1] / periods[0] - 1) > 0.06
        assert np.all(np.diff(periods) >= -1e-9) or np.all(np.diff(periods) <= 1e-9)   # monotonic
    for song in by_style["rock"]:                                        # a step: two tempi
        periods = np.unique(np.round(np.diff(song.beats), 6))
        assert song.tempo_varies and len(periods) == 2 and abs(periods[1] / periods[0] - 1) > 0.07
        assert len(song.stops) >= 1
    assert not any(s.tempo_varies for s in by_style["swing"] + by_style["waltz"])
    step_s = 0.125
    swing = WIDE_STYLES["swing"]
    assert _step_time(swing, 0.0, 2, step_s) == pytest.approx(4 * step_s * 2 / 3)   # 2:1 swing
    assert _step_time(swing, 0.0, 4, step_s) == pytest.approx(4 * step_s)           # beats stay put
    assert _step_time(STYLES["pop"], 0.0, 2, step_s) == 2 * step_s


def test_stops_are_heard():
    """A silent stop is (nearly) silent, a drums-only stop quieter than the band before it."""
    kinds = []
    for seed in range(6):
        song = make_song(seed, 40.0, style="rock")
        runs = []                                                        # consecutive stop bars
        for start, end, kind in song.stops:
            if runs and abs(runs[-1][1] - start) < 1e-6 and runs[-1][2] == kind:
                runs[-1] = (runs[-1][0], end, kind)
            else:
                runs.append((start, end, kind))
        for start, end, kind in runs:
            bar = (end - start) / round((end - start) * song.bpm / 60 / 4)   # about one bar, s
            # skip the last bar's ringing (0.3 s) and the next bar's earliest hit (a drummer's jitter)
            inside = _rms(song.audio[int((start + 0.3) * SR):int((end - 0.05) * SR)])
            before = _rms(song.audio[int((start - bar) * SR):int(start * SR)])
            ratio = inside / before
            print(f"seed {seed}: {kind:7s} stop of {end - start:.2f} s, RMS {ratio:.3f} of the bar before")
            assert ratio < 0.05 if kind == "silence" else 0.2 < ratio < 0.85
            kinds.append(kind)
    assert {"silence", "drums"} <= set(kinds)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def test_librosa_finds_the_beats(songs):
    # trim=False as in test_synth: librosa 0.11's trim drops quiet leading and trailing beats
    scores = []
    for song, _ in songs:
        tempo, found = librosa.beat.beat_track(y=song.audio, sr=SR, units="time", trim=False)
        f = beat_f_measure(song.beats, found)
        print(f"{song.style:8s} {song.bpm:6.1f} bpm (varies: {song.tempo_varies}): "
              f"tracker {float(np.atleast_1d(tempo)[0]):6.1f} bpm, F = {f:.3f}")
        scores.append(f)
        least = MIN_F_VARYING if song.tempo_varies else MIN_F_STEADY
        assert f >= least, f"{song.style} at {song.bpm:.1f} bpm: beat F-measure {f:.3f}"
    assert np.mean(scores) >= MIN_MEAN_F


def test_motion_beats_land_on_music_beats(songs):
    for song, dance in songs:
        on = _beat_hit_rate(dance.poses, song.beats)
        off = _beat_hit_rate(dance.poses, (song.beats[:-1] + song.beats[1:]) / 2)   # half a beat off
        print(f"{song.style:8s}: motion beats on music beats {on:.2f}, half a beat off {off:.2f}")
        assert on >= 0.6 and on > off + 0.3


def test_moves_are_timed_in_real_seconds(songs):
    for song, dance in songs:
        if not song.tempo_varies:
            continue
        starts = np.array([m[1] for m in dance.moves])
        # phrases of 8 beats start on every 8th real beat, not on the steady clock's
        assert np.allclose(starts[1:], song.beats[8::8][:len(starts) - 1], atol=1e-5)


def test_embedded_dataset_unchanged(tmp_path):
    smoke = PRESETS["smoke"]
    # no preset widens the songs (augmented copies, which `vocab` trains on, are cached beside a
    # clip's features and leave its files as they are)
    assert smoke.synth_styles == () and all(p.synth_styles == () for p in PRESETS.values())
    paths = build_dataset(tmp_path / "default", smoke.synth_songs, smoke.synth_seconds, smoke.seed,
                          workers=1, fps=smoke.fps)
    off = build_dataset(tmp_path / "off", smoke.synth_songs, smoke.synth_seconds, smoke.seed,
                        workers=1, fps=smoke.fps, styles=())
    digest = _digest(paths)
    assert digest == _digest(off)
    assert {json.loads((p / META).read_text())["style"] for p in paths} == set(STYLES)
    if np.__version__ != PINNED_NUMPY:
        pytest.skip(f"the recorded hash is numpy {PINNED_NUMPY}'s; this is numpy {np.__version__}")
    assert digest == SMOKE_HASH


def _digest(paths) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update((p / POSES).read_bytes())
        samples, _ = sf.read(p / AUDIO, dtype="float32")
        h.update(samples.tobytes())
        h.update((p / META).read_bytes())
    return h.hexdigest()


def test_widened_dataset(tmp_path):
    styles = ("rock", "swing", "waltz", "pop")
    plan = song_plan(8, (6.0, 8.0), 0, styles)
    assert {job["style"] for job in plan} == set(styles)
    paths = build_dataset(tmp_path / "wide", 4, (6.0, 7.0), 0, workers=1, styles=styles)
    metas = [json.loads((p / META).read_text()) for p in paths]
    assert all(m["generator"]["styles"] == sorted(styles) for m in metas)
    for p, m in zip(paths, metas):
        clip = read_clip(p)
        assert clip.poses.shape[0] == round(m["seconds"] * FPS)
        assert (m["style"] in WIDE_STYLES) == ("meter" in m and "stops" in m)
    preset = get_preset("smoke", synth_styles=styles)
    assert preset.synth_styles == styles
    with pytest.raises(ValueError, match="unknown style"):
        song_plan(2, (5.0, 6.0), 0, ("rock", "polka"))
