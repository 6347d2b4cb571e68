"""motion_vocab (kakashi.models.vocab): the model contract, the codes, overfitting, the training loop."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kakashi import body, checkpoint
from kakashi.audio import RICH_COLUMNS
from kakashi.clips import list_clips, read_clip
from kakashi.config import get_preset
from kakashi.dataset import load_splits
from kakashi.inference import generate_poses
from kakashi.models import build_model
from kakashi.models.vocab import FSQ
from kakashi.synth import ensure_dataset
from kakashi.train import train

from helpers import make_clips, overfit

FPS = 24.0
SMALL = dict(hidden=32, layers=1, heads=4, codec_hidden=32, dropout=0.0, segment=8, levels=[5, 5, 3])


def make(**extra):
    torch.manual_seed(0)
    return build_model("motion_vocab", in_dim=44, **{**SMALL, **extra})


def synthetic_dance(T=44, B=2):
    """Audio [T, B, 44] and two windows of a synthetic dancer [T, B, 17, 3] (metres, global)."""
    poses = read_clip(list_clips(ensure_dataset(get_preset("smoke")))[0]).poses
    target = torch.tensor(np.stack([poses[:T], poses[60:60 + T]], 1)[:, :B], dtype=torch.float32)
    return torch.randn(T, B, 44, generator=torch.Generator().manual_seed(1)), target


def test_contract_shapes_frame_zero_rebuild_and_seed():
    model = make()
    audio, poses = synthetic_dance()                        # 44 frames: not a whole number of segments
    for tf in (0.0, 1.0):
        out = model(audio, poses[0], target=poses, teacher_forcing=tf)
        assert out.poses.shape == poses.shape and torch.equal(out.poses[0], poses[0])
        assert out.codes[0].shape == (6, 2) and out.logits[1].shape == (6, 2, 75)
        loss = model.objective(out, poses, None)
        assert loss.dim() == 0 and torch.isfinite(loss)
    assert model(audio, poses[0]).poses.shape == poses.shape
    gen = model.generate(audio, poses[0])
    assert gen.shape == poses.shape and torch.equal(gen[0], poses[0])
    assert not gen.is_inference()                           # danced in inference mode, returned as any tensor
    twin = build_model(**model.config)
    twin.load_state_dict(model.state_dict())
    torch.manual_seed(3)
    a = model.generate(audio[:, :1], poses[0, :1])
    torch.manual_seed(3)
    assert torch.equal(a, twin.generate(audio[:, :1], poses[0, :1]))
    torch.manual_seed(4)
    assert not torch.equal(a, model.generate(audio[:, :1], poses[0, :1]))
    assert model.uses_loss is False and model.training


def test_generated_bodies_keep_the_first_pose_bones_and_hinges():
    model = make(temperature=2.0)
    audio, poses = synthetic_dance()
    gen = model.generate(audio, poses[0]).double()
    children = list(range(1, 17))
    parents = [body.PARENTS[c] for c in children]
    lengths = torch.linalg.vector_norm(gen[:, :, children] - gen[:, :, parents], dim=-1)   # [T, B, 16]
    want = body.fit_skeleton(poses[:1].double())
    assert torch.allclose(lengths[1:], torch.linalg.vector_norm(want[:, children], dim=-1).expand_as(lengths[1:]),
                          atol=1e-4)
    knees = body.knee_bends(gen[1:].reshape(-1, 17, 3).numpy())
    assert knees[np.abs(knees) > 1.0].min() > 0.0


def test_bad_inputs_raise():
    model = make()
    audio, poses = synthetic_dance()
    with pytest.raises(ValueError, match="audio must be"):
        model(audio[..., :20], poses[0])
    with pytest.raises(ValueError, match="first_pose"):
        model(audio, poses[0, :1])
    with pytest.raises(ValueError, match="needs a target"):
        model(audio, poses[0], teacher_forcing=0.5)
    with pytest.raises(ValueError, match="power of 2"):
        make(segment=6)
    with pytest.raises(ValueError, match="odd"):
        FSQ((4, 5))
    with pytest.raises(ValueError, match="music_dropout"):
        make(music_dropout=1.0)
    with pytest.raises(ValueError, match="guidance"):
        make(guidance=0.5)                                  # no null music trained to guide from
    with pytest.raises(ValueError, match="guidance"):
        make(music_dropout=0.2, guidance=-1.0)
    with pytest.raises(ValueError, match="music_noise"):
        make(music_noise=-0.1)


def test_fsq_indices_and_lookup_agree():
    fsq = FSQ((7, 5, 3))
    z = torch.randn(1000, 3) * 3
    q, index = fsq(z)
    assert index.min() >= 0 and index.max() < fsq.size == 105
    assert torch.allclose(fsq.lookup(index), q)
    assert len(torch.unique(index)) > 50                     # the codes are used, not collapsed
    z.requires_grad_(True)
    fsq(z)[0].sum().backward()
    assert z.grad.abs().sum() > 0                             # straight-through gradient


# Overfitting two windows of the synthetic dancer for STEPS steps: the objective falls to
# 1.2-3.6 % of its first value (seeds 0-2; bound 10 %) and the reconstruction's mean joint error
# in the local body from 1.07-1.49 m untrained to 34-38 mm, 2.6-3.2 % (seeds 0-2; bound 20 %).
STEPS = 150


def local_error_mm(model, audio, poses):
    with torch.no_grad():
        out = model(audio, poses[0], target=poses, teacher_forcing=1.0)
        local = lambda p: body.body_to_poses(p, out.skeleton, None, FPS)
        return float(torch.linalg.vector_norm(local(out.decoded) - local(out.params), dim=-1).mean()) * 1000


@pytest.mark.parametrize("seed", [0])
def test_overfits_two_windows(seed):
    torch.manual_seed(seed)
    model = build_model("motion_vocab", in_dim=44, **{**SMALL, "levels": [7, 5, 5, 5]})
    audio, poses = synthetic_dance(T=48)
    before = local_error_mm(model, audio, poses)
    losses = overfit(model, audio, poses, STEPS)
    after = local_error_mm(model, audio, poses)
    assert losses[-1] < 0.1 * losses[0]
    assert after < 0.2 * before, f"{before:.1f} -> {after:.1f} mm"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    preset = get_preset("vocab", seq_len=32, stride=16, hidden=16, batch_size=4, epochs=2, threads=1, polish=0,
                        model_options=(("heads", 2), ("codec_hidden", 16), ("levels", (5, 3, 3))))
    root = make_clips(tmp_path_factory.mktemp("vocab"), n=5, seconds=(2.5, 3.5))
    return preset, load_splits(root, preset)


def test_trains_through_the_loop_and_generates(tiny, tmp_path):
    preset, splits = tiny
    history = train(preset, tmp_path / "run", splits=splits, progress=False)
    assert history["status"] == "completed" and len(history["epochs"]) == 2
    assert all(np.isfinite(e["train_loss"]) and np.isfinite(e["val_loss"]) for e in history["epochs"])
    net, _ = checkpoint.load_model(tmp_path / "run" / "best.pt", expect_model="motion_vocab")
    clip = splits.clips["test"][0]
    torch.manual_seed(0)
    out = generate_poses(net, clip.features, clip.poses[0], window=preset.seq_len)
    assert out.shape == clip.poses.shape and np.isfinite(out).all()
    assert np.allclose(out[0], clip.poses[0])


def test_polish_trains_the_decoders_alone_from_the_best_checkpoint_and_resumes(tiny, tmp_path):
    """Preset.polish: after the main epochs only the decoders train on, from the best checkpoint;
    every other weight stays the best main epoch's, a polished epoch becomes the best, and a run
    cut between the polished epochs resumes to the same weights."""
    from dataclasses import replace

    preset, splits = tiny
    weights = lambda run, name="best.pt": checkpoint.read(tmp_path / run / name)["state_dict"]
    plain = train(preset, tmp_path / "plain", splits=splits, progress=False)
    polished = replace(preset, polish=2)
    history = train(polished, tmp_path / "full", splits=splits, progress=False)
    assert [e.get("polish", False) for e in history["epochs"]] == [False, False, True, True]
    assert [e["val_loss"] for e in history["epochs"][:2]] == [e["val_loss"] for e in plain["epochs"]]
    assert history["best_epoch"] in (3, 4)
    best, main = weights("full"), weights("plain")
    decoders = [k for k in best if k.startswith(("dec_lower.", "dec_upper."))]
    assert decoders and any(not torch.equal(best[k], main[k]) for k in decoders)
    assert all(torch.equal(best[k], main[k]) for k in best if k not in decoders)
    train(replace(preset, polish=1), tmp_path / "cut", splits=splits, progress=False)
    train(polished, tmp_path / "cut", splits=splits, progress=False)                 # resumes at epoch 4
    full, cut = weights("full", "last.pt"), weights("cut", "last.pt")
    assert all(torch.equal(full[k], cut[k]) for k in full)


def test_polish_freezes_all_but_the_decoders_and_drops_the_cross_entropy_for_turns():
    """MotionVocab.polish(): the decoders' parameters, alone trainable; the objective then is the
    codec's reconstruction with the velocity term of `turns`, the transformer not run."""
    audio, poses = synthetic_dance()
    model = make()
    params = model.polish()
    assert {id(p) for p in params} == {id(p) for p in [*model.dec_lower.parameters(), *model.dec_upper.parameters()]}
    assert all(p.requires_grad == any(p is q for q in params) for p in model.parameters())
    out = model(audio, poses[0], poses, teacher_forcing=1.0)
    assert out.logits is None
    ref = make(turns=True)
    full = ref(audio, poses[0], poses, teacher_forcing=1.0)
    ce = sum(F.cross_entropy(lg.reshape(-1, lg.shape[-1]), code.reshape(-1)) for lg, code in zip(full.logits, full.codes))
    assert torch.allclose(model.objective(out, poses), ref.objective(full, poses) - ce, rtol=1e-5)


