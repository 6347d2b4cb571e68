"""The dancer's move vocabulary and the choice of a move per phrase from what can be heard.

A move is a function of the beat index b within its 8-beat phrase (float array, evaluated
a little before and after the phrase for blending) returning a Motion (dict of per-frame
parameters, see `neutral`) and the foot steps of the phrase. Accents sit on beats: every
oscillation has its extremes (zero speed) on whole beats and its fastest point between
beats; steps lift off and land on beats. Lengths are template metres (a 1.70 m dancer),
scaled by the dancer's size; angles in radians. Moves are written for the right side
leading; the dancer mirrors them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

PHRASE_BEATS = 8
STANCE = 0.12                     # half distance between the ankles when standing, m
HANDS_DOWN = (0.06, -0.50, 0.06)  # hand target: (outward, up, forward) from the shoulder, m

Motion = dict[str, np.ndarray]
"""sway [n, 2] root offset (left, forward) m; drop [n] hip lowering m; yaw, lower_fwd,
upper_fwd, side, twist, nod [n] rad; hand_l, hand_r [n, 3] (outward, up, forward) m."""


@dataclass(frozen=True)
class Step:
    """A foot (0 right, 1 left) leaving the floor at beat `lift`, landing at beat `land` on
    `to` = (left, forward) m in the stance frame turned by `yaw`; `height` m of lift; `kick`
    (forward, up) m added at mid-swing."""

    foot: int
    lift: float
    land: float
    to: tuple[float, float]
    height: float = 0.09
    yaw: float = 0.0
    kick: tuple[float, float] | None = None


def home(foot: int) -> tuple[float, float]:
    """Standing spot of a foot (0 right, 1 left) in the stance frame: (left, forward) m."""
    return (-STANCE if foot == 0 else STANCE, 0.0)


def neutral(n: int) -> Motion:
    """A still, upright dancer for n frames."""
    zeros = np.zeros(n)
    hands = np.tile(np.array(HANDS_DOWN), (n, 1))
    return {"sway": np.zeros((n, 2)), "drop": zeros.copy(), "yaw": zeros.copy(),
            "lower_fwd": zeros.copy(), "upper_fwd": zeros.copy(), "side": zeros.copy(),
            "twist": zeros.copy(), "nod": zeros.copy(), "hand_l": hands, "hand_r": hands.copy()}


def alt(b: np.ndarray) -> np.ndarray:
    """+1 on even beats, -1 on odd beats, still on every beat, fastest between beats."""
    return np.cos(np.pi * b)


def on_beat(b: np.ndarray) -> np.ndarray:
    """1 on each beat (still), 0 half-way between beats, where it rebounds at full speed."""
    return np.abs(np.cos(np.pi * b))


def _mix(a, c, w: np.ndarray) -> np.ndarray:
    """Per-frame interpolation between two hand targets [3] by w [n] in [0, 1] -> [n, 3]."""
    return np.asarray(a)[None] * (1 - w)[:, None] + np.asarray(c)[None] * w[:, None]


def idle_sway(b, amp):
    m, s = neutral(len(b)), alt(b)
    m["sway"][:, 0] = 0.035 * amp * s
    m["side"] = 0.05 * amp * s
    m["drop"] = 0.012 * amp * on_beat(b)
    m["nod"] = 0.06 * amp * on_beat(b)
    m["hand_l"][:, 2] += 0.05 * amp * s
    m["hand_r"][:, 2] -= 0.05 * amp * s
    return m, []


def bounce(b, amp):
    m, s = neutral(len(b)), alt(b)
    m["drop"] = 0.06 * amp * on_beat(b)
    m["nod"] = 0.12 * amp * on_beat(b)
    m["twist"] = 0.12 * amp * s
    m["sway"][:, 0] = 0.02 * amp * s
    m["hand_l"] = _mix((0.08, -0.30, 0.25), (0.05, -0.18, 0.30), 0.5 + 0.5 * s)
    m["hand_r"] = _mix((0.08, -0.30, 0.25), (0.05, -0.18, 0.30), 0.5 - 0.5 * s)
    return m, []


def step_touch(b, amp):
    m, s = neutral(len(b)), alt(b)
    d = 0.22 * amp
    steps = []
    for half, lead in ((0, 0), (4, 1)):                  # right then left
        sign = -1.0 if lead == 0 else 1.0
        follow = 1 - lead
        steps += [Step(lead, half, half + 1, (home(lead)[0] + sign * d, 0.0)),
                  Step(follow, half + 1, half + 2, (home(follow)[0] + sign * d, 0.0)),
                  Step(lead, half + 2, half + 3, home(lead)),
                  Step(follow, half + 3, half + 4, home(follow))]
    m["drop"] = 0.03 * amp * on_beat(b)
    m["side"] = 0.06 * amp * s
    open_ = 0.5 + 0.5 * s                                 # hands together on odd beats
    m["hand_l"] = _mix((-0.13, -0.12, 0.33), (0.22, -0.25, 0.2), open_)
    m["hand_r"] = m["hand_l"].copy()
    return m, steps


def arm_wave(b, amp):
    m, s = neutral(len(b)), alt(b)
    m["hand_l"] = np.stack([np.full(len(b), 0.45), 0.18 * amp * s, np.full(len(b), 0.1)], axis=1)
    m["hand_r"] = m["hand_l"] * np.array([1.0, -1.0, 1.0])
    m["side"] = 0.1 * amp * s
    m["sway"][:, 0] = 0.03 * amp * s
    m["drop"] = 0.015 * amp * on_beat(b)
    return m, []


def punch(b, amp):
    m, s = neutral(len(b)), alt(b)
    guard, out = (-0.12, 0.0, 0.26), (-0.10, 0.02, 0.28 + 0.24 * amp)
    m["hand_r"] = _mix(guard, out, 0.5 + 0.5 * s)        # right hand out on even beats
    m["hand_l"] = _mix(guard, out, 0.5 - 0.5 * s)
    m["twist"] = 0.3 * amp * s
    m["drop"] = 0.04 * amp * on_beat(b)
    m["lower_fwd"] += 0.08
    m["sway"][:, 1] = 0.02 * amp * on_beat(b)
    return m, []


def clap(b, amp):
    m, s = neutral(len(b)), alt(b)
    closed, open_ = (-0.14, -0.08, 0.34), (0.28, -0.05, 0.22)
    w = 0.5 + 0.5 * s                                     # clap on odd beats
    m["hand_l"] = _mix(closed, open_, w)
    m["hand_r"] = m["hand_l"].copy()
    m["drop"] = 0.035 * amp * on_beat(b)
    m["sway"][:, 0] = 0.03 * amp * s
    m["nod"] = 0.1 * amp * (1 - w)
    return m, []


def body_roll(b, amp):
    m, s = neutral(len(b)), alt(b)
    m["lower_fwd"] = -0.12 * amp * s
    m["upper_fwd"] = 0.3 * amp * s
    m["sway"][:, 1] = 0.06 * amp * s
    m["drop"] = 0.04 * amp * (0.5 - 0.5 * s)
    m["nod"] = -0.15 * amp * s
    m["hand_l"] = _mix((0.1, -0.45, 0.05), (0.12, -0.35, 0.2), 0.5 + 0.5 * s)
    m["hand_r"] = m["hand_l"].copy()
    return m, []


def turn(b, amp):
    """A full turn in four quarter turns, one per beat (a step each), then a held pose."""
    m = neutral(len(b))
    quarter = np.clip(b, 0, 4)
    k = np.floor(np.minimum(quarter, 3.999))
    frac = quarter - k
    ease = frac * frac * (3 - 2 * frac)
    m["yaw"] = 0.5 * np.pi * (k + ease)
    spread = np.clip(b, 0, 4) / 4
    m["hand_l"] = _mix((0.48, 0.0, 0.08), (0.25, 0.35, 0.25), spread * (1 - on_beat(b) * 0.3))
    m["hand_r"] = m["hand_l"].copy()
    m["drop"] = 0.03 * amp * on_beat(b)
    m["nod"] = 0.08 * amp * on_beat(b) * (b > 4)
    steps = [Step(i % 2, i, i + 1, home(i % 2), 0.07, yaw=0.5 * np.pi * (i + 1)) for i in range(4)]
    return m, steps


def squat(b, amp):
    m = neutral(len(b))
    wide = 0.1
    steps = [Step(0, 0, 1, (-STANCE - wide, 0.0)), Step(1, 1, 2, (STANCE + wide, 0.0)),
             Step(0, 6, 7, home(0)), Step(1, 7, 8, home(1))]
    x = np.clip(b, 2, 6) - 2
    down = 0.5 - 0.5 * np.cos(np.pi * x)                 # bottom on beats 3 and 5
    m["drop"] = (0.08 + 0.2 * amp) * down + 0.02 * on_beat(b)
    m["lower_fwd"] = 0.35 * down
    m["upper_fwd"] = -0.1 * down
    swing = 0.15 * amp * alt(b) * (1 - down)
    m["hand_l"] = _mix(HANDS_DOWN, (-0.03, -0.05, 0.48), down) + np.outer(swing, [0.0, 0.0, 1.0])
    m["hand_r"] = _mix(HANDS_DOWN, (-0.03, -0.05, 0.48), down) - np.outer(swing, [0.0, 0.0, 1.0])
    m["twist"] = 0.5 * swing
    return m, steps


def kick(b, amp):
    m, s = neutral(len(b)), alt(b)
    reach = (0.25 + 0.2 * amp, 0.2 + 0.2 * amp)         # extended on beats 1, 3, 5, 7
    steps = [Step(i % 2, 2 * i, 2 * i + 2, home(i % 2), 0.05, kick=reach) for i in range(4)]
    m["lower_fwd"] = -0.06 * amp * (0.5 - 0.5 * s)
    m["hand_l"] = _mix(HANDS_DOWN, (0.02, -0.2, 0.35), (0.5 - 0.5 * s) * (np.floor(b / 2) % 2 == 0))
    m["hand_r"] = _mix(HANDS_DOWN, (0.02, -0.2, 0.35), (0.5 - 0.5 * s) * (np.floor(b / 2) % 2 == 1))
    m["drop"] = 0.02 + 0.02 * amp * on_beat(b)
    return m, steps


def march(b, amp):
    m, s = neutral(len(b)), alt(b)
    steps = [Step(i % 2, i, i + 1, home(i % 2), 0.07 + 0.06 * amp) for i in range(PHRASE_BEATS)]
    m["hand_l"] = np.stack([np.full(len(b), 0.06), np.full(len(b), -0.44), 0.3 * amp * s], axis=1)
    m["hand_r"] = m["hand_l"] * np.array([1.0, 1.0, -1.0])
    m["drop"] = 0.03 * amp * on_beat(b)
    m["twist"] = 0.08 * amp * s
    return m, steps


def point(b, amp):
    m, s = neutral(len(b)), alt(b)
    up, across = (0.25, 0.42, 0.15), (-0.22, -0.38, 0.22)
    m["hand_r"] = _mix(across, up, 0.5 + 0.5 * s)       # up on even beats
    m["hand_l"] = np.tile(np.array([0.16, -0.32, -0.02]), (len(b), 1))  # hand on the hip
    m["sway"][:, 0] = 0.05 * amp * s
    m["side"] = -0.08 * amp * s
    m["drop"] = 0.02 * amp * on_beat(b)
    return m, []


@dataclass(frozen=True)
class Move:
    name: str
    energy: str                   # "low" | "mid" | "high"
    fn: Callable


MOVES: dict[str, Move] = {m.name: m for m in (
    Move("idle_sway", "low", idle_sway), Move("body_roll", "low", body_roll),
    Move("arm_wave", "low", arm_wave), Move("bounce", "mid", bounce),
    Move("step_touch", "mid", step_touch), Move("clap", "mid", clap),
    Move("march", "mid", march), Move("point", "mid", point),
    Move("punch", "high", punch), Move("turn", "high", turn),
    Move("squat", "high", squat), Move("kick", "high", kick),
)}
# What each kind of section calls for, and each style's favourite moves.
SECTION_ENERGY = {"intro": ("low", "mid"), "verse": ("mid",), "chorus": ("high",), "break": ("low",)}
STYLE_MOVES = {
    "hiphop": ("bounce", "body_roll", "punch", "squat", "step_touch"),
    "funk": ("body_roll", "point", "kick", "clap", "idle_sway"),
    "pop": ("arm_wave", "clap", "step_touch", "turn", "punch"),
    "house": ("arm_wave", "march", "step_touch", "turn", "kick"),
    "dnb": ("idle_sway", "march", "bounce", "punch", "kick"),
}
OFF_STYLE, OFF_ENERGY = 0.05, 0.02  # relative weights of a move outside the style / the energy


def choose_move(style: str, section: str, rng: np.random.Generator) -> str:
    """Draw a move for a phrase: mostly the style's moves of the energy the section calls for."""
    names = sorted(MOVES)
    weights = np.array([(1.0 if n in STYLE_MOVES[style] else OFF_STYLE)
                        * (1.0 if MOVES[n].energy in SECTION_ENERGY[section] else OFF_ENERGY)
                        for n in names])
    return names[int(rng.choice(len(names), p=weights / weights.sum()))]
