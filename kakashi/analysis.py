"""Compare trained runs: their dances on the test songs and on real music, beside baselines.

Dances are compared in the space the model works in (root-relative for the paper's model;
the ground truth is put in the same space) and scored by kakashi.scoring. Baselines: the
ground truth itself, the training set's mean pose held still, a ground-truth dance of another
song, and the mean pose with 2 cm Gaussian noise per frame.
"""
from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import vetting
from .choreographers import dance_file
from .config import Preset
from .dataset import ClipData, Splits, pose_space
from .inference import Dancer, dance_clips, song_features
from .metrics import GEOMETRIC_NAMES, calm_loudness, dance_set, evaluate_dances, fid_terms, longest_calm, normalise
from .parallel import map_items
from .runs import read_config
from .scoring import (GROUND_TRUTH, TRAIN_TRUTH, WINDOW_S, draws_to_match, metric_table, song_beats, tracked_beats,
                      windows)
from .skeleton import FPS

NOISE_M = 0.02


def baselines(splits: Splits, clips: list[ClipData], seed: int = 0) -> dict[str, list[np.ndarray]]:
    """Ground truth, the still mean pose, another song's dance, and noise, one dance per clip."""
    rng = np.random.default_rng(seed)
    others = [c.poses for c in splits.clips["train"]]
    mean = np.concatenate(others).mean(0)                                  # [17, 3]
    out = {"ground truth": [c.poses for c in clips],
           "mean pose": [np.repeat(mean[None], len(c.poses), 0) for c in clips],
           "other song": [], "noise": []}
    for c in clips:
        other = others[rng.integers(len(others))]
        reps = int(np.ceil(len(c.poses) / len(other)))
        out["other song"].append(np.concatenate([other] * reps)[:len(c.poses)])
        out["noise"].append(mean[None] + rng.normal(0, NOISE_M, (len(c.poses), 17, 3)).astype(np.float32))
    return out


def runs_table(runs: dict[str, Path], test: list[ClipData], train: list[ClipData], fps: float,
               seconds: float = WINDOW_S, root_relative: bool = False, seed: int = 0,
               choreographers: tuple[str, ...] = (), dataset: str | Path | None = None,
               dances: dict[str, list[np.ndarray]] | None = None, workers: int = 1) -> pd.DataFrame:
    """Metric table of runs (and non-learned choreographers, retrieving from `dataset`'s
    training split) dancing to the test songs, beside the ground truth of the test songs
    (GROUND_TRUTH) and of the train songs (TRAIN_TRUTH, the FID scale). Global space by default
    (the dancer's travel kept, so PFC and foot skating mean something), or root-relative, where
    the paper's model and the travelling ones compare.

    Each dancer that samples dances every test song `matched_draws` times, so its FID and the
    train-vs-test FID that sets the limit are measured on as many windows. `dances`: their
    dances already danced so (`test_dances` with those draws, in the table's space). workers: as
    `metric_table`'s and `test_dances`'."""
    beats = song_beats(test)
    truth = lambda clips: [pose_space(c.clip.poses, root_relative) for c in clips]
    rows = {GROUND_TRUTH: (truth(test), beats), TRAIN_TRUTH: (truth(train), song_beats(train))}
    if dances is None:
        dances = test_dances(runs, test, root_relative, seed, choreographers, dataset, matched_draws(test, train),
                             workers)
    rows.update({name: (d, per_draw(beats, d)) for name, d in dances.items()})
    return metric_table(rows, rows[GROUND_TRUTH][0], beats, fps, seconds, train_poses=rows[TRAIN_TRUTH][0],
                        workers=workers)


def matched_draws(test: list[ClipData], train: list[ClipData]) -> int:
    """Dances per test song that make a sampling dancer's dances as long as the train songs'
    (scoring.draws_to_match)."""
    return draws_to_match(sum(len(c.poses) for c in test), sum(len(c.poses) for c in train))


def matched_song_draws(songs: list[Path], train: list[ClipData]) -> int:
    """Dances per song that make a sampling dancer's dances to `songs` (their length read from
    the decoded audio) as long as the train songs' (scoring.draws_to_match), as `matched_draws`
    does for the test songs: their FIDs then come from as many windows."""
    from .audio import SR, load_audio

    frames = sum(round(len(load_audio(s)) / SR * FPS) for s in songs)
    return draws_to_match(frames, sum(len(c.poses) for c in train))


