"""The ten losses: each equals its formula (float64 numpy), stays finite with finite gradients
on degenerate poses, and trains a tiny model on still poses without NaN."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from kakashi.losses import EPS_DIV, EPS_NORM, LOSSES, get_loss, velocity
from kakashi.models import build_model
from kakashi.train import train_step


NAMES = ["mape", "rpd", "mape_velocity", "rpd_velocity", "euclidean", "srse_velocity",
         "ensemble", "l1", "mse", "smooth_l1"]


def _vel(x):
    return np.sqrt(((x[1:] - x[:-1]) ** 2).sum(-1))  # [T-1, B, J]


def _ref_mape(o, t):
    return np.mean(np.abs((t - o) / t))


def _ref_rpd(o, t):
    return np.mean(np.abs(t - o) / ((np.abs(t) + np.abs(o)) / 2))


def _ref_euclidean(o, t):
    return np.sum(np.sqrt(((t - o) ** 2).sum(-1)))


def _ref_srse(o, t):
    return np.sum(np.sqrt((_vel(t) - _vel(o)) ** 2))


def _huber(d):
    a = np.abs(d)
    return np.mean(np.where(a < 1.0, 0.5 * d ** 2, a - 0.5))


REFERENCE = {
    "mape": _ref_mape,
    "rpd": _ref_rpd,
    "mape_velocity": lambda o, t: _ref_mape(_vel(o), _vel(t)),
    "rpd_velocity": lambda o, t: _ref_rpd(_vel(o), _vel(t)),
    "euclidean": _ref_euclidean,
    "srse_velocity": _ref_srse,
    "ensemble": lambda o, t: _ref_euclidean(o, t) + _ref_srse(o, t),
    "l1": lambda o, t: np.mean(np.abs(o - t)),
    "mse": lambda o, t: np.mean((o - t) ** 2),
    "smooth_l1": lambda o, t: _huber(o - t),
}


def _tolerance(name: str, want: float, n_terms: int, rel: float) -> float:
    """Allowed |loss - formula|: the smoothing moves each norm by < EPS_NORM (sums: n_terms * EPS_NORM;
    velocity ratios: about EPS_NORM / velocity ~ 1e-5 relative), plus floating-point rounding `rel`."""
    if name in ("euclidean", "srse_velocity", "ensemble"):
        n_sums = 2 if name == "ensemble" else 1
        return rel * abs(want) + n_sums * n_terms * EPS_NORM * 1.01
    if name in ("mape_velocity", "rpd_velocity"):
        return (rel + 1e-4) * abs(want)
    return rel * abs(want) + 1e-12


def _random_poses(seed: int, shape=(9, 3, 17, 3)):
    rng = np.random.default_rng(seed)
    target = rng.uniform(0.05, 0.8, shape) * rng.choice([-1, 1], shape)  # |coordinate| >= 5 cm
    output = target + rng.normal(0, 0.2, shape)
    output[np.abs(output) < 0.01] = 0.01  # keep RPD's denominator away from its floor
    return output, target


def test_registry_names_and_unknown():
    assert sorted(LOSSES) == sorted(NAMES)
    assert get_loss("rpd") is LOSSES["rpd"]
    with pytest.raises(ValueError, match="mape_velocity"):
        get_loss("nope")


@pytest.mark.parametrize("name", NAMES)
def test_matches_float64_formula(name):
    for seed in range(3):
        o, t = _random_poses(seed)
        got = LOSSES[name](torch.tensor(o, dtype=torch.float32), torch.tensor(t, dtype=torch.float32)).item()
        want = REFERENCE[name](o, t)
        assert abs(got - want) <= _tolerance(name, want, o[..., 0].size, 1e-5), (name, got, want)


@pytest.mark.parametrize("name", NAMES)
def test_formula_also_in_float64(name):
    o, t = _random_poses(7)
    got = LOSSES[name](torch.tensor(o), torch.tensor(t)).item()
    want = REFERENCE[name](o, t)
    assert abs(got - want) <= _tolerance(name, want, o[..., 0].size, 1e-12), (name, got, want)


def test_mape_floor_at_zero_target():
    t = torch.zeros(2, 1, 17, 3)
    o = torch.full_like(t, 0.002)  # 2 mm off a zero target
    assert LOSSES["mape"](o, t).item() == pytest.approx(0.002 / EPS_DIV, rel=1e-5)
    assert LOSSES["rpd"](o, t).item() == pytest.approx(0.002 / EPS_DIV, rel=1e-5)  # (0 + 2 mm)/2 -> 1 mm floor


def test_velocity_shape_and_value():
    x = torch.zeros(4, 2, 17, 3)
    x[:, :, 5, 0] = torch.arange(4.0)[:, None] * 0.01  # joint 5 moves 1 cm per frame along x
    v = velocity(x)
    assert v.shape == (3, 2, 17)
    assert torch.allclose(v[:, :, 5], torch.full((3, 2), 0.01), atol=2 * EPS_NORM)
    assert torch.all(v[:, :, 0] == 0)


def _degenerate_cases():
    g = torch.Generator().manual_seed(0)
    rand = torch.rand(6, 2, 17, 3, generator=g) - 0.5
    with_zeros = rand.clone()
    with_zeros[:, :, 0] = 0.0          # root joint exactly 0 (root-relative poses)
    with_zeros[2:4] = with_zeros[1]    # still frames: zero velocity
    with_zeros[:, :, 3, 1] = 0.0       # an exact zero coordinate
    zeros = torch.zeros(6, 2, 17, 3)
    return {
        "all_zero": (zeros, zeros),
        "identical": (rand, rand.clone()),
        "identical_with_zeros": (with_zeros, with_zeros.clone()),
        "target_with_zeros": (rand, with_zeros),
        "output_zero": (zeros, with_zeros),
    }


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("case", list(_degenerate_cases()))
def test_finite_value_and_gradient(name, case):
    output, target = _degenerate_cases()[case]
    output = output.clone().requires_grad_(True)
    loss = LOSSES[name](output, target)
    assert loss.dim() == 0
    loss.backward()
    assert torch.isfinite(loss), (name, case, loss)
    assert torch.isfinite(output.grad).all(), (name, case)
    if case.startswith("identical") or case == "all_zero":
        assert loss.item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_bad_shapes_raise(name):
    with pytest.raises(ValueError, match="shape|\\[T, B, J, 3\\]|frames"):
        LOSSES[name](torch.zeros(5, 2, 17, 3), torch.zeros(5, 2, 17, 2))


@pytest.mark.parametrize("still", ["constant_pose", "all_zero"])
def test_every_loss_trains_on_still_poses_without_nan(still):
    T, B, F = 8, 2, 4
    pose = torch.rand(17, 3) - 0.5
    pose[0] = 0.0  # root-relative: the hip at the origin
    if still == "all_zero":
        pose.zero_()
    target = pose.expand(T, B, 17, 3).clone()  # no motion at all
    audio = torch.randn(T, B, F, generator=torch.Generator().manual_seed(1))
    for name in NAMES:
        torch.manual_seed(0)
        model = build_model("seq2seq_lstm", in_dim=F, hidden=8, layers=2, dropout=0.5)
        opt = torch.optim.SGD(model.parameters(), lr=0.005, momentum=0.9)
        for _ in range(3):
            loss, _ = train_step(model, model, opt, audio, target, LOSSES[name], 0.5, clip_grad=1.0)
            assert torch.isfinite(loss), name
            assert all(torch.isfinite(p).all() for p in model.parameters()), name
