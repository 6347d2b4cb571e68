"""Training loop: outputs, resume, NaN guard, determinism, checkpoints."""
import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from kakashi import checkpoint, losses
from kakashi.config import get_preset
from kakashi.dataset import load_splits
from kakashi.selection import DanceJudge
from kakashi.train import TrainingDiverged, train

from helpers import make_clips

PRESET = get_preset("smoke", seq_len=24, stride=12, hidden=16, batch_size=3, epochs=3, loss="mse")


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    root = make_clips(tmp_path_factory.mktemp("ds"))
    return load_splits(root, PRESET)


def weights(path):
    return checkpoint.read(path)["state_dict"]


def test_run_folder_contents(splits, tmp_path):
    history = train(PRESET, tmp_path / "run", splits=splits, progress=False)
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"config.json", "history.json", "best.pt", "last.pt", "metrics.json"} <= files
    saved = json.loads((tmp_path / "run" / "history.json").read_text())
    assert saved == history and history["status"] == "completed" and len(history["epochs"]) == 3
    for e in history["epochs"]:
        assert e["train_loss"] > 0 and e["val_loss"] > 0 and e["seconds"] > 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["best_val_loss"] == min(e["val_loss"] for e in history["epochs"])
    assert metrics["test_loss"] > 0
    state = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    assert state["preset"]["loss"] == "mse" and state["model"]["name"] == "seq2seq_lstm"
    assert state["seed_pose"].shape == (17, 3) and state["norm_mean"].shape == (20,)


def test_resume_ends_with_the_same_weights(splits, tmp_path):
    train(PRESET, tmp_path / "full", splits=splits, progress=False)
    train(replace(PRESET, epochs=1), tmp_path / "cut",
          splits=splits, progress=False)
    history = train(PRESET, tmp_path / "cut", splits=splits, progress=False)  # resumes at epoch 2
    assert len(history["epochs"]) == 3
    full, cut = weights(tmp_path / "full" / "last.pt"), weights(tmp_path / "cut" / "last.pt")
    assert all(torch.equal(full[k], cut[k]) for k in full)
    assert json.loads((tmp_path / "full" / "history.json").read_text())["epochs"][2]["val_loss"] == \
        history["epochs"][2]["val_loss"]


def test_same_seed_same_history(splits, tmp_path):
    a = train(PRESET, tmp_path / "a", splits=splits, progress=False)
    b = train(PRESET, tmp_path / "b", splits=splits, progress=False)
    assert [e["train_loss"] for e in a["epochs"]] == [e["train_loss"] for e in b["epochs"]]


