"""`motion_vocab`: dancing from a vocabulary of real motion (Bailando's choreographic memory).

The dance lives in the body space of kakashi.body (joint rotations on the dancer's rigid
skeleton, hinged knees and elbows, the root's height, velocity and yaw rate), so every decoded
frame is a whole body whatever the network outputs. Two parts, trained in one loop:

- a motion codec: one convolutional encoder per half of the body (lower: root and legs,
  upper: torso, head and arms) maps each SEGMENT-frame segment to a code by finite scalar
  quantisation (FSQ, Mentzer et al. 2023: each latent rounded to one of `levels` values, no
  codebook to collapse, no commitment term), and one decoder turns both halves' code sequences
  back into whole segments of body parameters (its receptive field spans neighbouring codes,
  so segments join smoothly);
- a code transformer: token k reads the codes of segment k - 1 (token 0: the first pose) and,
  by banded cross-attention, the music around segment k, and predicts both codes of segment k;
  generation samples them with temperature and top-k.

The objective: reconstruction of the true body (positions of the local body in m^2, their
velocities, the parameters) plus the cross-entropy of the transformer on the codes of the
true motion (detached). Generation starts from `first_pose`: its skeleton, place and heading;
the decoded parameters are blended into its body over BLEND frames, so a window seeded with
the end of the previous one continues it without a jump.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import body
from ..skeleton import FEET, NUM_JOINTS
from . import Output, register
from .attention import Block, band_mask, positions

POS_WEIGHT = 400.0   # 1 / (0.05 m)^2: a 5 cm joint error costs 1
VEL_WEIGHT = 4.0     # 1 / (0.5 m/s)^2
PARAM_WEIGHT = 1.0   # body parameters (rad, m, m/s, rad/s): keeps them near the fitted ones
YAW_SCALE = 4.0      # rad/s: the yaw rate is divided by this before the encoders (spins reach ~4 rad/s)
RATE_SCALE = 0.1     # s: the encoders also read each parameter's rate of change times this (0.1 s of motion)
LATENT_WEIGHT = 0.01  # on the mean squared pre-quantisation latent: keeps the FSQ bound out of tanh's
                      # flat tails, where a half's codes stop changing and its codebook collapses to one code
NO_BLEND = [*range(body.VELOCITY.start, body.YAW_RATE.stop)]   # root rates: not blended to the first pose


class VocabOutput(Output):
    """What motion_vocab's forward returns: poses [T, B, 17, 3] (frame 0 = first_pose; computed
    when first read, as the training objective does not need them) and, with a target, what
    the objective needs: the true and decoded body parameters [T, B, 48], the target's skeleton
    [B, 17, 3], the true codes [K, B] and the transformer's logits [K, B, codes] of each half,
    and the encoders' latents before quantisation [K, B, 2 D]."""

    def __init__(self, poses: Tensor | Callable[[], Tensor], params: Tensor | None = None,
                 decoded: Tensor | None = None, skeleton: Tensor | None = None,
                 codes: tuple[Tensor, Tensor] | None = None, logits: tuple[Tensor, Tensor] | None = None,
                 latents: Tensor | None = None):
        self._poses = poses
        self.latents = latents
        self.params, self.decoded, self.skeleton, self.codes, self.logits = params, decoded, skeleton, codes, logits

    @property
    def poses(self) -> Tensor:
        if callable(self._poses):
            self._poses = self._poses()
        return self._poses


