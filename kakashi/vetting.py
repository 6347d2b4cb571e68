"""May a retrained default model stand in for the committed one? The default rule's three limits
on real music (README, "The default checkpoint, chosen on the validation songs"): FID_g of its
real-song dances against the training dances (root-relative) at most FID_G_TIMES the test
songs' train-vs-test FID_g, its longest calm stretch (mean over those dances) at most
CALM_TIMES the training dances' own, and the longest calm stretch of any one of those dances at
most CALM_TIMES the training dances' SONG_CALM_PERCENTILE-th percentile (a mean over songs lets
one song stood through pass). Another CPU trains another draw of the same recipe, and not every
draw keeps to them.

05_analysis measures every dancer on the real songs (analysis.real_music_verdicts, limits:
analysis.real_music_limits) and `record`s the run's verdict beside it (VERDICT, tied to its
best.pt by checksum);
`runs.default_choice` dances with the run only when `read` finds a passing verdict for the
best.pt that is there.
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import pandas as pd

from .fileio import read_json, write_json

VERDICT = "real_music_verdict.json"
FID_G_TIMES = 2.0   # real-song FID at most 2x the synthetic test set's, the real-music target
CALM_TIMES = 1.5    # as the targets bound jerk and FID
SONG_CALM_PERCENTILE = 90   # of the training dances' longest calm stretches, bounding any one song's


@dataclass(frozen=True)
class Verdict:
    """A run's real-song FID_g, mean longest calm stretch (s) and longest calm stretch of any one
    song's dance (s), and their limits."""
    fid_g: float
    fid_g_limit: float
    longest_calm: float
    calm_limit: float
    song_calm: float
    song_calm_limit: float

    @property
    def passes(self) -> bool:
        return (self.fid_g <= self.fid_g_limit and self.longest_calm <= self.calm_limit
                and self.song_calm <= self.song_calm_limit)

    def __str__(self) -> str:
        return (f"real songs: FID_g {self.fid_g:.2f} (limit {self.fid_g_limit:.2f}), longest calm "
                f"{self.longest_calm:.2f} s (limit {self.calm_limit:.2f} s), on one song "
                f"{self.song_calm:.2f} s (limit {self.song_calm_limit:.2f} s): "
                f"{'within the limits' if self.passes else 'over a limit'}")


def judge(row, song_calm: float, fid_g_limit: float, calm_limit: float, song_calm_limit: float) -> Verdict:
    """The verdict on a run's row of analysis.real_music_table (its `fid_g` and `longest_calm`)
    and the longest calm stretch of any one of its dances, s."""
    return Verdict(float(row["fid_g"]), fid_g_limit, float(row["longest_calm"]), calm_limit,
                   float(song_calm), song_calm_limit)


def verdict_table(verdicts: dict[str, Verdict]) -> pd.DataFrame:
    """One row per name: each measure and limit of its verdict, and whether it passes."""
    return pd.DataFrame.from_dict({name: {**asdict(v), "passes": v.passes} for name, v in verdicts.items()},
                                  orient="index")


def record(run_dir: str | Path, verdict: Verdict, songs: list[Path]) -> Path:
    """Write the verdict beside the run's best.pt (atomically), with the checksum of that best.pt
    and the songs it was measured on."""
    run_dir = Path(run_dir)
    path = run_dir / VERDICT
    write_json(path, {**asdict(verdict), "passes": verdict.passes, "best_sha256": _sha256(run_dir / "best.pt"),
                      "songs": [Path(s).name for s in songs]})
    return path


def read(run_dir: str | Path) -> Verdict | None:
    """The run's recorded verdict, or None when there is none, it cannot be read, or it was
    measured on another best.pt than the one there now."""
    run_dir = Path(run_dir)
    saved = read_json(run_dir / VERDICT)
    try:
        if saved.get("best_sha256") != _sha256(run_dir / "best.pt"):
            return None
        return Verdict(*(float(saved[field.name]) for field in fields(Verdict)))
    except (OSError, KeyError, TypeError, ValueError):
        return None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