def test_dances(runs: dict[str, Path], clips: list[ClipData], root_relative: bool = False, seed: int = 0,
                choreographers: tuple[str, ...] = (), dataset: str | Path | None = None,
                draws: int = 1, workers: int = 1) -> dict[str, list[np.ndarray]]:
    """Each run's dances to the clips' songs from their first true pose, and each choreographer's
    (trimmed to the clips' frames), in the runs' pose space or root-relative: {name: dances}.

    draws > 1: each dancer dances the clips `draws` times (a run all its draws of a song at once,
    torch seeded with `seed`; a choreographer with seeds seed, seed + 1, ...), the dances one draw
    after the other, each in clip order; a dancer whose second draw repeats its first (it does
    not sample) keeps one. workers: dancers dancing at once, each in a process of its own."""
    return _each_dancer(_clip_dances, runs, choreographers, (clips, root_relative, seed, dataset, draws), workers)


def _clip_dances(name: str, run: Path | None, clips: list[ClipData], root_relative: bool, seed: int,
                 dataset: str | Path | None, draws: int) -> list[np.ndarray]:
    """One dancer's draws of the clips' songs (`test_dances`)."""
    if run is not None:
        return _once_unless_sampled(dance_clips(Dancer.load(Path(run) / "best.pt"), clips, root_relative, seed, draws),
                                    len(clips))
    per_clip = [dance_file(name, c.clip.audio_path, c.clip.fps, seed, dataset, draws) for c in clips]
    return _once_unless_sampled([pose_space(clip[k][:len(c.poses)], root_relative)
                                 for k in range(draws) for clip, c in zip(per_clip, clips)], len(clips))


def _each_dancer(fn, runs: dict[str, Path], choreographers: tuple[str, ...], args: tuple,
                 workers: int) -> dict[str, list[np.ndarray]]:
    """{name: fn(name, run or None, *args)} for every run and choreographer, `workers` at once
    (first those that draw many dances: all but the paper's model, which dances once)."""
    names = [*runs, *choreographers]
    items = [(fn, name, runs.get(name), *args) for name in names]
    sizes = [name not in runs or read_config(runs[name]).get("model") != Preset.model for name in names]
    context = multiprocessing.get_context("spawn") if torch.cuda.is_initialized() else None  # CUDA cannot be forked
    return dict(zip(names, map_items(_in_one_thread, items, workers, progress=False, mp_context=context, sizes=sizes)))


