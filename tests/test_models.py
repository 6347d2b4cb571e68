"""The model registry and the paper's seq2seq LSTM: shapes, teacher forcing, generate,
self-describing config, the fast decoder against the plain nn.LSTM reference, and learning."""
from __future__ import annotations

import pytest
import torch

from kakashi.models import MODELS, build_model, register
from kakashi.models.seq2seq import INIT_RANGE, Seq2SeqLSTM, teacher_forcing_mask


J = 17


def _tiny(fast: bool = True, in_dim: int = 5, hidden: int = 16, layers: int = 2, dtype=torch.float32, seed=0):
    torch.manual_seed(seed)
    return build_model("seq2seq_lstm", in_dim=in_dim, hidden=hidden, layers=layers, fast=fast).to(dtype)


def _data(T=10, B=3, F=5, dtype=torch.float32, seed=1):
    g = torch.Generator().manual_seed(seed)
    audio = torch.randn(T, B, F, generator=g, dtype=dtype)
    target = 0.3 * torch.randn(T, B, J, 3, generator=g, dtype=dtype)
    return audio, target[0].clone(), target


def test_registry():
    assert MODELS["seq2seq_lstm"] is Seq2SeqLSTM
    with pytest.raises(ValueError, match="seq2seq_lstm"):
        build_model("no_such_model")
    with pytest.raises(ValueError, match="already registered"):
        register("seq2seq_lstm")(type("Other", (torch.nn.Module,), {}))


def test_paper_defaults_and_config_rebuild():
    m = Seq2SeqLSTM()
    assert m.config == {"name": "seq2seq_lstm", "in_dim": 20, "hidden": 512, "layers": 2, "dropout": 0.5,
                        "num_joints": 17, "fast": True}
    assert (m.encoder.input_size, m.encoder.hidden_size, m.encoder.num_layers, m.encoder.dropout) == (20, 512, 2, 0.5)
    assert (m.decoder.input_size, m.decoder.hidden_size, m.decoder.num_layers, m.decoder.dropout) == (51, 512, 2, 0.0)
    assert (m.out.in_features, m.out.out_features) == (512, 51)
    assert m.input_dropout.p == 0.5


def test_init_range():
    m = Seq2SeqLSTM(in_dim=20, hidden=64)
    for name, p in m.named_parameters():
        assert p.abs().max() <= INIT_RANGE, name
        assert p.abs().max() > 0.9 * INIT_RANGE, name  # really uniform over the range, not a narrower init
    flat = torch.cat([p.flatten() for p in m.parameters()])
    assert abs(flat.mean().item()) < 0.002 and abs(flat.std().item() - INIT_RANGE / 3 ** 0.5) < 0.002


def test_build_from_config_gives_same_model():
    m = _tiny().eval()
    m2 = build_model(**m.config)
    m2.load_state_dict(m.state_dict())
    audio, first, _ = _data()
    assert torch.equal(m.generate(audio, first), m2.generate(audio, first))
    # The reference and the fast model share state_dict keys.
    ref = build_model(**{**m.config, "fast": False})
    assert ref.state_dict().keys() == m.state_dict().keys()


@pytest.mark.parametrize("T,B,F", [(1, 1, 5), (2, 1, 3), (7, 4, 20), (12, 2, 35)])
@pytest.mark.parametrize("fast", [True, False])
def test_shapes_and_first_frame(T, B, F, fast):
    m = _tiny(fast=fast, in_dim=F)
    audio, first, target = _data(T, B, F)
    for tf in (0.0, 0.5, 1.0):
        out = m(audio, first, target, teacher_forcing=tf).poses
        assert out.shape == (T, B, J, 3)
        assert torch.equal(out[0], first)
    assert m.generate(audio, first).shape == (T, B, J, 3)


def test_bad_inputs_raise():
    m = _tiny()
    audio, first, target = _data()
    with pytest.raises(ValueError, match="audio"):
        m(audio[..., :4], first)
    with pytest.raises(ValueError, match="first_pose"):
        m(audio, first[:, :16])
    with pytest.raises(ValueError, match="needs a target"):
        m(audio, first, None, teacher_forcing=0.5)
    with pytest.raises(ValueError, match="target"):
        m(audio, first, target[:-1], teacher_forcing=1.0)
    with pytest.raises(ValueError, match="teacher_forcing"):
        m(audio, first, target, teacher_forcing=1.5)
    audio[3, 1, 2] = float("nan")
    with pytest.raises(ValueError, match="audio holds NaN"):
        m(audio, first)


@pytest.mark.parametrize("fast", [True, False])
def test_teacher_forcing_zero_ignores_target(fast):
    m = _tiny(fast=fast).eval()
    audio, first, target = _data()
    a = m(audio, first, target, 0.0).poses
    b = m(audio, first, None, 0.0).poses
    c = m(audio, first, torch.randn_like(target), 0.0).poses
    assert torch.equal(a, b) and torch.equal(a, c)


@pytest.mark.parametrize("fast", [True, False])
def test_teacher_forcing_one_reads_previous_target_frame(fast):
    m = _tiny(fast=fast).eval()
    audio, first, target = _data(T=8)
    base = m(audio, first, target, 1.0).poses
    changed = target.clone()
    changed[4] += 0.5  # frame 4 is the input of the step that makes frame 5
    out = m(audio, first, changed, 1.0).poses
    assert torch.equal(out[:5], base[:5])
    assert not torch.allclose(out[5], base[5])
    # The last target frame is never an input.
    changed = target.clone()
    changed[-1] += 0.5
    assert torch.equal(m(audio, first, changed, 1.0).poses, base)
    # Full teacher forcing is the decoder run on the target: free running differs.
    assert not torch.allclose(m(audio, first, target, 0.0).poses, base)


