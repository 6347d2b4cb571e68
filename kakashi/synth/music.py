"""Synthetic songs with known beats and sections: drums, bass, chords and a melody in numpy.

A song is mono float32 at 22 050 Hz (kakashi.clips.SR), 4/4, at a constant tempo. Every
beat carries a kick or a snare, so the beat grid is plainly audible; sections (intro, verse,
chorus, break) last 8 or 16 beats and differ in loudness and instrumentation. Everything is
deterministic from the seed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
    bass: str                           # 16th grid: "x" = play the chord root, "o" = its octave
    brightness: float                   # weight of upper harmonics in chords and melody


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

# Loudness (mix gain) and the instruments heard in each kind of section.
SECTION_LOUDNESS = {"intro": 0.45, "verse": 0.7, "chorus": 1.0, "break": 0.35}
SECTION_LAYERS = {
    "intro": ("pulse", "snare", "hat", "chords"),
    "verse": ("kick", "snare", "hat", "bass", "chords"),
    "chorus": ("kick", "snare", "hat", "bass", "chords", "melody"),
    "break": ("pulse", "tick", "snare", "chords", "melody"),
}
PULSE = "x...x...x...x..."                # intro and break: a kick on every beat (and a hat: "tick")
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
    bpm: float
    beats: np.ndarray                   # [B] beat times, s
    downbeats: np.ndarray               # [B // 4] times of the first beat of each bar, s
    sections: tuple[Section, ...]
    key: int                            # MIDI note of the tonic

    @property
    def seconds(self) -> float:
        return len(self.audio) / SR

    def section_at(self, t: float) -> Section:
        """The section playing at time t (s)."""
        for section in self.sections:
            if section.start <= t < section.end:
                return section
        return self.sections[-1]


def make_song(seed: int, seconds: float, style: str | None = None, bpm: float | None = None) -> Song:
    """Synthesise a song of `seconds` s (style and tempo drawn from the seed unless given)."""
    if seconds <= 0:
        raise ValueError(f"song length must be positive, got {seconds} s")
    rng = np.random.default_rng(seed)
    style_name = style if style is not None else str(rng.choice(sorted(STYLES)))
    if style_name not in STYLES:
        raise ValueError(f"unknown style {style_name!r}; choose one of {sorted(STYLES)}")
    st = STYLES[style_name]
    bpm = float(bpm) if bpm is not None else float(rng.choice(tempo_choices(style_name)))
    beat_s = 60.0 / bpm
    n_samples = int(round(seconds * SR))
    n_beats = int(np.floor(seconds / beat_s - 1e-9)) + 1
    beats = np.arange(n_beats) * beat_s
    sections = plan_sections(n_beats, beat_s, seconds, rng)
    key = int(rng.integers(43, 50))                     # G2 .. D3: the bass register
    minor = bool(rng.random() < 0.5)
    progression = PROGRESSIONS[int(rng.integers(len(PROGRESSIONS)))]
    kit = _drum_kit(rng)

    triad = MINOR if minor else MAJOR
    mix = np.zeros(n_samples + SR, np.float64)         # one second of tail room, cut at the end
    gain = np.zeros(n_samples + SR, np.float64)
    for sec in sections:
        first_bar = int(round(sec.start / beat_s)) // BEATS_PER_BAR
        last_bar = int(np.ceil(sec.end / beat_s - 1e-9)) // BEATS_PER_BAR + 1
        for bar in range(first_bar, last_bar):
            chord_root = key + progression[bar % len(progression)]
            _render_bar(mix, rng, st, kit, sec, bar * BEATS_PER_BAR * beat_s, beat_s, chord_root, triad, key)
        _set_gain(gain, sec.start, sec.end, sec.loudness)
    audio = (mix * gain)[:n_samples]
    fade = min(n_samples, int(0.3 * SR))
    audio[n_samples - fade:] *= np.linspace(1.0, 0.0, fade)
    audio *= PEAK / max(float(np.abs(audio).max()), 1e-9)
    downbeats = beats[::BEATS_PER_BAR]
    return Song(audio=audio.astype(np.float32), style=style_name, bpm=bpm, beats=beats,
                downbeats=downbeats, sections=tuple(sections), key=key)


def tempo_choices(style: str) -> np.ndarray:
    """Tempi (bpm) of a style's range whose beat period is a whole number of TEMPO_HOP samples."""
    lo, hi = STYLES[style].bpm
    unit = 60.0 * SR / TEMPO_HOP                               # bpm of a one-hop beat period
    lags = np.arange(int(np.ceil(unit / hi)), int(np.floor(unit / lo)) + 1)
    return unit / lags[::-1]


def plan_sections(n_beats: int, beat_s: float, seconds: float, rng: np.random.Generator) -> list[Section]:
    """Sections of 8 or 16 beats covering the song: intro, then verse/chorus/break cycles."""
    names = ["intro"]
    cycle = ("verse", "chorus", "break", "verse", "chorus", "chorus", "break")
    while len(names) * 8 < n_beats + 16:
        names.extend(cycle)
    sections, beat = [], 0
    for name in names:
        length = 16 if name in ("verse", "chorus") else int(rng.choice((8, 16)))
        start, end = beat * beat_s, min((beat + length) * beat_s, seconds)
        loud = float(np.clip(SECTION_LOUDNESS[name] + rng.uniform(-0.05, 0.05), 0.2, 1.0))
        sections.append(Section(name, round(start, 6), round(end, 6), round(loud, 3)))
        beat += length
        if end >= seconds:
            break
    return sections


def _render_bar(mix: np.ndarray, rng: np.random.Generator, st: Style, kit: dict, sec: Section,
                bar_t: float, beat_s: float, chord_root: int, triad: tuple[int, ...], key: int) -> None:
    """Add one bar (starting at bar_t s) of the section's instruments into `mix`, cut to the section."""
    layers, t0, t1 = SECTION_LAYERS[sec.name], sec.start, sec.end
    step_s = beat_s / STEPS_PER_BEAT
    drums = (("kick", "kick"), ("snare", "snare"), ("hat", "hat"), ("pulse", "kick"), ("tick", "hat"))
    for name, hit in drums:                             # (layer, drum sound)
        if name in layers:
            pattern = PULSE if name in ("pulse", "tick") else getattr(st, name)
            for step, c in enumerate(pattern):
                t = bar_t + step * step_s
                if c == "x" and t0 <= t < t1:
                    accent = 1.0 if step % STEPS_PER_BEAT == 0 else 0.6
                    _add(mix, kit[hit] * accent, t)
    if "bass" in layers:
        for step, c in enumerate(st.bass):
            t = bar_t + step * step_s
            if c in "xo" and t0 <= t < t1:
                note = chord_root + (12 if c == "o" else 0)
                _add(mix, 0.5 * _note(note, 1.8 * beat_s, (1.0, 0.35, 0.1), 6.0), t)
    if "chords" in layers and t0 <= bar_t < t1:
        harmonics = (1.0, st.brightness, 0.5 * st.brightness)
        for interval in triad:
            _add(mix, 0.12 * _note(chord_root + 12 + interval, BEATS_PER_BAR * beat_s, harmonics, 0.8,
                                   attack=0.03), bar_t)
    if "melody" in layers:
        _melody(mix, rng, bar_t, beat_s, key, st.brightness, t0, t1)


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
            brightness: float, t0: float, t1: float) -> None:
    """One bar of pentatonic melody on 8th notes (some rests), added into `mix`."""
    degree = int(rng.integers(len(PENTATONIC)))
    for eighth in range(2 * BEATS_PER_BAR):
        t = bar_t + eighth * beat_s / 2
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
