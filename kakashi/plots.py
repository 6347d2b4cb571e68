"""Static figures for the notebooks: loss curves, features against motion, dataset statistics."""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from .fileio import atomic_path
from .skeleton import bone_lengths, motion_energy

TRAIN_COLOUR, VAL_COLOUR = "tab:blue", "tab:orange"  # as the paper's figures 5-12
PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")  # librosa's chroma rows


def loss_curve(history: dict, ax=None, title: str | None = None):
    """Train (blue) and validation (orange) loss per epoch, like the paper's figures 5-12."""
    ax = ax or plt.subplots(figsize=(5, 3.2))[1]
    epochs = [e["epoch"] for e in history["epochs"]]
    ax.plot(epochs, [e["train_loss"] for e in history["epochs"]], color=TRAIN_COLOUR, label="train")
    ax.plot(epochs, [e["val_loss"] for e in history["epochs"]], color=VAL_COLOUR, label="validation")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    ax.set_ylabel("loss")
    ax.set_title(title or history.get("loss", ""))
    ax.legend(frameon=False)
    return ax


def loss_grid(histories: dict[str, dict], cols: int = 5):
    """One loss-curve panel per run (e.g. the ten losses) -> Figure."""
    rows = max(1, math.ceil(len(histories) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for ax, (name, history) in zip(axes.flat, histories.items()):
        loss_curve(history, ax=ax, title=name)
        ax.legend().set_visible(ax is axes.flat[0])
    for ax in axes.flat[len(histories):]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def save_figure(fig, path) -> None:
    """Save a figure atomically as PNG (110 dpi)."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")


def features_and_motion(y: np.ndarray, sr: int, rich: np.ndarray, poses: np.ndarray, fps: float,
                        beats: np.ndarray, seconds: float | None = None):
    """Waveform, MFCC, chroma (note names), onset strength with beats, and joint speed on one time axis.

    rich: [T, 35] features (kakashi.audio.RICH_COLUMNS layout); poses [T, 17, 3]; beats in seconds.
    """
    from .audio import N_MFCC, RICH_COLUMNS

    seconds = seconds or len(poses) / fps
    frames = int(seconds * fps)
    t = np.arange(frames) / fps
    fig, axes = plt.subplots(5, 1, figsize=(11, 9), sharex=True)
    wave = y[:int(seconds * sr)]
    axes[0].plot(np.arange(len(wave)) / sr, wave, lw=0.3, color="0.3")
    axes[0].set_ylabel("amplitude\n(full scale)")
    images = ((axes[1], "mfcc", "MFCC\ncoefficient", "MFCC value"),
              (axes[2], "chroma", "pitch class", "chroma energy"))
    for ax, name, label, bar in images:
        rows = rich[:frames, RICH_COLUMNS[name]].T  # [coefficients, frames]
        image = ax.imshow(rows, aspect="auto", origin="lower", extent=(0, frames / fps, 0, len(rows)),
                          cmap="magma", interpolation="nearest")
        ax.set_ylabel(label)
        colour_bar = fig.colorbar(image, cax=ax.inset_axes((1.01, 0.0, 0.012, 1.0)))
        colour_bar.set_label(bar, fontsize=8)
    axes[1].set_yticks(np.arange(0, N_MFCC, 5) + 0.5, range(0, N_MFCC, 5))  # coefficient numbers
    axes[2].set_yticks(np.arange(len(PITCH_CLASSES)) + 0.5, PITCH_CLASSES, fontsize=7)
    axes[3].plot(t, rich[:frames, RICH_COLUMNS["onset"]][:, 0], color="tab:purple")
    axes[3].set_ylabel("onset\nstrength")
    energy = motion_energy(poses[:frames + 1], fps)
    axes[4].plot(np.arange(len(energy)) / fps, energy, color="tab:green")
    axes[4].set_ylabel("mean joint\nspeed (m/s)")
    axes[4].set_xlabel("time (s)")
    for ax in axes[3:]:
        for b in beats[beats < seconds]:
            ax.axvline(b, color="tab:red", lw=0.6, alpha=0.5)
    fig.tight_layout()
    return fig


def dataset_statistics(rows: list[dict], poses: list[np.ndarray]):
    """Durations, tempi per style, and bone lengths over a dataset -> Figure."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.2))
    axes[0].hist([r["seconds"] for r in rows], bins=15, color="tab:blue")
    axes[0].set_xlabel("clip length (s)")
    styles = sorted({r["style"] or "?" for r in rows})
    for i, style in enumerate(styles):
        tempi = [r["tempo"] for r in rows if (r["style"] or "?") == style and r["tempo"]]
        axes[1].scatter([i] * len(tempi), tempi, alpha=0.6)
    axes[1].set_xticks(range(len(styles)), styles, rotation=30)
    axes[1].set_ylabel("tempo (bpm)")
    lengths = np.stack([bone_lengths(p).mean(0) for p in poses])  # [clips, bones]
    axes[2].boxplot(lengths, showfliers=False)
    axes[2].set_xlabel("bone")
    axes[2].set_ylabel("length (m)")
    fig.tight_layout()
    return fig


def song_overview(y: np.ndarray, sr: int, beats: np.ndarray, title: str = ""):
    """A song's waveform with its beat times (s) marked -> Figure."""
    fig, ax = plt.subplots(figsize=(11, 2.4))
    ax.plot(np.arange(len(y)) / sr, y, lw=0.3, color="0.3")
    for b in beats:
        ax.axvline(b, color="tab:red", lw=0.5, alpha=0.5)
    ax.set_xlabel("time (s)")
    ax.set_title(title or f"{len(beats)} beats, {60 / np.median(np.diff(beats)):.0f} bpm" if len(beats) > 1 else title)
    ax.set_yticks([])
    fig.tight_layout()
    return fig


def image_grid(paths: list, cols: int = 4, titles: list[str] | None = None):
    """PNG files side by side (e.g. the original system's loss curves) -> Figure."""
    rows = max(1, math.ceil(len(paths) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.7 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(paths):
            ax.imshow(plt.imread(paths[i]))
            ax.set_title(titles[i] if titles else str(paths[i]).rsplit("/", 1)[-1], fontsize=9)
    fig.tight_layout()
    return fig
