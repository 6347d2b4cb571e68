"""Choreograph a song: any audio file + a checkpoint -> poses [T, 17, 3] at 24 fps.

Long songs are generated window by window (the checkpoint's training window length), each
window seeded with the last pose of the one before, so memory stays bounded and the dance
is continuous at the seams. Generation is deterministic given `seed`.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import checkpoint
from .config import RUNS_DIR, SHARED_DATA, default_preset_name
from .fileio import atomic_path
from .skeleton import floor_to_zero

MIN_SONG_SECONDS = 1.0   # shorter audio is refused: too little to dance to
SILENCE_RMS = 1e-4       # RMS amplitude (full scale = 1) below which a song counts as silent
DEFAULT_LOSS = "mse"
BEST_PRESET = "best"     # its run, when trained, is the default model


@dataclass
class Dance:
    """A generated dance: poses [T, 17, 3] metres (model space), fps, and where it came from."""

    poses: np.ndarray
    fps: float
    root_relative: bool
    song: str
    checkpoint: str

    def world(self) -> np.ndarray:
        """Poses for display and export: fitted to a rigid skeleton (median bone lengths, as a
        BVH or a character rig moves; kakashi.export.fit_rig), root-relative dances lifted so
        the feet touch y = 0."""
        from .export import fit_rig

        poses = fit_rig(self.poses, self.fps)
        return floor_to_zero(poses) if self.root_relative else poses

    def save_npz(self, path: str | os.PathLike) -> None:
        with atomic_path(path) as tmp:
            np.savez(tmp, poses=self.world(), fps=np.float64(self.fps), song=self.song,
                     checkpoint=self.checkpoint, root_relative=self.root_relative)


def default_checkpoint(preset: str | None = None) -> Path:
    """The best model the README's main job trains: the `best` preset's run
    (runs/best_mdn_lstm_mse/best.pt) when it exists, else the paper's model trained with MSE
    (runs/<preset>_mse/best.pt)."""
    from .config import get_preset
    from .train import run_name_for

    best = RUNS_DIR / run_name_for(get_preset(BEST_PRESET)) / "best.pt"
    return best if best.is_file() else RUNS_DIR / f"{preset or default_preset_name()}_{DEFAULT_LOSS}" / "best.pt"


def example_song(preset: str | None = None) -> Path:
    """A song to try: a real one from ../shared/data/music when present, else a synthetic test song."""
    real = SHARED_DATA / "music" / "Kevin_MacLeod_-_Vibe_Ace.ogg"
    if real.is_file():
        return real
    from .clips import list_clips
    from .config import get_preset
    from .synth import ensure_dataset

    return list_clips(ensure_dataset(get_preset(preset)))[-1] / "audio.wav"


def song_features(path: str | os.PathLike, kind: str, fps: float) -> np.ndarray:
    """Load a song and compute its features [T, F]; ValueError when too short or silent.

    The last few songs' features are kept (keyed by path, size and modification time), so
    dancing one song with many checkpoints decodes it once.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: song not found")
    stat = path.stat()
    return _song_features(str(path), stat.st_size, stat.st_mtime_ns, kind, float(fps)).copy()


@functools.lru_cache(maxsize=8)
def _song_features(path: str, size: int, mtime_ns: int, kind: str, fps: float) -> np.ndarray:
    from .audio import SR, features, load_audio

    y = load_audio(path)
    seconds = len(y) / SR
    if seconds < MIN_SONG_SECONDS:
        raise ValueError(f"{path}: {seconds:.2f} s of audio is too short to dance to "
                         f"(at least {MIN_SONG_SECONDS} s)")
    if float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) < SILENCE_RMS:
        raise ValueError(f"{path}: the audio is silent: nothing to dance to")
    return features(y, SR, fps, kind=kind)


def generate_poses(model, feats: np.ndarray, first_pose: np.ndarray, window: int,
                   device: str = "cpu") -> np.ndarray:
    """Run the model over normalised features [T, F] in windows -> poses [T, 17, 3].

    Each window after the first starts `overlap_for(window)` frames before the end of what is
    written, from the pose written there, and is cross-faded into it over those frames, so the
    dance stays continuous where windows meet. Memory is bounded by one window.
    """
    out = np.empty((len(feats), *first_pose.shape), np.float32)
    overlap = overlap_for(window)
    seed = np.asarray(first_pose, np.float32)
    written = start = 0
    while written < len(feats):
        chunk = torch.as_tensor(feats[start:start + window], device=device)[:, None]  # [t, 1, F]
        pose = torch.as_tensor(seed, device=device)[None]                              # [1, 17, 3]
        poses = model.generate(chunk, pose)[:, 0].cpu().numpy()                        # [t, 17, 3]
        shared = written - start
        fade = (np.arange(1, shared + 1) / (shared + 1))[:, None, None]                # 0 -> 1
        out[start:written] = (1 - fade) * out[start:written] + fade * poses[:shared]
        out[written:start + len(poses)] = poses[shared:]
        written = start + len(poses)
        start = max(written - overlap, 0)
        seed = out[start]
    return out