def test_a_checkpoint_trained_with_music_dropout_dances_with_the_guidance_asked(tiny, tmp_path):
    """`train --music-dropout` trains the null music into the checkpoint; `choreograph
    guidance=` dances it with that guidance (the checkpoint's own by default) from the same song."""
    from kakashi.experiment import with_model_options
    from kakashi.generate import choreograph, with_generation
    from kakashi.inference import Dancer

    preset, splits = tiny
    run = tmp_path / "run"
    train(with_model_options(preset, music_dropout=0.3, music_noise=0.5), run, splits=splits, progress=False)
    state = checkpoint.read(run / "best.pt")
    assert "null_music" in state["state_dict"] and state["model"]["guidance"] == 1.0
    assert state["model"]["music_noise"] == 0.5
    assert Dancer.load(run / "best.pt", state=with_generation(state, run / "best.pt", guidance=0.25)).model.guidance == 0.25
    with pytest.raises(ValueError, match="beat time"):      # frame time: no beats to count a rest in
        with_generation(state, run / "best.pt", rest=8.0)
    song = splits.clips["test"][0].clip.audio_path
    heard, deaf = choreograph(song, run / "best.pt"), choreograph(song, run / "best.pt", guidance=0.0)
    assert heard.poses.shape == deaf.poses.shape and np.isfinite(deaf.poses).all()
    assert np.array_equal(deaf.poses, choreograph(song, run / "best.pt", guidance=0.0).poses)


