"""`motion_vocab`: dancing from a vocabulary of real motion (Bailando's choreographic memory).

The dance lives in the body space of kakashi.body (joint rotations on the dancer's rigid
skeleton, hinged knees and elbows, the root's height, velocity and yaw rate), so every decoded
frame is a whole body whatever the network outputs (a rotation or limb direction the decoder
leaves ill-defined, its vector near zero, is filled in from the steps either side:
kakashi.body.mend_directions). Two parts, trained in one loop:

- a motion codec: one convolutional encoder per half of the body (lower: root and legs,
  upper: torso, head and arms) maps each SEGMENT-frame segment to a code by finite scalar
  quantisation (FSQ, Mentzer et al. 2023: each latent rounded to one of `levels` values, no
  codebook to collapse, no commitment term), and one decoder per half turns its code sequence
  back into whole segments of its body parameters (its receptive field spans neighbouring codes,
  so segments join smoothly; a half decoded from its own codes only cannot leave its codebook
  unused);
- a code transformer: token k reads the codes of segments before k (token 0: the first pose)
  and, by banded cross-attention, the music around segment k, and predicts both codes of
  segment k (the upper one knowing the lower); generation samples them with temperature and
  top-k, and, for a model trained hearing some windows as silence (`music_dropout`), with the
  music's pull weighed by `guidance`, and with `dynamics` the song's loudness leans each draw
  towards the codes that move more (loud passages) or less (quiet ones), and with `rest` a rest
  that has lasted so many beats is ended by leaving out the calmer codes; it can learn from each
  window's sound shifted and noisy (`music_noise`), so that music unlike the training songs' is
  not heard as a call for other moves.

The objective: reconstruction of the true body (positions of the local body in m^2, their
velocities, or with `turns` those of the body travelling and turning, the parameters) plus the
cross-entropy of the transformer on the codes of the true motion (detached). Polishing
(`polish`, a preset's `polish` epochs after the others) trains the decoders alone on, with the
velocities of `turns`: the codes and the transformer stay, the decoded dance keeps the pace.
Generation dances a whole song in one call (`whole_songs`): it starts from `first_pose` (its
skeleton, place and heading; the decoded parameters are blended into its body over `blend`
frames) and draws the codes a few at a time, each few primed with the codes before them, so the
dance never starts again and the decoder joins every segment.

With `beat_steps` > 0 the model works in beat time (kakashi.models.beat_time): each window is
warped onto a grid of `beat_steps` points per beat read from the `rhythm` features' beat phase,
starting on a beat, so with `segment` = `beat_steps` every code is one beat of motion (half a
beat with half as many), a move takes the same codes at any tempo, and the dance is warped back
onto the song's frames: its moves land on the beats by construction, and `snap` moves the
limbs' motion beats (hip-relative: the moves', not the travel's) that the codes leave near a
beat onto it (kakashi.models.beat_time.snap), `accent` gives the beats where the whole body has
none a motion beat of their own, time slowing through them (kakashi.models.beat_time.accent),
and `resnap` snaps the accented dance's motion beats, of limbs and whole body, again (those
that the accent's slowing moved off the beat). With `smooth` > 0 the body parameters read at
the frames are smoothed over a fraction of a frame before the body is built: the decoder's and
the grid's frame-to-frame jitter (jerk) goes, the moves stay. With `plant` > 0 the dancer is
shifted over the floor, frame by frame, so the foot it stands on does not slide
(kakashi.models.objectives.plant_feet), and with `hold` that foot is held exactly still, the
leg bent to it by IK (kakashi.models.objectives.hold_stance).
"""
from __future__ import annotations

import contextlib
import math
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import body
from ..audio import FEATURE_DIMS, RICH_COLUMNS
from ..skeleton import FEET, NUM_JOINTS
from . import Output, register
from . import beat_time, objectives
from .attention import Block, band_mask, positions

POS_WEIGHT = 400.0   # 1 / (0.05 m)^2: a 5 cm joint error costs 1
VEL_WEIGHT = 16.0    # 1 / (0.25 m/s)^2: the decoded motion keeps its pulses (4: BAS and Div_k lower)
PARAM_WEIGHT = 1.0   # body parameters (rad, m, m/s, rad/s): keeps them near the fitted ones
YAW_SCALE = 4.0      # rad/s: the yaw rate is divided by this before the encoders (spins reach ~4 rad/s)
RATE_SCALE = 0.1     # s: the encoders also read each parameter's rate of change times this (0.1 s of motion)
LATENT_WEIGHT = 0.01  # on the mean squared pre-quantisation latent: keeps the FSQ bound out of tanh's
                      # flat tails, where a half's codes stop changing and its codebook collapses to one code
NO_BLEND = [*range(body.VELOCITY.start, body.YAW_RATE.stop)]   # root rates: not blended to the first pose
MOVE = 4               # codes (two beats in beat time) after which `copy` offers a move again
CHUNK = 4              # codes (two beats in beat time) drawn at a time, each chunk primed with the `context` before it
SOUND = slice(RICH_COLUMNS["onset"].start, RICH_COLUMNS["chroma"].stop)   # onset, MFCC, chroma: what music_noise shifts
DECODE_REACH = 4       # codes before a segment decoded to find the body it starts from
LOUDNESS_SPAN = 0.5    # training stds of MFCC 0 from a song's median over which `dynamics` leans in full
REST_WINDOW = 4        # beats over which `rest` averages the dancer's speed (2 s at 120 bpm)
REST_SPEED = 0.12      # m/s: mean joint speed about the hip below which that average is a rest (as the calm
                       # frames of kakashi.metrics.motion.calm_steps)
# the settings of how a trained model dances, not of what it learned (a checkpoint may take others)
GENERATION = ("temperature", "top_k", "context", "blend", "ground", "snap", "accent", "accent_width", "resnap",
              "smooth", "plant", "hold", "face", "guidance", "dynamics", "rest")


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


