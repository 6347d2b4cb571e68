"""Choreograph a song: any audio file + a checkpoint -> poses [T, 17, 3] at 24 fps, and the
`choreograph` command that writes them as video, BVH, npz and a contact sheet. The dancing
itself is kakashi.inference (windows, seams, normalisation).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import checkpoint
from .config import SHARED_DATA
from .fileio import atomic_path, write_npz
from .inference import Dancer, song_features
from .runs import default_checkpoint, default_choice
from .skeleton import FPS, put_on_floor

SHEET_EVERY_S = 8.0   # seconds between the poses of a contact sheet (--sheet)


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
        return put_on_floor(poses) if self.root_relative else poses

    def save_npz(self, path: str | os.PathLike) -> None:
        with atomic_path(path) as tmp:
            write_npz(tmp, poses=self.world(), fps=np.float64(self.fps), song=self.song,
                      checkpoint=self.checkpoint, root_relative=self.root_relative)


def example_song(preset: str | None = None) -> Path:
    """A song to try: a real one from ../shared/data/music when present, else a synthetic test song."""
    real = SHARED_DATA / "music" / "Kevin_MacLeod_-_Vibe_Ace.ogg"
    if real.is_file():
        return real
    from .clips import list_clips
    from .config import get_preset
    from .sources import preset_dataset

    return list_clips(preset_dataset(get_preset(preset)))[-1] / "audio.wav"


def choreograph(song: str | os.PathLike, checkpoint_path: str | os.PathLike | None = None,
                seed: int = 0, seed_pose: np.ndarray | None = None, device: str | None = None,
                guidance: float | None = None, face: float | None = None, dynamics: float | None = None,
                rest: float | None = None, accent_width: float | None = None) -> Dance:
    """Dance to a whole song with a trained checkpoint (default: default_checkpoint()) or a
    non-learned choreographer named in kakashi.choreographers.CHOREOGRAPHERS. A motion_vocab
    model's generation settings, the checkpoint's own by default: guidance, how far its codes
    follow the music (0 deaf to it, 1 as heard; a model trained with music_dropout), face,
    seconds over which its turns are pulled back to the front it started facing (0: not),
    dynamics, how far the song's loudness leans its moves, rest, beats after which a rest
    ends (kakashi.models.vocab; 0: not), and accent_width, seconds within which a motion beat
    spares its beat the accent (narrower: more motion beats on the beats, more jerk)."""
    song = Path(song)
    if not song.is_file():
        raise FileNotFoundError(f"{song}: song not found")
    from .choreographers import CHOREOGRAPHERS, dance_file

    if str(checkpoint_path) in CHOREOGRAPHERS:   # a non-learned choreographer's name, not a file
        poses = dance_file(str(checkpoint_path), song, FPS, seed=seed)
        return Dance(poses=poses, fps=FPS, root_relative=False, song=str(song), checkpoint=str(checkpoint_path))
    ckpt = Path(checkpoint_path) if checkpoint_path else default_checkpoint()
    if checkpoint_path is None and not ckpt.is_file():
        raise FileNotFoundError(f"no checkpoint given and the default model {ckpt} does not exist: "
                                "train it with `make run` (or pass -c CHECKPOINT)")
    state = checkpoint.read(ckpt)  # a bad checkpoint or a bad song fails before any model work
    state = with_generation(state, ckpt, guidance=guidance, face=face, dynamics=dynamics, rest=rest,
                            accent_width=accent_width)
    preset = checkpoint.preset_of(state)
    feats = song_features(song, preset.features, preset.fps)
    dancer = Dancer.load(ckpt, device, state=state)
    torch.manual_seed(seed)
    poses = dancer.dance(feats, seed_pose)
    return Dance(poses=poses, fps=preset.fps, root_relative=preset.root_relative,
                 song=str(song), checkpoint=str(ckpt))


def configure(parser) -> None:
    parser.add_argument("song", help="music file: wav, flac, ogg, mp3, m4a, webm or a video")
    parser.add_argument("-c", "--checkpoint", default=None,
                        help="trained model (default: motion_vocab, the checkpoint that comes with the package, "
                             "or runs/vocab_motion_vocab/best.pt once 05_analysis found it dancing real music "
                             "within the limits; it says which), or a non-learned choreographer: "
                             "procedural | retrieval")
    parser.add_argument("-o", "--output", default=None, help="video to write: .mp4 (with the song) or .gif")
    parser.add_argument("--bvh", default=None, help="also write the dance as BVH (for Blender and others)")
    parser.add_argument("--npz", default=None, help="also write poses [T, 17, 3] metres, y up, and fps")
    parser.add_argument("--sheet", default=None,
                        help=f"also write a contact sheet (.png): the whole dance, a pose every {SHEET_EVERY_S:g} s")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--size", type=int, default=480, help="video pixels per side (default 480)")
    parser.add_argument("--guidance", type=float, default=None, metavar="W",
                        help="a motion_vocab model trained with --music-dropout: how far its moves follow the "
                             "music, 0 deaf to it, 1 as heard (default: the checkpoint's)")
    parser.add_argument("--face", type=float, default=None, metavar="SECONDS",
                        help="a motion_vocab model: pull the heading its turns add up to back to the front it "
                             "started facing over this many seconds, 0 not at all (default: the checkpoint's)")
    parser.add_argument("--dynamics", type=float, default=None, metavar="W",
                        help="a motion_vocab model: how far the song's loudness leans its moves, calm in the quiet "
                             "passages and moving in the loud ones, 0 not at all (default: the checkpoint's)")
    parser.add_argument("--rest", type=float, default=None, metavar="BEATS",
                        help="a motion_vocab model in beat time: end any rest (a stretch where it barely moves) "
                             "after this many beats by leaving out its calmer codes until it moves again, "
                             "0 never (default: the checkpoint's)")
    parser.add_argument("--accent-width", type=float, default=None, metavar="SECONDS",
                        help="a motion_vocab model in beat time: a beat with no motion beat within about this "
                             "many seconds is accented (time slows through it); narrower puts more motion beats "
                             "on the beats and jerks more (default: the checkpoint's; the committed one's 0.02)")


def with_generation(state: dict, path: Path, guidance: float | None = None, face: float | None = None,
                    dynamics: float | None = None, rest: float | None = None,
                    accent_width: float | None = None) -> dict:
    """A checkpoint's contents whose motion_vocab model dances with the generation settings given
    (those not None; kakashi.models.vocab), checked."""
    settings = {k: float(v) for k, v in (("guidance", guidance), ("face", face), ("dynamics", dynamics),
                                         ("rest", rest), ("accent_width", accent_width)) if v is not None}
    model = state["model"]
    if settings and model.get("name") != "motion_vocab":
        raise ValueError(f"{path}: {', '.join('--' + k for k in settings)} needs a motion_vocab checkpoint")
    if "guidance" in settings and not model.get("music_dropout"):
        raise ValueError(f"{path}: --guidance needs a motion_vocab checkpoint trained with --music-dropout")
    if settings.get("rest") and not model.get("beat_steps"):
        raise ValueError(f"{path}: --rest needs a motion_vocab checkpoint in beat time")
    if "accent_width" in settings and not model.get("accent"):
        raise ValueError(f"{path}: --accent-width needs a motion_vocab checkpoint that accents beats (in beat time)")
    if not settings.get("accent_width", 1.0) > 0.0:
        raise ValueError(f"--accent-width must be > 0 s, got {accent_width:g}")
    for name, value in settings.items():
        if not value >= 0.0:
            raise ValueError(f"--{name} must be >= 0, got {value:g}")
    return {**state, "model": {**model, **settings}} if settings else state


SIZE_RANGE = (64, 2048)  # video pixels per side: a legible skeleton .. 12 MB per RGB frame in memory
VIDEO_SUFFIXES = (".mp4", ".gif")  # what kakashi.render.save_video writes


def run(args) -> int:
    from .arguments import check_input, check_outputs, check_range, check_seed
    from .fileio import output_set

    if not (args.output or args.bvh or args.npz or args.sheet):
        raise ValueError("nothing to write: give -o dance.mp4, --bvh dance.bvh, --npz dance.npz and/or "
                         "--sheet dance.png")
    check_range("--size", args.size, *SIZE_RANGE, "pixels")
    check_seed("--seed", args.seed)
    check_input("SONG", args.song, what="song")
    from .choreographers import CHOREOGRAPHERS

    named = args.checkpoint in CHOREOGRAPHERS   # a non-learned choreographer, not a file
    ckpt, why = (Path(args.checkpoint), "") if args.checkpoint else default_choice()
    if args.checkpoint is None and not ckpt.is_file():
        raise FileNotFoundError(f"no checkpoint given and the default model {ckpt} does not exist: "
                                "train it with `make run` (or pass -c CHECKPOINT)")
    if not named:
        check_input("-c", ckpt, what="checkpoint")
    settings = {"guidance": args.guidance, "face": args.face, "dynamics": args.dynamics, "rest": args.rest,
                "accent_width": args.accent_width}
    if any(v is not None for v in settings.values()):
        if named:
            raise ValueError(f"--guidance, --face, --dynamics, --rest and --accent-width: {args.checkpoint} "
                             "is not a trained model")
        with_generation(checkpoint.read(ckpt), ckpt, **settings)
    wanted = [("-o", args.output, VIDEO_SUFFIXES), ("--bvh", args.bvh, (".bvh",)), ("--npz", args.npz, (".npz",)),
              ("--sheet", args.sheet, (".png",))]
    outputs = check_outputs(wanted, inputs=[args.song] + ([] if named else [ckpt]))
    if args.checkpoint is None:
        print(f"using the default model {ckpt}: {why}")
    dance = choreograph(args.song, ckpt, seed=args.seed, **settings)
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
        if "--sheet" in tmp:
            from .plots import save_figure
            from .render import contact_sheet

            title = f"{Path(args.song).name}: a pose every {SHEET_EVERY_S:g} s"
            save_figure(contact_sheet(poses, dance.fps, SHEET_EVERY_S, title=title), tmp["--sheet"])
    written = ", ".join(p for p in (args.output, args.bvh, args.npz, args.sheet) if p)
    print(f"{len(poses)} frames ({len(poses) / dance.fps:.1f} s at {dance.fps:g} fps) -> {written}")
    return 0