def test_ground_keeps_a_foot_on_the_floor_after_the_blend():
    model = make(ground=1.0, blend=8, temperature=2.0)
    audio, poses = synthetic_dance()
    torch.manual_seed(0)
    gen = model.generate(audio, poses[0])
    lowest = gen[8:, :, [3, 6], 1].min(-1).values                       # [T - 8, B] m
    assert lowest.abs().max() < 1e-5
    assert torch.equal(gen[0], poses[0])
    with pytest.raises(ValueError, match="ground"):
        make(ground=1.5)


def test_plant_feet_holds_the_foot_on_the_floor_and_keeps_the_body():
    """The synthetic dancer's feet never slide; the same dance gliding over the floor (up to 0.2 m
    either way) skates at 0.16-0.64 m/s. plant_feet shifts it back over the foot it stands on:
    skating falls to 0.8 % of the glide's (0.0012-0.0049 m/s), PFC likewise; the shape relative
    to the hip is untouched and frame 0 stays."""
    from kakashi.metrics.motion import foot_skating, pfc
    from kakashi.models import objectives as obj

    _, poses = synthetic_dance(T=150)
    t = torch.arange(150.0)[:, None, None] / FPS
    for amp in (0.05, 0.2):
        glide = poses.clone()
        glide[..., 0] += amp * torch.sin(2 * math.pi * 0.7 * t)
        glide[..., 2] += amp * (torch.cos(2 * math.pi * 0.3 * t) - 1)
        planted = obj.plant_feet(glide, 0.01)
        for b in range(2):
            skate = [foot_skating(x[:, b].double().numpy(), FPS) for x in (glide, planted)]
            score = [pfc(x[:, b].double().numpy(), FPS) for x in (glide, planted)]
            assert skate[1] < 0.03 * skate[0] and score[1] < 0.03 * score[0], (skate, score)
        rel = lambda p: p - p[:, :, :1]
        assert torch.allclose(rel(planted), rel(glide), atol=1e-6) and torch.equal(planted[0], glide[0])


def test_a_planting_model_skates_less_with_the_same_body():
    """The same untrained model and draws with and without `plant`: the planted dances are the
    same bodies shifted over the floor (hip-relative shape and frame 0 equal), skating less
    (measured: 83-87 % of the unplanted over 3 seeds x 2 windows)."""
    from kakashi.metrics.motion import foot_skating

    audio, poses = synthetic_dance(T=96)
    for seed in range(2):
        gens = []
        for plant in (0.0, 0.01):
            model = make(ground=1.0, blend=8, temperature=2.0, plant=plant)
            torch.manual_seed(seed)
            gens.append(model.generate(audio, poses[0]))
        rel = lambda p: p - p[:, :, :1]
        assert torch.allclose(rel(gens[1]), rel(gens[0]), atol=1e-5) and torch.equal(gens[1][0], poses[0])
        for b in range(2):
            skate = [foot_skating(g[:, b].double().numpy(), FPS) for g in gens]
            assert skate[1] < 0.95 * skate[0], skate
    with pytest.raises(ValueError, match="plant"):
        make(plant=-0.01)


def _still_foot_steps(poses: torch.Tensor) -> torch.Tensor:
    """[T - 1, B]: the smaller of the two ankles' horizontal moves (m) over each frame step."""
    feet = poses[:, :, [3, 6]][..., [0, 2]].double()
    return torch.linalg.vector_norm(feet[1:] - feet[:-1], dim=-1).min(-1).values