def _standardised(x: Tensor) -> Tensor:
    """x [N] in standard deviations from its mean."""
    return (x - x.mean()) / x.std().clamp(min=1e-8)


@register("motion_vocab")
class MotionVocab(nn.Module):
    """Motion codes in the body space and a music-conditioned transformer over them.

    in_dim: audio features per frame (44 `rhythm`); hidden: width of the transformer;
    codec_hidden: channels of the codec's convolutions; ce_weight: of the code cross-entropy;
    layers: transformer blocks of the music encoder and of the code decoder, each; dropout;
    heads; segment: frames per code (a power of 2); levels: FSQ levels per latent dimension of
    each half (codes per half = their product); music_past / music_future: frames of music (in whole segments) a
    segment attends to before its start and after its end; temperature and top_k: sampling of
    the codes at generation (top_k 0: all); context: codes (>= 1) each CHUNK of codes drawn at
    generation is primed with (`_song_codes`; 8: four beats in beat time); blend: frames over
    which generation moves from the first pose into the decoded motion; ground: share (0..1) of
    the lowest ankle's height above y = 0 taken off the generated dancer after the blend (global
    poses with the floor at 0: a dancer who does not jump keeps a foot down; 0 for root-relative
    data); beat_steps: grid points per beat of beat time (0: frame time; > 0 needs the 44
    `rhythm` features); snap:
    beats (< 0.5) within which a motion beat of the limbs (a minimum of their hip-relative
    speed) is moved onto the music's beat (beat time only, kakashi.models.beat_time.snap; 0: not
    moved); accent: how much time slows (0..0.95 of its pace) through a beat the whole body
    passes without a motion beat (beat time only, kakashi.models.beat_time.accent; 0: not at
    all); accent_width: seconds (> 0) within which a beat's nearest motion beat spares it the
    accent (by 1 - exp(-1/2) of `accent` at that distance; narrower: a beat whose motion beat is
    a frame or so off gets one on it, and the dance jerks more); resnap: beats (< 0.5) within
    which the accented dance's motion beats (of limbs and whole body, their speeds averaged) are
    snapped again (beat time only; 0: not); smooth:
    frames (Gaussian sigma) over which the body parameters read at the frames are smoothed
    before the body is built on them (the frame-to-frame jitter of decoding and of reading the
    grid taken out; bones stay exact; 0: not smoothed); plant: softness (m) with which the foot
    on the floor is held still, the dancer shifted over it (kakashi.models.objectives.plant_feet;
    0: feet left as decoded); hold: the foot the dancer stands on held exactly still at every
    frame, its leg bent to it by IK (kakashi.models.objectives.hold_stance; after `plant`);
    face: seconds over which the heading that the dance's turns add up to is pulled back to the
    first pose's (kakashi.models.objectives.face_front; 0: not);
    music_dropout: share (0..1) of training windows whose music the transformer hears as a
    learned null token, so it also learns the codes' course without music; guidance: at
    generation, codes drawn from the logits without music plus `guidance` times the music's
    difference to them (classifier-free guidance, Ho & Salimans 2022: 0 deaf to the music, 1
    as heard, other than 1 only with music_dropout > 0); music_noise: std (normalised units) of
    the offset per window and column and of the noise per step added to the onset, MFCC and
    chroma a training window is heard with (`_noisy`), so a song that sounds unlike the training
    songs is not heard as a reason for other moves (0: heard as they are); dynamics: at
    generation, logits added to each code in proportion to how much it moves (`code_motion`, in
    standard deviations over the codebook) times how much louder than the song's median its
    segment is (`_lift`: -dynamics LOUDNESS_SPAN or more below it, +dynamics as far above), so
    the dancer rests in the song's quiet passages and moves in its loud ones, music it has not
    heard included (0: not); copy: a copy head, each half's next code drawn from its head's
    distribution and the code of one move before (MOVE codes) mixed by a gate learned from the
    same state, so holding a move, as the synthetic dancer holds one for a phrase, is one learned
    choice instead of hundreds of logits (kakashi.analysis.move_repeats); rest: beats after which
    a rest ends at generation (beat time only; `_rested`): once the dance drawn so far has moved
    slower than REST_SPEED over its last `rest` beats and its last REST_WINDOW, each half's codes
    that move less than its codebook's average (`code_motion` < 0) are left out of the next
    chunk's draws, until it moves again, so a calm mode the transformer wanders into does not
    last the song (0: never); turns: the codec's velocity term taken on the body as it moves
    through the world, seen from its own heading at each frame (`_heading_velocity`): the root's
    travel and turns count as the limbs' motion does (False: on the local body, which neither
    travels nor turns, so the decoded dancer travels and turns slower than the true one); fps.
    """

    uses_loss = False
    whole_songs = True

    def __init__(self, in_dim: int = 44, hidden: int = 128, layers: int = 2, dropout: float = 0.1,
                 heads: int = 4, segment: int = 8, levels: tuple[int, ...] | list[int] = (7, 5, 5, 5),
                 music_past: int = 24, music_future: int = 24, temperature: float = 1.0, top_k: int = 0,
                 context: int = 4, blend: int = 16, ce_weight: float = 1.0, codec_hidden: int = 64, ground: float = 0.0,
                 beat_steps: int = 0, snap: float = 0.0, accent: float = 0.0,
                 accent_width: float = beat_time.ACCENT_WIDTH_S, resnap: float = 0.0,
                 smooth: float = 0.0, plant: float = 0.0, hold: bool = False, face: float = 0.0,
                 music_dropout: float = 0.0, guidance: float = 1.0, music_noise: float = 0.0,
                 dynamics: float = 0.0, copy: bool = False, rest: float = 0.0, turns: bool = False,
                 fps: float = 24.0, num_joints: int = 17):
        super().__init__()
        downs = int(round(math.log2(segment)))
        if segment < 2 or 2 ** downs != segment:
            raise ValueError(f"segment must be a power of 2 (frames per code), got {segment}")
        if hidden % heads or hidden % 2:
            raise ValueError(f"hidden ({hidden}) must be even and divisible by heads ({heads})")
        if num_joints != NUM_JOINTS:
            raise ValueError(f"motion_vocab works on the {NUM_JOINTS}-joint skeleton, got {num_joints}")
        if temperature <= 0 or top_k < 0 or blend < 1 or context < 1:
            raise ValueError("temperature must be > 0, top_k >= 0, context >= 1 and blend >= 1")
        if not 0.0 <= ground <= 1.0:
            raise ValueError(f"ground must lie in [0, 1], got {ground}")
        if not 0.0 <= snap < 0.5 or (snap and not beat_steps):
            raise ValueError(f"snap must lie in [0, 0.5) beats, and be > 0 only in beat time; got {snap}")
        if not 0.0 <= accent < 0.95 or (accent and not beat_steps):
            raise ValueError(f"accent must lie in [0, 0.95), and be > 0 only in beat time; got {accent}")
        if not accent_width > 0:
            raise ValueError(f"accent_width must be > 0 s, got {accent_width}")
        if not 0.0 <= resnap < 0.5 or (resnap and not beat_steps):
            raise ValueError(f"resnap must lie in [0, 0.5) beats, and be > 0 only in beat time; got {resnap}")
        if smooth < 0:
            raise ValueError(f"smooth must be >= 0 frames, got {smooth}")
        if not 0.0 <= music_dropout < 1.0:
            raise ValueError(f"music_dropout must lie in [0, 1), got {music_dropout}")
        if not guidance >= 0.0 or (guidance != 1.0 and not music_dropout):
            raise ValueError(f"guidance must be >= 0, and other than 1 only for a model trained with "
                             f"music_dropout > 0; got {guidance}")
        if not music_noise >= 0:
            raise ValueError(f"music_noise must be >= 0, got {music_noise}")
        if not dynamics >= 0:
            raise ValueError(f"dynamics must be >= 0, got {dynamics}")
        if not rest >= 0 or (rest and not beat_steps):
            raise ValueError(f"rest must be >= 0 beats, and > 0 only in beat time; got {rest}")
        if plant < 0:
            raise ValueError(f"plant must be >= 0 m, got {plant}")
        if not face >= 0:
            raise ValueError(f"face must be >= 0 s, got {face}")
        if beat_steps < 0 or (beat_steps and in_dim != FEATURE_DIMS["rhythm"]):
            raise ValueError(f"beat_steps must be >= 0, and > 0 only with the {FEATURE_DIMS['rhythm']} "
                             f"`rhythm` features (their beat phase); got {beat_steps} with {in_dim}")
        levels = [int(v) for v in levels]
        self.config = {"name": "motion_vocab", "in_dim": int(in_dim), "hidden": int(hidden), "layers": int(layers),
                       "dropout": float(dropout), "heads": int(heads), "segment": int(segment), "levels": levels,
                       "music_past": int(music_past), "music_future": int(music_future),
                       "temperature": float(temperature), "top_k": int(top_k), "context": int(context),
                       "blend": int(blend),
                       "ce_weight": float(ce_weight), "codec_hidden": int(codec_hidden), "ground": float(ground),
                       "beat_steps": int(beat_steps), "snap": float(snap), "accent": float(accent),
                       "accent_width": float(accent_width), "resnap": float(resnap), "smooth": float(smooth),
                       "plant": float(plant), "hold": bool(hold),
                       "face": float(face), "music_dropout": float(music_dropout), "guidance": float(guidance),
                       "music_noise": float(music_noise), "dynamics": float(dynamics), "copy": bool(copy),
                       "rest": float(rest), "turns": bool(turns), "fps": float(fps),
                       "num_joints": int(num_joints)}
        self.fps, self.segment, self.hidden = float(fps), int(segment), int(hidden)
        self.temperature, self.top_k, self.blend = float(temperature), int(top_k), int(blend)
        self.context = int(context)
        self.past, self.future, self.ce_weight = int(music_past), int(music_future), float(ce_weight)
        self.ground, self.beat_steps, self.snap = float(ground), int(beat_steps), float(snap)
        self.accent, self.accent_width = float(accent), float(accent_width)
        self.resnap, self.smooth = float(resnap), float(smooth)
        self.plant, self.hold, self.face = float(plant), bool(hold), float(face)
        self.music_dropout, self.guidance, self.music_noise = float(music_dropout), float(guidance), float(music_noise)
        self.dynamics, self.copy, self.rest, self.turns = float(dynamics), bool(copy), float(rest), bool(turns)
        self.loudness = 0 if in_dim == FEATURE_DIMS["mfcc"] else RICH_COLUMNS["mfcc"].start   # MFCC 0's column
        scale = torch.ones(body.PARAM_DIM)
        scale[body.YAW_RATE] = YAW_SCALE
        self.register_buffer("scale", scale, persistent=False)
        self.register_buffer("lower", torch.tensor(body.LOWER), persistent=False)
        self.register_buffer("upper", torch.tensor(body.UPPER), persistent=False)
        # codec
        self.quant = FSQ(tuple(levels))
        self.enc_lower = encoder(2 * len(body.LOWER), codec_hidden, len(levels), downs)
        self.enc_upper = encoder(2 * len(body.UPPER), codec_hidden, len(levels), downs)
        self.dec_lower = decoder(len(levels), codec_hidden, len(body.LOWER), downs)
        self.dec_upper = decoder(len(levels), codec_hidden, len(body.UPPER), downs)
        halves = torch.tensor([*body.LOWER, *body.UPPER])
        self.register_buffer("unsplit", torch.argsort(halves), persistent=False)  # halves -> parameter order
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
        self.upper_given_lower = nn.Embedding(self.quant.size, hidden)   # the upper code is drawn knowing the lower
        if music_dropout:   # the music token of a window heard as silence (classifier-free guidance)
            self.null_music = nn.Parameter(torch.zeros(hidden))
        if copy:            # per half: how likely the code of one move before comes again
            self.copy_gate = nn.Linear(hidden, 2)

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
        """Quantised latents [K, B, 2 D] -> body parameters [K * segment, B, 48]: each half
        decoded from its own codes only, so each codebook has to carry its half's motion."""
        lower, upper = latents.permute(1, 2, 0).chunk(2, dim=1)                  # [B, D, K] each
        halves = torch.cat([self.dec_lower(lower), self.dec_upper(upper)], dim=1)  # [B, 48, K seg]
        return halves[:, self.unsplit].permute(2, 0, 1) * self.scale

    def decode_codes(self, lower: Tensor, upper: Tensor) -> Tensor:
        """Codes [K, B] of each half -> body parameters [K * segment, B, 48]."""
        return self.decode(torch.cat([self.quant.lookup(lower), self.quant.lookup(upper)], dim=-1))

    def code_motion(self) -> tuple[Tensor, Tensor]:
        """How much each code of each half (lower, upper) moves [codes], in standard deviations
        over the codebook: the mean frame-to-frame change of its half's body parameters over a
        segment decoded from the code repeated (the root's planar velocity and yaw rate left out:
        travelling is not a move of the body)."""
        codes = torch.arange(self.quant.size, device=self.scale.device).expand(3, -1)   # [3, codes]
        params = self.decode_codes(codes, codes)[self.segment:2 * self.segment + 1]     # the middle segment
        change = params.diff(dim=0).abs().mean(0)                                      # [codes, 48]
        halves = ([c for c in body.LOWER if c not in NO_BLEND], body.UPPER)
        return tuple(_standardised(change[:, cols].sum(-1)) for cols in halves)

    def _lift(self, audio: Tensor) -> Tensor | None:
        """Each segment's lean towards moving codes [K, B] (`dynamics`): dynamics times how much
        louder than the song's median segment it is (mean MFCC 0 of normalised features audio
        [T, B, F]) over LOUDNESS_SPAN, within -dynamics .. +dynamics (a song as loud throughout
        leans little); None when dynamics is 0."""
        if not self.dynamics:
            return None
        level = self._pad(audio[..., self.loudness])
        level = level.reshape(-1, self.segment, level.shape[1]).mean(1)                # [K, B]
        return self.dynamics * ((level - level.median(0).values) / LOUDNESS_SPAN).clamp(-1.0, 1.0)

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

    def _dropped(self, music: Tensor) -> Tensor:
        """Encoded music [B, K, hidden] with each window's tokens replaced by the null token with
        probability music_dropout (in training only), so the transformer also learns the codes'
        own course without music: the unconditional branch of guidance."""
        if not (self.training and self.music_dropout):
            return music
        drop = torch.rand(music.shape[0], 1, 1, device=music.device) < self.music_dropout
        return torch.where(drop, self.null_music.to(music.dtype), music)

    def _noisy(self, audio: Tensor) -> Tensor:
        """Features [T, B, F] with Gaussian noise on their level and timbre columns (onset
        strength, MFCC, chroma), in training only: an offset per window and column (another
        song's sound) plus noise per step of the model's clock (a frame, or a grid point in beat
        time: another mix), each of std music_noise (normalised units)."""
        if not (self.training and self.music_noise):
            return audio
        heard = audio.clone()
        sound = heard[..., SOUND]
        sound += self.music_noise * (torch.randn_like(sound[:1]) + torch.randn_like(sound))
        return heard

    def _logits(self, music: Tensor, start: Tensor, lower: Tensor, upper: Tensor) -> tuple[Tensor, Tensor]:
        """Logits [K, B, codes] of segments 0..K-1 from the start body [B, 48] and the true codes
        [K, B] (teacher forcing): segment k's from the codes of segments 0..k-1, its upper
        half's also from its own lower code."""
        steps = torch.arange(lower.shape[0], device=music.device)
        cross = band_mask(steps, torch.arange(music.shape[1], device=music.device), self.past_segments,
                          self.future_segments)
        kv = [block.cross_attn.keys(music) for block in self.code_blocks]
        x, _ = self._primed(start, lower[:-1], upper[:-1], kv, cross)
        x = self.norm(x).transpose(0, 1)                                       # [K, B, hidden]
        lo, up = self.head_lower(x), self.head_upper(x + self.upper_given_lower(lower))
        if not self.copy or len(lower) <= MOVE:
            return lo, up
        return tuple(torch.cat([logits[:MOVE], self._copied(logits[MOVE:], x[MOVE:], codes[:-MOVE], half)])
                     for half, (logits, codes) in enumerate(((lo, lower), (up, upper))))

    def _copied(self, logits: Tensor, h: Tensor, before: Tensor, half: int) -> Tensor:
        """Log-probabilities [.., codes] of one half's next code (`copy`): its head's distribution
        (logits [.., codes]) and the code of one move before (`before` [..]) mixed by the gate
        sigmoid(copy_gate(h)) of that half (h [.., hidden])."""
        gate = self.copy_gate(h)[..., half, None]
        logp = F.log_softmax(logits, -1) + F.logsigmoid(-gate)
        at = before[..., None]
        return logp.scatter(-1, at, torch.logaddexp(logp.gather(-1, at), F.logsigmoid(gate)))

    def _primed(self, start: Tensor, lower: Tensor, upper: Tensor, kv: list, cross: Tensor) -> tuple[Tensor, list]:
        """The code blocks over the start body [B, 48] and the codes [K - 1, B] after it, each
        token seeing those before it (causal) and the music's keys/values `kv` (one per block)
        through `cross` [K, M]. Returns x [B, K, hidden] and each block's keys/values (the cache
        later tokens attend to)."""
        x = torch.cat([self.start_in(start / self.scale)[:, None],
                       (self.code_lower(lower) + self.code_upper(upper)).transpose(0, 1)], 1)
        x = x + positions(x.shape[1], self.hidden, x.device)
        steps = torch.arange(x.shape[1], device=x.device)
        causal, caches = band_mask(steps, steps, len(steps), 0), []
        for block, music in zip(self.code_blocks, kv):
            x, cache = block(x, causal, None, music, cross)
            caches.append(cache)
        return x, caches

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

    def _codes(self, music: Tensor, start: Tensor, sample: bool, given: tuple[Tensor, Tensor] | None = None,
               offset: int = 0, count: int | None = None,
               bias: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        """Codes (lower, upper) [count, B] of segments whose music tokens are `music` [B, M,
        hidden] from index `offset` on (count default M), one segment after the other from the
        start body [B, 48]: the `given` codes [G, B] first (as in teacher forcing), then drawn
        ones. The given codes run through the blocks at once (`_primed`, as in `_logits`), then
        each drawn code's token alone against their cached keys and values. With guidance other
        than 1, each row is also run hearing the null music, and codes are drawn from the
        unconditional logits plus `guidance` times the music's difference to them (0: the codes'
        own course, deaf to the music; 1: the music's logits alone). `bias`: logits [count, B, codes]
        added to each half's (lower, upper) before it is drawn."""
        B, guided = len(start), self.guidance != 1.0
        if guided:   # rows hearing the music, then the same rows hearing silence
            music = torch.cat([music, self.null_music.to(music.dtype).expand_as(music)])
            start = torch.cat([start, start])
            given = None if given is None else (given[0].repeat(1, 2), given[1].repeat(1, 2))
        both = (lambda c: torch.cat([c, c])) if guided else (lambda c: c)
        M = music.shape[1]
        count = M - offset if count is None else count
        lower, upper = ([], []) if given is None else (list(given[0]), list(given[1]))   # codes [B or 2B]
        G = len(lower)
        kv = [block.cross_attn.keys(music) for block in self.code_blocks]
        cross = band_mask(torch.arange(count, device=music.device) + offset, torch.arange(M, device=music.device),
                          self.past_segments, self.future_segments)              # [count, M]
        pos = positions(count, self.hidden, music.device)
        caches: list = [None] * len(self.code_blocks)
        lean = lambda logits, k, half: logits if bias is None else logits + bias[half][k]
        copied = lambda logits, h, codes, k, half: (logits if not self.copy or k < MOVE else
                                                    self._copied(logits, h[:B], codes[k - MOVE][:B], half))
        if G:    # the start and all given codes but the last, at once
            _, caches = self._primed(start, given[0][:-1], given[1][:-1], kv, cross[:G])
            token = (self.code_lower(lower[-1]) + self.code_upper(upper[-1]))[:, None]
        else:
            token = self.start_in(start / self.scale)[:, None]                    # [B, 1, hidden]
        for k in range(G, count):
            x = token + pos[k]                                                     # [B, 1, hidden]
            for i, block in enumerate(self.code_blocks):
                x, caches[i] = block(x, None, caches[i], kv[i], cross[k:k + 1])
            h = self.norm(x[:, 0])                                                 # [B or 2B, hidden]
            lower.append(both(self._draw(lean(copied(self._guided(self.head_lower(h)), h, lower, k, 0), k, 0), sample)))
            up_logits = self.head_upper(h + self.upper_given_lower(lower[-1]))
            upper.append(both(self._draw(lean(copied(self._guided(up_logits), h, upper, k, 1), k, 1), sample)))
            token = (self.code_lower(lower[-1]) + self.code_upper(upper[-1]))[:, None]
        return torch.stack(lower)[:, :B], torch.stack(upper)[:, :B]

    def _guided(self, logits: Tensor) -> Tensor:
        """Logits [B, codes] to draw from: with guidance other than 1, logits [2B, codes] of
        rows hearing the music then silence, combined as u + guidance (c - u)."""
        if self.guidance == 1.0:
            return logits
        c, u = logits.chunk(2)
        return u + self.guidance * (c - u)

    def _song_codes(self, audio: Tensor, first: Tensor, sample: bool, skeleton: Tensor | None = None,
                    at: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Codes (lower, upper) [K, B] of a whole song's features audio [T, B, F], K = ceil(T /
        segment), drawn CHUNK at a time: each chunk starts from the body the `context` codes
        before it decode to (the first from `first` [B, 48]) and is primed with those codes, so
        memory stays bounded and the dance goes on across chunks instead of starting again.
        Primed with more than the two beats before (`context` 8: four), each song's dance keeps
        more of its own moves (README: "A longer priming"). With `rest`, the dance of
        the codes drawn so far on `skeleton` [B, 17, 3], its codes timed by each frame's grid
        position `at` [T, B], is watched for rests (`_rested`)."""
        K, seg = -(-audio.shape[0] // self.segment), self.segment
        reach = (len(self.music_blocks) + 1) * max(self.past_segments, self.future_segments)  # music tokens a code hears
        lower = torch.zeros(K, audio.shape[1], dtype=torch.long, device=audio.device)
        upper = torch.zeros_like(lower)
        chunks = [(k0, max(0, k0 - self.context), min(K, k0 + CHUNK)) for k0 in range(0, K, CHUNK)]
        heard = [(max(0, c0 - reach), min(K, k1 + reach)) for _, c0, k1 in chunks]
        lift = self._lift(audio)
        moves = self.code_motion() if lift is not None or self.rest else None
        seconds = self._code_seconds(at, K) if self.rest else None
        for (k0, c0, k1), (m0, _), music in zip(chunks, heard, self._music_of(audio, heard)):
            start = first if c0 == 0 else self._body_at(lower, upper, c0)
            bias = None
            if moves is not None:   # [k1 - c0, B, codes] per half
                lean = 0.0 if lift is None else lift[c0:k1, :, None]
                rested = self._rested(lower[:k0], upper[:k0], skeleton, seconds)[:, None]    # [B, 1]
                bias = tuple(torch.where(rested & (m < 0), float("-inf"), lean * m).expand(k1 - c0, len(first), -1)
                             for m in moves)
            lo, up = self._codes(music, start, sample, (lower[c0:k0], upper[c0:k0]), c0 - m0, k1 - c0, bias)
            lower[k0:k1], upper[k0:k1] = lo[k0 - c0:], up[k0 - c0:]
        return lower, upper

    def _rested(self, lower: Tensor, upper: Tensor, skeleton: Tensor, seconds: Tensor | None) -> Tensor:
        """[B]: whether the dance of the codes (lower, upper) [k, B] drawn so far (on `skeleton`
        [B, 17, 3], each code lasting `seconds` [K, B] of the song) rests: the mean speed of its 16
        non-root joints about the hip below REST_SPEED over its last `rest` beats and over its last
        REST_WINDOW (so a rest ends only when the dancer moves again)."""
        per_beat = self.beat_steps / self.segment                                  # codes per beat
        span, window = (max(1, round(b * per_beat)) for b in (self.rest, REST_WINDOW))  # codes
        k, n = len(lower), max(span, window)
        if not self.rest or k <= n:
            return torch.zeros(lower.shape[1], dtype=torch.bool, device=lower.device)
        k0 = max(0, k - n - DECODE_REACH)
        params = self.decode_codes(lower[k0:], upper[k0:])[(k - k0 - n) * self.segment - 1:]   # [n segment + 1, B, 48]
        poses = body.body_to_poses(params, skeleton, None, self.fps)
        about = poses[..., 1:, :] - poses[..., :1, :]
        moved = (about[1:] - about[:-1]).norm(dim=-1).mean(-1)                      # [codes segment, B] m per step
        moved = moved.unflatten(0, (-1, self.segment)).sum(1)                       # [codes, B] m per code
        speed = lambda n: moved[-n:].sum(0) / seconds[k - n:k].sum(0).clamp(min=1e-6)   # [B] m/s over the last n codes
        return (speed(span) < REST_SPEED) & (speed(window) < REST_SPEED)

    def _code_seconds(self, at: Tensor, codes: int) -> Tensor:
        """Seconds [codes, B] of the song each code spans: the frames whose grid position `at`
        [T, B] falls in its segment (the last code also those past it), over fps."""
        index = (at // self.segment).long().clamp(max=codes - 1)
        return torch.zeros(codes, at.shape[1], dtype=at.dtype, device=at.device).scatter_add_(
            0, index, torch.ones_like(at)) / self.fps

    def _music_of(self, audio: Tensor, spans: list[tuple[int, int]], batch: int = 64) -> Iterator[Tensor]:
        """The encoded music [B, m1 - m0, hidden] of each span (m0, m1) of segments of the features
        audio [T, B, F], in order: `_music` of each span alone, computed for up to `batch` spans of
        the same length at once."""
        seg, T, i = self.segment, audio.shape[0], 0
        frames = [min(m1 * seg, T) - m0 * seg for m0, m1 in spans]
        while i < len(spans):
            j = i + 1
            while j < min(len(spans), i + batch) and frames[j] == frames[i]:
                j += 1
            x = torch.stack([audio[m0 * seg:m0 * seg + frames[i]] for m0, _ in spans[i:j]], 1)  # [t, n, B, F]
            yield from self._music(x.flatten(1, 2)).unflatten(0, (j - i, audio.shape[1]))
            i = j

    def _body_at(self, lower: Tensor, upper: Tensor, k: int) -> Tensor:
        """The body [B, 48] (root rates zeroed, as a start body) where segment k of the codes
        [K, B] begins, decoded from the codes around it."""
        k0 = max(0, k - DECODE_REACH)
        params = self.decode_codes(lower[k0:k + 1], upper[k0:k + 1])[(k - k0) * self.segment].clone()
        params[:, NO_BLEND] = 0.0
        return params

    def _dance(self, audio: Tensor, first_pose: Tensor, sample: bool) -> Tensor:
        """Poses [T, B, 17, 3] danced from first_pose [B, 17, 3] to audio [T, B, F] (in beat
        time when beat_steps > 0: the music warped onto the grid, danced there, the body read
        back at every frame's grid position); the stance foot held still last (`hold`)."""
        poses = self._dance_on(*self._on_clock(audio), first_pose, sample)
        return objectives.hold_stance(poses) if self.hold else poses

    def _on_clock(self, audio: Tensor) -> tuple[Tensor, Tensor | None]:
        """Features audio [T, B, F] on the model's clock [J, B, F] and each frame's position on
        it [T, B] (beat time: the beat grid), or audio itself and None (frame time)."""
        if not self.beat_steps:
            return audio, None
        index, at = self.beat_grid(audio)
        return beat_time.sample(audio, index), at

    def beat_grid(self, audio: Tensor) -> tuple[Tensor, Tensor]:
        """The beat-time grid of `rhythm` features audio [T, B, F] (beat_steps > 0): the frame
        index [J, B] of each grid point (reaching past every frame) and each frame's grid position [T, B]."""
        b = beat_time.beat_counts(audio, self.fps)
        start, index = beat_time.grid(b, self.beat_steps, cover=True)
        return index, beat_time.to_frames(b, start, self.beat_steps)

    def _first_body(self, first_pose: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
        """The body [B, 48] of first_pose [B, 17, 3] (root rates zeroed, as a start body), its
        skeleton and its place, as body.poses_to_body gives them."""
        first, skeleton, start = body.poses_to_body(first_pose[None].double(), self.fps)
        first, skeleton, start = first[0].to(dtype), skeleton.to(dtype), start.to(dtype)
        first[:, NO_BLEND] = 0.0
        return first, skeleton, start

    def _dance_on(self, audio: Tensor, at: Tensor | None, first_pose: Tensor, sample: bool) -> Tensor:
        """Poses danced from first_pose [B, 17, 3] to audio [J, B, F] on the model's clock: at
        its J steps, or at the fractional steps `at` [T, B] (`_place`)."""
        first, skeleton, start = self._first_body(first_pose, audio.dtype)
        lower, upper = self._song_codes(audio, first, sample, skeleton, at)
        params = body.mend_directions(self.decode_codes(lower, upper)[:audio.shape[0]])   # [J, B, 48]
        poses = self._place(params, first, skeleton, start, first_pose, at)
        if at is None:
            return poses
        whole = lambda p: (p[1:] - p[:-1]).norm(dim=-1).mean(-1) * self.fps     # [T - 1, B] m/s
        limbs = lambda p: whole(p - p[:, :, :1])                                 # hip-relative
        read = at
        if self.snap:      # the moves' own motion beats (the limbs', hip-relative) onto the beats
            read = beat_time.snap(at, limbs(poses), self.beat_steps, self.snap, self.fps)
            poses = self._place(params, first, skeleton, start, first_pose, read)
        if self.accent:    # beats the whole body passes without a motion beat
            read = beat_time.accent(at, read, whole(poses), self.beat_steps, self.accent, self.fps,
                                    self.accent_width)
            poses = self._place(params, first, skeleton, start, first_pose, read)
        if self.resnap:    # the motion beats of both, limbs and whole body
            read = beat_time.snap(at, 0.5 * (whole(poses) + limbs(poses)), self.beat_steps, self.resnap, self.fps,
                                  read=read)
            poses = self._place(params, first, skeleton, start, first_pose, read)
        return poses

    def _place(self, params: Tensor, first: Tensor, skeleton: Tensor, start: Tensor, first_pose: Tensor,
               at: Tensor | None = None) -> Tensor:
        """Global poses [T, B, 17, 3] of decoded parameters [J, B, 48], moved into the first
        pose's body `first` [B, 48] over `blend` steps (raised cosine) and started at its place.

        at [T, B]: read the dance at these fractional steps (beat time: each frame's grid
        position). Steps before at[0] (grid points before the window's first frame) hold the
        first pose with the root still; the body parameters and the root's path are interpolated
        and the body rebuilt on them, so bones stay exact; the root's offset left at frame 0
        fades out over `blend` frames. Default: every step is a frame. The parameters, path and
        heading at the frames are smoothed over `smooth` frames before the body is built."""
        steps = torch.arange(len(params), device=params.device, dtype=params.dtype)[:, None]   # [J, 1]
        hold = params.new_zeros(params.shape[1]) if at is None else at[0].to(params.dtype)     # [B]
        w = 0.5 * (1 + torch.cos(math.pi * ((steps - hold) / self.blend).clamp(0.0, 1.0)))   # [J, B] 1 -> 0
        offset = first - beat_time.sample(params, hold[None])[0]
        offset[:, NO_BLEND] = 0.0
        params = params + w[..., None] * offset[None]
        params[..., NO_BLEND] = params[..., NO_BLEND] * (steps > hold)[..., None]
        if self.face:
            params[..., body.YAW_RATE] = objectives.face_front(params[..., body.YAW_RATE], self.face, self.fps)
        if at is None:
            poses = body.body_to_poses(self._smoothed(params), skeleton, start, self.fps)
        else:
            root, heading = body.root_path(params, start, self.fps)
            read = lambda x: beat_time.sample(x, at)
            w, heading = read(w[..., None])[..., 0], self._smoothed(read(heading[..., None]))[..., 0]
            poses = body.poses_on_path(self._smoothed(read(params)), skeleton, self._smoothed(read(root)), heading)
            frames = torch.arange(len(poses), device=poses.device, dtype=poses.dtype)[:, None]
            fade = 0.5 * (1 + torch.cos(math.pi * (frames / self.blend).clamp(max=1.0)))          # [T, 1]
            poses = poses + fade[..., None, None] * (first_pose[:, :1] - poses[0, :, :1])[None]
        if self.ground > 0:
            lowest = poses[..., list(FEET), 1].min(-1).values                  # [T, B] m
            drop = self.ground * (1 - w) * lowest                                 # none at frame 0
            poses = poses - torch.stack([torch.zeros_like(drop), drop, torch.zeros_like(drop)], -1)[:, :, None]
        if self.plant > 0:
            poses = objectives.plant_feet(poses, self.plant)
        return torch.cat([first_pose[None], poses[1:]])

    def _smoothed(self, x: Tensor) -> Tensor:
        """x [T, ..] Gaussian-smoothed over time by `smooth` frames (edges repeated); x when 0."""
        if not self.smooth:
            return x
        return objectives.smooth_in_time(x, self.smooth)

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
        if not self.beat_steps:
            return self._forward(audio, first_pose, target, teacher_forcing)
        b = beat_time.beat_counts(audio, self.fps)
        start, index = beat_time.grid(b, self.beat_steps, cover=False)   # the target's grid, inside every window
        warped = beat_time.sample(target, index)
        out = self._forward(beat_time.sample(audio, index), warped[0], warped, teacher_forcing=1.0)
        if teacher_forcing > 0.0:   # the reconstruction on the grid, its joints read back at the frames
            recon, at = out._poses, beat_time.to_frames(b, start, self.beat_steps)
            out._poses = lambda: torch.cat([first_pose[None], beat_time.sample(recon(), at)[1:]])
        else:
            out._poses = lambda: torch.no_grad()(self._dance)(audio, first_pose, sample=False)
        return out

    def _forward(self, audio: Tensor, first_pose: Tensor, target: Tensor, teacher_forcing: float) -> VocabOutput:
        """forward with a target, frame by frame (audio [T, B, F], target [T, B, 17, 3])."""
        T = audio.shape[0]
        with torch.no_grad():
            params, skeleton, start = body.poses_to_body(target, self.fps)
        codes, latents, raw = self.encode(params)
        decoded = self.decode(latents)[:T]
        lower, upper = codes[0].detach(), codes[1].detach()
        first = params[0].clone()
        first[:, NO_BLEND] = 0.0
        logits = None     # none to learn from while polishing (`polish`)
        if self.ce_weight:
            logits = self._logits(self._dropped(self._music(self._noisy(audio))), first, lower, upper)
        if teacher_forcing > 0.0:
            poses = lambda: torch.cat([first_pose[None], body.body_to_poses(decoded, skeleton, start, self.fps)[1:]])
        else:   # the model's own dance, when read (the objective does not need it)
            poses = lambda: torch.no_grad()(self._dance_on)(audio, None, first_pose, sample=False)
        return VocabOutput(poses, params, decoded, skeleton, (lower, upper), logits, raw)

    def objective(self, out: VocabOutput, target: Tensor, loss_fn=None) -> Tensor:
        """Reconstruction of the target's body (local joint positions m^2 x POS_WEIGHT, their
        velocities (m/s)^2 x VEL_WEIGHT (with `turns`, the velocities of the body travelling and
        turning, `_heading_velocity`), parameters x PARAM_WEIGHT, pre-quantisation latents x
        LATENT_WEIGHT) + ce_weight x the code
        cross-entropy of both halves (nats). loss_fn is not used."""
        true = body.body_to_poses(out.params, out.skeleton, None, self.fps)     # [T, B, 17, 3] local
        pred = body.body_to_poses(out.decoded, out.skeleton, None, self.fps)
        loss = POS_WEIGHT * torch.mean((pred - true) ** 2)
        if len(true) > 1:
            steps = ([self._heading_velocity(p, out.skeleton) for p in (out.params, out.decoded)] if self.turns
                     else [x[1:] - x[:-1] for x in (true, pred)])
            loss = loss + VEL_WEIGHT * torch.mean((steps[1] - steps[0]) ** 2) * self.fps ** 2
        loss = loss + PARAM_WEIGHT * torch.mean(((out.decoded - out.params) / self.scale) ** 2)
        loss = loss + LATENT_WEIGHT * torch.mean(out.latents ** 2)
        if not self.ce_weight:
            return loss
        ce = sum(F.cross_entropy(lg.reshape(-1, lg.shape[-1]), code.reshape(-1))
                 for lg, code in zip(out.logits, out.codes))
        return loss + self.ce_weight * ce

    def polish(self) -> list[nn.Parameter]:
        """Ready the trained model for polishing (kakashi.train, a preset's `polish` epochs):
        the decoders alone train on, with the codec's velocity term on the body as it travels and
        turns (`turns`) and no cross-entropy, so the codes, and what the transformer learned of
        them, stay as they are while the decoded dance takes back the pace that the local
        velocity term let go. Returns the decoders' parameters; every other one is frozen, its
        gradient dropped (it would count in the clipped norm)."""
        self.turns, self.ce_weight = True, 0.0
        self.requires_grad_(False)
        self.zero_grad(set_to_none=True)
        params = [*self.dec_lower.parameters(), *self.dec_upper.parameters()]
        for p in params:
            p.requires_grad_(True)
        return params

    def _heading_velocity(self, params: Tensor, skeleton: Tensor) -> Tensor:
        """Each frame's step [T - 1, B, 17, 3] (m) of the body built on params [T, B, 48] with its
        travel and turns, in the frame of its heading at the step's start: the same for a dance
        started anywhere facing anywhere, so an error of heading does not add up along a window."""
        root, heading = body.root_path(params, torch.zeros_like(params[0, :, :3]), self.fps)
        poses = body.poses_on_path(params, skeleton, root, heading)
        return (poses[1:] - poses[:-1]) @ body.yaw(heading[:-1])

    def generate(self, audio: Tensor, first_pose: Tensor) -> Tensor:
        """Dance in eval mode: audio [T, B, F], first_pose [B, 17, 3] -> poses [T, B, 17, 3]
        (frame 0 = first_pose). Codes are drawn with torch's global generator. Runs in inference
        mode (no autograd bookkeeping: each drawn code costs a few dozen small operations)."""
        with self._evaluating():
            self._check(audio, first_pose, None, 0.0)
            poses = self._dance(audio, first_pose, sample=True)
        return poses.clone()                                  # a tensor like any other

    def drawn_codes(self, audio: Tensor, first_pose: Tensor) -> tuple[Tensor, Tensor]:
        """The codes (lower, upper) [K, B] that `generate` draws to audio [T, B, F] from
        first_pose [B, 17, 3] (the same, with torch's global generator in the same state), before
        they are decoded and danced: on the model's clock, one per segment."""
        with self._evaluating():
            self._check(audio, first_pose, None, 0.0)
            (clock, at), (first, skeleton, _) = self._on_clock(audio), self._first_body(first_pose, audio.dtype)
            return self._song_codes(clock, first, True, skeleton, at)

    def true_codes(self, audio: Tensor, poses: Tensor) -> tuple[Tensor, Tensor]:
        """The codes (lower, upper) [K, B] of true dances poses [T, B, 17, 3] m to audio [T, B, F],
        encoded as in training (beat time: on the song's beat grid)."""
        with self._evaluating():
            return self(audio, poses[0], poses, teacher_forcing=1.0).codes

    @contextlib.contextmanager
    def _evaluating(self):
        """Eval mode and torch.inference_mode for the block, the module's mode restored after it."""
        was_training = self.training
        self.eval()
        try:
            with torch.inference_mode():
                yield
        finally:
            self.train(was_training)
