"""Beat time (kakashi.models.beat_time) and motion_vocab dancing in it: the beat count read back
from the `rhythm` features, the warp onto the beat grid and back, and codes that are the same
for a dance at any tempo."""

import math

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter1d

from kakashi.audio import BEAT_LAG_S, FEATURE_DIMS, RHYTHM_COLUMNS, beat_phase
from kakashi.models import beat_time, build_model
from kakashi.skeleton import bone_lengths
from kakashi.synth.dancer import make_dance
from kakashi.synth.music import make_song

FPS = 24.0
F = FEATURE_DIMS["rhythm"]


def rhythm(beats: np.ndarray, n: int, scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
    """Features [n, 1, 44]: noise, and the beat phase of `beats` (s) scaled and shifted as a
    normalisation would."""
    x = np.random.default_rng(0).normal(size=(n, F)).astype(np.float32)
    x[:, RHYTHM_COLUMNS["phase"].start:] = beat_phase(beats, FPS, n) * scale + shift
    return torch.tensor(x)[:, None]


def tiny(**options):
    """An untrained motion_vocab in beat time (8 grid points per beat) on `rhythm` features."""
    config = dict(hidden=16, layers=1, heads=2, codec_hidden=16, dropout=0.0, segment=8, levels=(5, 5, 3),
                  beat_steps=8, music_past=8, music_future=8)
    return build_model("motion_vocab", in_dim=F, **{**config, **options})


@pytest.mark.parametrize("bpm", [72.0, 117.0, 168.0])
def test_the_beat_count_is_read_back_from_normalised_features(bpm):
    beats = 0.31 + np.arange(60) * 60.0 / bpm
    n = int(15 * FPS)
    b = beat_time.beat_counts(rhythm(beats, n, scale=1.4, shift=0.02), FPS)[:, 0].numpy()
    assert np.all(np.diff(b) > 0)
    crossings = (np.nonzero(np.diff(np.floor(b)) > 0)[0] + 1) / FPS       # first frame of each beat
    inside = beats[(beats > 1 / FPS) & (beats < (n - 1) / FPS)]
    assert len(crossings) == len(inside)
    assert np.max(np.abs(crossings - inside)) <= 1.0 / FPS + 1e-6


def test_music_without_beats_still_moves_forwards():
    b = beat_time.beat_counts(rhythm(np.zeros(0), 48), FPS)[:, 0]
    assert torch.allclose(torch.diff(b), torch.full((47,), beat_time.MIN_TEMPO / FPS))


def test_the_grid_starts_on_a_beat_and_the_warp_goes_back_exactly():
    n = 120
    b = torch.stack([0.3 + torch.arange(n) * 2.0 / FPS, -0.6 + torch.arange(n) * 1.3 / FPS], 1)  # [T, 2]
    start, index = beat_time.grid(b, 8, cover=True)
    assert torch.equal(start, torch.tensor([0.0, -1.0]))
    x = torch.stack([torch.arange(n, dtype=torch.float32) * 0.1, torch.sin(torch.arange(n) * 0.05)], 1)[..., None]
    warped = beat_time.sample(x, index)                                   # [J, 2, 1]
    assert warped.shape[0] == int(np.ceil(float(b[-1, 0]) * 8)) + 1      # past the faster column's end
    back = beat_time.sample(warped, beat_time.to_frames(b, start, 8))
    # exact (linear) between the first and last grid points inside the window; off by less than
    # one grid step's motion (0.15 here) in the frames beyond them (up to 2.3 frames at either end here)
    assert torch.allclose(back[3:-3, 0], x[3:-3, 0], atol=1e-5)
    assert torch.allclose(back[3:-3, 1], x[3:-3, 1], atol=2e-3)
    assert float((back[:, 0] - x[:, 0]).abs().max()) < 0.15
    _, inner = beat_time.grid(b, 8, cover=False)                         # training: inside every window
    assert inner.shape[0] < index.shape[0] and float(inner[:, 1].max()) <= n - 1


def test_a_dance_has_the_same_codes_at_any_tempo():
    """A synthetic dance at its song's tempo and played 1.4 times as fast, beat for beat: in
    beat time the codec sees the same motion and encodes it alike; frame by frame it does not.
    (Compared before quantisation: an untrained codec rounds most latents to one code.)"""
    song = make_song(3, 16.0, style="house")
    slow = make_dance(song, seed=3, fps=FPS).poses                       # [T, 17, 3]
    t = np.arange(int(len(slow) / 1.4)) * 1.4                             # the slow dance's frames, faster
    fast = np.stack([[np.interp(t, np.arange(len(slow)), slow[:, j, k]) for k in range(3)] for j in range(17)])
    fast = fast.transpose(2, 0, 1).astype(np.float32)

    def song_and_dance(poses, speed):
        return rhythm(np.asarray(song.beats) / speed, len(poses)), torch.tensor(poses)[:, None]

    def codes(beat_steps, audio, poses):
        torch.manual_seed(0)
        model = build_model("motion_vocab", in_dim=F, hidden=16, layers=1, heads=2, codec_hidden=16, dropout=0.0,
                            segment=8, levels=(5, 5, 5), beat_steps=beat_steps, music_past=8, music_future=8)
        out = model(audio, poses[0], target=poses, teacher_forcing=1.0)
        assert out.poses.shape == poses.shape and torch.equal(out.poses[0], poses[0])
        return out.latents[:, 0].detach()                                 # [K, 2 D]

    slow, fast = song_and_dance(slow, 1.0), song_and_dance(fast, 1.4)
    centred = lambda z: z - z.mean(0)                                     # what varies with the motion
    differ = lambda a, b: float((centred(a) - centred(b)).norm() / centred(a).norm())
    in_beats = codes(8, *slow)[2:16], codes(8, *fast)[2:16]               # beats 1..7: clear of the start
    in_frames = codes(0, *slow)[2:16], codes(0, *fast)[2:16]
    assert differ(*in_beats) < 0.2 < 0.5 < differ(*in_frames)     # measured: 0.09 and 1.4


@pytest.mark.parametrize("late, moved", [(0.15, True), (-0.2, True), (0.4, False)])
def test_snap_moves_motion_beats_onto_the_beats(late, moved):
    """A dance whose speed minima come `late` beats after every beat of the grid (2.1 beats/s, 8
    grid points per beat): snapped with a reach of 0.25 beats, its minima land on the beats as
    heard (the tracker's lag before the grid's); minima 0.4 beats off (farther than the reach
    from any beat) stay where they are, to the nearest speed sample: measured, mean offset 1-3 ms,
    largest 20 ms (half a frame); aimed at the grid's beats instead, +21 ms and 44 ms; with each
    minimum read at its frame instead of between frames (no parabola through its samples), the
    largest 32 ms."""
    steps, T, bps = 8, 240, 2.1
    at = (torch.arange(T, dtype=torch.float64) * bps / FPS * steps)[:, None]           # [T, 1] grid positions
    speed_at = lambda g: 1.1 - torch.cos(2 * math.pi * (g / steps - late))          # minima `late` after beats
    mid = lambda g: 0.5 * (g[1:] + g[:-1])
    snapped = beat_time.snap(at, speed_at(mid(at)), steps, 0.25, FPS)
    assert torch.all(torch.diff(snapped[:, 0]) > 0) and snapped[0] == at[0] and snapped[-1] == at[-1]
    speed = speed_at(mid(snapped))[:, 0].numpy()
    minima = (np.flatnonzero((speed[1:-1] < speed[:-2]) & (speed[1:-1] <= speed[2:])) + 1.5) / FPS   # s
    heard = minima + BEAT_LAG_S                                                     # on the grid's beats if snapped
    off = (heard - np.round(heard * bps) / bps)[1:-1]                               # s, clear of the ends
    assert len(off) >= 15
    if moved:
        assert abs(off.mean()) < 0.008 and np.abs(off).max() < 0.55 / FPS
    else:
        assert torch.equal(snapped, at)
    assert torch.equal(beat_time.snap(at, speed_at(mid(at)), steps, 0.0, FPS), at)
    with pytest.raises(ValueError, match="reach"):
        beat_time.snap(at, speed_at(mid(at)), steps, 0.5, FPS)


def test_snap_moves_a_reading_that_is_not_the_music_clock():
    """A dance read off the music's clock (time slowed through every beat, as `accent` reads
    it), its speed minima 0.1 beats late on that reading: snapped with `read`, the same shifts
    move that reading, and the minima land on the beats as heard, as above (half a frame at
    most); the shifts are those found from the music's clock (snap is linear in the reading)."""
    steps, T, bps = 8, 240, 2.1
    at = (torch.arange(T, dtype=torch.float64) * bps / FPS * steps)[:, None]
    read = at - 0.08 * steps * torch.sin(2 * math.pi * at / steps)                 # slow through the beats
    speed_at = lambda g: 1.1 - torch.cos(2 * math.pi * (g / steps - 0.1))
    mid = lambda g: 0.5 * (g[1:] + g[:-1])
    snapped = beat_time.snap(at, speed_at(mid(read)), steps, 0.25, FPS, read=read)
    assert torch.all(torch.diff(snapped[:, 0]) > 0) and not torch.equal(snapped, read)
    speed = gaussian_filter1d(speed_at(mid(snapped))[:, 0].numpy(), beat_time.SMOOTH_S * FPS)   # as BAS reads it
    minima = (np.flatnonzero((speed[1:-1] < speed[:-2]) & (speed[1:-1] <= speed[2:])) + 1.5) / FPS
    heard = minima + BEAT_LAG_S
    off = (heard - np.round(heard * bps) / bps)[1:-1]
    assert len(off) >= 15 and np.abs(off).max() < 0.55 / FPS, off
    s = speed_at(mid(read))
    assert torch.allclose(beat_time.snap(at, s, steps, 0.25, FPS, read=2 * at), 2 * beat_time.snap(at, s, steps, 0.25, FPS))


def test_beat_time_needs_the_rhythm_features():
    with pytest.raises(ValueError, match="rhythm"):
        build_model("motion_vocab", in_dim=35, beat_steps=8)


def test_motion_vocab_in_beat_time_keeps_the_contract():
    """Forward with and without teacher forcing, the objective and generation, in beat time:
    poses on the song's frames from the first pose, bones of the first pose's skeleton."""
    torch.manual_seed(0)
    model = tiny()
    song = make_song(4, 6.0, style="house")
    poses = make_dance(song, seed=4, fps=FPS).poses
    target = torch.tensor(np.stack([poses[:60], poses[40:100]], 1))            # [60, 2, 17, 3]
    audio = torch.cat([rhythm(np.asarray(song.beats), 60), rhythm(np.asarray(song.beats) - 40 / FPS, 60)], 1)
    for tf in (0.0, 1.0):
        out = model(audio, target[0], target=target, teacher_forcing=tf)
        assert out.poses.shape == target.shape and torch.equal(out.poses[0], target[0])
        loss = model.objective(out, target, None)
        assert torch.isfinite(loss) and loss.requires_grad
    gen = model.generate(audio, target[0])
    assert gen.shape == target.shape and torch.equal(gen[0], target[0])
    bones = lambda p: np.stack([bone_lengths(p[:, b].numpy()) for b in range(p.shape[1])], 1)   # [T, B, 16] m
    # the body is rebuilt at every frame from parameters read off the grid: bones exact
    assert np.abs(bones(gen) - bones(target[:1])).max() < 1e-4


@pytest.mark.parametrize("beat_steps", [0, 8])
def test_smooth_takes_the_jitter_out_and_keeps_the_moves_and_the_bones(beat_steps):
    """The same untrained model and draws with and without `smooth` (0.5 frames), in frame time
    and in beat time: smoothed, the dance's jerk is lower (measured over 5 songs: 0.75-0.78 of
    the unsmoothed in frame time, 0.84-0.88 in beat time), the hip-relative joints move by
    about a millimetre (1-2 mm on average), the bones stay exact and frame 0 is the first pose."""
    from kakashi.metrics.motion import jerk

    song = make_song(0, 10.0, style="house")
    first = torch.tensor(make_dance(song, seed=0, fps=FPS).poses[:1]).expand(2, 17, 3).contiguous()
    audio = torch.cat([rhythm(np.asarray(song.beats), 200)] * 2, 1)
    gens = []
    for smooth in (0.0, 0.5):
        torch.manual_seed(0)
        model = tiny(beat_steps=beat_steps, temperature=2.0, smooth=smooth)
        torch.manual_seed(1)
        gens.append(model.generate(audio, first))
    for b in range(2):
        rough, smooth = (jerk(g[:, b].double().numpy(), FPS) for g in gens)
        assert smooth < 0.93 * rough, (smooth, rough)
    rel = lambda p: p - p[:, :, :1]
    assert float((rel(gens[1]) - rel(gens[0])).norm(dim=-1).mean()) < 0.005
    bones = lambda p: np.stack([bone_lengths(p[:, b].numpy()) for b in range(p.shape[1])], 1)   # [T, B, 16] m
    assert np.abs(bones(gens[1]) - bones(first[:1, None])).max() < 1e-4 and torch.equal(gens[1][0], first)
    with pytest.raises(ValueError, match="smooth"):
        build_model("motion_vocab", in_dim=F, smooth=-0.5)


def test_a_one_frame_window_is_its_first_pose():
    model = tiny(levels=(3, 3))
    first = torch.tensor(make_dance(make_song(4, 2.0, style="house"), seed=4, fps=FPS).poses[:1])   # [1, 17, 3]
    assert torch.equal(model.generate(rhythm(np.zeros(0), 1), first), first[None])


def _pulsing(bps: float, T: int = 240, steps: int = 8):
    """A dance at `bps` beats/s on a grid of `steps` points per beat: the grid position [T, 1] of
    each frame, speed(read, late, depth) -> its speed [T - 1, 1] read at `read` (minima `late`
    beats after the heard beats, depth - 1 their depth against depth + 1 for the peaks, times the
    pace read at) and off(read, late, depth) -> each interior heard beat's distance (frames) to
    the nearest minimum of that speed smoothed as `snap` and BAS read it."""
    at = (torch.arange(T, dtype=torch.float64) * bps / FPS * steps)[:, None]
    pace = bps / FPS * steps                                                       # grid points a frame

    def speed(read, late, depth=1.1):
        mid = 0.5 * (read[1:] + read[:-1]) / steps + BEAT_LAG_S * bps - late
        return (depth - torch.cos(2 * math.pi * mid)) * torch.diff(read, dim=0) / pace

    def off(read, late, depth=1.1):
        s = gaussian_filter1d(speed(read, late, depth)[:, 0].numpy(), beat_time.SMOOTH_S * FPS)
        minima = (np.flatnonzero((s[1:-1] < s[:-2]) & (s[1:-1] <= s[2:])) + 1.5) / FPS + BEAT_LAG_S   # s
        beats = np.arange(1, int(T / FPS * bps)) / bps
        return np.abs(beats[:, None] - minima[None]).min(1)[1:-1] * FPS

    return at, speed, off


@pytest.mark.parametrize("bps", [1.6, 2.1, 2.7])
def test_accent_gives_every_beat_a_motion_beat(bps):
    """A dance whose speed minima all fall half a beat from the beats (8 grid points per beat):
    accented at strength 0.9, time slows through every beat as heard, so each beat clear of the
    ends has a minimum of the smoothed speed within a frame of it (measured: 20 ms at most;
    none without accent); read positions keep increasing. A dance already on the beats is read
    where it was."""
    steps = 8
    at, speed, off = _pulsing(bps, steps=steps)
    read = beat_time.accent(at, at, speed(at, 0.5), steps, 0.9, FPS)
    assert (off(at, 0.5) > 1).all() and (off(read, 0.5) <= 1).all()
    assert torch.all(torch.diff(read[:, 0]) > 0) and float((read - at).abs().max()) > 1.0
    assert float((beat_time.accent(at, at, speed(at, 0.0), steps, 0.9, FPS) - at).abs().max()) < 1e-3
    assert torch.equal(beat_time.accent(at, at, speed(at, 0.5), steps, 0.0, FPS), at)
    with pytest.raises(ValueError, match="accent"):
        beat_time.accent(at, at, speed(at, 0.5), steps, 0.95, FPS)
    with pytest.raises(ValueError, match="width"):
        beat_time.accent(at, at, speed(at, 0.5), steps, 0.9, FPS, width=0.0)


@pytest.mark.parametrize("bps", [1.6, 2.1, 2.7])
def test_a_narrower_accent_width_lands_motion_beats_a_frame_off_on_the_beat(bps):
    """Shallow speed minima (half the peaks' speed, as a decoded dance's) one frame after the
    beats: within ACCENT_WIDTH_S (0.05 s) of their beats, they spare them most of the accent and
    stay a frame off (median 0.61-1.06 frames at these tempi); with a narrower width, 0.02 s,
    the beats are accented nearly in full and their motion beats come onto them (median
    0.06-0.39 frames; 162 beats a minute the hardest)."""
    steps, depth = 8, 3.0
    at, speed, off = _pulsing(bps, steps=steps)
    late = bps / FPS                                                       # one frame, in beats
    wide, narrow = (off(beat_time.accent(at, at, speed(at, late, depth), steps, 0.9, FPS, width), late, depth)
                    for width in (beat_time.ACCENT_WIDTH_S, 0.02))
    assert np.median(off(at, late, depth)) > 0.8 and np.median(wide) > 0.55
    assert np.median(narrow) < 0.75 * np.median(wide) and (narrow > 0.5).sum() < (wide > 0.5).sum()


def test_a_snapping_model_dances_on_the_beat():
    """The same (untrained) models and draws, with and without `snap`, on three songs: snapped,
    the dances' motion beats sit closer to the beats as heard (the features' grid less the
    tracker's lag); accented too, closer still; bones stay exact. Measured over 6 songs and
    seeds: BAS higher by 0.06-0.33, 0.18 on average; these three: 0.15; accent adds 0.36-0.41 on
    them (an untrained model's dance barely pulses, so most beats get their motion beat from it)."""
    from kakashi.metrics.beats import beat_alignment

    gains = []
    for k, style in enumerate(("house", "pop", "dnb")):
        song = make_song(5 + k, 20.0, style=style)
        first = torch.tensor(make_dance(song, seed=5, fps=FPS).poses[:1])        # [1, 17, 3]
        audio = rhythm(np.asarray(song.beats), int(20 * FPS))
        heard = np.asarray(song.beats) - BEAT_LAG_S
        scores = []
        for snap, accent in ((0.0, 0.0), (0.45, 0.0), (0.45, 0.9)):
            torch.manual_seed(k)
            model = tiny(snap=snap, accent=accent)
            torch.manual_seed(k + 1)
            gen = model.generate(audio, first)[:, 0].numpy()
            scores.append(beat_alignment(gen, FPS, heard))
            bones = bone_lengths(gen)
            assert np.abs(bones - bones[:1]).max() < 1e-4
        gains.append(np.diff(scores))
    assert np.mean(gains, 0)[0] > 0.08 and np.mean(gains, 0)[1] > 0.15, gains


def test_snap_puts_the_limbs_motion_beats_on_the_beat_not_the_travels():
    """A travelling (grounded) untrained dancer, snapped: the motion beats moved are the limbs'
    (of the hip-relative speed), so its hip-relative BAS gains more than its global BAS. Measured
    on these 6 songs: hip-relative gain minus global gain +0.045 on average (-0.003 to +0.13);
    snapping the whole body's motion beats instead gives -0.09."""
    from kakashi.metrics.beats import beat_alignment

    edge = []
    for k, style in enumerate(("house", "pop", "dnb") * 2):
        song = make_song(5 + k, 20.0, style=style)
        first = torch.tensor(make_dance(song, seed=5, fps=FPS).poses[:1])        # [1, 17, 3]
        audio = rhythm(np.asarray(song.beats), int(20 * FPS))
        heard = np.asarray(song.beats) - BEAT_LAG_S
        scores = []
        for snap in (0.0, 0.45):
            torch.manual_seed(k)
            model = tiny(snap=snap, ground=1.0)
            torch.manual_seed(k + 1)
            gen = model.generate(audio, first)[:, 0].numpy()
            scores.append([beat_alignment(gen, FPS, heard), beat_alignment(gen - gen[:, :1], FPS, heard)])
        (whole, limbs), (whole_snapped, limbs_snapped) = scores
        edge.append((limbs_snapped - limbs) - (whole_snapped - whole))
    assert np.mean(edge) > 0.02, edge
    for option in ("snap", "accent", "resnap"):
        with pytest.raises(ValueError, match=option):
            build_model("motion_vocab", in_dim=F, **{option: 0.3})               # frame time: no beats
    with pytest.raises(ValueError, match="accent_width"):
        build_model("motion_vocab", in_dim=F, beat_steps=8, accent=0.9, accent_width=0.0)
