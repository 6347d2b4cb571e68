"""Synthetic songs with known beats and sections: drums, bass, chords and a melody in numpy.

A song is mono float32 at 22 050 Hz (kakashi.clips.SR). Every beat carries a kick or a
snare, so the beat grid is plainly audible; sections (intro, verse, chorus, break) last 8 or
16 beats (12 or 24 in 3/4) and differ in loudness and instrumentation. Everything is
deterministic from the seed.

`STYLES` are the five styles of the embedded dataset: 4/4, a constant tempo, an electronic kit.
`WIDE_STYLES` (opt-in, `Preset.synth_styles`) widen what a model hears: swing (off-beat eighths
delayed), 3/4, tempo ramps and steps (the beat times follow them), stops (a bar or two of
silence or drums only), sustained string pads, an acoustic-like kit played with a human hand
(timing and velocity jitter) and saturation (a denser, louder mix). A song whose tempo varies
is generated on a steady clock at `bpm` and warped bar by bar; `Song.clock` maps its real time
back to that steady clock, which is how the dancer (kakashi.synth.dancer) stays on its beats.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.signal

from ..clips import SR

BEATS_PER_BAR = 4
STEPS_PER_BEAT = 4                      # drum patterns are written on a 16th-note grid
STEPS_PER_BAR = BEATS_PER_BAR * STEPS_PER_BEAT
PEAK = 0.89                             # peak amplitude after normalisation
RAMP_S = 0.02                           # loudness changes between sections are ramped (s)
# Beat periods are whole multiples of this many samples: librosa's default onset hop, so
# that its tempo grid (one tempo per whole-hop lag) holds the true tempo exactly; between
# two grid tempi its autocorrelation can prefer twice the period instead.
TEMPO_HOP = 512


@dataclass(frozen=True)
class Style:
    """A genre: tempo range (bpm) and one bar of drum patterns on the 16th grid ("x" hit)."""

    name: str
    bpm: tuple[float, float]
    kick: str
    snare: str
    hat: str
    bass: str                           # 16th grid: "x" chord root, "o" its octave, "t" third, "f" fifth
    brightness: float                   # weight of upper harmonics in chords and melody
    meter: int = 4                      # beats per bar (patterns hold meter * STEPS_PER_BEAT steps)
    swing: float = 0.0                  # delay of the off-beat eighths, in beats (1/6: a 2:1 swing)
    kit: str = "electronic"             # "electronic" | "acoustic" (see _drum_kit, _acoustic_kit)
    tempo: str = "steady"               # "steady" | "ramp" (bar by bar) | "step" (once, mid-song)
    stops: bool = False                 # a bar or two of silence or drums only before choruses
    pad: bool = False                   # sustained strings under every section
    drive: float = 0.0                  # tanh saturation of the mix (0 = none): louder, denser
    dances_like: str = ""               # a STYLES name whose moves the dancer uses (kakashi.synth.moves)


STYLES: dict[str, Style] = {s.name: s for s in (
    Style("hiphop", (80.0, 94.0), kick="x.....x.x.......", snare="....x.......x...",
          hat="x.x.x.x.x.x.x.x.", bass="x.....x.x.......", brightness=0.3),
    Style("funk", (95.0, 106.0), kick="x.....x.x.....x.", snare="....x.......x...",
          hat="x.x.x.x.x.x.x.x.", bass="x..o..x.x.o...x.", brightness=0.6),
    Style("pop", (106.0, 120.0), kick="x.......x.x.....", snare="....x.......x...",
          hat="x.x.x.x.x.x.x.x.", bass="x...x...x...x...", brightness=0.45),
    Style("house", (120.0, 130.0), kick="x...x...x...x...", snare="....x.......x...",
          hat="..x...x...x...x.", bass="..x...x...x...x.", brightness=0.7),
    Style("dnb", (150.0, 175.0), kick="x...x...x...x...", snare="x...x...x...x...",
          hat="..x...x...x...x.", bass="x...x...x...x...", brightness=0.5),
)}

# Opt-in styles beyond the embedded dataset's five (a Preset's synth_styles names them). Tempo
# ranges stay within librosa's tracker prior (~60-180 bpm, centred on 120), so that "where
# the beats are" has one answer.
WIDE_STYLES: dict[str, Style] = {s.name: s for s in (
    Style("swing", (112.0, 140.0), kick="x...x...x...x...", snare="....x.......x...",
          hat="x...x.x.x...x.x.", bass="x...t...f...o...", brightness=0.5, swing=1 / 6,
          kit="acoustic", dances_like="funk"),
    Style("waltz", (96.0, 126.0), kick="x...........", snare="....x...x...", hat="x.x.x.x.x.x.",
          bass="x.......f...", brightness=0.35, meter=3, kit="acoustic", pad=True, dances_like="pop"),
    Style("rock", (104.0, 138.0), kick="x.....x.x.......", snare="....x.......x...",
          hat="x.x.x.x.x.x.x.x.", bass="x.x.x.x.x.x.x.x.", brightness=0.8, kit="acoustic",
          tempo="step", stops=True, drive=2.5, dances_like="hiphop"),
    Style("strings", (92.0, 120.0), kick="x...x...x...x...", snare="....x.......x...",
          hat="................", bass="x.......x.......", brightness=0.4, kit="acoustic",
          tempo="ramp", pad=True, dances_like="house"),
)}
ALL_STYLES: dict[str, Style] = {**STYLES, **WIDE_STYLES}
TEMPO_CHANGE = (0.08, 0.15)             # size of a ramp's or a step's tempo change (fraction), drawn
BEATER_S = 0.006                        # an acoustic kick's beater click (s); without it the kick moves
                                        # only a few low mel bands and librosa's median onset misses it
HUMAN_TIMING_S = 0.006                  # sd of an acoustic kit's hit timing (s): a drummer's, not a grid's
HUMAN_VELOCITY = 0.15                   # an acoustic kit's hits vary in level by up to this fraction
BASS_INTERVALS = {"x": 0, "o": 12, "f": 7}  # semitones above the chord root ("t": the triad's third)

# Loudness (mix gain) and the instruments heard in each kind of section.
SECTION_LOUDNESS = {"intro": 0.45, "verse": 0.7, "chorus": 1.0, "break": 0.35}
SECTION_LAYERS = {
    "intro": ("pulse", "snare", "hat", "chords"),
    "verse": ("kick", "snare", "hat", "bass", "chords"),
    "chorus": ("kick", "snare", "hat", "bass", "chords", "melody"),
    "break": ("pulse", "tick", "snare", "chords", "melody"),
}
PULSE = "x...x...x...x..."                # intro and break: a kick on every beat (and a hat: "tick")
DRUM_LAYERS = ("kick", "snare", "hat", "pulse", "tick")  # what a "drums" stop keeps
PAD_OVERLAP = 1.3                       # a pad chord lasts this many bars: it overlaps the next one
PAD_ATTACK = 0.3                        # share of a pad chord spent rising (and, at its end, falling)
PAD_VIBRATO = (5.5, 0.004)              # Hz and depth (fraction of the pitch, ~7 cents): a string player's
PAD_DETUNE = 0.003                      # two voices +-5 cents apart: an ensemble, not one oscillator
PAD_HARMONICS = 5
PROGRESSIONS = ((0, 7, 9, 5), (0, 5, 7, 5), (9, 5, 0, 7), (0, 9, 5, 7))  # chord roots, semitones
MAJOR, MINOR = (0, 4, 7), (0, 3, 7)
PENTATONIC = (0, 2, 4, 7, 9)


@dataclass(frozen=True)
class Section:
    """A part of a song: name (intro | verse | chorus | break), start/end in s, mix gain in (0, 1]."""

    name: str
    start: float
    end: float
    loudness: float


@dataclass(frozen=True)
class Song:
    """A generated song and its ground truth (times in seconds)."""

    audio: np.ndarray                   # [N] float32, mono, at SR
    style: str
    bpm: float                          # the tempo of the steady clock (a varying song's opening tempo)
    beats: np.ndarray                   # [B] beat times, s
    downbeats: np.ndarray               # [B // meter] times of the first beat of each bar, s
    sections: tuple[Section, ...]
    key: int                            # MIDI note of the tonic
    meter: int = BEATS_PER_BAR          # beats per bar
    stops: tuple[tuple[float, float, str], ...] = ()  # (start s, end s, "silence" | "drums")

    @property
    def seconds(self) -> float:
        return len(self.audio) / SR

    def section_at(self, t: float) -> Section:
        """The section playing at time t (s)."""
        for section in self.sections:
            if section.start <= t < section.end:
                return section
        return self.sections[-1]

    @property
    def tempo_varies(self) -> bool:
        """True when the beats are not evenly spaced at `bpm` (a ramp or a step)."""
        return len(self.beats) > 1 and not np.allclose(np.diff(self.beats), 60.0 / self.bpm, rtol=0, atol=1e-6)

    def steady_time(self, t) -> np.ndarray:
        """Real time (s) -> time on the steady clock at `bpm` (s): beat k sits at k * 60 / bpm."""
        return _interp_line(np.asarray(t, np.float64), self.beats, np.arange(len(self.beats)) * 60.0 / self.bpm)

    def real_time(self, t) -> np.ndarray:
        """Time on the steady clock (s) -> real time (s); the inverse of `steady_time`."""
        return _interp_line(np.asarray(t, np.float64), np.arange(len(self.beats)) * 60.0 / self.bpm, self.beats)

    def clock(self, fps: float) -> np.ndarray:
        """Steady-clock time (s) of each frame k / fps of the song, [round(seconds * fps)]."""
        return self.steady_time(np.arange(int(round(self.seconds * fps))) / fps)

    def dancer_view(self) -> "Song":
        """The song as kakashi.synth.dancer reads it: the song itself for the embedded styles;
        for WIDE_STYLES its beats and sections on the steady clock (pass `clock(fps)` beside it),
        named after the style whose moves the dancer draws (Style.dances_like), audio silent."""
        if self.style in STYLES:
            return self
        beat_s = 60.0 / self.bpm
        steady = np.arange(len(self.beats)) * beat_s
        length = int(np.ceil(float(self.steady_time(self.seconds)) * SR))
        sections = tuple(Section(s.name, round(float(self.steady_time(s.start)), 6),
                                 round(float(self.steady_time(s.end)), 6), s.loudness) for s in self.sections)
        return Song(audio=np.zeros(length, np.float32), style=ALL_STYLES[self.style].dances_like, bpm=self.bpm,
                    beats=steady, downbeats=steady[::self.meter], sections=sections, key=self.key,
                    meter=self.meter)


def _interp_line(x: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """Piecewise-linear interpolation through (xp, fp), extended past both ends along the end segments."""
    if len(xp) < 2:
        return x - xp[0] + fp[0]
    x = np.asarray(x, np.float64)
    y = np.atleast_1d(np.interp(x, xp, fp)).astype(np.float64)
    x1 = np.atleast_1d(x)
    lo, hi = x1 < xp[0], x1 > xp[-1]
    y[lo] = fp[0] + (x1[lo] - xp[0]) * (fp[1] - fp[0]) / (xp[1] - xp[0])
    y[hi] = fp[-1] + (x1[hi] - xp[-1]) * (fp[-1] - fp[-2]) / (xp[-1] - xp[-2])
    return y.reshape(x.shape)


def make_song(seed: int, seconds: float, style: str | None = None, bpm: float | None = None) -> Song:
    """Synthesise a song of `seconds` s (style and tempo drawn from the seed unless given).

    The drawn style is one of STYLES; any of ALL_STYLES can be asked for by name.
    """
    if seconds <= 0:
        raise ValueError(f"song length must be positive, got {seconds} s")
    rng = np.random.default_rng(seed)
    style_name = style if style is not None else str(rng.choice(sorted(STYLES)))
    if style_name not in ALL_STYLES:
        raise ValueError(f"unknown style {style_name!r}; choose one of {sorted(ALL_STYLES)}")
    st = ALL_STYLES[style_name]
    bpm = float(bpm) if bpm is not None else float(rng.choice(tempo_choices(style_name)))
    beat_s = 60.0 / bpm
    n_samples = int(round(seconds * SR))
    warp = None if st.tempo == "steady" else _tempo_warp(st, beat_s, seconds, rng)
    if warp is None:
        steady_seconds = seconds
    else:                               # the steady clock's time at the song's end
        steady_seconds = float(_interp_line(np.array([seconds]), warp[2], np.arange(len(warp[2])) * beat_s)[0])
    n_beats = int(np.floor(steady_seconds / beat_s - 1e-9)) + 1
    beats = np.arange(n_beats) * beat_s if warp is None else warp[2][:n_beats]
    steady_sections = plan_sections(n_beats, beat_s, steady_seconds, rng, st.meter)
    sections = steady_sections if warp is None else _warp_sections(steady_sections, warp[2], beat_s, seconds)
    key = int(rng.integers(43, 50))                     # G2 .. D3: the bass register
    minor = bool(rng.random() < 0.5)
    progression = PROGRESSIONS[int(rng.integers(len(PROGRESSIONS)))]
    kit = _acoustic_kit(rng) if st.kit == "acoustic" else _drum_kit(rng)
    stops = _plan_stops(steady_sections, beat_s, st.meter, rng) if st.stops else {}

    triad = MINOR if minor else MAJOR
    mix = np.zeros(n_samples + SR, np.float64)         # one second of tail room, cut at the end
    gain = np.zeros(n_samples + SR, np.float64)
    for sec, real in zip(steady_sections, sections):
        first_bar = int(round(sec.start / beat_s)) // st.meter
        last_bar = int(np.ceil(sec.end / beat_s - 1e-9)) // st.meter + 1
        for bar in range(first_bar, last_bar):
            chord_root = key + progression[bar % len(progression)]
            bar_t, bar_beat_s = (bar * st.meter * beat_s, beat_s) if warp is None else (warp[0][bar], warp[1][bar])
            _render_bar(mix, rng, st, kit, real, bar_t, bar_beat_s, chord_root, triad, key, stops.get(bar))
        _set_gain(gain, real.start, real.end, real.loudness)
    audio = (mix * gain)[:n_samples]
    fade = min(n_samples, int(0.3 * SR))
    audio[n_samples - fade:] *= np.linspace(1.0, 0.0, fade)
    if st.drive > 0:                                   # saturate: a louder, denser mix
        audio = np.tanh(st.drive * audio / max(float(np.abs(audio).max()), 1e-9))
    audio *= PEAK / max(float(np.abs(audio).max()), 1e-9)
    downbeats = beats[::st.meter]
    stop_times = tuple((round(float(warp[0][b] if warp else b * st.meter * beat_s), 6),
                        round(float(warp[0][b + 1] if warp else (b + 1) * st.meter * beat_s), 6), kind)
                       for b, kind in sorted(stops.items()))
    return Song(audio=audio.astype(np.float32), style=style_name, bpm=bpm, beats=beats,
                downbeats=downbeats, sections=tuple(sections), key=key, meter=st.meter, stops=stop_times)


def tempo_choices(style: str) -> np.ndarray:
    """Tempi (bpm) of a style's range whose beat period is a whole number of TEMPO_HOP samples."""
    lo, hi = ALL_STYLES[style].bpm
    unit = 60.0 * SR / TEMPO_HOP                               # bpm of a one-hop beat period
    lags = np.arange(int(np.ceil(unit / hi)), int(np.floor(unit / lo)) + 1)
    return unit / lags[::-1]