def test_hold_stance_keeps_one_foot_exactly_still_and_the_bones():
    """The gliding dancer (up to 0.2 m either way, as above): held, at every frame step one ankle
    does not move over the floor (PFC exactly 0, where planting leaves it at ~1 %); legs keep the
    lengths of their bones at every frame and knees stay bent forwards; above the legs the body
    keeps its shape (moved as a whole where a leg could not reach its foot); frame 0 stays."""
    from kakashi.metrics.motion import pfc
    from kakashi.models import objectives as obj

    _, poses = synthetic_dance(T=150)
    t = torch.arange(150.0)[:, None, None] / FPS
    children = list(range(1, 17))
    parents = [body.PARENTS[c] for c in children]
    bones = lambda p: torch.linalg.vector_norm(p[:, :, children] - p[:, :, parents], dim=-1)
    rel = lambda p: (p - p[:, :, :1])[:, :, 7:]                          # spine, head and arms
    for amp in (0.05, 0.2):
        glide = poses.clone()
        glide[..., 0] += amp * torch.sin(2 * math.pi * 0.7 * t)
        glide[..., 2] += amp * (torch.cos(2 * math.pi * 0.3 * t) - 1)
        held = obj.hold_stance(glide)
        assert torch.equal(held[0], glide[0]) and held.dtype == glide.dtype
        assert torch.equal(held[:, 1:], obj.hold_stance(glide[:, 1:]))     # each dancer held alone
        assert float(_still_foot_steps(held).max()) < 1e-6 < float(_still_foot_steps(glide).max())
        for b in range(2):
            assert pfc(held[:, b].double().numpy(), FPS) < 1e-9 < pfc(glide[:, b].double().numpy(), FPS)
        assert torch.allclose(bones(held), bones(glide), atol=1e-5)
        assert torch.allclose(rel(held), rel(glide), atol=1e-5)
        knees = body.knee_bends(held[1:].reshape(-1, 17, 3).numpy())
        assert knees[np.abs(knees) > 1.0].min() > 0.0


def test_hold_stance_pulls_a_dancer_who_leaves_the_standing_foot_behind():
    """A dancer standing on one foot (the other raised 0.2 m) who slides 1 m forwards: the foot
    on the floor stays where it stood, so the dancer is pulled back to within the leg's reach of
    it (the hip 0.96 m up, the leg 1.01 m long: 0.31 m forwards), bones kept."""
    from kakashi.models import objectives as obj

    _, poses = synthetic_dance(T=48, B=1)
    pose = poses[0, 0].clone()
    pose[[5, 6], 1] += 0.2                                               # left knee and ankle raised
    slide = pose.expand(48, 1, 17, 3).clone()
    slide[..., 2] += torch.linspace(0, 1, 48)[:, None, None]
    held = obj.hold_stance(slide)
    stance = held[:, 0, 3, [0, 2]]                                       # the right ankle, on the floor
    assert torch.equal(stance, stance[:1].expand_as(stance))
    hip, knee, ankle = held[:, 0, 1], held[:, 0, 2], held[:, 0, 3]
    leg = float(torch.linalg.vector_norm(pose[2] - pose[1]) + torch.linalg.vector_norm(pose[3] - pose[2]))
    assert float(torch.linalg.vector_norm(ankle - hip, dim=-1).max()) <= leg + 1e-5
    assert 0.2 < float(held[-1, 0, 0, 2] - held[0, 0, 0, 2]) < 0.4      # pulled back: 0.31 m, not 1 m
    assert torch.allclose(torch.linalg.vector_norm(knee - hip, dim=-1), torch.linalg.vector_norm(pose[2] - pose[1]))


def test_hold_stance_lets_a_stepping_foot_go_to_the_other_on_the_floor():
    """Both feet on the floor, the right one (held) sliding 0.1 m forwards: once it is HOLD_SLACK
    from where it is held, the stance passes to the left foot, which stays put from then on, and
    the right one glides back onto the dance's own ankle; one foot is still at every step."""
    from kakashi.models import objectives as obj

    _, poses = synthetic_dance(T=48, B=1)
    pose = poses[0, 0].clone()
    pose[[5, 6], 1] += 0.01                                              # the left foot 1 cm up: right holds
    dance = pose.expand(48, 1, 17, 3).clone()
    dance[:, 0, [2, 3], 2] += torch.linspace(0, 0.1, 48)[:, None]        # right knee and ankle slide
    held = obj.hold_stance(dance)
    right, left = held[:, 0, 3, [0, 2]], held[:, 0, 6, [0, 2]]
    moved = torch.linalg.vector_norm(right - right[:1], dim=-1)
    assert 0.0 < float(moved[-1]) and float(moved.max()) == float(moved[-1])
    first = int(torch.nonzero(moved > 0)[0])
    assert float(torch.linalg.vector_norm(dance[first, 0, 3, [0, 2]] - dance[0, 0, 3, [0, 2]])) > obj.HOLD_SLACK
    assert torch.equal(left, left[:1].expand_as(left))
    assert torch.allclose(held[-1, 0, 3], dance[-1, 0, 3], atol=1e-6)
    assert float(_still_foot_steps(held).max()) < 1e-6


