"""Presets (frozen dataclasses) and the repository's folders.

`paper` is exactly the paper's setting; `quick` trains one loss in about a minute on a 2-core CPU
(4.3 s an epoch), on windows that do not overlap, as the paper's; `smoke` runs in seconds (CI).
Override fields with `dataclasses.replace`.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("KAKASHI_DATA_DIR", REPO_ROOT / "data"))
RUNS_DIR = Path(os.environ.get("KAKASHI_RUNS_DIR", REPO_ROOT / "runs"))
FIGURES_DIR = Path(os.environ.get("KAKASHI_FIGURES_DIR", REPO_ROOT / "figures"))
SHARED_DATA = Path(os.environ.get("KAKASHI_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@dataclass(frozen=True)
class Preset:
    """Every setting of one run: data, model and training."""

    name: str
    # data
    dataset: str = "synth"            # folder under data/; the synthetic one is built when missing
    synth_songs: int = 60             # songs in the synthetic dataset
    synth_seconds: tuple[float, float] = (45.0, 75.0)  # song length range, seconds
    synth_seed: int = 0               # seed of the synthetic songs and dances (a run's `seed` does not
                                      # change them: another seed would rebuild data/<dataset> in place)
    synth_styles: tuple[str, ...] = ()  # styles the synthetic songs cycle through (kakashi.synth.music
                                      # ALL_STYLES); () = the embedded five, which every committed number
                                      # uses: give a widened set its own `dataset` name
    fps: float = 24.0                 # pose frames per second
    features: str = "mfcc"            # "mfcc" (20 dims, the paper) | "rich" (35) | "rhythm" (44)
    seq_len: int = 720                # frames per training window
    stride: int = 720                 # frames between window starts
    split: tuple[float, float, float] = (0.7, 0.2, 0.1)
    split_by: str = "clip"            # "clip" | "window" (the paper's leaky split)
    split_seed: int = 0               # seed of the split (a run's `seed` does not change it, so runs of
                                      # every seed are measured on the same held-out songs)
    augment: int = 0                  # augmented copies of each training clip (kakashi.augment); 0 = none
    centre_songs: bool = False        # generation moves each song's onset and MFCC mean to the training mean
    scale_songs: bool = False         # every song's onset and MFCC, in training as at generation, centred and
                                      # scaled to the training spread (kakashi.dataset.Normaliser.scaled)
    root_relative: bool = True        # the paper's setting: poses relative to the hip
    # model
    model: str = "seq2seq_lstm"
    hidden: int = 512
    layers: int = 2
    dropout: float = 0.5
    teacher_forcing: float = 0.5
    model_options: tuple[tuple[str, object], ...] = ()  # extra constructor arguments of the model
    # training
    loss: str = "mse"
    optimizer: str = "sgd"            # "sgd" (the paper's) | "adam"
    lr: float = 0.005
    momentum: float = 0.9
    clip_grad: float = 1.0
    epochs: int = 100
    batch_size: int = 5
    seed: int = 0
    ema: float = 0.0                  # decay of a moving average of the weights (kakashi.train); 0 = none
    polish: int = 0                   # epochs after `epochs` in which only the parts the model's polish() names
                                      # train on from the best checkpoint (kakashi.train); 0 = none
    select_by: str = "val_loss"       # best checkpoint: "val_loss" | "dance" (targets met on validation songs)
    threads: int = 0                  # torch CPU threads; 0 = torch's default


PRESETS: dict[str, Preset] = {
    "paper": Preset(name="paper"),
    "quick": Preset(name="quick", seq_len=96, stride=96, hidden=128, batch_size=16, epochs=12),
    "smoke": Preset(name="smoke", dataset="synth_smoke", synth_songs=6, synth_seconds=(8.0, 12.0),
                    seq_len=48, stride=24, hidden=16, batch_size=4, epochs=2),
    # the model that dances to unheard music (kakashi.models.mdn): `rhythm` features (the beat
    # phase), global poses (the dancer travels), Adam, the checkpoint whose validation dances meet
    # the most targets; draws with memory at generation, set down on the floor; ~19 min on a core
    "best": Preset(name="best", features="rhythm", root_relative=False, seq_len=96, stride=48,
                   model="mdn_lstm", hidden=128, layers=2, dropout=0.1, teacher_forcing=1.0,
                   model_options=(("mixtures", 5), ("temperature", 0.25), ("pose_noise", 0.03),
                                  ("noise_memory", 0.9), ("ground", True)),
                   optimizer="adam", lr=0.001, batch_size=16, epochs=30, select_by="dance", threads=1),
    # dancing from a vocabulary of motion (kakashi.models.vocab): a body of hinged joints on a rigid
    # skeleton, in beat time (16 grid points per beat), one code per half beat, a transformer over
    # them hearing 2 beats of music either side, with a copy head (each half's next code may be
    # the code of one move before, a learned choice), its codes drawn at temperature 1.05 two
    # beats at a time, each two primed with the four beats (8 codes) before them, and any
    # rest ended after 16 beats; 8 s windows;
    # every training song also heard once changed (kakashi.augment), and every training window's
    # onset, MFCC and chroma shifted and noisy (music_noise 0.5); at generation each song
    # centred on its own level and timbre (its onset and MFCC moved to the training mean); the
    # limbs' motion beats snapped onto the beats within 0.45 beats, beats left without one within
    # 0.02 s accented (time slows through them to 0.1 of its pace), then those within 0.2 beats
    # snapped again; the body smoothed over 0.8 frames; the dancer shifted over the foot on the
    # floor, and that foot held exactly still (IK of its leg); the heading its turns add up to
    # pulled back to the front it started facing over 1.5 s; after the 45 epochs, 30 more in which
    # only the codec's decoders train on, on the body as it travels and turns (polish: the codes
    # kept, the dances at the dancer's pace); 11-41 min on a core (8-33 s an epoch). Training seed
    # 3: of seeds 0-5, its run met the most targets on the validation songs of those that dance the
    # real songs within the default rule's limits, and polished it meets as many, nearer the
    # validation dances (README: face set so that it faces its front as often as the dancer;
    # accent_width and smooth so that its motion beats land on the beat at drum and bass tempi
    # without jerking more; context, of 4, 8, 16 and 24 codes, as it met the most targets on the
    # validation songs: each song's dance keeps more of its own moves); it is the committed checkpoint
    "vocab": Preset(name="vocab", features="rhythm", root_relative=False, seq_len=192, stride=96,
                    model="motion_vocab", hidden=128, layers=2, dropout=0.1, teacher_forcing=1.0,
                    model_options=(("segment", 8), ("beat_steps", 16), ("levels", (7, 5, 5, 5)),
                                   ("music_past", 32), ("music_future", 32), ("temperature", 1.05),
                                   ("top_k", 0), ("context", 8), ("ground", 1.0), ("snap", 0.45),
                                   ("accent", 0.9), ("accent_width", 0.02), ("resnap", 0.2), ("smooth", 0.8),
                                   ("plant", 0.01), ("hold", True), ("face", 1.5), ("music_noise", 0.5),
                                   ("copy", True), ("rest", 16.0)),
                    augment=1, centre_songs=True, optimizer="adam", lr=0.001, batch_size=16, epochs=45, threads=1,
                    seed=3, polish=30),
}


def default_preset_name() -> str:
    """The preset named by $KAKASHI_PRESET, or `quick`."""
    return os.environ.get("KAKASHI_PRESET", "quick") or "quick"


def get_preset(name: str | None = None, **overrides) -> Preset:
    """Preset by name (default: $KAKASHI_PRESET or `quick`) with fields replaced by `overrides`.

    Overrides whose value is None are ignored, so notebook parameters can default to None.
    """
    name = name or default_preset_name()
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    fields = {f.name for f in dataclasses.fields(Preset)}
    unknown = set(overrides) - fields
    if unknown:
        raise ValueError(f"unknown preset field(s) {sorted(unknown)}; valid: {sorted(fields)}")
    return dataclasses.replace(PRESETS[name], **{k: v for k, v in overrides.items() if v is not None})


def dataset_dir(name: str) -> Path:
    """Folder of a dataset: a name under data/, or a path as given."""
    path = Path(name)
    return path if (path.is_absolute() or len(path.parts) > 1) else DATA_DIR / name
