"""The paper's sequence-to-sequence LSTM (Raveendran & Betke): music features -> poses.

Encoder: dropout on the input features, then LSTM(in_dim -> hidden, layers, dropout); only its
final (hidden, cell) state reaches the decoder. Decoder: LSTM(51 -> hidden, layers) +
Linear(hidden -> 51), one pose per step from the previous pose. Weights uniform(-0.08, 0.08).

Two decoders compute the same function with the same parameters (the decoder's are those of a
plain `nn.LSTM`, so both load one state_dict):
- `fast=False`: the plain reference, one `nn.LSTM` call per frame, autograd through every step.
- `fast=True` (default): the same recurrence stepped with in-place matrix products into
  preallocated buffers. Within each run of teacher-forced steps every layer's inputs are
  known once the layer below has run, so each layer's input product is one batched product
  over the run (the whole sequence when teacher_forcing is 1). A hand-written backward pass
  through time forms each weight gradient with one matrix product over all steps instead of
  one outer product per step. Without gradients (generate) it steps fused lstm_cell calls.

Unlike the original code, output frame 0 is the first pose itself (the original left it
unwritten yet scored it), and no Dropout2d is applied to the decoder's input pose (the
original's dropped whole poses).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from kakashi.models import Output, register

INIT_RANGE = 0.08  # weights ~ uniform(-INIT_RANGE, INIT_RANGE), as in the paper


def teacher_forcing_mask(steps: int, teacher_forcing: float) -> list[bool]:
    """Which decoder steps read the ground-truth previous frame: list of `steps` booleans.

    Step s makes frame s + 1 from frame s. Step 0 always reads the first pose (False); every
    later step draws one Bernoulli(teacher_forcing) for the whole batch from torch's global
    generator (all draws at once, so torch.manual_seed makes them repeatable). No draw is
    made when teacher_forcing is 0 or 1.
    """
    if steps <= 1 or teacher_forcing <= 0.0:
        return [False] * max(steps, 0)
    if teacher_forcing >= 1.0:
        return [False] + [True] * (steps - 1)
    draws = torch.rand(steps - 1) < teacher_forcing
    return [False] + draws.tolist()


def _layer_weights(lstm: nn.LSTM) -> list[tuple[Tensor, Tensor, Tensor, Tensor]]:
    """(weight_ih, weight_hh, bias_ih, bias_hh) of each layer of an nn.LSTM."""
    return [tuple(getattr(lstm, f"{kind}_l{k}") for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
            for k in range(lstm.num_layers)]


def _segments(feed_truth: list[bool]) -> list[tuple[int, int]]:
    """Split decoder steps into runs [a, b): step a reads first_pose or the model's own output,
    steps a+1..b-1 read the target. Inside a run every layer's inputs are known once the layer
    below has run, so each layer advances through the whole run before the next one starts."""
    starts = [s for s, truth in enumerate(feed_truth) if s == 0 or not truth]
    return list(zip(starts, starts[1:] + [len(feed_truth)]))


def _decode_steps(first: Tensor, target: Tensor | None, h0: Tensor, c0: Tensor, feed_truth: list[bool],
                  weights: list[tuple[Tensor, ...]], w_out: Tensor, b_out: Tensor):
    """Run the decoder recurrence without autograd, keeping what the backward pass needs.

    first [B, D], target [T, B, D] or None, h0/c0 [L, B, H], feed_truth: S = T - 1 booleans.
    Returns (Y [S, B, D] frames 1..T-1, U [S, B, D] step inputs, Hs/Cs [L, S+1, B, H] states
    with index 0 the initial one, G [L, S, B, 4H] activated gates i, f, g, o).
    """
    S, (B, D), (L, _, H) = len(feed_truth), first.shape, h0.shape
    Hs = h0.new_empty(L, S + 1, B, H)
    Cs = h0.new_empty(L, S + 1, B, H)
    Hs[:, 0], Cs[:, 0] = h0, c0
    G = h0.new_empty(L, S, B, 4 * H)
    U = first.new_empty(S, B, D)
    Y = first.new_empty(S, B, D)
    bias = [(w[2] + w[3]) for w in weights]
    tc = h0.new_empty(B, H)
    U[0] = first
    for a, b in _segments(feed_truth):
        n = b - a
        if n > 1:
            U[a + 1:b] = target[a + 1:b]
        for k, (w_ih, w_hh, _, _) in enumerate(weights):
            x = U[a:b] if k == 0 else Hs[k - 1, a + 1:b + 1]  # [n, B, in]
            torch.addmm(bias[k], x.reshape(n * B, -1), w_ih.t(), out=G[k, a:b].view(n * B, 4 * H))
            for s in range(a, b):
                g = G[k, s]  # [B, 4H]
                g.addmm_(Hs[k, s], w_hh.t())
                g[:, :2 * H].sigmoid_()
                g[:, 2 * H:3 * H].tanh_()
                g[:, 3 * H:].sigmoid_()
                c = torch.mul(g[:, H:2 * H], Cs[k, s], out=Cs[k, s + 1])
                c.addcmul_(g[:, :H], g[:, 2 * H:3 * H])
                torch.tanh(c, out=tc)
                torch.mul(g[:, 3 * H:], tc, out=Hs[k, s + 1])
        torch.addmm(b_out, Hs[L - 1, a + 1:b + 1].view(n * B, H), w_out.t(), out=Y[a:b].view(n * B, D))
        if b < S:
            U[b] = Y[b - 1]  # step b reads the model's own previous frame
    return Y, U, Hs, Cs, G


def _decode_lean(first: Tensor, target: Tensor | None, h0: Tensor, c0: Tensor, feed_truth: list[bool],
                 weights: list[tuple[Tensor, ...]], w_out: Tensor, b_out: Tensor) -> Tensor:
    """The decoder recurrence when no gradient is needed: one fused cell call per layer and step.

    Same arguments as `_decode_steps`; returns Y [S, B, D], frames 1..T-1.
    """
    S, (B, D) = len(feed_truth), first.shape
    h, c = list(h0.unbind(0)), list(c0.unbind(0))
    Y = first.new_empty(S, B, D)
    x = first
    for s in range(S):
        if feed_truth[s]:
            x = target[s]
        for k, w in enumerate(weights):
            h[k], c[k] = torch.lstm_cell(x, (h[k], c[k]), *w)
            x = h[k]
        x = torch.addmm(b_out, x, w_out.t(), out=Y[s])
    return Y


class _FastDecoder(torch.autograd.Function):
    """The decoder recurrence with a hand-written backward pass through time.

    apply(first [B, D], target [T, B, D] | None, h0 [L, B, H], c0 [L, B, H], feed_truth,
    w_out [D, H], b_out [D], *layer weights (w_ih, w_hh, b_ih, b_hh per layer)) -> [T-1, B, D].
    """

    @staticmethod
    def forward(ctx, first, target, h0, c0, feed_truth, w_out, b_out, *flat):
        weights = [tuple(flat[i:i + 4]) for i in range(0, len(flat), 4)]
        Y, U, Hs, Cs, G = _decode_steps(first, target, h0, c0, feed_truth, weights, w_out, b_out)
        ctx.feed_truth = feed_truth
        ctx.has_target = target is not None
        ctx.save_for_backward(U, Hs, Cs, G, w_out, *flat)
        return Y

    @staticmethod
    def backward(ctx, dY):
        U, Hs, Cs, G, w_out, *flat = ctx.saved_tensors
        weights = [tuple(flat[i:i + 4]) for i in range(0, len(flat), 4)]
        feed_truth = ctx.feed_truth
        L, S, B, H4 = G.shape
        H, D = H4 // 4, U.shape[-1]
        dG = torch.empty_like(G)
        dYt = dY.contiguous().clone()  # total gradient reaching each output frame
        dU = torch.empty_like(U)
        dh = Hs.new_zeros(L, B, H)  # gradient of each layer's hidden state, carried back in time
        dc = Hs.new_zeros(L, B, H)
        for a, b in reversed(_segments(feed_truth)):
            n = b - a
            if b < S:
                dYt[b - 1] += dU[b]  # step b read this run's last output
            ext = dYt[a:b].view(n * B, D) @ w_out  # [n*B, H] gradient from above
            for k in range(L - 1, -1, -1):
                w_ih, w_hh, _, _ = weights[k]
                ext = ext.view(n, B, H)  # [n, B, H]
                dhk, dck = dh[k], dc[k]
                # the run's local derivatives at once ([n, B, H] each), so each step is six small ops
                g = G[k, a:b]
                i, f, gg, o = g[..., :H], g[..., H:2 * H], g[..., 2 * H:3 * H], g[..., 3 * H:]
                tc = torch.tanh(Cs[k, a + 1:b + 1])
                c_from_h = o * (1 - tc * tc)  # d c_s / d h_s
                o_from_h = tc * o * (1 - o)  # d o-gate pre-activation / d h_s
                ifg_from_c = torch.stack([gg * i * (1 - i), Cs[k, a:b] * f * (1 - f), i * (1 - gg * gg)], 2)  # [n, B, 3, H]
                for s in range(b - 1, a - 1, -1):
                    d, r = dG[k, s], s - a  # [B, 4H]
                    dhk += ext[r]
                    dck.addcmul_(dhk, c_from_h[r])
                    torch.mul(dhk, o_from_h[r], out=d[:, 3 * H:])
                    torch.mul(dck[:, None], ifg_from_c[r], out=d[:, :3 * H].view(B, 3, H))
                    dck.mul_(f[r])  # gradient of the previous cell state
                    torch.mm(d, w_hh, out=dhk)  # gradient of the previous hidden state
                dGk = dG[k, a:b].view(n * B, H4)  # [n*B, 4H]
                if k > 0:
                    ext = dGk @ w_ih  # [n*B, H] to the layer below
                else:
                    torch.mm(dGk, w_ih, out=dU[a:b].view(n * B, D))
        grads = []
        for k, (w_ih, w_hh, b_ih, b_hh) in enumerate(weights):
            dGk = dG[k].view(S * B, H4)  # [S*B, 4H]
            x = (U if k == 0 else Hs[k - 1, 1:]).reshape(S * B, -1)  # [S*B, in]
            h_prev = Hs[k, :S].reshape(S * B, H)  # [S*B, H]
            db = dGk.sum(0)
            grads += [dGk.t() @ x, dGk.t() @ h_prev, db, db.clone()]
        dYf = dYt.view(S * B, D)  # [S*B, D]
        d_w_out = dYf.t() @ Hs[L - 1, 1:].reshape(S * B, H)
        d_b_out = dYf.sum(0)
        d_target = None
        if ctx.has_target and ctx.needs_input_grad[1]:
            d_target = dU.new_zeros((S + 1,) + dU.shape[1:])
            steps = [s for s in range(1, S) if feed_truth[s]]
            d_target[steps] = dU[steps]
        return (dU[0], d_target, dh, dc, None, d_w_out, d_b_out, *grads)


@register("seq2seq_lstm")
class Seq2SeqLSTM(nn.Module):
    """The paper's encoder-decoder LSTM.

    in_dim: audio features per frame (20 MFCCs in the paper); hidden, layers: LSTM sizes of
    both encoder and decoder; dropout: on the encoder's input features and between its
    layers; num_joints: joints per pose (17); fast: the fused decoder (True) or the plain
    per-step nn.LSTM reference (False) — same parameters, same function. It trains with the
    preset's loss on its poses (one of the paper's ten, kakashi.losses).
    """

    uses_loss = True

    def __init__(self, in_dim: int = 20, hidden: int = 512, layers: int = 2, dropout: float = 0.5,
                 num_joints: int = 17, fast: bool = True):
        super().__init__()
        self.config = {"name": "seq2seq_lstm", "in_dim": int(in_dim), "hidden": int(hidden),
                       "layers": int(layers), "dropout": float(dropout),
                       "num_joints": int(num_joints), "fast": bool(fast)}
        self.in_dim, self.hidden, self.layers = int(in_dim), int(hidden), int(layers)
        self.num_joints, self.fast = int(num_joints), bool(fast)
        self.pose_dim = 3 * self.num_joints
        self.input_dropout = nn.Dropout(dropout)
        self.encoder = nn.LSTM(in_dim, hidden, layers, dropout=dropout if layers > 1 else 0.0)
        self.decoder = nn.LSTM(self.pose_dim, hidden, layers)
        self.out = nn.Linear(hidden, self.pose_dim)
        for p in self.parameters():
            nn.init.uniform_(p, -INIT_RANGE, INIT_RANGE)

    def _check(self, audio: Tensor, first_pose: Tensor, target: Tensor | None, teacher_forcing: float):
        if audio.dim() != 3 or audio.shape[2] != self.in_dim:
            raise ValueError(f"audio must be [T, B, {self.in_dim}], got {list(audio.shape)}")
        T, B, _ = audio.shape
        if T < 1 or B < 1:
            raise ValueError(f"audio must hold at least one frame and one sequence, got {list(audio.shape)}")
        if tuple(first_pose.shape) != (B, self.num_joints, 3):
            raise ValueError(f"first_pose must be [{B}, {self.num_joints}, 3], got {list(first_pose.shape)}")
        if not 0.0 <= teacher_forcing <= 1.0:
            raise ValueError(f"teacher_forcing must lie in [0, 1], got {teacher_forcing}")
        if teacher_forcing > 0.0:
            if target is None:
                raise ValueError("teacher_forcing > 0 needs a target")
            if tuple(target.shape) != (T, B, self.num_joints, 3):
                raise ValueError(f"target must be [{T}, {B}, {self.num_joints}, 3], got {list(target.shape)}")
        named = {"audio": audio, "first_pose": first_pose, "target": target if teacher_forcing > 0.0 else None}
        for name, x in named.items():
            if x is not None and not torch.isfinite(x).all():
                raise ValueError(f"{name} holds NaN or infinite values")

    def encode(self, audio: Tensor) -> tuple[Tensor, Tensor]:
        """audio [T, B, F] -> the encoder's final (hidden, cell), each [layers, B, hidden]."""
        _, (h, c) = self.encoder(self.input_dropout(audio))
        return h, c

    def forward(self, audio: Tensor, first_pose: Tensor, target: Tensor | None = None,
                teacher_forcing: float = 0.0) -> Output:
        """audio [T, B, F], first_pose [B, J, 3] metres, target [T, B, J, 3] -> Output(poses [T, B, J, 3]).

        Frame 0 is first_pose; frame t >= 1 is decoded from frame t - 1, taken from the
        target with probability teacher_forcing (one draw per step for the whole batch),
        else from the model's own output. teacher_forcing 0 never reads the target.
        """
        teacher_forcing = float(teacher_forcing)
        self._check(audio, first_pose, target, teacher_forcing)
        T, B, _ = audio.shape
        h, c = self.encode(audio)
        feed_truth = teacher_forcing_mask(T - 1, teacher_forcing)
        first = first_pose.reshape(B, self.pose_dim)  # [B, J*3]
        flat_target = None
        if teacher_forcing > 0.0:
            flat_target = target.reshape(T, B, self.pose_dim)  # [T, B, J*3]
        if T == 1:
            frames = first[None]  # [1, B, J*3]
        elif self.fast:
            weights = _layer_weights(self.decoder)
            args = (first, flat_target, h.contiguous(), c.contiguous(), feed_truth, self.out.weight, self.out.bias)
            if torch.is_grad_enabled():
                rest = _FastDecoder.apply(*args, *[w for layer in weights for w in layer])  # [T-1, B, J*3]
            else:
                rest = _decode_lean(*args[:5], weights, *args[5:])  # [T-1, B, J*3]
            frames = torch.cat([first[None], rest])  # [T, B, J*3]
        else:
            frames = self._reference_decode(first, flat_target, h, c, feed_truth)
        return Output(frames.reshape(T, B, self.num_joints, 3))  # [T, B, J, 3]

    def objective(self, out: Output, target: Tensor, loss_fn) -> Tensor:
        """The preset's loss of the output poses against target poses [T, B, J, 3]."""
        return loss_fn(out.poses, target)

    def _reference_decode(self, first: Tensor, target: Tensor | None, h: Tensor, c: Tensor,
                          feed_truth: list[bool]) -> Tensor:
        """The plain decoder: one nn.LSTM call per frame. first [B, D] -> frames [T, B, D]."""
        frames, x = [first], first
        for s in range(len(feed_truth)):
            if feed_truth[s]:
                x = target[s]
            out, (h, c) = self.decoder(x[None], (h, c))  # [1, B, H]
            x = self.out(out[0])  # [B, D]
            frames.append(x)
        return torch.stack(frames)  # [T, B, D]

    @torch.no_grad()
    def generate(self, audio: Tensor, first_pose: Tensor) -> Tensor:
        """Eval-mode dance without teacher forcing: audio [T, B, F], first_pose [B, J, 3] -> [T, B, J, 3]."""
        was_training = self.training
        self.eval()
        try:
            return self.forward(audio, first_pose, None, 0.0).poses
        finally:
            self.train(was_training)