def test_teacher_forcing_draws_are_seeded():
    torch.manual_seed(3)
    a = teacher_forcing_mask(50, 0.5)
    torch.manual_seed(3)
    b = teacher_forcing_mask(50, 0.5)
    assert a == b and a[0] is False and 10 < sum(a) < 40
    assert teacher_forcing_mask(5, 1.0) == [False, True, True, True, True]
    assert teacher_forcing_mask(5, 0.0) == [False] * 5
    m = _tiny()
    audio, first, target = _data(T=30)
    torch.manual_seed(5)
    x = m(audio, first, target, 0.5).poses
    torch.manual_seed(5)
    assert torch.equal(x, m(audio, first, target, 0.5).poses)


def test_generate_equals_eval_forward_and_restores_mode():
    m = _tiny()
    audio, first, target = _data()
    m.train()
    gen = m.generate(audio, first)
    assert m.training and not gen.requires_grad
    m.eval()
    assert torch.allclose(gen, m(audio, first, target, 0.0).poses, atol=1e-6)
    assert torch.equal(gen, m.generate(audio, first))
    assert not m.training


def _outputs_and_grads(model, audio, first, target, tf, seed):
    first = first.clone().requires_grad_(True)
    target = target.clone().requires_grad_(True)
    torch.manual_seed(seed)
    out = model(audio, first, target, tf).poses
    weight = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).reshape(out.shape)
    (out * weight).sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    grads["first_pose"] = first.grad.clone()
    grads["target"] = target.grad.clone() if target.grad is not None else torch.zeros_like(target)
    return out.detach(), grads


@pytest.mark.parametrize("tf", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 2e-5)])
def test_fast_equals_reference(tf, dtype, tol):
    fast = _tiny(fast=True, layers=2, dtype=dtype).train()  # dropout on: same masks from the same seed
    ref = build_model(**{**fast.config, "fast": False}).to(dtype).train()
    ref.load_state_dict(fast.state_dict())
    audio, first, target = _data(T=16, B=3, dtype=dtype)
    o1, g1 = _outputs_and_grads(fast, audio, first, target, tf, seed=11)
    o2, g2 = _outputs_and_grads(ref, audio, first, target, tf, seed=11)
    assert torch.allclose(o1, o2, atol=tol, rtol=0)
    assert g1.keys() == g2.keys()
    for name in g1:
        scale = g2[name].abs().max().clamp_min(1.0)
        assert torch.allclose(g1[name], g2[name], atol=tol * scale, rtol=0), name
        if name not in ("target",) or tf > 0:
            assert g2[name].abs().max() > 0, name  # every gradient is exercised


@pytest.mark.parametrize("layers", [1, 3])
def test_fast_equals_reference_other_depths(layers):
    fast = _tiny(layers=layers, dtype=torch.float64)
    ref = build_model(**{**fast.config, "fast": False}).to(torch.float64)
    ref.load_state_dict(fast.state_dict())
    audio, first, target = _data(T=9, B=2, dtype=torch.float64)
    o1, g1 = _outputs_and_grads(fast, audio, first, target, 0.5, seed=2)
    o2, g2 = _outputs_and_grads(ref, audio, first, target, 0.5, seed=2)
    assert torch.allclose(o1, o2, atol=1e-12)
    for name in g1:
        assert torch.allclose(g1[name], g2[name], atol=1e-11), name


def test_no_grad_path_equals_reference():
    fast = _tiny().eval()
    ref = build_model(**{**fast.config, "fast": False}).eval()
    ref.load_state_dict(fast.state_dict())
    audio, first, target = _data(T=20)
    with torch.no_grad():
        for tf in (0.0, 0.5, 1.0):
            torch.manual_seed(4)
            a = fast(audio, first, target, tf).poses
            torch.manual_seed(4)
            b = ref(audio, first, target, tf).poses
            assert torch.allclose(a, b, atol=1e-6)


def test_tiny_model_overfits_one_window():
    torch.manual_seed(0)
    T, B, F = 24, 2, 6
    m = build_model("seq2seq_lstm", in_dim=F, hidden=32, layers=2, dropout=0.0)
    audio, first, target = _data(T, B, F, seed=5)
    t = torch.linspace(0, 6.28, T)[:, None, None, None]
    target = 0.2 * torch.sin(t + target[:1]) + 0.1 * target[:1]  # smooth motion, [T, B, 17, 3]
    first = target[0]
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)

    def loss_now():
        return torch.nn.functional.mse_loss(m(audio, first, target, 0.0).poses, target)

    start = loss_now().item()
    losses = []
    for _ in range(150):
        loss = loss_now()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
    # The loss rests near 7.5 % of its start, then most runs drop to 4-5 % with spikes to 9 % late on:
    # the median of the last 10 losses was 4.1-7.6 % over 12 initial seeds x {float32, float64, MKL
    # held to AVX2}; lr 0 keeps 100 % and a frozen output layer 36-47 %.
    assert torch.tensor(losses[-10:]).median().item() < 0.15 * start, losses