def test_a_holding_model_stands_still_on_a_foot_with_the_same_upper_body():
    """The same untrained model and draws with and without `hold`: held, one ankle is still at
    every frame step; the body above the legs is the same, frame 0 is the first pose."""
    audio, poses = synthetic_dance(T=96)
    gens = []
    for hold in (False, True):
        model = make(ground=1.0, blend=8, temperature=2.0, plant=0.01, hold=hold)
        torch.manual_seed(0)
        gens.append(model.generate(audio, poses[0]))
    assert float(_still_foot_steps(gens[1]).max()) < 1e-6 < float(_still_foot_steps(gens[0]).max())
    rel = lambda p: (p - p[:, :, :1])[:, :, 7:]
    assert torch.allclose(rel(gens[1]), rel(gens[0]), atol=1e-5) and torch.equal(gens[1][0], poses[0])


def test_step_by_step_codes_match_the_parallel_pass():
    model = make().eval()
    audio, poses = synthetic_dance()
    params = body.poses_to_body(poses, FPS)[0]
    music = model._music(audio)
    lower, upper = model._codes(music, params[0], sample=False)
    with torch.no_grad():
        lo_logits, up_logits = model._logits(music, params[0], lower, upper)
    assert torch.equal(lo_logits.argmax(-1), lower) and torch.equal(up_logits.argmax(-1), upper)
    primed = model._codes(music, params[0], False, (lower[:3], upper[:3]))   # the first three run at once
    assert torch.equal(primed[0], lower) and torch.equal(primed[1], upper)


def test_drawn_codes_are_the_codes_a_dance_decodes_and_true_codes_those_training_encodes():
    """drawn_codes: the very codes generate draws and decodes, with torch's generator in the same
    state; true_codes: those training encodes the true dance into; both leave the module's mode
    as it was."""
    model = make()                                          # in training mode
    audio, poses = synthetic_dance()
    seen, song_codes = [], model._song_codes
    model._song_codes = lambda *a, **k: seen.append(song_codes(*a, **k)) or seen[-1]
    torch.manual_seed(3)
    model.generate(audio, poses[0])
    torch.manual_seed(3)
    drawn = model.drawn_codes(audio, poses[0])
    assert torch.equal(drawn[0], seen[0][0]) and torch.equal(drawn[1], seen[0][1])
    assert drawn[0].shape == (math.ceil(len(audio) / 8), 2)
    torch.manual_seed(4)
    assert not torch.equal(model.drawn_codes(audio, poses[0])[0], drawn[0])   # drawn, not chosen
    true = model.true_codes(audio, poses)
    assert model.training
    model.eval()
    encoded = model.encode(body.poses_to_body(poses, FPS)[0])[0]
    assert torch.equal(true[0], encoded[0]) and torch.equal(true[1], encoded[1])


def test_the_copy_head_mixes_the_code_of_one_move_before_into_each_draw():
    """copy: each half's next code is drawn from (1 - g) x its head's distribution + g x the code
    of one move (MOVE codes) before, g a gate learned from the same state; in training as in
    generation (step by step, the same as the parallel pass), and the gate learns from the code
    cross-entropy. A gate held open repeats every move; without copy the model is as it was."""
    from kakashi.models.vocab import MOVE

    model = make(copy=True).eval()
    logits, h = torch.randn(3, 2, 75), torch.randn(3, 2, 32)
    before = torch.tensor([[0, 5], [7, 7], [74, 1]])
    gate = torch.sigmoid(model.copy_gate(h)[..., 1:2])
    mixed = (1 - gate) * torch.softmax(logits, -1) + gate * F.one_hot(before, 75)
    assert torch.allclose(model._copied(logits, h, before, 1).exp(), mixed, atol=1e-6)
    audio, poses = synthetic_dance()
    params = body.poses_to_body(poses, FPS)[0]
    music = model._music(audio)
    with torch.no_grad():
        model.copy_gate.bias.fill_(8.0)                     # the gate open: each move comes again
        lower, upper = model._codes(music, params[0], sample=False)
        lo_logits, up_logits = model._logits(music, params[0], lower, upper)
    assert torch.equal(lo_logits.argmax(-1), lower) and torch.equal(up_logits.argmax(-1), upper)
    assert torch.equal(lower[MOVE:], lower[:-MOVE]) and torch.equal(upper[MOVE:], upper[:-MOVE])
    model.train()
    out = model(audio, poses[0], poses, teacher_forcing=1.0)
    model.objective(out, poses).backward()
    assert model.copy_gate.weight.grad.abs().sum() > 0
    plain = make()
    assert not hasattr(plain, "copy_gate") and plain.config["copy"] is False


def test_training_hears_some_windows_as_null_music_and_generation_never():
    """music_dropout replaces the whole music of about that share of the windows by the null
    token while training (the unconditional branch guidance needs), and none out of training."""
    model = make(music_dropout=0.25)
    music = torch.randn(400, 6, 32)
    torch.manual_seed(0)
    dropped = model._dropped(music)
    null = (dropped == model.null_music).all(-1)                           # [400, 6]
    assert torch.equal(null.all(-1), null.any(-1))                         # a window's tokens all or none
    assert 0.18 < null.all(-1).float().mean() < 0.32
    assert torch.equal(dropped[~null.all(-1)], music[~null.all(-1)])
    assert torch.equal(model.eval()._dropped(music), music)
    assert not hasattr(make(), "null_music")                               # older checkpoints load as they are


