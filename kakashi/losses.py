"""The paper's ten training losses, by name: `LOSSES[name](output, target) -> scalar`.

output, target: [T, B, J, 3] poses in metres (root-relative in the paper's setting); every
loss returns a 0-dim tensor. Velocity = per-joint displacement norm between consecutive
frames, [T-1, B, J] in metres per frame (not per second: the paper's definition).

Safeguards (where these differ from the paper's formulas). The paper's experiments 6 and 7
died of NaN: sqrt has an infinite derivative at 0 and MAPE divides by the target. Here
- every norm and every sqrt(x^2) is the smooth sqrt(x^2 + EPS_NORM^2) - EPS_NORM, EPS_NORM =
  1e-6 m (or m/frame): exactly 0 at 0, within 1e-6 of the paper's value everywhere, with a
  gradient of magnitude at most 1 (0 at 0). A sum of N such terms (euclidean, srse_velocity)
  differs from the paper's by less than N * 1e-6;
- the MAPE and RPD denominators are floored at EPS_DIV = 1e-3 m (1 mm, or 1 mm per frame for
  velocities): a |target| (MAPE) or mean magnitude (RPD) below 1 mm counts as 1 mm. Terms
  whose denominator is at least 1 mm equal the paper's exactly.
MAPE and RPD explode at the root joint, which is ~0 in root-relative poses (and every
velocity of a still joint is 0): there the floor turns the paper's infinity into a large but
finite term |t - o| / 1 mm. That is the paper's behaviour, kept, only made finite.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

EPS_NORM = 1e-6  # metres (or metres per frame): smoothing of norms and absolute values
EPS_DIV = 1e-3   # metres (or metres per frame): floor of MAPE / RPD denominators


def _check(output: Tensor, target: Tensor) -> None:
    if output.shape != target.shape:
        raise ValueError(f"output {list(output.shape)} and target {list(target.shape)} differ in shape")
    if output.dim() != 4 or output.shape[-1] != 3:
        raise ValueError(f"poses must be [T, B, J, 3], got {list(output.shape)}")


def _check_velocity(output: Tensor, target: Tensor) -> None:
    _check(output, target)
    if output.shape[0] < 2:
        raise ValueError(f"velocity losses need at least 2 frames, got {output.shape[0]}")


def smooth_norm(x: Tensor, dim: int = -1) -> Tensor:
    """sqrt(sum(x^2, dim) + EPS_NORM^2) - EPS_NORM: the Euclidean norm, differentiable at 0."""
    return torch.sqrt(x.pow(2).sum(dim) + EPS_NORM ** 2) - EPS_NORM


def velocity(poses: Tensor) -> Tensor:
    """Per-joint speed between consecutive frames: [T, B, J, 3] metres -> [T-1, B, J] metres/frame.

    |x[t+1] - x[t]| with the smooth norm (EPS_NORM = 1e-6 m) so a still joint has a finite gradient.
    """
    return smooth_norm(poses[1:] - poses[:-1])


def _mape(o: Tensor, t: Tensor) -> Tensor:
    return ((t - o).abs() / t.abs().clamp_min(EPS_DIV)).mean()


def _rpd(o: Tensor, t: Tensor) -> Tensor:
    return ((t - o).abs() / ((t.abs() + o.abs()) / 2).clamp_min(EPS_DIV)).mean()


def mape(output: Tensor, target: Tensor) -> Tensor:
    """Mean absolute percentage error over coordinates: mean |(t - o) / t|.

    Safeguard: |t| floored at EPS_DIV = 1e-3 m, i.e. mean |t - o| / max(|t|, 1 mm).
    """
    _check(output, target)
    return _mape(output, target)


def rpd(output: Tensor, target: Tensor) -> Tensor:
    """Relative percent difference over coordinates: mean |t - o| / ((|t| + |o|) / 2).

    Safeguard: the denominator floored at EPS_DIV = 1e-3 m (0 when t = o = 0).
    """
    _check(output, target)
    return _rpd(output, target)


def mape_velocity(output: Tensor, target: Tensor) -> Tensor:
    """MAPE of the velocities: mean |(v_t - v_o) / v_t| over [T-1, B, J].

    Safeguards: smooth norm (EPS_NORM = 1e-6 m/frame); v_t floored at EPS_DIV = 1e-3 m/frame.
    """
    _check_velocity(output, target)
    return _mape(velocity(output), velocity(target))


def rpd_velocity(output: Tensor, target: Tensor) -> Tensor:
    """RPD of the velocities: mean |v_t - v_o| / ((v_t + v_o) / 2) over [T-1, B, J].

    Safeguards: smooth norm (EPS_NORM = 1e-6 m/frame); denominator floored at EPS_DIV = 1e-3 m/frame.
    """
    _check_velocity(output, target)
    return _rpd(velocity(output), velocity(target))


def euclidean(output: Tensor, target: Tensor) -> Tensor:
    """Sum over frames, sequences and joints of the joint distance: sum |t - o|_2, metres (a sum, not a mean).

    Safeguard: smooth norm sqrt(d^2 + EPS_NORM^2) - EPS_NORM, EPS_NORM = 1e-6 m.
    """
    _check(output, target)
    return smooth_norm(target - output).sum()


def srse_velocity(output: Tensor, target: Tensor) -> Tensor:
    """Sum of root squared velocity errors: sum sqrt((v_t - v_o)^2) over [T-1, B, J], metres/frame.

    Safeguards: smooth norm for the velocities and sqrt(x^2 + EPS_NORM^2) - EPS_NORM for the
    root of the square, EPS_NORM = 1e-6 m/frame.
    """
    _check_velocity(output, target)
    diff = velocity(target) - velocity(output)  # [T-1, B, J]
    return (torch.sqrt(diff.pow(2) + EPS_NORM ** 2) - EPS_NORM).sum()


def ensemble(output: Tensor, target: Tensor) -> Tensor:
    """euclidean + srse_velocity (the safeguards of both)."""
    return euclidean(output, target) + srse_velocity(output, target)


def l1(output: Tensor, target: Tensor) -> Tensor:
    """Mean absolute error over coordinates (torch's l1_loss), metres."""
    _check(output, target)
    return F.l1_loss(output, target)


def mse(output: Tensor, target: Tensor) -> Tensor:
    """Mean squared error over coordinates (torch's mse_loss), square metres."""
    _check(output, target)
    return F.mse_loss(output, target)


def smooth_l1(output: Tensor, target: Tensor) -> Tensor:
    """Huber loss with beta = 1 m over coordinates (torch's smooth_l1_loss, its default)."""
    _check(output, target)
    return F.smooth_l1_loss(output, target)


LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "mape": mape,
    "rpd": rpd,
    "mape_velocity": mape_velocity,
    "rpd_velocity": rpd_velocity,
    "euclidean": euclidean,
    "srse_velocity": srse_velocity,
    "ensemble": ensemble,
    "l1": l1,
    "mse": mse,
    "smooth_l1": smooth_l1,
}


def get_loss(name: str) -> Callable[[Tensor, Tensor], Tensor]:
    """The loss function registered under `name`."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {sorted(LOSSES)}")
    return LOSSES[name]