class FSQ(nn.Module):
    """Finite scalar quantisation of latents [.., len(levels)] (odd levels): each dimension is
    bounded by tanh to +-(L-1)/2 and rounded (straight-through gradient). Returns the quantised
    latent scaled to [-1, 1] and the code index [..] in [0, prod(levels))."""

    def __init__(self, levels: tuple[int, ...]):
        super().__init__()
        if any(L < 3 or L % 2 == 0 for L in levels):
            raise ValueError(f"FSQ levels must be odd and at least 3, got {list(levels)}")
        half = torch.tensor([(L - 1) / 2 for L in levels])
        basis = torch.cumprod(torch.tensor([1, *levels[:-1]]), 0)
        self.register_buffer("halves", half, persistent=False)
        self.register_buffer("basis", basis, persistent=False)
        self.size = int(math.prod(levels))

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        bounded = torch.tanh(z) * self.halves
        q = bounded + (torch.round(bounded) - bounded).detach()
        index = ((torch.round(bounded) + self.halves) * self.basis).sum(-1).long()
        return q / self.halves, index

    def lookup(self, index: Tensor) -> Tensor:
        """Quantised latents [.., D] in [-1, 1] of code indices [..]."""
        digits = (index[..., None] // self.basis) % (2 * self.halves + 1).long()
        return (digits - self.halves) / self.halves


def encoder(in_dim: int, hidden: int, latent: int, downs: int) -> nn.Sequential:
    """[B, in_dim, T] -> [B, latent, T / 2^downs]: convolutions halving time `downs` times."""
    layers = [nn.Conv1d(in_dim, hidden, 3, padding=1), nn.GELU()]
    for _ in range(downs):
        layers += [nn.Conv1d(hidden, hidden, 4, stride=2, padding=1), nn.GELU()]
    return nn.Sequential(*layers, nn.Conv1d(hidden, latent, 1))


def decoder(latent: int, hidden: int, out_dim: int, ups: int) -> nn.Sequential:
    """[B, latent, K] -> [B, out_dim, K 2^ups]: convolutions doubling time `ups` times."""
    layers = [nn.Conv1d(latent, hidden, 3, padding=1), nn.GELU()]
    for _ in range(ups):
        layers += [nn.Upsample(scale_factor=2), nn.Conv1d(hidden, hidden, 3, padding=1), nn.GELU()]
    return nn.Sequential(*layers, nn.Conv1d(hidden, out_dim, 3, padding=1))


@register("motion_vocab")
class MotionVocab(nn.Module):
    """Motion codes in the body space and a music-conditioned transformer over them.

    in_dim: audio features per frame (44 `rhythm`); hidden: width of the transformer;
    codec_hidden: channels of the codec's convolutions; ce_weight: of the code cross-entropy;
    layers: transformer blocks of the music encoder and of the code decoder, each; dropout;
    heads; segment: frames per code (a power of 2); levels: FSQ levels per latent dimension of
    each half (codes per half = their product); music_past / music_future: frames of music (in whole segments) a
    segment attends to before its start and after its end; temperature and top_k: sampling of
    the codes at generation (top_k 0: all); blend: frames over which generation moves from the
    first pose into the decoded motion; ground: share (0..1) of the lowest ankle's height above
    y = 0 taken off the generated dancer after the blend (global poses with the floor at 0: a
    dancer who does not jump keeps a foot down; 0 for root-relative data); fps.
    """

    uses_loss = False

    def __init__(self, in_dim: int = 44, hidden: int = 128, layers: int = 2, dropout: float = 0.1,
                 heads: int = 4, segment: int = 8, levels: tuple[int, ...] | list[int] = (7, 5, 5, 5),
                 music_past: int = 24, music_future: int = 24, temperature: float = 1.0, top_k: int = 0,
                 blend: int = 16, ce_weight: float = 1.0, codec_hidden: int = 64, ground: float = 0.0,
                 fps: float = 24.0, num_joints: int = 17):
        super().__init__()
        downs = int(round(math.log2(segment)))
        if segment < 2 or 2 ** downs != segment:
            raise ValueError(f"segment must be a power of 2 (frames per code), got {segment}")
        if hidden % heads or hidden % 2:
            raise ValueError(f"hidden ({hidden}) must be even and divisible by heads ({heads})")
        if num_joints != NUM_JOINTS:
            raise ValueError(f"motion_vocab works on the {NUM_JOINTS}-joint skeleton, got {num_joints}")
        if temperature <= 0 or top_k < 0 or blend < 1:
            raise ValueError("temperature must be > 0, top_k >= 0 and blend >= 1")
        if not 0.0 <= ground <= 1.0:
            raise ValueError(f"ground must lie in [0, 1], got {ground}")
        levels = [int(v) for v in levels]
        self.config = {"name": "motion_vocab", "in_dim": int(in_dim), "hidden": int(hidden), "layers": int(layers),
                       "dropout": float(dropout), "heads": int(heads), "segment": int(segment), "levels": levels,
                       "music_past": int(music_past), "music_future": int(music_future),
                       "temperature": float(temperature), "top_k": int(top_k), "blend": int(blend),
                       "ce_weight": float(ce_weight), "codec_hidden": int(codec_hidden), "ground": float(ground), "fps": float(fps),
                       "num_joints": int(num_joints)}
        self.fps, self.segment, self.hidden = float(fps), int(segment), int(hidden)
        self.temperature, self.top_k, self.blend = float(temperature), int(top_k), int(blend)
        self.past, self.future, self.ce_weight = int(music_past), int(music_future), float(ce_weight)
        self.ground = float(ground)
        scale = torch.ones(body.PARAM_DIM)
        scale[body.YAW_RATE] = YAW_SCALE
        self.register_buffer("scale", scale, persistent=False)
        self.register_buffer("lower", torch.tensor(body.LOWER), persistent=False)
        self.register_buffer("upper", torch.tensor(body.UPPER), persistent=False)
        # codec
        self.quant = FSQ(tuple(levels))
        self.enc_lower = encoder(2 * len(body.LOWER), codec_hidden, len(levels), downs)
        self.enc_upper = encoder(2 * len(body.UPPER), codec_hidden, len(levels), downs)
        self.dec = decoder(2 * len(levels), codec_hidden, body.PARAM_DIM, downs)
        # code transformer
        self.past_segments = -(-self.past // self.segment)        # music tokens before / after a segment's own
        self.future_segments = -(-self.future // self.segment)
        self.music_in = nn.Linear(in_dim * segment, hidden)
        self.start_in = nn.Linear(body.PARAM_DIM, hidden)
        self.code_lower = nn.Embedding(self.quant.size, hidden)
        self.code_upper = nn.Embedding(self.quant.size, hidden)
        self.music_blocks = nn.ModuleList(Block(hidden, heads, dropout, cross=False) for _ in range(layers))
        self.code_blocks = nn.ModuleList(Block(hidden, heads, dropout, cross=True) for _ in range(layers))
        self.norm = nn.LayerNorm(hidden)
        self.head_lower = nn.Linear(hidden, self.quant.size)
        self.head_upper = nn.Linear(hidden, self.quant.size)

    # -- codec ---------------------------------------------------------------------------
    def _pad(self, x: Tensor) -> Tensor:
        """[T, ..] -> [K * segment, ..], the last frame repeated."""
        extra = -len(x) % self.segment
        return torch.cat([x, x[-1:].expand(extra, *x.shape[1:])]) if extra else x

    def encode(self, params: Tensor) -> tuple[tuple[Tensor, Tensor], Tensor, Tensor]:
        """Body parameters [T, B, 48] -> codes (lower, upper) [K, B], K = ceil(T / segment),
        the quantised latents [K, B, 2 D] (straight-through) and the latents before
        quantisation [K, B, 2 D]. Each half's encoder reads its parameters and their rates."""
        x = self._pad(params) / self.scale                                     # [T', B, 48]
        rate = torch.cat([torch.zeros_like(x[:1]), x[1:] - x[:-1]]) * (self.fps * RATE_SCALE)
        x, rate = x.permute(1, 2, 0), rate.permute(1, 2, 0)                    # [B, 48, T']
        z_l = self.enc_lower(torch.cat([x[:, self.lower], rate[:, self.lower]], 1)).permute(2, 0, 1)  # [K, B, D]
        z_u = self.enc_upper(torch.cat([x[:, self.upper], rate[:, self.upper]], 1)).permute(2, 0, 1)
        (lat_l, code_l), (lat_u, code_u) = self.quant(z_l), self.quant(z_u)
        return (code_l, code_u), torch.cat([lat_l, lat_u], dim=-1), torch.cat([z_l, z_u], dim=-1)

    def decode(self, latents: Tensor) -> Tensor:
        """Quantised latents [K, B, 2 D] -> body parameters [K * segment, B, 48]."""
        return (self.dec(latents.permute(1, 2, 0)).permute(2, 0, 1)) * self.scale

    def decode_codes(self, lower: Tensor, upper: Tensor) -> Tensor:
        """Codes [K, B] of each half -> body parameters [K * segment, B, 48]."""
        return self.decode(torch.cat([self.quant.lookup(lower), self.quant.lookup(upper)], dim=-1))

    # -- code transformer ---------------------------------------------------------------
    def _music(self, audio: Tensor) -> Tensor:
        """Encoded music [B, K, hidden]: one token per segment of features [T, B, F] (padded to
        whole segments; a token reads every frame of its segment), band attention over tokens."""
        audio = self._pad(audio)
        K, B = audio.shape[0] // self.segment, audio.shape[1]
        tokens = audio.reshape(K, self.segment, B, -1).transpose(1, 2).reshape(K, B, -1)  # [K, B, segment F]
        steps = torch.arange(K, device=audio.device)
        mask = band_mask(steps, steps, self.past_segments, self.future_segments)
        x = (self.music_in(tokens) + positions(K, self.hidden, audio.device)[:, None]).transpose(0, 1)  # [B, K, hidden]
        for block in self.music_blocks:
            x, _ = block(x, mask)
        return x

    def _logits(self, music: Tensor, start: Tensor, lower: Tensor, upper: Tensor) -> tuple[Tensor, Tensor]:
        """Logits [K, B, codes] of segments 0..K-1 from the start body [B, 48] and the codes
        [K - 1, B] of segments 0..K-2 (teacher forcing, or what was drawn so far)."""
        K, M = lower.shape[0] + 1, music.shape[1]
        tokens = torch.cat([self.start_in(start / self.scale)[None],
                            self.code_lower(lower) + self.code_upper(upper)])   # [K, B, hidden]
        x = (tokens + positions(K, self.hidden, tokens.device)[:, None]).transpose(0, 1)  # [B, K, hidden]
        steps = torch.arange(K, device=x.device)
        causal = band_mask(steps, steps, K, 0)
        cross = band_mask(steps, torch.arange(M, device=x.device), self.past_segments, self.future_segments)
        for block in self.code_blocks:
            kv = block.cross_attn.keys(music)
            x, _ = block(x, causal, None, kv, cross)
        x = self.norm(x).transpose(0, 1)                                       # [K, B, hidden]
        return self.head_lower(x), self.head_upper(x)

    def _draw(self, logits: Tensor, sample: bool) -> Tensor:
        """A code [B] per row of logits [B, codes]: drawn with temperature and top-k (torch's
        global generator), or the most likely one."""
        if not sample:
            return logits.argmax(-1)
        logits = logits / self.temperature
        if 0 < self.top_k < logits.shape[-1]:
            kth = torch.topk(logits, self.top_k, dim=-1).values[..., -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        return torch.multinomial(torch.softmax(logits, -1), 1)[:, 0]

    def _codes(self, music: Tensor, start: Tensor, sample: bool) -> tuple[Tensor, Tensor]:
        """Codes (lower, upper) [K, B] for the K music tokens of `music` [B, K, hidden], one
        segment after the other from the start body [B, 48]; each step runs one token through
        the blocks against their cached keys (the same attention as `_logits`)."""
        K = music.shape[1]
        kv = [block.cross_attn.keys(music) for block in self.code_blocks]
        steps = torch.arange(K, device=music.device)
        cross = band_mask(steps, steps, self.past_segments, self.future_segments)  # [K, K]
        pos = positions(K, self.hidden, music.device)
        token = self.start_in(start / self.scale)                                 # [B, hidden]
        caches: list = [None] * len(self.code_blocks)
        lower, upper = [], []
        for k in range(K):
            x = (token + pos[k])[:, None]                                          # [B, 1, hidden]
            for i, block in enumerate(self.code_blocks):
                x, caches[i] = block(x, music.new_zeros(1, k + 1), caches[i], kv[i], cross[k:k + 1])
            h = self.norm(x[:, 0])                                                 # [B, hidden]
            lower.append(self._draw(self.head_lower(h), sample))
            upper.append(self._draw(self.head_upper(h), sample))
            token = self.code_lower(lower[-1]) + self.code_upper(upper[-1])
        return torch.stack(lower), torch.stack(upper)

    def _dance(self, audio: Tensor, first_pose: Tensor, sample: bool) -> Tensor:
        """Poses [T, B, 17, 3] danced from first_pose [B, 17, 3] to audio [T, B, F]."""
        T = audio.shape[0]
        first, skeleton, start = body.poses_to_body(first_pose[None].double(), self.fps)
        first, skeleton, start = first[0].to(audio.dtype), skeleton.to(audio.dtype), start.to(audio.dtype)
        first[:, NO_BLEND] = 0.0
        lower, upper = self._codes(self._music(audio), first, sample)
        params = self.decode_codes(lower, upper)[:T]                            # [T, B, 48]
        return self._place(params, first, skeleton, start, first_pose)

    def _place(self, params: Tensor, first: Tensor, skeleton: Tensor, start: Tensor, first_pose: Tensor) -> Tensor:
        """Global poses [T, B, 17, 3] of decoded parameters [T, B, 48], moved into the first
        pose's body `first` [B, 48] over `blend` frames (raised cosine) and started at its place."""
        t = torch.arange(len(params), device=params.device, dtype=params.dtype)
        w = 0.5 * (1 + torch.cos(math.pi * (t / self.blend).clamp(max=1.0)))  # 1 -> 0
        offset = first - params[0]
        offset[:, NO_BLEND] = 0.0
        params = params + w[:, None, None] * offset[None]
        poses = body.body_to_poses(params, skeleton, start, self.fps)
        if self.ground > 0:
            lowest = poses[..., list(FEET), 1].min(-1).values                  # [T, B] m
            drop = self.ground * (1 - w)[:, None] * lowest                        # none at frame 0
            poses = poses - torch.stack([torch.zeros_like(drop), drop, torch.zeros_like(drop)], -1)[:, :, None]
        return torch.cat([first_pose[None], poses[1:]])

    # -- the model contract ---------------------------------------------------------------
    def _check(self, audio: Tensor, first_pose: Tensor, target: Tensor | None, teacher_forcing: float):
        in_dim = self.config["in_dim"]
        if audio.dim() != 3 or audio.shape[2] != in_dim or audio.shape[0] < 1 or audio.shape[1] < 1:
            raise ValueError(f"audio must be [T >= 1, B >= 1, {in_dim}], got {list(audio.shape)}")
        T, B, _ = audio.shape
        if tuple(first_pose.shape) != (B, NUM_JOINTS, 3):
            raise ValueError(f"first_pose must be [{B}, {NUM_JOINTS}, 3], got {list(first_pose.shape)}")
        if not 0.0 <= teacher_forcing <= 1.0:
            raise ValueError(f"teacher_forcing must lie in [0, 1], got {teacher_forcing}")
        if target is not None and tuple(target.shape) != (T, B, NUM_JOINTS, 3):
            raise ValueError(f"target must be [{T}, {B}, {NUM_JOINTS}, 3], got {list(target.shape)}")
        if teacher_forcing > 0.0 and target is None:
            raise ValueError("teacher_forcing > 0 needs a target")

    def forward(self, audio: Tensor, first_pose: Tensor, target: Tensor | None = None,
                teacher_forcing: float = 0.0) -> VocabOutput:
        """audio [T, B, F], first_pose [B, 17, 3] m, target [T, B, 17, 3] -> VocabOutput.

        With a target: its codes, their reconstruction and the transformer's logits on them;
        poses are the reconstruction when teacher_forcing > 0, else the model's own most likely
        codes decoded from first_pose (as generation, without sampling)."""
        teacher_forcing = float(teacher_forcing)
        self._check(audio, first_pose, target, teacher_forcing)
        if target is None:
            return VocabOutput(self._dance(audio, first_pose, sample=False))
        T = audio.shape[0]
        with torch.no_grad():
            params, skeleton, start = body.poses_to_body(target, self.fps)
        codes, latents, raw = self.encode(params)
        decoded = self.decode(latents)[:T]
        lower, upper = codes[0].detach(), codes[1].detach()
        first = params[0].clone()
        first[:, NO_BLEND] = 0.0
        logits = self._logits(self._music(audio), first, lower[:-1], upper[:-1])
        if teacher_forcing > 0.0:
            poses = lambda: torch.cat([first_pose[None], body.body_to_poses(decoded, skeleton, start, self.fps)[1:]])
        else:
            with torch.no_grad():
                poses = self._dance(audio, first_pose, sample=False)
        return VocabOutput(poses, params, decoded, skeleton, (lower, upper), logits, raw)

    def objective(self, out: VocabOutput, target: Tensor, loss_fn=None) -> Tensor:
        """Reconstruction of the target's body (local joint positions m^2 x POS_WEIGHT, their
        velocities (m/s)^2 x VEL_WEIGHT, parameters x PARAM_WEIGHT, pre-quantisation latents x
        LATENT_WEIGHT) + ce_weight x the code
        cross-entropy of both halves (nats). loss_fn is not used."""
        true = body.body_to_poses(out.params, out.skeleton, None, self.fps)     # [T, B, 17, 3] local
        pred = body.body_to_poses(out.decoded, out.skeleton, None, self.fps)
        loss = POS_WEIGHT * torch.mean((pred - true) ** 2)
        if len(true) > 1:
            loss = loss + VEL_WEIGHT * torch.mean(((pred[1:] - pred[:-1]) - (true[1:] - true[:-1])) ** 2) * self.fps ** 2
        loss = loss + PARAM_WEIGHT * torch.mean(((out.decoded - out.params) / self.scale) ** 2)
        loss = loss + LATENT_WEIGHT * torch.mean(out.latents ** 2)
        ce = sum(F.cross_entropy(lg.reshape(-1, lg.shape[-1]), code.reshape(-1))
                 for lg, code in zip(out.logits, out.codes))
        return loss + self.ce_weight * ce

    @torch.no_grad()
    def generate(self, audio: Tensor, first_pose: Tensor) -> Tensor:
        """Dance in eval mode: audio [T, B, F], first_pose [B, 17, 3] -> poses [T, B, 17, 3]
        (frame 0 = first_pose). Codes are drawn with torch's global generator."""
        was_training = self.training
        self.eval()
        try:
            self._check(audio, first_pose, None, 0.0)
            return self._dance(audio, first_pose, sample=True)
        finally:
            self.train(was_training)
