"""Bookkeeping of training runs: where a run lives, which runs finished, their histories.

A run folder `runs/<run_name>/` holds config.json (the preset), history.json (per epoch, and
the run's status), best.pt, last.pt and metrics.json (kakashi.train writes them).
"""
from __future__ import annotations

from pathlib import Path

from . import vetting
from .arguments import check_name
from .config import RUNS_DIR, Preset, default_preset_name, get_preset
from .fileio import read_json
from .models import run_name

DEFAULT_PRESET = "vocab"  # the model that meets the most targets (notebooks/05_analysis): choreograph's default
PRETRAINED = Path(__file__).resolve().parent / "pretrained" / "vocab.pt"  # its checkpoint, as `make run` trains it
DEFAULT_LOSS = "mse"     # the paper's model trained with this loss is the last fallback


def run_dir_for(preset: Preset, run: str | None = None, runs_dir: str | Path | None = None) -> Path:
    """Folder of a run: runs_dir (default RUNS_DIR) / `run` (default models.run_name(preset)).
    ValueError when `run` is not a plain folder name (it would write outside runs_dir)."""
    name, parent = run or run_name(preset), Path(runs_dir if runs_dir is not None else RUNS_DIR)
    check_name("run name", name, parent)
    return parent / name


def is_complete(run_dir: str | Path) -> bool:
    """True when a run finished all its epochs and kept a best checkpoint."""
    history = read_history(Path(run_dir))
    return history.get("status") == "completed" and (Path(run_dir) / "best.pt").is_file()


def read_history(run_dir: Path) -> dict:
    """A run's history.json ({} when missing or unreadable)."""
    return read_json(Path(run_dir) / "history.json")


def read_config(run_dir: str | Path) -> dict:
    """A run's config.json, its preset ({} when missing or unreadable)."""
    return read_json(Path(run_dir) / "config.json")


def completed_runs(preset: str, runs_dir: str | Path | None = None) -> dict[str, Path]:
    """Run folders of a preset that finished training, keyed by run name, in the paper's order
    of experiments (kakashi.losses.LOSSES), then by name."""
    from .losses import LOSSES

    order = {loss: i for i, loss in enumerate(LOSSES)}
    found = []
    for history_path in Path(runs_dir if runs_dir is not None else RUNS_DIR).glob("*/history.json"):
        run_dir = history_path.parent
        history = read_history(run_dir)
        if read_config(run_dir).get("name") == preset and is_complete(run_dir):
            found.append((order.get(history.get("loss", ""), len(order)), str(run_dir), run_dir))
    return {run_dir.name: run_dir for _, _, run_dir in sorted(found)}


def histories(runs: dict[str, Path]) -> dict[str, dict]:
    """history.json of each run, keyed by its loss (or run name when two share a loss)."""
    out = {}
    for name, run_dir in runs.items():
        history = read_history(run_dir)
        out[history["loss"] if history["loss"] not in out else name] = history
    return out


def default_checkpoint(preset: str | None = None, runs_dir: str | Path | None = None) -> Path:
    """The model `choreograph` uses when given none (`default_choice`)."""
    return default_choice(preset, runs_dir)[0]


def default_choice(preset: str | None = None, runs_dir: str | Path | None = None) -> tuple[Path, str]:
    """(checkpoint, why): the DEFAULT_PRESET's run trained here (`make run` trains it) when 05
    found it within the real-music limits the committed checkpoint was chosen within
    (kakashi.vetting), else that committed checkpoint (PRETRAINED, so a new user dances before
    any training), else the run unvetted, else the paper's model trained with MSE
    (runs/<preset>_mse/best.pt)."""
    trained = run_dir_for(get_preset(DEFAULT_PRESET), runs_dir=runs_dir) / "best.pt"
    if not trained.is_file():
        if PRETRAINED.is_file():
            return PRETRAINED, "the committed checkpoint"
        paper = get_preset(preset or default_preset_name(), loss=DEFAULT_LOSS, model="seq2seq_lstm")
        return run_dir_for(paper, runs_dir=runs_dir) / "best.pt", "the paper's model"
    verdict = vetting.read(trained.parent)
    if verdict is not None and verdict.passes:
        return trained, f"trained here; {verdict}"
    why = str(verdict) if verdict else "05_analysis has not measured it on real music"
    if not PRETRAINED.is_file():
        return trained, f"trained here, no committed checkpoint beside it ({why})"
    return PRETRAINED, f"the committed checkpoint, not {trained} ({why}; -c {trained} dances with it)"