def _in_one_thread(fn, *args):
    """fn(*args) with torch on one thread, as a worker process beside another on its own core."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn(*args)
    finally:
        torch.set_num_threads(threads)


def per_draw(beats: list[np.ndarray], dances: list[np.ndarray]) -> list[np.ndarray]:
    """The songs' beat times, once for each draw of `dances` (draws one after the other)."""
    return beats * (len(dances) // len(beats))


def _once_unless_sampled(dances: list[np.ndarray], n: int) -> list[np.ndarray]:
    """Draws of n dances each, one after the other; only the first when the second repeats it."""
    same = len(dances) > n and all(np.array_equal(a, b) for a, b in zip(dances[:n], dances[n:2 * n]))
    return dances[:n] if same else dances


def song_dances(runs: dict[str, Path], songs: list[Path], seed: int = 0, choreographers: tuple[str, ...] = (),
                dataset: str | Path | None = None, draws: int = 1, workers: int = 1) -> dict[str, list[np.ndarray]]:
    """Each run's and each choreographer's dances [T, 17, 3] to whole songs, as `choreograph`
    dances them (torch seeded with `seed` before each song): {name: dances}. With draws > 1,
    as `test_dances`: every song danced `draws` times, one draw after the other. workers:
    dancers dancing at once, each in a process of its own."""
    return _each_dancer(_song_dances, runs, choreographers, (songs, seed, dataset, draws), workers)


def _song_dances(name: str, run: Path | None, songs: list[Path], seed: int, dataset: str | Path | None,
                 draws: int) -> list[np.ndarray]:
    """One dancer's draws of whole songs (`song_dances`)."""
    if run is None:
        per_song = [dance_file(name, s, FPS, seed, dataset, draws) for s in songs]
    else:
        dancer, per_song = Dancer.load(Path(run) / "best.pt"), []  # the checkpoint read once for every song
        for s in songs:
            feats = song_features(s, dancer.preset.features, dancer.preset.fps)
            torch.manual_seed(seed)
            per_song.append(dancer.dance(feats, draws=draws))
    return _once_unless_sampled([song[k] for k in range(draws) for song in per_song], len(songs))


def late_fid(dancer: Dancer, songs: list[Path], train: list[ClipData], after_s: float = 60.0, draws: int = 4,
             seed: int = 0, fresh: bool = False, seconds: float = WINDOW_S) -> float:
    """Does a long dance keep listening? FID_g against the training dances (global space) of the
    `seconds` windows after `after_s` of each whole-song dance to `songs` (those lasting at least
    `after_s` + 30 s; `draws` each, torch seeded with `seed`), or with `fresh`, of the same music
    from `after_s` on danced from its start (the seed pose). A dancer whose moves settle with time
    dances the late windows further from the training dances than fresh ones."""
    fps = dancer.preset.fps
    frame = int(round(after_s * fps))
    dances, beats = [], []
    for s in songs:
        feats = song_features(s, dancer.preset.features, fps)
        if len(feats) < frame + 30 * fps:
            continue
        torch.manual_seed(seed)
        danced = dancer.dance(feats[frame:] if fresh else feats, draws=draws)
        dances += [d if fresh else d[frame:] for d in danced]
        b = tracked_beats(s) - after_s
        beats += [b[b >= 0]] * draws
    if not dances:
        raise ValueError(f"no song lasts {after_s + 30:.0f} s or more")
    reference = windows([c.clip.poses for c in train], song_beats(train), fps, seconds)[0]
    return evaluate_dances(windows(dances, beats, fps, seconds)[0], fps, reference=reference,
                           metrics=("fid_g",))["fid_g"]


def real_music_table(real: dict[str, list[np.ndarray]], songs: list[Path], synthetic: dict[str, list[np.ndarray]],
                     test: list[ClipData], train: list[ClipData], fps: float, seconds: float = WINDOW_S,
                     root_relative: bool = False, label: str = "real", workers: int = 1) -> pd.DataFrame:
    """Dances to songs without a ground truth (`real`: {name: dances to `songs`}) beside the same
    dancers' dances to the synthetic test songs (`synthetic`: {name: dances to `test`}), every
    row measured against the training ground truth: FID and pose distance to the training
    dances, BAS against the songs' beats (tracked for real songs), plausible share and drift.
    Rows are "<name> · <label>" and "<name> · test"; every dance root-relative when asked. A
    dancer may have danced every song several times (the draws one after the other, `song_dances`).
    workers: as `metric_table`'s."""
    space = lambda dances: [pose_space(d, root_relative) for d in dances]
    real_beats = [tracked_beats(s) for s in songs]
    rows = {f"{name} · {label}": (space(dances), per_draw(real_beats, dances)) for name, dances in real.items()}
    rows.update({f"{name} · test": (space(dances), per_draw(song_beats(test), dances)) for name, dances in synthetic.items()})
    truth = space([c.clip.poses for c in train])
    return metric_table(rows, truth, song_beats(train), fps, seconds, train_poses=truth, workers=workers)


def real_music_limits(test: list[ClipData], train: list[ClipData], fps: float,
                      seconds: float = WINDOW_S) -> tuple[float, float, float]:
    """The default rule's limits on a run's real-song dances (kakashi.vetting): FID_g at most
    vetting.FID_G_TIMES the training dances' against the test songs' ground truth; a mean
    longest calm stretch (s) at most vetting.CALM_TIMES the training dances' own; and any one
    dance's longest calm stretch (s) at most vetting.CALM_TIMES the training dances'
    vetting.SONG_CALM_PERCENTILE-th percentile; all root-relative as `real_music_table` measures
    the real songs."""
    truth = lambda clips: [pose_space(c.clip.poses, True) for c in clips]
    reference, _ = windows(truth(test), song_beats(test), fps, seconds)
    cut, _ = windows(truth(train), song_beats(train), fps, seconds)
    fid = evaluate_dances(cut, fps, reference=reference, metrics=("fid_g",), progress=False)["fid_g"]
    calm = [longest_calm(d, fps) for d in truth(train)]
    return (vetting.FID_G_TIMES * float(fid), vetting.CALM_TIMES * float(np.mean(calm)),
            vetting.CALM_TIMES * float(np.percentile(calm, vetting.SONG_CALM_PERCENTILE)))


def real_music_verdicts(table: pd.DataFrame, real: dict[str, list[np.ndarray]], test: list[ClipData],
                        train: list[ClipData], fps: float, seconds: float = WINDOW_S) -> dict[str, vetting.Verdict]:
    """The default rule's verdict (kakashi.vetting) on each dancer's dances [T, 17, 3] to the
    real songs ({name: dances}, as `song_dances` returns them), from their rows of `table`
    (`real_music_table`, root-relative, label "real": FID_g and the mean longest calm) and the
    dances themselves (the longest calm stretch of any one)."""
    limits = real_music_limits(test, train, fps, seconds)
    song_calm = lambda dances: max(longest_calm(pose_space(d, True), fps) for d in dances)
    return {name: vetting.judge(table.loc[f"{name} · real"], song_calm(dances), *limits) for name, dances in real.items()}


def relation_shift(sets: dict[str, tuple[list[np.ndarray], list[np.ndarray]]], train: list[ClipData], fps: float,
                   seconds: float = WINDOW_S, root_relative: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What sets dances apart from the training dances in FID_g's own terms. `sets`: {name:
    (dances [T, 17, 3], their songs' beat times, s)}, each cut into `seconds` windows as FID_g
    cuts them. Returns (terms, relations): per name FID_g and its mean and covariance terms
    (kakashi.metrics.fid_terms); and per geometric relation (kakashi.metrics.GEOMETRIC_NAMES) the
    share of the training dances' frames where it holds and, per name, the gap of the dances'
    share from it in training standard deviations (the mean term is the sum of their squares),
    largest gap of any name first."""
    space = lambda ds: [pose_space(d, root_relative) for d in ds]
    truth = dance_set(windows(space([c.clip.poses for c in train]), song_beats(train), fps, seconds)[0], fps).geometric
    centre, terms, gaps = normalise(truth, truth).mean(0), {}, {}
    for name, (dances, beats) in sets.items():
        own = dance_set(windows(space(dances), beats, fps, seconds)[0], fps).geometric
        mean_term, covariance_term = fid_terms(own, truth)
        terms[name] = {"fid_g": mean_term + covariance_term, "mean_term": mean_term, "covariance_term": covariance_term}
        gaps[name] = normalise(own, truth).mean(0) - centre
    relations = pd.DataFrame({"train share": truth.mean(0), **gaps}, index=pd.Index(GEOMETRIC_NAMES, name="relation"))
    largest = np.abs(relations[list(gaps)].to_numpy()).max(1) if gaps else np.zeros(len(relations))
    return pd.DataFrame(terms).T, relations.iloc[np.argsort(-largest, kind="stable")]


def codec_dances(dancer: Dancer, clips: list[ClipData]) -> list[np.ndarray]:
    """Each clip's true dance [T, 17, 3] (the dancer's pose space) through a motion_vocab's codes
    and back: encoded on its song's beat grid, decoded and read at the frames, without the
    finishing of a danced song (snap, accent, plant, hold, face). What its vocabulary can dance:
    beside the dancer's own dances, it tells what its codes lose from what its transformer
    loses."""
    model, out = _vocab(dancer, "codec_dances"), []
    for feats, truth in _songs_and_truths(dancer, clips):
        with torch.no_grad():
            out.append(model(feats, truth[0], truth, teacher_forcing=1.0).poses[:, 0].cpu().numpy())
    return out


def move_repeats(dancer: Dancer, clips: list[ClipData], lags: tuple[float, ...] = (1, 2, 4, 8),
                 seed: int = 0) -> pd.DataFrame:
    """How often a motion_vocab dances a move again: the share of its codes (both halves) equal
    to the code `lag` beats before, in the true dances' codes (`MotionVocab.true_codes`) and in
    the codes it draws to the same songs from their first true pose (`drawn_codes`, torch seeded
    with `seed`), pooled over the clips. Rows "ground truth" and "drawn", a column per lag
    (beats). The synthetic dancer holds a move for an 8-beat phrase; a model that changes its
    move every beat or two repeats less, and its windows vary less (Div_g)."""
    model = _vocab(dancer, "move_repeats")
    if not model.beat_steps:
        raise ValueError(f"{dancer.path}: move_repeats needs a motion_vocab in beat time")
    per_beat = model.beat_steps / model.segment                     # codes per beat
    torch.manual_seed(seed)
    codes: dict[str, list[np.ndarray]] = {"ground truth": [], "drawn": []}
    for feats, truth in _songs_and_truths(dancer, clips):
        for name, (lower, upper) in (("ground truth", model.true_codes(feats, truth)),
                                     ("drawn", model.drawn_codes(feats, truth[0]))):
            codes[name].append((lower[:, 0] * model.quant.size + upper[:, 0]).cpu().numpy())
    shares = {name: {lag: repeat_share(seqs, round(lag * per_beat)) for lag in lags} for name, seqs in codes.items()}
    return pd.DataFrame(shares).T.rename_axis(columns="lag, beats")


def repeat_share(sequences: list[np.ndarray], lag: int) -> float:
    """The share of the items of the sequences [K_i] (pooled) equal to the item `lag` before."""
    same = [np.asarray(s)[lag:] == np.asarray(s)[:-lag] for s in sequences if len(s) > lag] if lag >= 1 else []
    if not same:
        raise ValueError(f"lag must be >= 1 and shorter than a sequence, got {lag}")
    return float(np.concatenate(same).mean())


def _vocab(dancer: Dancer, what: str):
    """The dancer's model, a motion_vocab, or ValueError naming `what` and the checkpoint."""
    if dancer.model.config.get("name") != "motion_vocab":
        raise ValueError(f"{dancer.path}: {what} needs a motion_vocab checkpoint")
    return dancer.model


def _songs_and_truths(dancer: Dancer, clips: list[ClipData]):
    """Each clip's normalised features [T, 1, F] and true dance [T, 1, 17, 3] (the dancer's pose
    space, float32, on its device), cut to the shorter of the two."""
    from .clips import clip_features

    for c in clips:
        feats = dancer.normalise(clip_features(c.clip.path, dancer.preset.features))
        truth = pose_space(c.clip.poses, dancer.preset.root_relative).astype(np.float32)
        T = min(len(feats), len(truth))
        yield (torch.from_numpy(feats[:T])[:, None].to(dancer.device),
               torch.from_numpy(truth[:T])[:, None].to(dancer.device))


def real_songs(folder: str | Path) -> list[Path]:
    """The songs of a folder of music (.ogg/.mp3/.wav/.flac), one encoding per song (no .hq copies)."""
    songs = [p for p in sorted(Path(folder).iterdir())
             if p.suffix.lower() in (".ogg", ".mp3", ".wav", ".flac") and ".hq." not in p.name]
    if not songs:
        raise FileNotFoundError(f"{folder}: no music files")
    return songs


def ground_truth_values(clips: list[ClipData]) -> pd.Series:
    """Per-dance metrics (kakashi.metrics.dance_metrics) of the clips' ground-truth dances with
    their songs' beats, means over the clips: what a dance of the dataset scores."""
    from .metrics import dance_metrics

    values = [dance_metrics(c.clip.poses, c.clip.fps, b) for c, b in zip(clips, song_beats(clips))]
    return pd.DataFrame(values).mean()


def calm_loudness_table(dances: dict[str, list[np.ndarray]], loudness: list[np.ndarray], fps: float) -> pd.DataFrame:
    """Where in the music each dancer is calm: {name: dances [T, 17, 3] of the songs whose
    loudness [T] is given, draws one after the other} -> rows of `calm_loudness`, the mean
    loudness rank within its song of every calm frame step of every dance (0.5: pauses that do
    not follow the music; lower: pauses in its quiet passages; kakashi.metrics.calm_loudness),
    and `calm_share` over all of them."""
    rows = {}
    for name, ds in dances.items():
        levels = per_draw(loudness, ds)
        pairs = [calm_loudness(d, fps, level) for d, level in zip(ds, levels)]
        calm, steps = sum(n for _, n in pairs), sum(min(len(d), len(level)) - 1 for d, level in zip(ds, levels))
        rows[name] = {"calm_loudness": sum(r * n for r, n in pairs if n) / calm if calm else np.nan,
                      "calm_share": calm / steps}
    return pd.DataFrame(rows).T


def minute_table(dances: dict[str, np.ndarray], fps: float, check: str = "plausible") -> pd.DataFrame:
    """One row per named dance [T, 17, 3], one column per minute: the share of its frames that
    pass an anatomy check (kakashi.metrics.anatomy: "plausible" = every check)."""
    from .metrics import anatomy

    rows = {name: anatomy.anatomy_per_minute(d, fps)[check] for name, d in dances.items()}
    width = max(len(v) for v in rows.values())
    return pd.DataFrame({name: np.pad(v, (0, width - len(v)), constant_values=np.nan) for name, v in rows.items()},
                        index=[f"minute {k + 1}" for k in range(width)]).T


def medley(songs: list[Path], out: Path, seconds: float = 540.0) -> Path:
    """A long song made of `songs` one after another (cut at `seconds`), written to `out` (wav):
    music a model has never heard, long enough to show drift."""
    import soundfile as sf

    from .audio import SR, load_audio
    from .fileio import atomic_path

    y = np.concatenate([load_audio(s) for s in songs])[:int(seconds * SR)]
    with atomic_path(out) as tmp:
        sf.write(tmp, y, SR, subtype="PCM_16", format="WAV")
    return out