def test_training_hears_the_sound_of_each_window_shifted_and_noisy_and_generation_as_it_is():
    """music_noise adds to the onset, MFCC and chroma columns an offset per window and column and
    noise per frame, each of that std, while training; the beat columns and generation hear the
    music as it is."""
    sound = slice(RICH_COLUMNS["onset"].start, RICH_COLUMNS["chroma"].stop)
    model = make(music_noise=0.5)
    audio = torch.randn(2000, 64, 44)
    torch.manual_seed(0)
    noise = model._noisy(audio) - audio
    assert torch.equal(noise[..., sound.stop:], torch.zeros_like(noise[..., sound.stop:]))
    offset = noise[..., sound].mean(0)                                        # [64, 33] per window and column
    assert 0.45 < offset.std() < 0.55
    assert 0.45 < (noise[..., sound] - offset).std() < 0.55
    assert torch.equal(model.eval()._noisy(audio), audio)
    assert torch.equal(make().train()._noisy(audio), audio)
    audio, poses = synthetic_dance()                                         # the transformer hears it

    def logits(model):
        torch.manual_seed(0)
        return model(audio, poses[0], poses, teacher_forcing=1.0).logits[0]

    assert not torch.equal(logits(make(music_noise=0.5).train()), logits(make().train()))
    assert torch.equal(logits(make(music_noise=0.5).eval()), logits(make().eval()))


@pytest.mark.parametrize("guidance", [0.0, 0.5, 2.0])
def test_guided_codes_are_drawn_from_the_unconditional_logits_moved_towards_the_music(guidance):
    """Step by step, guided codes are the argmax of u + guidance (c - u), where c and u are the
    parallel pass's logits hearing the music and the null music; at guidance 0 the dance is deaf
    to the music (the same codes to other music)."""
    model = make(music_dropout=0.2, guidance=guidance).eval()
    with torch.no_grad():
        model.null_music.normal_()                     # a trained null token, not zeros
    audio, poses = synthetic_dance()
    params = body.poses_to_body(poses, FPS)[0]
    music = model._music(audio)
    lower, upper = model._codes(music, params[0], sample=False)
    with torch.no_grad():
        c = model._logits(music, params[0], lower, upper)
        u = model._logits(model.null_music.expand_as(music), params[0], lower, upper)
    for half, c_half, u_half in zip((lower, upper), c, u):
        assert torch.equal((u_half + guidance * (c_half - u_half)).argmax(-1), half)
    other = model._music(torch.randn_like(audio))
    if guidance == 0.0:
        assert all(map(torch.equal, model._codes(other, params[0], sample=False), (lower, upper)))
    else:
        with torch.no_grad():
            heard = model._logits(other, params[0], lower, upper)[0]
        assert not torch.allclose(u[0] + guidance * (heard - u[0]), u[0] + guidance * (c[0] - u[0]))


def test_music_heard_in_spans_is_each_span_encoded_alone():
    """_music_of encodes spans of equal length together (the last, shorter one apart): each
    the same as `_music` of its own frames, in order, for every dancer of the batch."""
    model = make(segment=4, music_past=4, music_future=4).eval()
    audio = torch.randn(70, 2, 44, generator=torch.Generator().manual_seed(5))    # 17.5 segments
    spans = [(0, 6), (2, 8), (4, 10), (0, 3), (12, 18), (14, 18)]
    with torch.no_grad():
        got = list(model._music_of(audio, spans, batch=2))
        for (m0, m1), music in zip(spans, got, strict=True):
            assert torch.allclose(music, model._music(audio[m0 * 4:m1 * 4]), atol=1e-5)


@pytest.mark.parametrize("context", [4, 6])
def test_a_whole_song_is_drawn_chunk_by_chunk_each_chunk_knowing_the_codes_before_it(context):
    """Codes of a long song (5 chunks) are drawn causally: the song cut short gets the same
    codes up to where its end is heard; the `context` codes primed into a chunk change what it
    draws; a chunk's music is encoded with enough around it to equal the whole song's encoding."""
    from kakashi.models.vocab import CHUNK

    model = make(segment=4, music_past=4, music_future=4, context=context).eval()
    K = 5 * CHUNK
    audio = torch.randn(K * 4, 1, 44, generator=torch.Generator().manual_seed(2))
    first = body.poses_to_body(synthetic_dance(T=2, B=1)[1], FPS)[0][0]
    with torch.no_grad():
        whole = model._song_codes(audio, first, sample=False)
        cut = model._song_codes(audio[:3 * CHUNK * 4], first, sample=False)
        reach = (len(model.music_blocks) + 1) * max(model.past_segments, model.future_segments)
        heard = 3 * CHUNK - reach                                      # codes that cannot hear the cut
        assert torch.equal(whole[0][:heard], cut[0][:heard]) and torch.equal(whole[1][:heard], cut[1][:heard])
        # chunk 2 drawn from other codes before it: other codes (the first pose token aside)
        k0, c0 = 2 * CHUNK, 2 * CHUNK - context
        music = model._music(audio)
        start = model._body_at(*whole, c0)
        given = (whole[0][c0:k0], whole[1][c0:k0])
        same = model._codes(music, start, False, given, c0, context + CHUNK)
        assert torch.equal(same[0][context:], whole[0][k0:k0 + CHUNK])
        other = model._codes(music, start, False, tuple((g + 7) % model.quant.size for g in given),
                             c0, context + CHUNK)
        assert not torch.equal(other[0][context:], whole[0][k0:k0 + CHUNK])


