"""`dance_transformer`: cross-modal attention from recent poses to a window of music.

Music encoder: a linear embedding of the features plus sinusoidal positions, then `layers`
transformer encoder layers whose attention is limited to a band of `music_past` frames
before and `music_future` frames after each frame. Motion decoder: step s embeds the local
pose of frame s (kakashi.models.objectives), attends causally to the last `pose_context`
steps and, across modalities, to the music encoding around frame s + 1 (the same band), and
predicts the step to frame s + 1: one deterministic step (mixtures = 0) or a Gaussian
mixture (mixtures = K). Autoregressive as in FACT, small enough for two CPU cores.

Training with teacher_forcing 1 runs all steps at once; between 0 and 1 it uses two passes
(scheduled sampling for parallel decoders: the first pass's own predictions replace a
1 - teacher_forcing share of the true inputs of the second); 0 rolls out step by step.
"""
from __future__ import annotations


import torch
from torch import Tensor, nn

from . import objectives as obj
from . import register
from .attention import Block, band_mask, positions
from .step import StepModel, StepOptions

@register("dance_transformer")
class DanceTransformer(StepModel):
    """Music-window cross-attention, autoregressive over local poses (see module docstring).

    in_dim: audio features per frame; hidden: model width; layers: encoder and decoder blocks
    each; dropout; heads: attention heads; music_past / music_future / pose_context: frames of
    attention context; options: kakashi.models.step.StepOptions (default: no mixture). Generation caches each decoder
    block's keys and values, so one step costs one token.
    """

    def __init__(self, in_dim: int = 35, hidden: int = 64, layers: int = 2, dropout: float = 0.1,
                 heads: int = 4, music_past: int = 24, music_future: int = 12, pose_context: int = 24,
                 num_joints: int = 17, **options):
        super().__init__()
        options = StepOptions(**{"mixtures": 0, **options})  # one deterministic step unless asked
        if hidden % heads or hidden % 2:
            raise ValueError(f"hidden ({hidden}) must be even and divisible by heads ({heads})")
        if min(music_past, music_future) < 0 or pose_context < 1:
            raise ValueError("music_past and music_future must be >= 0 and pose_context >= 1")
        self._configure("dance_transformer", options, num_joints, in_dim=int(in_dim), hidden=int(hidden),
                        layers=int(layers), dropout=float(dropout), heads=int(heads),
                        music_past=int(music_past), music_future=int(music_future),
                        pose_context=int(pose_context))
        self.hidden = int(hidden)
        self.past, self.future, self.context = int(music_past), int(music_future), int(pose_context)
        self.music_in = nn.Linear(in_dim, hidden)
        self.pose_in = nn.Linear(obj.FEATURE_DIM, hidden)
        self.encoder = nn.ModuleList(Block(hidden, heads, dropout, cross=False) for _ in range(layers))
        self.decoder = nn.ModuleList(Block(hidden, heads, dropout, cross=True) for _ in range(layers))
        self.norm = nn.LayerNorm(hidden)
        self.head = self._make_head(hidden)

    def _context(self, audio: Tensor) -> list[tuple[Tensor, Tensor]]:
        """Each decoder block's keys/values [B, heads, T, hidden/heads] of the encoded music."""
        T = audio.shape[0]
        frames = torch.arange(T, device=audio.device)
        mask = band_mask(frames, frames, self.past, self.future)
        x = (self.music_in(audio) + positions(T, self.hidden, audio.device)[:, None]).transpose(0, 1)  # [B, T, hidden]
        for block in self.encoder:
            x, _ = block(x, mask)
        return [block.cross_attn.keys(x) for block in self.decoder]

    def _decode(self, music, feats: Tensor, first: int, caches=None):
        """Decoder outputs [S, B, hidden] for steps first..first+S-1 reading motion features
        [S, B, 100], after cached steps (caches: per block keys/values, or None); new caches."""
        S, T = feats.shape[0], music[0][0].shape[2]
        device = feats.device
        steps = torch.arange(first, first + S, device=device)
        cached = 0 if caches is None else caches[0][0].shape[2]           # the steps just before `first`
        self_mask = band_mask(steps, torch.arange(first - cached, first + S, device=device), self.context - 1, 0)
        cross_mask = band_mask(steps + 1, torch.arange(T, device=device), self.past, self.future)
        x = (self.pose_in(feats) + positions(first + S, self.hidden, device)[first:, None]).transpose(0, 1)  # [B, S, hidden]
        new = []
        for i, block in enumerate(self.decoder):
            x, kv = block(x, self_mask, None if caches is None else caches[i], music[i], cross_mask)
            new.append(kv)
        return self.norm(x).transpose(0, 1), new                         # [S, B, hidden]

    def _parallel(self, music, inputs: Tensor):
        feats = self._features(inputs, None)                                # [T-1, B, 100]
        return self.head(self._decode(music, feats, 0)[0])

    def _start(self, music, batch: int):
        return None

    def _step(self, music, caches, s: int, inputs: list[Tensor]):
        feats = self._features(inputs[s][None], inputs[s - 1] if s > 0 else None)  # [1, B, 100]
        out, caches = self._decode(music, feats, s, caches)                # out [1, B, hidden]
        keep = self.context - 1                                            # keys older than the band are never read again
        caches = [(k[:, :, -keep:], v[:, :, -keep:]) for k, v in caches] if keep > 0 else None
        return self.head(out[0]), caches

    def _mixed(self, music, first: Tensor, truth: Tensor, teacher_forcing: float):
        with torch.no_grad():
            guess = obj.apply_step(truth, self.mean_step(self._parallel(music, truth), truth), self.options.fps)  # [T-1, B, 51]
        own = torch.rand(truth.shape[0], truth.shape[1], 1, device=truth.device) >= teacher_forcing
        own[0] = False                                                     # step 0 reads the first pose
        inputs = torch.where(own, torch.cat([truth[:1], guess[:-1]]), self._noisy(truth))
        return inputs, self._parallel(music, inputs)
