"""Model registry: music features -> dance, every model behind one interface.

A model is an `nn.Module` registered by name with `@register("name")`. It stores
`self.config` (its registry name under "name" plus every constructor argument, plain Python
types), so `build_model(**model.config)` rebuilds it and a checkpoint describes itself.

Interface shared by every model:
    forward(audio, first_pose, target=None, teacher_forcing=0.0) -> poses
        audio [T, B, F] normalised features, first_pose [B, 17, 3], target [T, B, 17, 3];
        returns [T, B, 17, 3] whose frame 0 is first_pose.
    generate(audio, first_pose) -> poses   (eval mode, no gradient, no teacher forcing)
"""
from __future__ import annotations

from typing import Callable

from torch import nn

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


from kakashi.models import seq2seq  # noqa: E402,F401  (registers "seq2seq_lstm")
from kakashi.models import mdn  # noqa: E402,F401  (registers "mdn_lstm")
from kakashi.models import transformer  # noqa: E402,F401  (registers "dance_transformer")
from kakashi.models import vocab  # noqa: E402,F401  (registers "motion_vocab")