def test_nan_stops_with_message_and_keeps_best(splits, tmp_path, monkeypatch):
    calls = {"n": 0}
    per_epoch = -(-len(splits.windows["train"]) // PRESET.batch_size)  # training batches

    def poisoned(output, target):
        loss = torch.nn.functional.mse_loss(output, target)
        if not output.requires_grad:  # validation
            return loss
        calls["n"] += 1
        return loss * float("nan") if calls["n"] > per_epoch + 1 else loss

    monkeypatch.setitem(losses.LOSSES, "poisoned", poisoned)
    preset = replace(PRESET, loss="poisoned")
    with pytest.raises(TrainingDiverged, match=r"loss became nan at epoch 2, batch \d+.*best checkpoint kept"):
        train(preset, tmp_path / "nan", splits=splits, progress=False)
    history = json.loads((tmp_path / "nan" / "history.json").read_text())
    assert history["status"] == "diverged" and "epoch 2" in history["message"]
    assert checkpoint.read(tmp_path / "nan" / "best.pt")["epoch"] == 1


def test_resume_refuses_other_settings(splits, tmp_path):
    train(PRESET, tmp_path / "r", splits=splits, progress=False)
    other = replace(PRESET, hidden=32)
    with pytest.raises(ValueError, match="hidden: 16 on disk vs 32 asked"):
        train(other, tmp_path / "r", splits=splits, progress=False)


def test_checkpoint_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        checkpoint.read(tmp_path / "missing.pt")
    bad = tmp_path / "trunc.pt"
    torch.save({"format": 1, "model": {}, "x": torch.zeros(1000)}, bad)
    bad.write_bytes(bad.read_bytes()[:300])
    with pytest.raises(ValueError, match="trunc.pt: not a readable Kakashi checkpoint"):
        checkpoint.read(bad)
    other = tmp_path / "other.pt"
    torch.save({"weight": torch.zeros(3)}, other)  # a plain state dict from elsewhere
    with pytest.raises(ValueError, match="other.pt: not a Kakashi checkpoint"):
        checkpoint.read(other)


def test_weight_average_is_what_is_kept_validated_and_resumed(splits, tmp_path, monkeypatch):
    from kakashi import train as training
    from kakashi.train import evaluate_loss
    from kakashi.dataset import make_loader

    seen, step = [], training.train_step

    def recording(model, *args, **kw):
        out = step(model, *args, **kw)
        seen.append([p.detach().clone() for p in model.parameters()])
        return out

    monkeypatch.setattr(training, "train_step", recording)
    averaged = replace(PRESET, ema=0.7)
    history = train(averaged, tmp_path / "full", splits=splits, progress=False)
    expected = seen[0]                  # the average starts at the first step's weights
    for now in seen[1:]:
        expected = [0.7 * e + 0.3 * w for e, w in zip(expected, now)]
    last = checkpoint.read(tmp_path / "full" / "last.pt")
    model, _ = checkpoint.load_model(tmp_path / "full" / "last.pt")
    assert all(torch.allclose(p, e, atol=1e-6) for p, e in zip(model.parameters(), expected))
    assert all(torch.equal(p, w) for p, w in zip(last["trained"].values(), seen[-1]))
    assert not all(torch.allclose(p, w) for p, w in zip(model.parameters(), seen[-1]))
    val = evaluate_loss(model, make_loader(splits, "val", averaged, shuffle=False), losses.get_loss("mse"), "cpu")
    assert history["epochs"][-1]["val_loss"] == pytest.approx(val, rel=1e-6)    # validated: the average

    train(replace(averaged, epochs=1), tmp_path / "cut", splits=splits, progress=False)
    train(averaged, tmp_path / "cut", splits=splits, progress=False)                 # resumes at epoch 2
    cut = checkpoint.read(tmp_path / "cut" / "last.pt")
    for key in ("state_dict", "trained"):
        assert all(torch.equal(last[key][k], cut[key][k]) for k in last[key])
    with pytest.raises(ValueError, match=r"ema must be in \[0, 1\): 1.0"):
        train(replace(PRESET, ema=1.0), tmp_path / "bad", splits=splits, progress=False)


def test_adam_and_sgd_optimisers():
    from kakashi.train import make_optimiser

    params = [torch.nn.Parameter(torch.zeros(2))]
    assert isinstance(make_optimiser(PRESET, params), torch.optim.SGD)
    adam = make_optimiser(replace(PRESET, optimizer="adam", lr=0.01), params)
    assert isinstance(adam, torch.optim.Adam) and adam.defaults["lr"] == 0.01
    with pytest.raises(ValueError, match="unknown optimizer 'lbfgs'"):
        make_optimiser(replace(PRESET, optimizer="lbfgs"), params)


def test_a_run_from_before_a_new_preset_field_still_resumes():
    from dataclasses import asdict

    saved = asdict(PRESET)
    del saved["optimizer"], saved["select_by"]          # written before these fields existed
    assert checkpoint.config_mismatch(saved, asdict(PRESET)) == []
    assert checkpoint.config_mismatch(saved, asdict(replace(PRESET, optimizer="adam"))) == \
        ["optimizer: 'sgd' on disk vs 'adam' asked"]


@pytest.mark.slow  # about 11 s of CPU: three trainings with a dance check per epoch
def test_select_by_dance_keeps_the_epoch_that_dances_best(tmp_path):
    splits = load_splits(make_clips(tmp_path / "ds", n=10, seconds=(9.0, 11.0)), PRESET)
    judge = DanceJudge(splits, PRESET.fps, PRESET.seq_len, PRESET.seed)
    history = train(replace(PRESET, select_by="dance"), tmp_path / "run", splits=splits, progress=False, judge=judge)
    checks = [e["dance"] for e in history["epochs"]]
    assert all({"met", "miss", "values"} <= set(c) and 0 <= c["met"] <= 10 for c in checks)
    assert all(np.isfinite(c["values"]["fid_k"]) and np.isfinite(c["miss"]) for c in checks)
    best = max(range(3), key=lambda i: (checks[i]["met"], -checks[i]["miss"]))
    assert history["best_epoch"] == best + 1
    assert checkpoint.read(tmp_path / "run" / "best.pt")["epoch"] == best + 1
    again = train(replace(PRESET, select_by="dance"), tmp_path / "again", splits=splits, progress=False, judge=judge)
    assert json.dumps([e["dance"] for e in again["epochs"]]) == json.dumps(checks)  # seeded sampling
    assert [e["train_loss"] for e in again["epochs"]] == \
        [e["train_loss"] for e in train(PRESET, tmp_path / "plain", splits=splits, progress=False)["epochs"]]


def test_train_command_hears_songs_scaled_when_asked(monkeypatch, tmp_path):
    """`kakashi train --scale-songs` trains the preset with Preset.scale_songs; without it, the preset's own."""
    from kakashi import cli, experiment

    seen = []
    monkeypatch.setattr(experiment, "train_run", lambda preset, *a, **k: (
        seen.append(preset), ({"best_val_loss": 1.0, "best_epoch": 1}, tmp_path))[1])
    assert cli.main(["train", "--preset", "smoke", "--scale-songs", "--run-name", "scaled"]) == 0
    assert cli.main(["train", "--preset", "smoke", "--run-name", "plain"]) == 0
    assert [p.scale_songs for p in seen] == [True, False]


def test_train_command_trains_a_guidable_vocabulary_when_asked(monkeypatch, tmp_path, capsys):
    """`--music-dropout`, `--music-noise`, `--guidance`, `--copy` and `--turns` join the preset's model
    options (the others kept), `--polish` sets its polished epochs; a bad value, or any of them for
    a model without it (polish with a moving average of weights too), is one line and exit 1 before
    training."""
    from kakashi import cli, experiment

    seen = []
    monkeypatch.setattr(experiment, "train_run", lambda preset, *a, **k: (
        seen.append(preset), ({"best_val_loss": 1.0, "best_epoch": 1}, tmp_path))[1])
    assert cli.main(["train", "--preset", "vocab", "--music-dropout", "0.2", "--guidance", "0.6",
                     "--music-noise", "0.7", "--copy", "--turns", "--polish", "5", "--run-name", "guided"]) == 0
    assert seen[0].polish == 5
    options = dict(seen[0].model_options)
    assert options["music_dropout"] == 0.2 and options["guidance"] == 0.6 and options["music_noise"] == 0.7
    assert options["copy"] is True and options["turns"] is True
    assert {k: v for k, v in options.items() if k not in ("music_dropout", "guidance", "music_noise", "copy", "turns")} == \
        {k: v for k, v in get_preset("vocab").model_options if k not in ("music_noise", "copy")}
    for bad in (["--preset", "vocab", "--music-dropout", "1"], ["--preset", "vocab", "--guidance", "0.5"],
                ["--preset", "smoke", "--music-dropout", "0.2"], ["--preset", "vocab", "--music-noise", "-1"],
                ["--preset", "smoke", "--music-noise", "0.5"], ["--preset", "smoke", "--copy"],
                ["--preset", "smoke", "--turns"], ["--preset", "vocab", "--polish", "-1"],
                ["--preset", "smoke", "--polish", "2"], ["--preset", "vocab", "--polish", "2", "--ema", "0.5"]):
        capsys.readouterr()
        assert cli.main(["train", *bad, "--run-name", "bad"]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("kakashi train: error: "), err
    assert len(seen) == 1