def test_dynamics_leans_the_loud_segments_to_moving_codes_and_the_quiet_ones_to_calm_codes():
    """dynamics: each segment's lift is dynamics times how far its MFCC 0 lies above the song's
    median segment's, over LOUDNESS_SPAN, within -dynamics .. +dynamics, and each code's logit
    gains the lift times how much the code moves (`code_motion`, standardised over the
    codebook): strongly leant, the codes drawn in the loud segments are among the codebook's
    most moving, those in the quiet ones among its calmest; at 0 the codes are the model's own."""
    from kakashi.models.vocab import CHUNK, LOUDNESS_SPAN

    model = make(segment=4, music_past=4, music_future=4).eval()
    K = 3 * CHUNK
    audio = torch.randn(K * 4, 1, 44, generator=torch.Generator().manual_seed(3))
    level = 0.1 * torch.randperm(K, generator=torch.Generator().manual_seed(4)).float()   # a loudness per segment
    audio[..., RICH_COLUMNS["mfcc"].start] = level.repeat_interleave(4)[:, None]
    first = body.poses_to_body(synthetic_dance(T=2, B=1)[1], FPS)[0][0]
    with torch.no_grad():
        own = model._song_codes(audio, first, sample=False)
        motion = model.code_motion()
        for m in motion:
            assert m.shape == (model.quant.size,) and abs(float(m.mean())) < 1e-4 and abs(float(m.std()) - 1) < 1e-4
        model.dynamics = 30.0
        lift = model._lift(audio)[:, 0]
        torch.testing.assert_close(lift, 30.0 * ((level - level.median()) / LOUDNESS_SPAN).clamp(-1, 1))
        assert lift.max() == 30.0 and lift.min() == -30.0
        leant = model._song_codes(audio, first, sample=False)
        loud, quiet = level > level.median() + 0.15, level < level.median() - 0.15
        for m, codes, mine in zip(motion, leant, own):
            assert m[codes[loud, 0]].min() > 1.0 and m[codes[quiet, 0]].max() < -0.5
            assert not torch.equal(codes, mine)
        model.dynamics = 0.0
        assert model._lift(audio) is None
        assert all(map(torch.equal, model._song_codes(audio, first, sample=False), own))
    with pytest.raises(ValueError, match="dynamics"):
        make(dynamics=-1.0)


def test_generation_dances_a_whole_song_in_one_call(monkeypatch):
    model = make()
    calls = []
    monkeypatch.setattr(model, "generate", lambda a, p: calls.append(len(a)) or torch.zeros(len(a), 1, 17, 3))
    out = generate_poses(model, np.zeros((1000, 44), np.float32), np.zeros((17, 3), np.float32), window=48)
    assert calls == [1000] and out.shape == (1000, 17, 3)


def test_face_front_pulls_the_heading_back_and_keeps_the_turns():
    """face_front: a yaw rate held for ever turns the dancer only so far (rate x seconds, not
    without end); one whole spin in 1 s still turns most of the way round, and the heading is
    back within 1 % of the front 10 time constants later; frame 0's rate is not used."""
    from kakashi.models.objectives import face_front

    fps, T = 24.0, 24 * 30
    heading = lambda rate: torch.cumsum(rate[1:], 0) / fps
    steady = face_front(torch.full((T, 1), 1.0), 2.0, fps)
    assert heading(steady)[-1, 0] == pytest.approx(2.0, rel=0.02)
    spin = torch.zeros(T, 1)
    spin[1:25] = 2 * math.pi                                            # 360 deg in 1 s
    pulled = heading(face_front(spin, 2.0, fps))[:, 0]
    assert pulled[23] > 0.75 * 2 * math.pi
    assert abs(pulled[24 + int(10 * 2.0 * fps)]) < 0.01 * 2 * math.pi
    assert torch.equal(face_front(spin, 2.0, fps), face_front(torch.cat([spin[:1] + 5, spin[1:]]), 2.0, fps))


