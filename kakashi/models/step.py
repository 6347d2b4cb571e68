"""The autoregressive step model the travelling models share, its options, and mixture draws.

`StepModel` holds everything about dancing frame by frame in the local representation of
kakashi.models.objectives (hip-relative pose + hip height + hip velocity, so the dancer
travels): input checks, teacher forcing, the free-running roll-out, generation with sampling,
bone-length and foot-contact clean-up, and the training objective. A subclass gives the network:
`_context(audio)` (music encoding), `_parallel(ctx, inputs)` (every step at once from known
inputs) and `_start` / `_step` (one step at a time). Its options are a frozen `StepOptions`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from . import objectives as obj
from .seq2seq import teacher_forcing_mask

PULL = 0.25     # share of a stray input's distance to the truth that one step learns to undo
JITTER = 0.1    # per-frame input noise, as a share of the per-sequence offset (pose_noise)


class MixtureHead(nn.Module):
    """Linear map hidden [.., H] -> a K-component diagonal Gaussian mixture over [.., D]:
    (logits [.., K], means [.., K, D], log_sigma [.., K, D])."""

    def __init__(self, hidden: int, dim: int, mixtures: int):
        super().__init__()
        self.dim, self.mixtures = dim, mixtures
        self.linear = nn.Linear(hidden, mixtures * (1 + 2 * dim))

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        K, D = self.mixtures, self.dim
        out = self.linear(h)
        logits = out[..., :K]
        means, log_sigma = out[..., K:].reshape(*h.shape[:-1], K, 2, D).unbind(-2)  # [.., K, D] each
        return logits, means, log_sigma.clamp(obj.LOG_SIGMA_MIN, obj.LOG_SIGMA_MAX)


def mixture_mode(logits: Tensor, means: Tensor) -> Tensor:
    """Mean [.., D] of the most probable component (the deterministic choice)."""
    k = logits.argmax(-1)                                                  # [..]
    return torch.gather(means, -2, k[..., None, None].expand(*k.shape, 1, means.shape[-1]))[..., 0, :]


def mixture_sample(logits: Tensor, means: Tensor, log_sigma: Tensor, temperature: float = 1.0,
                   component: Tensor | None = None, noise: Tensor | None = None) -> Tensor:
    """One draw [.., D]: a component from the weights (or `component` [..], long), then its
    Gaussian with sigma x temperature (standard normal `noise` [.., D], or fresh). Uses torch's
    global generator, so torch.manual_seed makes it repeatable."""
    if component is None:
        component = draw_component(logits)
    idx = component[..., None, None].expand(*component.shape, 1, means.shape[-1])
    mu = torch.gather(means, -2, idx)[..., 0, :]                           # [.., D]
    sigma = torch.gather(log_sigma, -2, idx)[..., 0, :].exp()
    return mu + sigma * float(temperature) * (torch.randn_like(mu) if noise is None else noise)


def draw_component(logits: Tensor) -> Tensor:
    """A component index [..] per row of logits [.., K], drawn from the softmax weights."""
    flat = logits.reshape(-1, logits.shape[-1])                            # [N, K]
    return torch.multinomial(torch.softmax(flat, -1), 1).reshape(logits.shape[:-1])


class SmoothDraws:
    """Mixture draws frame after frame with memory m in [0, 1): each frame keeps the previous
    frame's component with probability m (else draws anew) and its standard normal noise is
    AR(1), z_t = m z_(t-1) + sqrt(1 - m^2) e_t, so a sampled dance wanders at a fraction of the
    frame rate instead of jittering. m = 0 gives independent draws."""

    def __init__(self, memory: float):
        self.memory, self.component, self.noise = float(memory), None, None

    def __call__(self, logits: Tensor, means: Tensor, log_sigma: Tensor, temperature: float) -> Tensor:
        fresh = draw_component(logits)
        e = torch.randn(means.shape[:-2] + means.shape[-1:], device=means.device)
        if self.component is None:
            self.component, self.noise = fresh, e
        else:
            keep = torch.rand(fresh.shape, device=fresh.device) < self.memory
            self.component = torch.where(keep, self.component, fresh)
            self.noise = self.memory * self.noise + (1 - self.memory ** 2) ** 0.5 * e
        return mixture_sample(logits, means, log_sigma, temperature, self.component, self.noise)


def _stack(heads: list):
    if isinstance(heads[0], tuple):
        return tuple(torch.stack(parts) for parts in zip(*heads))
    return torch.stack(heads)


@dataclass(frozen=True)
class StepOptions:
    """How a travelling model steps, trains and dances; every field is also a constructor
    argument of the models built on StepModel (and so part of their config).

    fps: frames per second of the data; mixtures: K > 0 a mixture density head, 0 one
    deterministic step; temperature: sigma scale when sampling; pose_noise: metres of noise on
    teacher-forced input poses in training, so the model learns to correct its own drift;
    skate_weight, bone_weight: loss terms; foot_lock: generation pins feet that touch the floor
    (objectives.lock_feet); absolute: the head predicts the next local pose itself instead of
    its change (nothing is integrated but the root's travel); noise_memory: generation's memory
    of the mixture draws from frame to frame, in [0, 1) (SmoothDraws); ground: generation moves
    each new pose this share, in [0, 1], of the way to having its lowest joint on the floor
    before it is fed back (objectives.ground), so the hip height cannot drift.
    """

    mixtures: int = 5
    temperature: float = 0.5
    pose_noise: float = 0.01
    skate_weight: float = 0.0
    bone_weight: float = 0.0
    foot_lock: bool = True
    absolute: bool = False
    noise_memory: float = 0.0
    ground: float = 0.0
    fps: float = 24.0

    def __post_init__(self):
        for f in dataclasses.fields(self):  # plain Python types, so a config is JSON-able
            object.__setattr__(self, f.name, {"int": int, "float": float, "bool": bool}[f.type](getattr(self, f.name)))
        if self.mixtures < 0:
            raise ValueError(f"mixtures must be >= 0, got {self.mixtures}")
        if not 0.0 <= self.noise_memory < 1.0:
            raise ValueError(f"noise_memory must lie in [0, 1), got {self.noise_memory}")
        if not 0.0 <= self.ground <= 1.0:
            raise ValueError(f"ground must lie in [0, 1], got {self.ground}")


class StepModel(nn.Module):
    """Base of the travelling models: audio [T, B, F] + first pose [B, 17, 3] -> poses.

    A subclass calls `_configure(name, options, **its own arguments)` and gives the network
    (see the module docstring). Its objective is its own (a likelihood or a step regression),
    so the preset's loss is not used.
    """

    uses_loss = False

    def _configure(self, name: str, options: StepOptions, num_joints: int = obj.NUM_JOINTS, **arguments) -> None:
        if num_joints != obj.NUM_JOINTS:
            raise ValueError(f"{name} works on the {obj.NUM_JOINTS}-joint skeleton, got {num_joints}")
        self.options = options
        self.config = {"name": name, **arguments, **dataclasses.asdict(options), "num_joints": int(num_joints)}

    def _make_head(self, hidden: int) -> nn.Module:
        K = self.options.mixtures
        return MixtureHead(hidden, obj.LOCAL_DIM, K) if K > 0 else nn.Linear(hidden, obj.LOCAL_DIM)

    def _features(self, inputs: Tensor, before: Tensor | None) -> Tensor:
        """Network input [S, B, 100] of local poses [S, B, 51] (see objectives.motion_features)."""
        return obj.motion_features(inputs, before, self.options.fps)

    # -- to be given by the subclass ------------------------------------------------------
    def _context(self, audio: Tensor):
        raise NotImplementedError

    def _parallel(self, ctx, inputs: Tensor):
        raise NotImplementedError

    def _start(self, ctx, batch: int):
        raise NotImplementedError

    def _step(self, ctx, state, s: int, inputs: list[Tensor]):
        raise NotImplementedError

    # -- shared -----------------------------------------------------------------------------
    def _check(self, audio: Tensor, first_pose: Tensor, target: Tensor | None, teacher_forcing: float):
        in_dim = self.config["in_dim"]
        if audio.dim() != 3 or audio.shape[2] != in_dim or audio.shape[0] < 1 or audio.shape[1] < 1:
            raise ValueError(f"audio must be [T >= 1, B >= 1, {in_dim}], got {list(audio.shape)}")
        T, B, _ = audio.shape
        if tuple(first_pose.shape) != (B, obj.NUM_JOINTS, 3):
            raise ValueError(f"first_pose must be [{B}, {obj.NUM_JOINTS}, 3], got {list(first_pose.shape)}")
        if not 0.0 <= teacher_forcing <= 1.0:
            raise ValueError(f"teacher_forcing must lie in [0, 1], got {teacher_forcing}")
        if target is not None and tuple(target.shape) != (T, B, obj.NUM_JOINTS, 3):
            raise ValueError(f"target must be [{T}, {B}, {obj.NUM_JOINTS}, 3], got {list(target.shape)}")
        if teacher_forcing > 0.0 and target is None:
            raise ValueError("teacher_forcing > 0 needs a target")

    def _as_step(self, out: Tensor, inputs: Tensor) -> Tensor:
        """A head's prediction [.., 51] for the frame after `inputs` [.., 51] as a step (m/s)."""
        if not self.options.absolute:
            return out
        return torch.cat([(out[..., :obj.REL_DIM + 1] - inputs[..., :obj.REL_DIM + 1]) * self.options.fps,
                          out[..., obj.VEL]], dim=-1)

    def mean_step(self, head, inputs: Tensor) -> Tensor:
        """The deterministic step [.., 51] (m/s) of a head output (the regression, or the
        mixture's mode) for the frame after `inputs` [.., 51]."""
        return self._as_step(mixture_mode(head[0], head[1]) if isinstance(head, tuple) else head, inputs)

    def _choose(self, head, inputs: Tensor, draws: SmoothDraws | None) -> Tensor:
        """The step taken: drawn from a mixture head when `draws` is given, else the mean step."""
        if draws is not None and isinstance(head, tuple):
            return self._as_step(draws(*head, self.options.temperature), inputs)
        return self.mean_step(head, inputs)

    def _noisy(self, inputs: Tensor) -> Tensor:
        """Training-mode inputs [S, B, 51] with an offset per sequence (pose_noise m, like the
        drift of a roll-out) plus JITTER of it per frame; root velocity untouched."""
        if not (self.training and self.options.pose_noise > 0):
            return inputs
        shape = (inputs.shape[0], inputs.shape[1], obj.REL_DIM + 1)
        noise = self.options.pose_noise * (torch.randn(1, *shape[1:], device=inputs.device)
                                   + JITTER * torch.randn(shape, device=inputs.device))
        return torch.cat([inputs[..., :obj.REL_DIM + 1] + noise, inputs[..., obj.VEL]], dim=-1)

    def _rollout(self, ctx, first: Tensor, truth: Tensor | None, feed_truth: list[bool],
                 sample: bool = False):
        """Step by step: input s is truth[s] where feed_truth[s], else the model's own previous
        pose (detached). Returns (inputs [T-1, B, 51], head outputs stacked over steps, the
        pose after the last step [B, 51])."""
        state = self._start(ctx, first.shape[0])
        draws = SmoothDraws(self.options.noise_memory) if sample else None
        prev, inputs, heads = first, [], []
        for s, use_truth in enumerate(feed_truth):
            if use_truth:
                prev = self._noisy(truth[s:s + 1])[0]
            inputs.append(prev)
            head, state = self._step(ctx, state, s, inputs)
            nxt = obj.apply_step(prev, self._choose(head, prev, draws), self.options.fps)
            if draws is not None and self.options.ground > 0:
                nxt = obj.ground(nxt, self.options.ground)
            heads.append(head)
            prev = nxt.detach()
        return torch.stack(inputs), _stack(heads), prev

    def _mixed(self, ctx, first: Tensor, truth: Tensor, teacher_forcing: float):
        """Teacher forcing strictly between 0 and 1 (default: the step-by-step roll-out)."""
        return self._rollout(ctx, first, truth, teacher_forcing_mask(len(truth), teacher_forcing))[:2]

    def forward(self, audio: Tensor, first_pose: Tensor, target: Tensor | None = None,
                teacher_forcing: float = 0.0) -> obj.Rollout:
        """audio [T, B, F], first_pose [B, 17, 3] m, target [T, B, 17, 3] -> Rollout.

        teacher_forcing 1 runs every step at once from the true previous poses; 0 rolls out on
        the model's own (deterministic) steps; in between, a mix (see `_mixed`).
        """
        teacher_forcing = float(teacher_forcing)
        self._check(audio, first_pose, target, teacher_forcing)
        T, B, _ = audio.shape
        first = obj.to_local(first_pose[None], self.options.fps)[0]                # [B, 51]
        if T == 1:
            empty = audio.new_zeros(0, B, obj.LOCAL_DIM)
            return obj.Rollout(first_pose[None], empty, empty)
        ctx = self._context(audio)
        truth = None
        if teacher_forcing > 0.0:
            truth = obj.to_local(target, self.options.fps)[:-1]                    # [T-1, B, 51]
            truth = torch.cat([first[None], truth[1:]])
        if teacher_forcing >= 1.0:
            inputs = self._noisy(truth)
            head = self._parallel(ctx, inputs)
        elif teacher_forcing > 0.0:
            inputs, head = self._mixed(ctx, first, truth, teacher_forcing)
        else:
            inputs, head, _ = self._rollout(ctx, first, None, [False] * (T - 1))
        return obj.Rollout(self._poses(first_pose, first, inputs, self.mean_step(head, inputs)), inputs, head)

    def _poses(self, first_pose: Tensor, first: Tensor, inputs: Tensor, step: Tensor) -> Tensor:
        nxt = obj.apply_step(inputs, step, self.options.fps)                       # [T-1, B, 51]
        fps = self.options.fps
        poses = obj.to_global(torch.cat([first[None], nxt]), first_pose[:, 0, obj.HORIZONTAL], fps)
        return torch.cat([first_pose[None], poses[1:]])                    # [T, B, 17, 3]

    def objective(self, out: obj.Rollout, target: Tensor, loss_fn=None) -> Tensor:
        """Training loss of a Rollout against target poses [T, B, 17, 3] (loss_fn is not used):
        mixture NLL (nats per dimension) or MSE ((m/s)^2 per step, m^2 per absolute pose), plus
        skate_weight x foot skating ((m/s)^2 on true contact frames) and bone_weight x bone-length
        error (m^2)."""
        local = obj.to_local(target, self.options.fps)                             # [T, B, 51]
        # absolute: the true next pose (m, and the root's velocity); else the step towards it
        want = local[1:] if self.options.absolute else obj.step_targets(local, out.inputs, self.options.fps, PULL)
        if isinstance(out.head, tuple):
            loss = obj.mixture_nll(*out.head, want)
        else:
            loss = obj.step_mse(out.head, want)
        step = self.mean_step(out.head, out.inputs)
        if self.options.skate_weight > 0:
            loss = loss + self.options.skate_weight * obj.skating_loss(step, target)
        if self.options.bone_weight > 0:
            loss = loss + self.options.bone_weight * obj.bone_loss(obj.apply_step(out.inputs, step, self.options.fps), local[1:])
        return loss

    @torch.no_grad()
    def generate(self, audio: Tensor, first_pose: Tensor) -> Tensor:
        """Dance in eval mode: audio [T, B, F], first_pose [B, 17, 3] -> global poses [T, B, 17, 3].

        Mixture models sample (torch's global generator: torch.manual_seed repeats a dance);
        the output's bones are relaxed to the first pose's lengths (objectives.keep_bones); with
        foot_lock, feet on the floor stay put (objectives.lock_feet).
        """
        was_training = self.training
        self.eval()
        try:
            self._check(audio, first_pose, None, 0.0)
            T, B, _ = audio.shape
            first = obj.to_local(first_pose[None], self.options.fps)[0]
            if T == 1:
                return first_pose[None].clone()
            lengths = obj.bone_lengths(first[:, :obj.REL_DIM])                # [B, 16]
            inputs, _, last = self._rollout(self._context(audio), first, None, [False] * (T - 1), sample=True)
            steps = torch.cat([inputs[1:], last[None]])                     # [T-1, B, 51] frames 1..T-1
            poses = obj.to_global(torch.cat([first[None], steps]), first_pose[:, 0, obj.HORIZONTAL], self.options.fps)
            # bones are restored on the way out only: fed back, the projection bends the body step by step
            poses = torch.cat([first_pose[None], obj.keep_bones(poses[1:], lengths)])  # [T, B, 17, 3]
            if self.options.foot_lock:
                poses = torch.cat([first_pose[None], obj.lock_feet(poses)[1:]])
            return poses
        finally:
            self.train(was_training)


