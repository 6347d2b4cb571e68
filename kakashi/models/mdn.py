"""The mixture density LSTM (`mdn_lstm`): the paper's encoder-decoder LSTM with the paper's
own future work added: the 35-dim `rich` features, a bidirectional music encoder whose
per-frame output reaches every decoder step (the paper's decoder saw only the encoder's final
state), and a mixture of K diagonal Gaussians over the next step, trained by negative
log-likelihood and sampled at generation with a temperature (kakashi.models.step).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from . import objectives as obj
from . import register
from .step import StepModel, StepOptions


@register("mdn_lstm")
class MixtureLSTM(StepModel):
    """LSTM encoder-decoder with a mixture density output over the next step.

    in_dim: audio features per frame (35 `rich`); hidden, layers: LSTM sizes; dropout: on the
    input features and between LSTM layers; options: StepOptions (mixtures: K Gaussians, at least one).
    Music: a bidirectional LSTM over the window -> [T, B, hidden]; decoder step s reads the
    music at frame s + 1 and the local pose at frame s with its velocity.
    """

    def __init__(self, in_dim: int = 35, hidden: int = 256, layers: int = 2, dropout: float = 0.1,
                 num_joints: int = 17, **options):
        super().__init__()
        options = StepOptions(**options)
        if options.mixtures < 1:
            raise ValueError(f"mdn_lstm needs at least one mixture component, got {options.mixtures}")
        if hidden % 2:
            raise ValueError(f"hidden must be even (two encoder directions), got {hidden}")
        self._configure("mdn_lstm", options, num_joints, in_dim=int(in_dim), hidden=int(hidden),
                        layers=int(layers), dropout=float(dropout))
        between = float(dropout) if layers > 1 else 0.0
        self.input_dropout = nn.Dropout(dropout)
        self.encoder = nn.LSTM(in_dim, hidden // 2, layers, dropout=between, bidirectional=True)
        self.decoder = nn.LSTM(hidden + obj.FEATURE_DIM, hidden, layers, dropout=between)
        self.head = self._make_head(hidden)

    def _context(self, audio: Tensor) -> Tensor:
        music, _ = self.encoder(self.input_dropout(audio))                  # [T, B, hidden]
        return music

    def _parallel(self, music: Tensor, inputs: Tensor):
        feats = self._features(inputs, None)                                # [T-1, B, 100]
        out, _ = self.decoder(torch.cat([music[1:], feats], dim=-1))       # [T-1, B, hidden]
        return self.head(out)

    def _start(self, music: Tensor, batch: int):
        return None

    def _step(self, music: Tensor, state, s: int, inputs: list[Tensor]):
        feats = self._features(inputs[s][None], inputs[s - 1] if s > 0 else None)[0]  # [B, 100]
        out, state = self.decoder(torch.cat([music[s + 1], feats], dim=-1)[None], state)  # [1, B, hidden]
        return self.head(out[0]), state
