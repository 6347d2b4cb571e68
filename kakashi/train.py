"""Train one model with one loss: SGD (or Adam), gradient clipping, best/last checkpoints, resume.

A run folder `runs/<run_name>/` holds `config.json` (the preset), `history.json` (per epoch:
train and validation loss, seconds; the run's status), `best.pt` (lowest validation loss),
`last.pt` (model, optimiser and RNG state after the last finished epoch) and `metrics.json`.
With `ema` > 0 the weights kept, validated and danced are an exponential moving average of the
trained weights, updated after every step (the trained ones then only live on in `last.pt`).
The best checkpoint is the one of lowest validation loss or, with `select_by="dance"`, the one
whose dances meet the most targets, as judged by a callable the caller gives
(kakashi.selection.DanceJudge; kakashi.experiment wires it).
With `polish` > 0, that many epochs follow in which only the parts the model's `polish()` names
train on from the best checkpoint, under the objective it sets (motion_vocab: its decoders, on
the body as it travels and turns); the polished epoch that validates best is the best checkpoint.
Re-running the same run resumes after its last finished epoch and ends with the same weights
as an uninterrupted run on the CPU. Validation uses teacher forcing 0 (as generation does).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from typing import Callable

from . import checkpoint
from .config import Preset
from .dataset import Splits, make_loader
from .fileio import write_json
from .losses import get_loss
from .models import MODELS, build_model


class TrainingDiverged(RuntimeError):
    """The loss or the gradient became NaN or inf; the best checkpoint is kept."""


def distributed_context() -> tuple[int, int]:
    """(rank, world size) under torchrun (process group started once: NCCL on GPUs, gloo on CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank() if world > 1 else 0), world


def device_for(rank: int = 0) -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", rank % torch.cuda.device_count())
    return torch.device("cpu")


def _all_sum(*values: float) -> list[float]:
    """Sum scalars over the processes of a distributed run (identity otherwise)."""
    if not dist.is_initialized():
        return list(values)
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t)
    return t.tolist()


def build_for(preset: Preset, feature_dim: int) -> torch.nn.Module:
    """The preset's model sized for `feature_dim` audio features (plus preset.model_options)."""
    return build_model(preset.model, in_dim=feature_dim, hidden=preset.hidden,
                       layers=preset.layers, dropout=preset.dropout, **dict(preset.model_options))