def overlap_for(window: int) -> int:
    """Frames shared by consecutive generation windows: a quarter window, at most 1 s at 24 fps."""
    return max(1, min(window // 4, 24))


def choreograph(song: str | os.PathLike, checkpoint_path: str | os.PathLike | None = None,
                seed: int = 0, seed_pose: np.ndarray | None = None, device: str | None = None) -> Dance:
    """Dance to a whole song with a trained checkpoint (default: default_checkpoint())."""
    song = Path(song)
    if not song.is_file():
        raise FileNotFoundError(f"{song}: song not found")
    ckpt = Path(checkpoint_path) if checkpoint_path else default_checkpoint()
    if checkpoint_path is None and not ckpt.is_file():
        raise FileNotFoundError(f"no checkpoint given and the default model {ckpt} does not exist: "
                                "train it with `make run` (or pass -c CHECKPOINT)")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    state = checkpoint.read(ckpt)  # a bad checkpoint or a bad song fails before any model work
    preset = checkpoint.preset_of(state)
    feats = song_features(song, preset.features, preset.fps)
    model, state = checkpoint.load_model(ckpt, device=device, state=state)
    if feats.shape[1] != model.config["in_dim"]:
        raise ValueError(f"{ckpt}: model expects {model.config['in_dim']} features, "
                         f"{preset.features!r} gives {feats.shape[1]}")
    feats = ((feats - state["norm_mean"].numpy()) / state["norm_std"].numpy()).astype(np.float32)
    first = state["seed_pose"].numpy() if seed_pose is None else np.asarray(seed_pose, np.float32)
    torch.manual_seed(seed)
    poses = generate_poses(model, feats, first, window=max(preset.seq_len, 2), device=device)
    return Dance(poses=poses, fps=preset.fps, root_relative=preset.root_relative,
                 song=str(song), checkpoint=str(ckpt))


def configure(parser) -> None:
    parser.add_argument("song", help="music file: wav, flac, ogg, mp3, m4a, webm or a video")
    parser.add_argument("-c", "--checkpoint", default=None,
                        help="trained model (default: runs/best_mdn_lstm_mse/best.pt, else "
                             "runs/<$KAKASHI_PRESET or quick>_mse/best.pt; the README's main job trains both)")
    parser.add_argument("-o", "--output", default=None, help="video to write: .mp4 (with the song) or .gif")
    parser.add_argument("--bvh", default=None, help="also write the dance as BVH (for Blender and others)")
    parser.add_argument("--npz", default=None, help="also write poses [T, 17, 3] metres, y up, and fps")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--size", type=int, default=480, help="video pixels per side (default 480)")


SIZE_RANGE = (64, 2048)  # video pixels per side: a legible skeleton .. 12 MB per RGB frame in memory
VIDEO_SUFFIXES = (".mp4", ".gif")  # what kakashi.render.save_video writes


def run(args) -> int:
    from .arguments import check_input, check_outputs, check_range, check_seed
    from .fileio import output_set

    if not (args.output or args.bvh or args.npz):
        raise ValueError("nothing to write: give -o dance.mp4, --bvh dance.bvh and/or --npz dance.npz")
    check_range("--size", args.size, *SIZE_RANGE, "pixels")
    check_seed("--seed", args.seed)
    check_input("SONG", args.song, what="song")
    ckpt = Path(args.checkpoint) if args.checkpoint else default_checkpoint()
    if args.checkpoint is None and not ckpt.is_file():
        raise FileNotFoundError(f"no checkpoint given and the default model {ckpt} does not exist: "
                                "train it with `make run` (or pass -c CHECKPOINT)")
    check_input("-c", ckpt, what="checkpoint")
    wanted = [("-o", args.output, VIDEO_SUFFIXES), ("--bvh", args.bvh, (".bvh",)), ("--npz", args.npz, (".npz",))]
    outputs = check_outputs(wanted, inputs=[args.song, ckpt])
    if args.checkpoint is None:
        print(f"using the default model {ckpt}")
    dance = choreograph(args.song, ckpt, seed=args.seed)
    poses = dance.world()
    flags = [flag for flag, path, _ in wanted if path]
    with output_set(outputs) as temps:  # every output appears together, or none
        tmp = dict(zip(flags, temps))
        if "--npz" in tmp:
            dance.save_npz(tmp["--npz"])
        if "--bvh" in tmp:
            from .export import write_bvh

            write_bvh(tmp["--bvh"], poses, dance.fps)
        if "-o" in tmp:
            from .render import save_video

            gif = tmp["-o"].suffix == ".gif"
            save_video({Path(args.song).stem: poses}, dance.fps, tmp["-o"], size=args.size,
                       audio=None if gif else args.song)
    written = ", ".join(p for p in (args.output, args.bvh, args.npz) if p)
    print(f"{len(poses)} frames ({len(poses) / dance.fps:.1f} s at {dance.fps:g} fps) -> {written}")
    return 0
