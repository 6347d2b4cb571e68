"""Model registry: music features -> dance, every model behind one contract.

A model is an `nn.Module` registered by name with `@register("name")`. The contract, the
same for every registered model (tests/test_model_contract.py runs each through it):

    config: dict            its registry name under "name" plus every constructor argument
                            (plain Python types): `build_model(**model.config)` rebuilds it,
                            so a checkpoint describes itself.
    uses_loss: bool         (class attribute) whether `objective` uses the preset's loss;
                            a model with an objective of its own (a likelihood) sets False, and
                            its runs are named without a loss (`run_name`).
    forward(audio, first_pose, target=None, teacher_forcing=0.0) -> Output
        audio [T, B, F] normalised features, first_pose [B, 17, 3] metres, target
        [T, B, 17, 3]; the Output's `poses` [T, B, 17, 3] has first_pose as frame 0.
    objective(out, target, loss_fn) -> scalar tensor
        the training loss of a forward's Output against target poses [T, B, 17, 3];
        loss_fn is the preset's loss (kakashi.losses), used when `uses_loss`.
    generate(audio, first_pose) -> poses [T, B, 17, 3]
        eval mode, no gradient, no teacher forcing; sampling models draw from torch's global
        generator, so torch.manual_seed repeats a dance.
    whole_songs: bool       (optional class attribute, default False) generate dances a song of
                            any length in one call, in memory that does not grow beyond its
                            output; kakashi.inference then does not cut the song into windows.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import Tensor, nn


@dataclass
class Output:
    """What every model's forward returns: poses [T, B, 17, 3] metres (frame 0 = first_pose).
    Models with more to hand to their objective return a subclass."""

    poses: Tensor

MODELS: dict[str, type[nn.Module]] = {}


def register(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator adding a model class to MODELS under `name`."""

    def add(cls: type[nn.Module]) -> type[nn.Module]:
        if name in MODELS and MODELS[name] is not cls:
            raise ValueError(f"model name {name!r} is already registered by {MODELS[name].__name__}")
        MODELS[name] = cls
        return cls

    return add


def build_model(name: str, **kwargs) -> nn.Module:
    """A new model of registry name `name` built with constructor arguments `kwargs`."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    return MODELS[name](**kwargs)


def run_name(preset) -> str:
    """A run's default folder name: <preset>[_<model>][_<loss>]: the model when it is not the
    paper's, the loss when the model trains with it (`uses_loss`)."""
    model = "" if preset.model == "seq2seq_lstm" else f"_{preset.model}"
    loss = f"_{preset.loss}" if uses_loss(preset.model) else ""
    return f"{preset.name}{model}{loss}"


def uses_loss(name: str) -> bool:
    """Whether the registered model `name` trains with the preset's loss."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    return bool(MODELS[name].uses_loss)


from kakashi.models import seq2seq  # noqa: E402,F401  (registers "seq2seq_lstm")
from kakashi.models import mdn  # noqa: E402,F401  (registers "mdn_lstm")
from kakashi.models import transformer  # noqa: E402,F401  (registers "dance_transformer")
from kakashi.models import vocab  # noqa: E402,F401  (registers "motion_vocab")