def train_step(model, net, optimiser, audio, poses, loss_fn, teacher_forcing: float, clip_grad: float,
               agree: Callable[[bool], bool] = bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One optimisation step on a batch (audio [T, B, F], poses [T, B, 17, 3]): forward through
    `net` (the model, or its DistributedDataParallel wrapper) with teacher forcing, the model's
    objective, backward, gradient-norm clipping, step. Returns (loss, gradient norm); the norm
    is None when the loss is not finite (`agree(finite)`: whether every process's loss is), and
    nothing is stepped then or when the norm is not finite."""
    loss = model.objective(net(audio, poses[0], target=poses, teacher_forcing=teacher_forcing), poses, loss_fn)
    optimiser.zero_grad(set_to_none=True)
    if not agree(bool(torch.isfinite(loss))):
        return loss, None
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
    if torch.isfinite(norm):
        optimiser.step()
    return loss, norm


def evaluate_loss(model, loader, loss_fn, device) -> float:
    """Mean loss over a loader with teacher forcing 0 (eval mode, no gradients)."""
    model.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for audio, poses in loader:
            audio, poses = audio.to(device), poses.to(device)
            out = model(audio, poses[0], target=poses, teacher_forcing=0.0)
            total += float(model.objective(out, poses, loss_fn)) * poses.shape[1]
            n += poses.shape[1]
    return total / max(n, 1)


def _check_config(run_dir: Path, preset: Preset) -> None:
    path = run_dir / "config.json"
    if path.is_file():
        diff = checkpoint.config_mismatch(json.loads(path.read_text()), dataclasses.asdict(preset))
        if diff:
            raise ValueError(f"{run_dir}: holds a run with other settings ({'; '.join(diff)}); "
                             "choose another run name or start over with resume=False")


def train(preset: Preset, run_dir: str | Path, splits: Splits, resume: bool = True, progress: bool = True,
          judge: Callable[[torch.nn.Module, str], dict] | None = None) -> dict:
    """Train `preset.model` with `preset.loss` on `splits`; returns the history dict (also in
    history.json). judge(model, device) -> {"met", "miss", "values"}: how well the model dances,
    after each epoch; required with select_by="dance" (kakashi.selection.DanceJudge).

    Under torchrun (WORLD_SIZE > 1) the model is wrapped in DistributedDataParallel, each
    process trains on its share of every epoch's windows, and process 0 writes the run folder.
    Raises TrainingDiverged (after saving the history) when a loss or gradient is not finite.
    """
    run_dir = Path(run_dir)
    rank, world = distributed_context()
    writer = rank == 0
    loss_fn = get_loss(preset.loss)
    if preset.select_by not in ("val_loss", "dance"):
        raise ValueError(f"unknown select_by {preset.select_by!r}; choose val_loss or dance")
    if preset.select_by == "dance" and judge is None:
        raise ValueError('select_by="dance" needs a judge of dances (kakashi.selection.DanceJudge)')
    if preset.threads > 0:
        torch.set_num_threads(preset.threads)
    device = device_for(rank)
    last = run_dir / "last.pt"
    if writer:
        run_dir.mkdir(parents=True, exist_ok=True)
        if not resume:
            for name in ("last.pt", "best.pt", "history.json", "config.json", "metrics.json"):
                (run_dir / name).unlink(missing_ok=True)
        _check_config(run_dir, preset)
        write_json(run_dir / "config.json", dataclasses.asdict(preset))
    if world > 1:
        dist.barrier()

    torch.manual_seed(preset.seed)
    model = build_for(preset, splits.feature_dim).to(device)
    check_polish(preset)
    average = weight_average(model, preset.ema)
    kept = average.module if average else model
    history = {"status": "running", "loss": preset.loss, "model": preset.model, "world_size": world,
               "epochs": [], "best_epoch": None, "best_val_loss": None}
    start = 0
    state = checkpoint.read(last) if resume and last.is_file() else None
    if state:
        history = json.loads(state["history"])
        start = len(history["epochs"])
    optimiser = make_optimiser(preset, model.polish() if start > preset.epochs else model.parameters())
    if state:
        model.load_state_dict(state["trained"] if average else state["state_dict"])
        optimiser.load_state_dict(state["optimizer"])
        if average:     # the average's weights are the checkpoint's own; its step count beside them
            average.module.load_state_dict(state["state_dict"])
            average.n_averaged.fill_(state["averaged_steps"])
        torch.set_rng_state(state["rng"])
    wrap = lambda m: torch.nn.parallel.DistributedDataParallel(m) if world > 1 else m
    net = wrap(model)
    val_loader = make_loader(splits, "val", preset, shuffle=False)
    save = lambda path, **extra: checkpoint.save(path, kept, preset, splits.normaliser, splits.seed_pose,
                                                 fps=preset.fps, **extra)

    epochs = preset.epochs + preset.polish
    bar = tqdm(range(start, epochs), desc=f"{preset.loss}", disable=not (progress and writer),
               initial=start, total=epochs)
    for epoch in bar:
        polishing = epoch >= preset.epochs
        if epoch == preset.epochs:   # the main epochs done: polish their best
            if world > 1:
                dist.barrier()
            model.load_state_dict(checkpoint.read(run_dir / "best.pt")["state_dict"])
            optimiser = make_optimiser(preset, model.polish())
            net = wrap(model)
        t0 = time.perf_counter()
        net.train()
        loader = make_loader(splits, "train", preset, shuffle=True, seed=preset.seed * 100_003 + epoch,
                             rank=rank, world=world)
        total, n = 0.0, 0
        for batch, (audio, poses) in enumerate(loader):
            audio, poses = audio.to(device), poses.to(device)
            bad = [name for name, x in (("audio features", audio), ("target poses", poses))
                   if not torch.isfinite(x).all()]
            if _all_sum(float(bool(bad)))[0]:  # every process stops together
                _diverged(run_dir, history, writer, f"{preset.loss}: the {' and '.join(bad) or 'data'} of a "
                                                    f"training batch hold NaN or inf at epoch {epoch + 1}, "
                                                    f"batch {batch + 1}")
            loss, norm = train_step(model, net, optimiser, audio, poses, loss_fn, preset.teacher_forcing,
                                    preset.clip_grad, agree=lambda ok: _all_sum(float(ok))[0] == world)
            finite = norm is not None           # every process stops together
            if not (finite and torch.isfinite(norm)):
                what = "gradient norm" if finite else "loss"
                value = float(norm) if finite else loss.item()
                _diverged(run_dir, history, writer, f"{preset.loss}: {what} became {value} "
                                                    f"at epoch {epoch + 1}, batch {batch + 1}")
            if average:
                average.update_parameters(model)
            total += loss.item() * poses.shape[1]
            n += poses.shape[1]
        total, n = _all_sum(total, n)
        train_loss = total / max(n, 1)
        val_loss = evaluate_loss(kept, val_loader, loss_fn, device)
        if not math.isfinite(val_loss):
            _diverged(run_dir, history, writer, f"{preset.loss}: validation loss became {val_loss} at epoch {epoch + 1}")
        entry = {"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val_loss}
        if polishing:
            entry["polish"] = True
        if preset.select_by == "dance":
            entry["dance"] = judge(kept, str(device))
        entry["seconds"] = round(time.perf_counter() - t0, 3)
        history["epochs"].append(entry)
        improved = (history["best_epoch"] is None or epoch == preset.epochs   # a polished one replaces the best
                    or _better(entry, history["epochs"][history["best_epoch"] - 1], preset.select_by))
        if improved:
            history["best_val_loss"], history["best_epoch"] = val_loss, epoch + 1
        if writer:
            if improved:
                save(run_dir / "best.pt", epoch=epoch + 1, val_loss=val_loss)
            save(last, epoch=epoch + 1, optimizer=optimiser.state_dict(), rng=torch.get_rng_state(),
                 history=json.dumps(history),
                 **({"trained": model.state_dict(), "averaged_steps": int(average.n_averaged)} if average else {}))
            write_json(run_dir / "history.json", history)
        bar.set_postfix(train=f"{train_loss:.4g}", val=f"{val_loss:.4g}")

    history["status"] = "completed"
    if writer:
        write_json(run_dir / "history.json", history)
        test_loss = evaluate_loss(checkpoint.load_model(run_dir / "best.pt", device=str(device))[0],
                                  make_loader(splits, "test", preset, shuffle=False), loss_fn, device)
        write_json(run_dir / "metrics.json", {"loss": preset.loss, "best_epoch": history["best_epoch"],
                                              "best_val_loss": history["best_val_loss"], "test_loss": test_loss,
                                              "train_seconds": sum(e["seconds"] for e in history["epochs"])})
    return history


def check_polish(preset: Preset) -> None:
    """ValueError unless the preset's `polish` epochs can run: a whole number >= 0, a model that
    can be polished (its class has `polish()`), and no moving average of weights."""
    if not (isinstance(preset.polish, int) and preset.polish >= 0):
        raise ValueError(f"polish must be a whole number of epochs >= 0, got {preset.polish!r}")
    if preset.polish and not hasattr(MODELS.get(preset.model), "polish"):
        raise ValueError(f"polish ({preset.polish} epochs): model {preset.model!r} has no parts to polish "
                         "(motion_vocab has); --polish 0 trains without")
    if preset.polish and preset.ema:
        raise ValueError(f"polish ({preset.polish} epochs) trains the best checkpoint's own weights, not a "
                         "moving average: --ema 0 or --polish 0")


def _better(entry: dict, best: dict, select_by: str) -> bool:
    """Whether an epoch's checkpoint beats the best so far: lower validation loss, or (select_by
    "dance") more dance targets met on the validation songs, then a smaller summed miss."""
    if select_by == "dance":
        return (entry["dance"]["met"], -entry["dance"]["miss"]) > (best["dance"]["met"], -best["dance"]["miss"])
    return entry["val_loss"] < best["val_loss"]


def _diverged(run_dir: Path, history: dict, writer: bool, message: str):
    history["status"] = "diverged"
    history["message"] = message
    if writer:
        write_json(run_dir / "history.json", history)
    kept = "best checkpoint kept" if (run_dir / "best.pt").is_file() else "no checkpoint yet"
    raise TrainingDiverged(f"{message}; training stopped ({kept} in {run_dir})")


def weight_average(model: torch.nn.Module, decay: float) -> AveragedModel | None:
    """An exponential moving average of `model`'s parameters (weight `1 - decay` for the newest
    after each step), or None when decay is 0. Buffers are copied once, not averaged: the
    models' buffers are constants."""
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"ema must be in [0, 1): {decay}")
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay)) if decay else None


def make_optimiser(preset: Preset, params) -> torch.optim.Optimizer:
    """The preset's optimiser: `sgd` (the paper's: lr, momentum) or `adam` (lr; betas 0.9, 0.999),
    updating all parameters in one multi-tensor call (also on CPU: a vocab step 4 % faster)."""
    if preset.optimizer == "sgd":
        return torch.optim.SGD(params, lr=preset.lr, momentum=preset.momentum, foreach=True)
    if preset.optimizer == "adam":
        return torch.optim.Adam(params, lr=preset.lr, foreach=True)
    raise ValueError(f"unknown optimizer {preset.optimizer!r}; choose sgd or adam")
