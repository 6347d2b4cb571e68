"""The embedded synthetic dataset, checked rather than trusted: beats a standard tracker finds,
constant bones, planted feet that stay put, accents on beats, determinism, resumability."""
from __future__ import annotations

import json
import time

import librosa
import numpy as np
import pytest
import soundfile as sf
from scipy.ndimage import gaussian_filter1d
from scipy.signal import argrelmin

from kakashi import cli
from kakashi.clips import AUDIO, META, POSES, SR, list_clips, read_clip
from kakashi.config import get_preset
from kakashi.skeleton import FEET, HEAD, ROOT, bone_length_cv, motion_energy
from kakashi.synth import build_dataset, ensure_dataset, make_dance, make_song, song_plan
from kakashi.synth.moves import MOVES, SECTION_ENERGY
from kakashi.synth.music import STYLES, tempo_choices

FPS = 24.0
SECONDS = 16.0
BEAT_WINDOW = 0.07         # s, the F-measure tolerance (mir_eval's default)
SKIP_START = 5.0           # s, beats before this are ignored (mir_eval's trim_beats default)
PLANTED_MOVE = 0.01        # m per frame
FLOOR_CONTACT = 0.03       # m: an ankle this low is on the floor (label-free rule)


def _cases():
    """One song per style, including the slowest and the fastest tempo."""
    cases = [(s, float(tempo_choices(s)[len(tempo_choices(s)) // 2])) for s in sorted(STYLES)]
    cases[sorted(STYLES).index("hiphop")] = ("hiphop", float(tempo_choices("hiphop").min()))
    cases[sorted(STYLES).index("dnb")] = ("dnb", float(tempo_choices("dnb").max()))
    return cases


@pytest.fixture(scope="module")
def dances():
    out = []
    for seed, (style, bpm) in enumerate(_cases()):
        song = make_song(100 + seed, SECONDS, style=style, bpm=bpm)
        out.append((song, make_dance(song, 200 + seed, fps=FPS)))
    return out


def beat_f_measure(reference: np.ndarray, estimated: np.ndarray, window: float = BEAT_WINDOW,
                   skip: float = SKIP_START) -> float:
    """mir_eval-style beat F-measure: one-to-one matches within +-window s, beats < skip s ignored."""
    reference, estimated = reference[reference >= skip], estimated[estimated >= skip]
    if len(reference) == 0 or len(estimated) == 0:
        return 0.0
    free = np.ones(len(estimated), bool)
    hits = 0
    for r in reference:          # beats are >= 0.34 s apart, far more than 2 windows: greedy is exact
        d = np.where(free, np.abs(estimated - r), np.inf)
        j = int(np.argmin(d))
        if d[j] <= window:
            free[j], hits = False, hits + 1
    if hits == 0:
        return 0.0
    precision, recall = hits / len(estimated), hits / len(reference)
    return 2 * precision * recall / (precision + recall)


def test_f_measure_sanity():
    beats = np.arange(0, 20, 0.5)
    assert beat_f_measure(beats, beats) == 1.0
    assert beat_f_measure(beats, beats + 0.25) == 0.0
    assert beat_f_measure(beats, beats[::2]) == pytest.approx(2 * 1 * 0.5 / 1.5)


def test_cases_cover_styles_and_tempo_extremes():
    cases = _cases()
    assert {s for s, _ in cases} == set(STYLES) and len(cases) >= 4
    assert min(b for _, b in cases) < 82 and max(b for _, b in cases) > 165


def test_librosa_finds_the_beats(dances):
    # trim=False: librosa 0.11's trim drops leading/trailing beats weaker than the song's mean
    # beat (its smoothing window is not normalised), which a quiet intro or break always is.
    for song, _ in dances:
        tempo, found = librosa.beat.beat_track(y=song.audio, sr=SR, units="time", trim=False)
        f = beat_f_measure(song.beats, found)
        tempo = float(np.atleast_1d(tempo)[0])
        print(f"{song.style:7s} {song.bpm:6.1f} bpm: tracker {tempo:6.1f} bpm, F = {f:.3f}")
        assert tempo == pytest.approx(song.bpm, rel=0.04)                  # no octave error
        assert f >= 0.9, f"{song.style} at {song.bpm:.1f} bpm: beat F-measure {f:.3f}"


def test_song_ground_truth(dances):
    for song, _ in dances:
        assert song.audio.dtype == np.float32 and song.audio.ndim == 1
        assert len(song.audio) == round(SECONDS * SR)
        assert 0.5 < np.abs(song.audio).max() <= 0.9                      # peak-normalised, no clipping
        beat_s = 60.0 / song.bpm
        assert np.allclose(np.diff(song.beats), beat_s)
        assert np.allclose(song.downbeats, song.beats[::4])
        secs = song.sections
        assert secs[0].start == 0.0 and secs[-1].end == pytest.approx(SECONDS)
        for a, b in zip(secs, secs[1:]):
            assert a.end == pytest.approx(b.start)
            assert round((a.end - a.start) / beat_s) in (8, 16)
        assert {s.name for s in secs} <= set(SECTION_ENERGY)


def test_section_loudness_is_audible():
    song = make_song(7, 40.0, style="pop")
    by_name = {}
    for s in song.sections[:-1]:
        seg = song.audio[int(s.start * SR):int(s.end * SR)]
        by_name.setdefault(s.name, []).append(float(np.sqrt(np.mean(seg ** 2))))
    assert {"chorus", "break"} <= set(by_name)
    assert min(by_name["chorus"]) > 1.5 * max(by_name["break"])


def test_bone_lengths_constant(dances):
    cvs = [bone_length_cv(d.poses) for _, d in dances]
    print("bone length CV:", [f"{cv:.1e}" for cv in cvs])
    assert max(cvs) < 0.01
    assert len({d.height for _, d in dances}) == len(dances)             # several body sizes
    assert all(1.55 <= d.height <= 1.95 for _, d in dances)


def test_planted_feet_do_not_slide(dances):
    worst_labelled, worst_free, planted_frames, swing_frames = 0.0, 0.0, 0, 0
    for _, d in dances:
        ankles = d.poses[:, list(FEET)].astype(np.float64)                # [T, 2, 3] right, left
        step = np.linalg.norm(np.diff(ankles, axis=0), axis=-1)          # [T-1, 2]
        labelled = d.contacts[1:] & d.contacts[:-1]
        worst_labelled = max(worst_labelled, step[labelled].max())
        planted_frames += labelled.sum()
        low = (ankles[1:, :, 1] < FLOOR_CONTACT) & (ankles[:-1, :, 1] < FLOOR_CONTACT)
        flat = np.linalg.norm(np.diff(ankles[..., [0, 2]], axis=0), axis=-1)
        worst_free = max(worst_free, flat[low].max())
        swing_frames += (~d.contacts).sum()
    print(f"planted-foot motion: labelled {worst_labelled * 1000:.3f} mm/frame, "
          f"label-free (ankle < 3 cm) {worst_free * 1000:.3f} mm/frame")
    assert worst_labelled < PLANTED_MOVE and worst_free < PLANTED_MOVE
    assert planted_frames > swing_frames > 0                             # feet both stand and step


def test_body_stays_upright_and_above_floor(dances):
    for _, d in dances:
        assert (d.poses[:, HEAD, 1] > d.poses[:, ROOT, 1]).all()
        assert d.poses[:, list(FEET), 1].min() >= -0.001
        assert np.isfinite(d.poses).all()


def _beat_hit_rate(poses, beats, shift: float = 0.0) -> float:
    """Share of motion beats (minima of Gaussian-smoothed mean joint speed, sigma 2 frames as
    Bailando's 5 frames at 60 fps) within 1.5 frames of a music beat shifted by `shift` s."""
    energy = gaussian_filter1d(motion_energy(poses, FPS), 2.0)            # [T-1] at (k + 0.5) / fps
    minima = (argrelmin(energy)[0] + 0.5) / FPS
    dist = np.abs(minima[:, None] - (beats[None] + shift)).min(axis=1)
    return float(np.mean(dist <= 1.5 / FPS))


def test_accents_land_on_beats(dances):
    for song, d in dances:
        on = _beat_hit_rate(d.poses, song.beats)
        off = _beat_hit_rate(d.poses, song.beats, shift=30.0 / song.bpm)   # half a beat later
        print(f"{song.style:7s}: motion beats on music beats {on:.2f}, half a beat off {off:.2f}")
        assert on >= 0.6 and on > off + 0.3


def test_moves_follow_the_music():
    assert len(MOVES) >= 10
    plan = song_plan(8, (24.0, 32.0), seed=3)
    matched = total = 0
    chorus_speed, break_speed = [], []
    for job in plan:
        song = make_song(job["song_seed"], job["seconds"], style=job["style"])
        d = make_dance(song, job["song_seed"] + 1)
        speed = motion_energy(d.poses, FPS)
        for name, start, end in d.moves:
            section = song.section_at(start + 0.01).name
            matched += MOVES[name].energy in SECTION_ENERGY[section]
            total += 1
            frames = speed[int(start * FPS):int(end * FPS) - 1]
            {"chorus": chorus_speed, "break": break_speed}.get(section, []).append(frames.mean())
    assert matched / total > 0.85                                        # moves match the section
    assert np.mean(chorus_speed) > 1.3 * np.mean(break_speed)            # amplitude follows loudness


def test_deterministic():
    a, b, c = (make_song(s, 6.0) for s in (5, 5, 6))
    assert a.audio.tobytes() == b.audio.tobytes() and a.audio.tobytes() != c.audio.tobytes()
    da, db, dc = (make_dance(s, 9) for s in (a, b, c))
    assert da.poses.tobytes() == db.poses.tobytes()
    assert da.poses.tobytes() != make_dance(a, 10).poses.tobytes()


def test_build_resume_and_files(tmp_path):
    # its build time is measured by benchmarks/bench_synth.py
    paths = build_dataset(tmp_path / "ds", n_songs=6, seconds=(8.0, 12.0), seed=0, workers=2)
    assert [p.name for p in paths] == [f"synth_{i:03d}" for i in range(6)]
    assert list_clips(tmp_path / "ds") == paths
    clip = read_clip(paths[0])
    assert clip.poses.shape == (round(clip.meta["seconds"] * FPS), 17, 3)
    assert (clip.confidence == 1).all() and clip.fps == FPS
    meta = clip.meta
    for key in ("source", "licence", "generator", "style", "tempo", "beats", "downbeats",
                "sections", "moves", "dancer_height", "fps", "seconds"):
        assert key in meta, key
    assert meta["source"] == "synth" and "CC0" in meta["licence"]
    assert {"name", "version", "seed"} <= set(meta["generator"])
    assert {"name", "start", "end", "loudness"} == set(meta["sections"][0])
    assert {"move", "start", "end"} == set(meta["moves"][0])
    assert {json.loads((p / META).read_text())["style"] for p in paths} == set(STYLES)

    mtimes = {p.name: (p / POSES).stat().st_mtime_ns for p in paths}
    (paths[2] / AUDIO).unlink()                                          # an incomplete clip
    time.sleep(0.05)
    again = build_dataset(tmp_path / "ds", n_songs=6, seconds=(8.0, 12.0), seed=0, workers=2)
    assert again == paths
    changed = {p.name for p in paths if (p / POSES).stat().st_mtime_ns != mtimes[p.name]}
    assert changed == {"synth_002"}

    other = build_dataset(tmp_path / "other", n_songs=2, seconds=(8.0, 12.0), seed=0, workers=1)
    for p, q in zip(paths, other):                                       # same seed: same data
        assert _audio_bytes(p) == _audio_bytes(q)
        assert read_clip(p).poses.tobytes() == read_clip(q).poses.tobytes()
        assert (p / META).read_bytes() == (q / META).read_bytes()
    reseeded = build_dataset(tmp_path / "seed1", n_songs=1, seconds=(8.0, 12.0), seed=1, workers=1)
    assert _audio_bytes(reseeded[0]) != _audio_bytes(paths[0])
    assert read_clip(reseeded[0]).poses.tobytes() != read_clip(paths[0]).poses.tobytes()


def _audio_bytes(clip_dir) -> bytes:
    """The samples of a clip's audio.wav (the file's header holds a write time stamp)."""
    samples, sr = sf.read(clip_dir / AUDIO, dtype="float32")
    assert sr == SR
    return samples.tobytes()


def test_ensure_dataset_and_cli(tmp_path, capsys):
    preset = get_preset("smoke", dataset=str(tmp_path / "ensured"), synth_songs=2, synth_seconds=(3.0, 4.0))
    out = ensure_dataset(preset)
    assert len(list_clips(out)) == 2
    stamp = (out / "synth_000" / POSES).stat().st_mtime_ns
    assert ensure_dataset(preset) == out and (out / "synth_000" / POSES).stat().st_mtime_ns == stamp

    code = cli.main(["synth", "--preset", "smoke", "--out", str(tmp_path / "cli"), "--songs", "2",
                     "--seconds", "3", "4", "--seed", "1", "--workers", "1"])
    assert code == 0 and "2 clips" in capsys.readouterr().out
    assert cli.main(["synth", "--out", str(tmp_path / "bad"), "--seconds", "5", "2"]) == 1
    assert "0 < MIN <= MAX" in capsys.readouterr().err


def test_bad_input():
    with pytest.raises(ValueError, match="at least 1"):
        song_plan(0, (5.0, 6.0), 0)
    with pytest.raises(ValueError, match="unknown style"):
        make_song(0, 5.0, style="polka")
    with pytest.raises(ValueError, match="positive"):
        make_song(0, 0.0)


def test_a_runs_seed_leaves_the_embedded_dataset_as_it_is(tmp_path):
    """Training with another seed reads the same songs; only synth_seed makes other ones (a
    dataset rebuilt in place under runs that share it would change their data under them)."""
    import dataclasses

    preset = get_preset("smoke", dataset=str(tmp_path / "synth"), synth_songs=3, synth_seconds=(3.0, 4.0))
    out = ensure_dataset(preset)
    written = lambda: {p.name: (p / "clip.npz").stat().st_mtime_ns for p in sorted(out.iterdir())}
    before = written()
    ensure_dataset(dataclasses.replace(preset, seed=7))
    assert written() == before
    ensure_dataset(dataclasses.replace(preset, synth_seed=7))
    assert all(written()[name] != stamp for name, stamp in before.items())
