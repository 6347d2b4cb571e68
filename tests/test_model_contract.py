"""Every registered model through the one contract of kakashi/models/__init__.py: config
rebuilds it, forward returns an Output whose poses start at the first pose, objective is a
finite scalar with a gradient, generate dances in eval mode and repeats per seed, and its
runs are named by whether it trains with the preset's loss."""
import dataclasses

import pytest
import torch

from kakashi.config import get_preset
from kakashi.losses import get_loss
from kakashi.models import MODELS, Output, build_model, run_name

T, B, F = 24, 2, 12
SMALL = {  # a small build of each registered model: a new model must add itself here
    "seq2seq_lstm": dict(hidden=16, layers=2, dropout=0.0),
    "mdn_lstm": dict(hidden=16, layers=1, dropout=0.0, mixtures=2),
    "dance_transformer": dict(hidden=16, layers=1, dropout=0.0, heads=2, pose_context=4),
    "motion_vocab": dict(hidden=16, layers=1, dropout=0.0, heads=2, segment=4, levels=(3, 3), codec_hidden=8,
                         music_past=4, music_future=4),
}


def test_every_registered_model_has_a_small_build():
    assert sorted(SMALL) == sorted(MODELS)


def data(seed=0):
    g = torch.Generator().manual_seed(seed)
    audio = torch.randn(T, B, F, generator=g)
    poses = 0.2 * torch.randn(1, B, 17, 3, generator=g) + torch.tensor([0.0, 1.0, 0.0])
    t = torch.arange(T, dtype=torch.float32)[:, None, None, None] / 24.0
    return audio, poses + 0.05 * torch.sin(6.0 * t) + 0.2 * t * torch.tensor([1.0, 0.0, 0.0])


@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_contract(name):
    torch.manual_seed(0)
    model = build_model(name, in_dim=F, **SMALL[name])
    assert model.config["name"] == name and isinstance(MODELS[name].uses_loss, bool)
    audio, poses = data()
    out = model(audio, poses[0], target=poses, teacher_forcing=1.0)
    assert isinstance(out, Output) and out.poses.shape == (T, B, 17, 3)
    assert torch.allclose(out.poses[0], poses[0], atol=1e-5)
    loss = model.objective(out, poses, get_loss("mse"))
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    assert any(p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
               for p in model.parameters())
    free = model(audio, poses[0], teacher_forcing=0.0)
    assert free.poses.shape == (T, B, 17, 3)

    twin = build_model(**model.config)
    twin.load_state_dict(model.state_dict())
    model.train()
    torch.manual_seed(5)
    danced = model.generate(audio, poses[0])
    assert model.training and not danced.requires_grad          # eval inside, mode given back
    assert danced.shape == (T, B, 17, 3) and torch.isfinite(danced).all()
    torch.manual_seed(5)
    assert torch.equal(danced, twin.generate(audio, poses[0]))  # rebuilt from config, same seed: same dance

    preset = dataclasses.replace(get_preset("smoke"), model=name, loss="rpd")
    assert run_name(preset) == ("smoke" + ("" if name == "seq2seq_lstm" else f"_{name}")
                                + ("_rpd" if MODELS[name].uses_loss else ""))