def plan_sections(n_beats: int, beat_s: float, seconds: float, rng: np.random.Generator,
                  meter: int = BEATS_PER_BAR) -> list[Section]:
    """Sections of 2 or 4 bars of 4 beats (4 or 8 bars of 3) covering the song: intro, then
    verse/chorus/break cycles; verses and choruses are the long ones."""
    short, long = (8, 16) if meter == BEATS_PER_BAR else (4 * meter, 8 * meter)
    names = ["intro"]
    cycle = ("verse", "chorus", "break", "verse", "chorus", "chorus", "break")
    while len(names) * short < n_beats + 2 * short:
        names.extend(cycle)
    sections, beat = [], 0
    for name in names:
        length = long if name in ("verse", "chorus") else int(rng.choice((short, long)))
        start, end = beat * beat_s, min((beat + length) * beat_s, seconds)
        loud = float(np.clip(SECTION_LOUDNESS[name] + rng.uniform(-0.05, 0.05), 0.2, 1.0))
        sections.append(Section(name, round(start, 6), round(end, 6), round(loud, 3)))
        beat += length
        if end >= seconds:
            break
    return sections


def _tempo_warp(st: Style, beat_s: float, seconds: float,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Real bar start times [n_bars + 1] (s), beat period per bar [n_bars] (s) and real beat
    times [n_bars * meter] (s) of a song whose tempo ramps (bar by bar, from bpm to
    bpm * (1 +- change) at the end) or steps (once, on an 8-beat phrase boundary near the middle)."""
    change = float(rng.uniform(*TEMPO_CHANGE)) * (1.0 if rng.random() < 0.5 else -1.0)
    song_bars = seconds / (st.meter * beat_s)
    n_bars = int(np.ceil(song_bars / (1 - TEMPO_CHANGE[1]))) + 4     # enough bars at the slowest tempo
    bars = np.arange(n_bars)
    if st.tempo == "ramp":
        factor = 1.0 + change * np.minimum(bars / max(song_bars - 1, 1.0), 1.0)
    elif st.tempo == "step":
        phrase_bars = max(1, 8 // st.meter)
        step_bar = phrase_bars * max(int(round(song_bars / 2 / phrase_bars)), 1)
        factor = np.where(bars < step_bar, 1.0, 1.0 + change)
    else:
        raise ValueError(f"style {st.name}: unknown tempo kind {st.tempo!r}; choose steady, ramp or step")
    period = beat_s / factor                                          # [n_bars] s per beat
    bar_t = np.concatenate([[0.0], np.cumsum(st.meter * period)])     # [n_bars + 1]
    beats = (bar_t[:-1, None] + np.arange(st.meter)[None] * period[:, None]).ravel()  # [n_bars * meter]
    return bar_t, period, beats


def _warp_sections(steady: list[Section], beats: np.ndarray, beat_s: float, seconds: float) -> list[Section]:
    """Sections planned on the steady clock, moved to the real beat times (the last ends at `seconds`)."""
    steady_beats = np.arange(len(beats)) * beat_s
    to_real = lambda t: round(float(_interp_line(np.array([t]), steady_beats, beats)[0]), 6)  # noqa: E731
    out = [Section(s.name, to_real(s.start), to_real(s.end), s.loudness) for s in steady]
    out[-1] = Section(out[-1].name, out[-1].start, round(seconds, 6), out[-1].loudness)
    return out


def _plan_stops(sections: list[Section], beat_s: float, meter: int, rng: np.random.Generator) -> dict[int, str]:
    """Bars (index -> "silence" | "drums") of the one or two bars before each chorus after the intro."""
    stops = {}
    for sec in sections[1:]:
        if sec.name != "chorus":
            continue
        first = int(round(sec.start / beat_s)) // meter
        kind, n = ("silence", "drums")[int(rng.integers(2))], int(rng.integers(1, 3))
        stops.update({bar: kind for bar in range(max(first - n, 1), first)})
    return stops


def _render_bar(mix: np.ndarray, rng: np.random.Generator, st: Style, kit: dict, sec: Section,
                bar_t: float, beat_s: float, chord_root: int, triad: tuple[int, ...], key: int,
                stop: str | None = None) -> None:
    """Add one bar (starting at bar_t s) of the section's instruments into `mix`, cut to the section.

    stop: "silence" (nothing new starts in this bar) or "drums" (the drums only).
    """
    layers, t0, t1 = SECTION_LAYERS[sec.name], sec.start, sec.end
    if stop is not None:
        layers = () if stop == "silence" else tuple(x for x in layers if x in DRUM_LAYERS)
    step_s = beat_s / STEPS_PER_BEAT
    human = st.kit == "acoustic"
    drums = (("kick", "kick"), ("snare", "snare"), ("hat", "hat"), ("pulse", "kick"), ("tick", "hat"))
    pulse = ("x" + "." * (STEPS_PER_BEAT - 1)) * st.meter       # PULSE in 4/4
    for name, hit in drums:                             # (layer, drum sound)
        if name in layers:
            pattern = pulse if name in ("pulse", "tick") else getattr(st, name)
            for step, c in enumerate(pattern):
                t = _step_time(st, bar_t, step, step_s)
                if c == "x" and t0 <= t < t1:
                    accent = 1.0 if step % STEPS_PER_BEAT == 0 else 0.6
                    if human:                           # a drummer's hand: timing and level vary
                        accent *= 1.0 - HUMAN_VELOCITY * rng.random()
                        t = max(t + rng.normal(0.0, HUMAN_TIMING_S), 0.0)
                    _add(mix, kit[hit] * accent, t)
    if "bass" in layers:
        for step, c in enumerate(st.bass):
            t = _step_time(st, bar_t, step, step_s)
            if c in "xotf" and t0 <= t < t1:
                note = chord_root + (triad[1] if c == "t" else BASS_INTERVALS[c])
                _add(mix, 0.5 * _note(note, 1.8 * beat_s, (1.0, 0.35, 0.1), 6.0), t)
    if "chords" in layers and t0 <= bar_t < t1:
        harmonics = (1.0, st.brightness, 0.5 * st.brightness)
        for interval in triad:
            _add(mix, 0.12 * _note(chord_root + 12 + interval, st.meter * beat_s, harmonics, 0.8,
                                   attack=0.03), bar_t)
    if st.pad and stop is None and t0 <= bar_t < t1:
        for interval in triad:
            _add(mix, 0.07 * _pad(chord_root + 12 + interval, PAD_OVERLAP * st.meter * beat_s), bar_t)
    if "melody" in layers:
        _melody(mix, rng, bar_t, beat_s, key, st.brightness, t0, t1, st.meter, st.swing)


def _step_time(st: Style, bar_t: float, step: int, step_s: float) -> float:
    """Time (s) of a 16th step of a bar: on the grid, the off-beat eighths delayed by the swing."""
    t = bar_t + step * step_s
    if st.swing and step % STEPS_PER_BEAT == STEPS_PER_BEAT // 2:
        t += st.swing * STEPS_PER_BEAT * step_s
    return t


def _drum_kit(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One-shot samples (float64) with decaying envelopes: kick, snare, hat."""
    t = np.arange(int(0.35 * SR)) / SR
    f0, f1 = rng.uniform(45, 60), rng.uniform(130, 170)
    freq = f0 + (f1 - f0) * np.exp(-t / 0.03)                  # pitch sweep down
    kick = np.sin(2 * np.pi * np.cumsum(freq) / SR) * np.exp(-t / 0.12)
    kick[: int(0.003 * SR)] += rng.uniform(-0.5, 0.5, int(0.003 * SR))  # beater click
    ts = t[: int(0.2 * SR)]
    noise = rng.standard_normal(len(ts))
    tone = np.sin(2 * np.pi * rng.uniform(170, 210) * ts)
    snare = 0.6 * noise * np.exp(-ts / 0.05) + 0.5 * tone * np.exp(-ts / 0.04)
    th = t[: int(0.06 * SR)]
    hat = np.diff(rng.standard_normal(len(th) + 2), n=2) * np.exp(-th / 0.012)
    return {"kick": 0.9 * kick, "snare": 0.7 * snare, "hat": 0.08 * hat}


def _acoustic_kit(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """An acoustic-like kit (float64 one-shots): a low sine kick whose pitch drops, a snare of
    band-passed noise with a longer decay over a drum-head tone, a high-passed noise hat."""
    t = np.arange(int(0.5 * SR)) / SR
    f0, f1 = rng.uniform(45, 55), rng.uniform(90, 120)
    freq = f0 + (f1 - f0) * np.exp(-t / 0.04)                  # pitch drop of the head
    kick = np.sin(2 * np.pi * np.cumsum(freq) / SR) * np.exp(-t / rng.uniform(0.15, 0.22))
    click = int(BEATER_S * SR)                                 # the beater on the head: broadband
    kick[:click] += rng.uniform(-0.5, 0.5, click) * np.exp(-np.arange(click) / (0.3 * click))
    ts = t[: int(0.35 * SR)]
    wires = scipy.signal.sosfilt(scipy.signal.butter(2, (1500.0, 7000.0), "bandpass", fs=SR, output="sos"),
                                 rng.standard_normal(len(ts)))
    head = np.sin(2 * np.pi * rng.uniform(170, 210) * ts) * np.exp(-ts / 0.05)
    snare = wires / np.abs(wires).max() * np.exp(-ts / rng.uniform(0.07, 0.11)) + 0.5 * head
    th = t[: int(0.15 * SR)]
    hiss = scipy.signal.sosfilt(scipy.signal.butter(2, 6000.0, "highpass", fs=SR, output="sos"),
                                rng.standard_normal(len(th)))
    hat = hiss / np.abs(hiss).max() * np.exp(-th / rng.uniform(0.015, 0.045))
    return {"kick": 0.9 * kick, "snare": 0.6 * snare, "hat": 0.12 * hat}


def _pad(midi: float, seconds: float) -> np.ndarray:
    """A sustained string-like tone: sawtooth-like harmonics (1/k) of two slightly detuned
    voices with vibrato, a slow attack and release: [n] float64."""
    t = np.arange(int(seconds * SR)) / SR
    f = 440.0 * 2.0 ** ((midi - 69) / 12)
    vibrato = 1.0 + PAD_VIBRATO[1] * np.sin(2 * np.pi * PAD_VIBRATO[0] * t)
    wave = np.zeros_like(t)
    for detune in (1.0 - PAD_DETUNE, 1.0 + PAD_DETUNE):
        phase = 2 * np.pi * f * detune * np.cumsum(vibrato) / SR
        wave += sum(np.sin(k * phase) / k for k in range(1, PAD_HARMONICS + 1))
    rise = PAD_ATTACK * seconds
    env = np.minimum(t / rise, 1.0) * np.minimum((seconds - t) / rise, 1.0)   # attack, release
    return wave * env


def _note(midi: float, seconds: float, harmonics: tuple[float, ...], decay: float,
          attack: float = 0.005) -> np.ndarray:
    """A tone with harmonics, a linear attack (s) and exponential decay (1/s): [n] float64."""
    t = np.arange(int(seconds * SR)) / SR
    f = 440.0 * 2.0 ** ((midi - 69) / 12)
    wave = sum(a * np.sin(2 * np.pi * f * (k + 1) * t) for k, a in enumerate(harmonics))
    env = np.minimum(t / attack, 1.0) * np.exp(-decay * t)
    env[-int(0.01 * SR):] *= np.linspace(1.0, 0.0, int(0.01 * SR))  # no click at the note's end
    return wave * env


def _melody(mix: np.ndarray, rng: np.random.Generator, bar_t: float, beat_s: float, key: int,
            brightness: float, t0: float, t1: float, meter: int = BEATS_PER_BAR, swing: float = 0.0) -> None:
    """One bar of pentatonic melody on 8th notes (some rests; off-beat ones delayed by `swing`
    beats), added into `mix`."""
    degree = int(rng.integers(len(PENTATONIC)))
    for eighth in range(2 * meter):
        t = bar_t + eighth * beat_s / 2
        if swing and eighth % 2:
            t += swing * beat_s
        degree = int(np.clip(degree + rng.integers(-2, 3), 0, 2 * len(PENTATONIC) - 1))
        if rng.random() < 0.3 or not (t0 <= t < t1):
            continue
        octave, step = divmod(degree, len(PENTATONIC))
        note = key + 24 + 12 * octave + PENTATONIC[step]
        _add(mix, 0.14 * _note(note, beat_s, (1.0, 0.3 * brightness, 0.1 * brightness), 4.0, attack=0.01), t)


def _add(mix: np.ndarray, sound: np.ndarray, t: float) -> None:
    """Add `sound` into `mix` starting at time t (s), cut at the end of `mix`."""
    i = int(round(t * SR))
    n = min(len(sound), len(mix) - i)
    if n > 0:
        mix[i:i + n] += sound[:n]


def _set_gain(gain: np.ndarray, start: float, end: float, level: float) -> None:
    """Write a section's mix gain, ramped from the previous level over RAMP_S."""
    i0, i1 = int(round(start * SR)), min(int(round(end * SR)), len(gain))
    if end >= len(gain) / SR - 1.0 - 1e-6:
        i1 = len(gain)                                         # the last section covers the tail
    prev = gain[i0 - 1] if i0 > 0 else level
    ramp = min(int(RAMP_S * SR), i1 - i0)
    gain[i0:i1] = level
    gain[i0:i0 + ramp] = np.linspace(prev, level, ramp)
