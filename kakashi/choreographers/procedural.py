"""`procedural`: the embedded dataset's own dancer (kakashi.synth) dancing to any music.

The song is described as kakashi.synth describes its own songs: a tempo and beat grid
(tracked), a style (the synthetic style whose tempo range is nearest), and sections of
whole 8-beat phrases (intro | verse | chorus | break) with a loudness, found from the
phrases' loudness and the novelty of their timbre. kakashi.synth.make_dance then chooses
and performs one move per phrase exactly as it does for a synthetic song, on the song's
own clock: beat i of the tracked grid falls on the dancer's beat i, so a varying tempo is
followed beat by beat.
"""
from __future__ import annotations

import os

from dataclasses import dataclass

import numpy as np

from ..audio import features
from ..synth.dancer import make_dance
from ..synth.moves import PHRASE_BEATS
from ..synth.music import SECTION_LOUDNESS, STYLES, Section
from .listening import Heard, listen

# A phrase as loud as this percentile of the song's phrases counts as full loudness (1.0, a
# chorus): robust to one loud peak.
LOUD_PERCENTILE = 90.0
MIN_LOUDNESS = 0.2        # the synthetic songs' lowest section loudness (kakashi.synth.music)
# A new section starts where the loudness of consecutive phrases changes by more than this
# (dB; the synthetic sections differ by 3-9 dB) or where the timbre's novelty stands out by
# more than NOVELTY_MADS median absolute deviations above its median.
SECTION_STEP_DB = 2.5
NOVELTY_MADS = 3.0
# Section names by loudness: thresholds half-way between the synthetic sections' loudness.
CHORUS_ABOVE = 0.5 * (SECTION_LOUDNESS["chorus"] + SECTION_LOUDNESS["verse"])
VERSE_ABOVE = 0.5 * (SECTION_LOUDNESS["verse"] + SECTION_LOUDNESS["intro"])


@dataclass(frozen=True)
class HeardSong:
    """A real song described as kakashi.synth.make_dance reads a synthetic one, on a steady
    clock at `bpm` (beat b at b * 60 / bpm s): style, bpm, sections (times on that clock), seconds."""

    style: str
    bpm: float
    sections: tuple[Section, ...]
    seconds: float

    def section_at(self, t: float) -> Section:
        """The section playing at steady-clock time t (s)."""
        for section in self.sections:
            if section.start <= t < section.end:
                return section
        return self.sections[-1]


def dance(y: np.ndarray, sr: int, fps: float, seed: int = 0, dataset: str | os.PathLike | None = None,
          heard: Heard | None = None) -> np.ndarray:
    """Poses [T, 17, 3] (metres, y up, global, floor at y = 0), one per feature frame of the
    song y [N] (mono at sr Hz) at `fps`: the synthetic dancer (size and choices from `seed`).
    `dataset` is not read: this dancer learns from no data. `heard`: listen(y, sr, fps), when
    already heard."""
    heard = heard if heard is not None else listen(y, sr, fps)
    song, clock = describe(y, sr, heard)
    return make_dance(song, seed, fps=fps, clock=clock).poses


def describe(y: np.ndarray, sr: int, heard: Heard) -> tuple[HeardSong, np.ndarray]:
    """(the song as kakashi.synth describes one, the steady clock [T] s of every frame)."""
    beat_s = 60.0 / heard.bpm
    clock = heard.beat_count * beat_s                                   # [T] s, steady clock
    # [T] phrase of each frame; the few frames before the first beat belong to phrase 0
    phrase = np.maximum(np.floor(heard.beat_count / PHRASE_BEATS), 0).astype(np.int64)
    n_phrases = int(phrase.max()) + 1
    # Per phrase: RMS loudness and mean timbre (MFCC, z-scored over the song).
    power = np.bincount(phrase, heard.loudness ** 2, n_phrases) / np.maximum(np.bincount(phrase, None, n_phrases), 1)
    rms = np.sqrt(power)                                                # [P]
    mfcc = features(y, sr, heard.fps, "mfcc", n_frames=heard.n_frames)   # [T, 20]
    mfcc = (mfcc - mfcc.mean(0)) / np.maximum(mfcc.std(0), 1e-6)
    timbre = np.stack([np.bincount(phrase, mfcc[:, d], n_phrases) for d in range(mfcc.shape[1])], 1)
    timbre /= np.maximum(np.bincount(phrase, None, n_phrases), 1)[:, None]   # [P, 20]
    starts = section_starts(rms, timbre)
    reference = max(float(np.percentile(rms, LOUD_PERCENTILE)), 1e-9)
    sections, seen_loud = [], False
    for i, s in enumerate(starts):
        e = starts[i + 1] if i + 1 < len(starts) else n_phrases
        loud = float(np.clip(np.sqrt(np.mean(rms[s:e] ** 2)) / reference, MIN_LOUDNESS, 1.0))
        name = "chorus" if loud >= CHORUS_ABOVE else "verse" if loud >= VERSE_ABOVE else (
            "break" if seen_loud else "intro")
        seen_loud |= name in ("verse", "chorus")
        t0, t1 = s * PHRASE_BEATS * beat_s, e * PHRASE_BEATS * beat_s
        sections.append(Section(name, float(t0), float(t1), round(loud, 3)))
    return HeardSong(style=style_for(heard.bpm), bpm=heard.bpm, sections=tuple(sections),
                     seconds=float(clock[-1]) + 1.0 / heard.fps), clock


def section_starts(rms: np.ndarray, timbre: np.ndarray) -> list[int]:
    """First phrases of the sections: 0 and every phrase whose loudness (rms [P]) or timbre
    ([P, D]) differs clearly from the phrase before."""
    if len(rms) < 2:
        return [0]
    step_db = np.abs(np.diff(20 * np.log10(np.maximum(rms, 1e-9))))      # [P-1]
    novelty = np.linalg.norm(np.diff(timbre, axis=0), axis=1)            # [P-1]
    mad = np.median(np.abs(novelty - np.median(novelty)))
    new = (step_db > SECTION_STEP_DB) | (novelty > np.median(novelty) + NOVELTY_MADS * max(mad, 1e-6))
    return [0] + [int(i) + 1 for i in np.flatnonzero(new)]


def style_for(bpm: float) -> str:
    """The synthetic style whose tempo range holds `bpm`, else the nearest (in log tempo)."""
    def distance(name: str) -> float:
        lo, hi = STYLES[name].bpm
        return max(np.log(lo / bpm), np.log(bpm / hi), 0.0)
    return min(sorted(STYLES), key=distance)