def test_rest_ends_a_rest_by_leaving_out_the_calmer_codes(monkeypatch):
    """rest (beat time): once the dance of the codes drawn so far has moved slower than
    REST_SPEED (the 16 non-root joints about the hip, m/s of the song's time) over its last `rest`
    beats and its last REST_WINDOW, each half's codes that move less than the codebook's average
    (`code_motion` < 0) are left out of the next chunk's draws; before `rest` beats have been
    drawn, for a dance that moves, and at 0, the codes are the model's own."""
    from kakashi.models import vocab

    model = make(beat_steps=16, music_past=8, music_future=8).eval()
    K, seg = 12 * vocab.CHUNK, model.segment
    audio = torch.randn(K * seg, 1, 44, generator=torch.Generator().manual_seed(3))
    at = torch.arange(K * seg, dtype=torch.float32)[:, None]          # a grid point a frame: a code is 1/3 s
    first, skeleton, _ = model._first_body(synthetic_dance(T=2, B=1)[1][0], torch.float32)
    with torch.no_grad():
        motion = model.code_motion()
        for head, m in zip((model.head_lower, model.head_upper), motion):   # drawn as most likely: the calmest code
            head.weight.zero_()
            head.bias.copy_(-20.0 * m)
        own = model._song_codes(audio, first, False, skeleton, at)
        for codes, m in zip(own, motion):
            assert torch.all(codes == m.argmin())
        model.rest = float(vocab.REST_WINDOW)                           # 4 beats: 8 codes, as the window
        span = 8
        calm = tuple(torch.full((span + 1, 1), int(m.argmin())) for m in motion)
        params = model.decode_codes(*calm)[-span * seg - 1:]          # the last 8 codes' steps and the one before
        poses = body.body_to_poses(params, skeleton, None, FPS)
        about = poses[..., 1:, :] - poses[..., :1, :]
        speed = float((about[1:] - about[:-1]).norm(dim=-1).mean()) * FPS   # m/s: a step is a frame here
        seconds = torch.full((K, 1), seg / FPS)
        for threshold, rests in ((1.01 * speed, True), (0.99 * speed, False)):
            monkeypatch.setattr(vocab, "REST_SPEED", threshold)
            assert model._rested(*calm, skeleton, seconds).tolist() == [rests]
            assert model._rested(calm[0][:span], calm[1][:span], skeleton, seconds).tolist() == [False]
        monkeypatch.setattr(vocab, "REST_SPEED", 0.51 * speed)         # the same moves over twice the time
        assert model._rested(*calm, skeleton, 2 * seconds).tolist() == [True]
        monkeypatch.setattr(vocab, "REST_SPEED", 1e-6)                  # nothing is a rest
        assert all(map(torch.equal, model._song_codes(audio, first, False, skeleton, at), own))
        monkeypatch.setattr(vocab, "REST_SPEED", 1e6)                   # everything is
        rested = model._song_codes(audio, first, False, skeleton, at)
        after = (span // vocab.CHUNK + 1) * vocab.CHUNK                   # the first chunk after 8 codes
        for codes, mine, m in zip(rested, own, motion):
            assert torch.equal(codes[:after], mine[:after])
            assert m[codes[after:, 0]].min() >= 0 and codes[after:, 0].eq(codes[after, 0]).all()
        model.rest = 0.0
        assert all(map(torch.equal, model._song_codes(audio, first, False, skeleton, at), own))
    for bad in (dict(rest=-1.0), dict(rest=4.0, beat_steps=0)):
        with pytest.raises(ValueError, match="rest"):
            make(**bad)


def test_turns_makes_the_codec_pay_for_the_travel_and_turns_it_loses():
    """turns: the codec's velocity term on the body stepping through the world, seen from its
    heading at each step. A decoding that keeps every limb but not the root's travel and turns
    costs the local objective almost nothing (only the parameter term) and the turning one the
    steps it loses; the steps are those of the dance built from any start, rotated to its heading."""
    from kakashi.models.vocab import NO_BLEND, VocabOutput

    audio, poses = synthetic_dance()
    params, skeleton, start = body.poses_to_body(poses, FPS)
    params[1:, :, body.VELOCITY] = torch.tensor([0.3, 0.4])   # 0.5 m/s, turning at 1 rad/s
    params[1:, :, body.YAW_RATE] = 1.0
    still = params.clone()
    still[:, :, NO_BLEND] = 0.0                              # the root's rates: velocity and yaw rate
    costs = {}
    for turns in (False, True):
        model = make(turns=turns)
        ref = model(audio, poses[0], poses, teacher_forcing=1.0)       # its codes and logits: the same cost in both
        out = lambda decoded: VocabOutput(poses, params, decoded, skeleton, ref.codes, ref.logits, torch.zeros(1))
        costs[turns] = (model.objective(out(still), poses) - model.objective(out(params), poses)).item()
    assert 0 < costs[False] < 0.01                          # (0.5^2 + (1/4)^2) / 48 of the parameter term
    assert costs[True] > 100 * costs[False]
    steps = make(turns=True)._heading_velocity(params, skeleton)
    root, heading = body.root_path(params, start, FPS)
    world = body.poses_on_path(params, skeleton, root, heading)
    assert torch.allclose(steps, (world[1:] - world[:-1]) @ body.yaw(heading[:-1]), atol=1e-5)
