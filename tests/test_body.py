"""The hinged body (kakashi.body): exact bones, hinge ranges, round trips on synthetic and real motion."""
import math

import numpy as np
import pytest
import torch

from kakashi import body
from kakashi.clips import list_clips, read_clip
from kakashi.config import get_preset
from kakashi.loaders import read_smpl_csv
from kakashi.skeleton import H36M, cmu15_to_h36m, smpl24_to_h36m
from kakashi.synth import ensure_dataset

FPS = 24.0
CHILDREN = list(range(1, 17))


def random_body(T=50, B=3, seed=0, scale=3.0):
    """Random parameters (far outside the anatomical ranges), a skeleton and a start."""
    g = torch.Generator().manual_seed(seed)
    params = torch.randn(T, B, body.PARAM_DIM, generator=g, dtype=torch.float64) * scale
    skeleton = torch.randn(B, 17, 3, generator=g, dtype=torch.float64) * 0.2
    skeleton[:, 0] = 0.0
    start = torch.randn(B, 3, generator=g, dtype=torch.float64)
    return params, skeleton, start


def lengths(poses):
    parents = [H36M.parents[c] for c in CHILDREN]
    return torch.linalg.vector_norm(poses[..., CHILDREN, :] - poses[..., parents, :], dim=-1)


@pytest.mark.parametrize("seed", range(3))
def test_forward_kinematics_keeps_bone_lengths_exactly(seed):
    params, skeleton, start = random_body(seed=seed)
    poses = body.body_to_poses(params, skeleton, start, FPS)
    assert poses.shape == (50, 3, 17, 3)
    want = torch.linalg.vector_norm(skeleton[:, CHILDREN], dim=-1)       # [B, 16]
    assert torch.allclose(lengths(poses), want.expand(50, 3, 16), atol=1e-9)


def hinge_angles(poses):
    """Angle (rad) between the upper and lower bone of each limb [.., 4]."""
    out = []
    for limb in body.LIMBS:
        u, m, e = limb.joints
        a, b = poses[..., m, :] - poses[..., u, :], poses[..., e, :] - poses[..., m, :]
        cos = (a * b).sum(-1) / (torch.linalg.vector_norm(a, dim=-1) * torch.linalg.vector_norm(b, dim=-1))
        out.append(torch.acos(cos.clamp(-1, 1)))
    return torch.stack(out, -1)


def limb_skeleton(skeleton):
    """A skeleton with a level pelvis, spine and neck bones along y and limbs along their rest
    directions, as fitted ones are."""
    skeleton = skeleton.clone()
    skeleton[:, body.R_HIP] = torch.tensor([-0.1, 0.0, 0.0], dtype=skeleton.dtype)
    skeleton[:, body.L_HIP] = torch.tensor([0.1, 0.0, 0.0], dtype=skeleton.dtype)
    skeleton[:, body.SPINE] = torch.tensor([0.0, 0.2, 0.0], dtype=skeleton.dtype)
    skeleton[:, body.THORAX] = torch.tensor([0.0, 0.25, 0.0], dtype=skeleton.dtype)
    skeleton[:, body.HEAD] = torch.tensor([0.0, 0.12, 0.0], dtype=skeleton.dtype)
    for limb in body.LIMBS:
        _, m, e = limb.joints
        rest = torch.tensor(limb.rest, dtype=skeleton.dtype)
        skeleton[:, m], skeleton[:, e] = 0.45 * rest, 0.4 * rest
    return skeleton


@pytest.mark.parametrize("seed", range(3))
def test_hinges_stay_in_range_for_any_parameters(seed):
    params, skeleton, start = random_body(seed=seed, scale=10.0)
    angles = hinge_angles(body.body_to_poses(params, limb_skeleton(skeleton), start, FPS))
    assert angles.max() <= body.BEND_MAX + 1e-6 and angles.min() >= 0.0
    assert angles.max() > math.radians(140)             # the range is used, not collapsed


@pytest.mark.parametrize("seed", range(3))
def test_knees_never_bend_forwards(seed):
    """Any twist and bend, thighs anywhere within 60 deg of hanging down: every bent knee
    flexes backwards as seen from the pelvis (knee_bends > 0)."""
    params, skeleton, start = random_body(T=400, seed=seed, scale=10.0)
    for limb in body.LIMBS[:2]:
        sl = body.SLICES[limb.name]
        direction = torch.nn.functional.normalize(params[..., sl.start:sl.start + 3], dim=-1)
        down = torch.tensor(limb.rest, dtype=params.dtype)
        tilt = math.radians(60) * torch.rand(params.shape[:-1], dtype=params.dtype)[..., None]
        side = torch.nn.functional.normalize(direction - (direction * down).sum(-1, keepdim=True) * down, dim=-1)
        params[..., sl.start:sl.start + 3] = torch.cos(tilt) * down + torch.sin(tilt) * side
    poses = body.body_to_poses(params, limb_skeleton(skeleton), start, FPS)
    bends = body.knee_bends(poses.reshape(-1, 17, 3).numpy())              # [N, 2] deg
    bent = np.abs(bends) > 1.0
    assert bent.mean() > 0.3                              # half the raw bends are below 0 (straight)
    assert bends[bent].min() > 0.0, f"a knee bent forwards: {bends[bent].min():.1f} deg"


def test_inverse_kinematics_recovers_parameters_within_range():
    params, skeleton, start = random_body(T=40, B=2, seed=5, scale=0.3)
    skeleton = limb_skeleton(skeleton)
    for limb in body.LIMBS:
        sl = body.SLICES[limb.name]
        params[..., sl.start + 3] = params[..., sl.start + 3].clamp(-0.5, 0.5)
        params[..., sl.start + 4] = params[..., sl.start + 4].abs() + 0.3       # clearly bent
        rest_dir = torch.tensor(limb.rest, dtype=torch.float64)
        params[..., sl.start:sl.start + 3] = rest_dir + 0.3 * params[..., sl.start:sl.start + 3]
    poses = body.body_to_poses(params, skeleton, start, FPS)
    fitted, fitted_skeleton, fitted_start = body.poses_to_body(poses, FPS, skeleton=skeleton)
    again = body.body_to_poses(fitted, skeleton, fitted_start, FPS)
    assert torch.allclose(again, poses, atol=1e-6)
    for limb in body.LIMBS:
        sl = body.SLICES[limb.name]
        assert torch.allclose(fitted[..., sl.start + 3:sl.stop], params[..., sl.start + 3:sl.stop], atol=1e-6)
    # the root's rates are read in the heading frame, whose yaw the fit takes out of the tilt:
    # fitting its own output again gives the same numbers
    refit = body.poses_to_body(again, FPS, skeleton=skeleton)[0]
    assert torch.allclose(refit, fitted, atol=1e-6)


def test_round_trip_on_synthetic_dances():
    clips = list_clips(ensure_dataset(get_preset("smoke")))
    for path in clips:
        poses = read_clip(path).poses
        err = np.linalg.norm(body.body_round_trip(poses, FPS) - poses, axis=-1)   # [T, 17] m
        assert err.mean() < 0.002 and err.max() < 0.01, f"{path.name}: {err.mean() * 1000:.2f} mm mean"


def test_mending_leaves_a_fitted_body_alone_and_fills_a_degenerate_pelvis_from_its_neighbours():
    """A decoded pelvis tilt whose 6D vectors shrink through zero for a few steps turns the body
    upside down there (the direction of a near-zero vector is noise); mend_directions replaces
    just those steps by the tilt interpolated between the sound steps either side, and leaves a
    fitted body (unit vectors) exactly as it is."""
    poses = torch.as_tensor(read_clip(list_clips(ensure_dataset(get_preset("smoke")))[0]).poses[:60], dtype=torch.float64)
    params, skeleton, start = body.poses_to_body(poses, FPS)
    assert torch.equal(body.mend_directions(params), params)
    broken = params.clone()
    tilt = broken[..., body.TILT]
    tilt[20:24] = -0.1 * tilt[20:24]                                   # shrunk through zero: flipped
    broken[1:3, body.SLICES["left_arm"].start] = 0.0
    broken[1:3, body.SLICES["left_arm"].start + 1:body.SLICES["left_arm"].start + 3] *= 0.01
    def up(p):                                                         # [T] m the thorax sits above the hip
        built = body.body_to_poses(p, skeleton, start, FPS)
        return built[:, body.THORAX, 1] - built[:, body.ROOT, 1]
    assert up(broken)[20:24].max() < 0 < up(params).min()
    mended = body.mend_directions(broken)
    w = torch.arange(1, 5, dtype=torch.float64)[:, None] / 5
    assert torch.allclose(mended[20:24, body.TILT], (1 - w) * params[19, body.TILT] + w * params[24, body.TILT])
    assert torch.equal(mended[:20], torch.cat([params[:1], mended[1:3], params[3:20]]))
    assert torch.equal(mended[24:], params[24:]) and up(mended).min() > 0.3
    arm = body.SLICES["left_arm"]
    assert torch.allclose(mended[1:3, arm.start:arm.start + 3],
                          params[0, arm.start:arm.start + 3] + torch.tensor([[1 / 3], [2 / 3]], dtype=torch.float64)
                          * (params[3, arm.start:arm.start + 3] - params[0, arm.start:arm.start + 3]))


def test_mending_takes_the_one_sound_side_at_the_ends_and_the_rest_pose_where_nothing_is_sound():
    params = torch.zeros(5, 2, body.PARAM_DIM, dtype=torch.float64)
    params[..., body.TILT] = torch.tensor(body.IDENTITY_6D, dtype=torch.float64)
    params[0, 0, body.TILT] = 0.0                                      # sound from step 1 on
    params[1:, 0, body.TILT] = torch.tensor([0.0, 1.0, 0.0, -1.0, 0.0, 0.0], dtype=torch.float64)
    mended = body.mend_directions(params)
    assert torch.equal(mended[0, 0, body.TILT], params[1, 0, body.TILT])
    for i, limb in enumerate(body.LIMBS):                              # limb directions all zero: rest
        start = body.LIMB_START + body.LIMB_DIM * i
        assert torch.equal(mended[..., start:start + 3], torch.tensor(limb.rest, dtype=torch.float64).expand(5, 2, 3))
    assert torch.equal(mended[..., body.ROTATIONS[body.SPINE]], torch.tensor(body.IDENTITY_6D, dtype=torch.float64).expand(5, 2, 6))


def test_fitted_skeleton_has_the_dance_bone_lengths():
    poses = read_clip(list_clips(ensure_dataset(get_preset("smoke")))[0]).poses
    skeleton = body.fit_skeleton(torch.as_tensor(poses, dtype=torch.float64))
    lengths_fit = np.linalg.norm(skeleton.numpy()[CHILDREN], axis=-1)
    true = np.median(np.linalg.norm(poses[:, CHILDREN] - poses[:, [H36M.parents[c] for c in CHILDREN]], axis=-1), 0)
    assert np.allclose(lengths_fit, true, atol=0.003)


# What the rigid, hinged body costs on real motion (mean joint error in mm, measured 7-12 mm on
# the five AIST++ slices, 0.0 on the CMU dance); the bounds leave a wide margin.
AIST_MEAN_MM, AIST_P95_MM = 20.0, 60.0


def test_round_trip_on_real_motion(shared_data):
    slices = sorted((shared_data / "motion" / "aistpp_slices").glob("true_*.csv"))
    assert slices
    for path in slices:
        poses = smpl24_to_h36m(read_smpl_csv(path))
        err = np.linalg.norm(body.body_round_trip(poses, 30.0) - poses, axis=-1) * 1000
        assert err.mean() < AIST_MEAN_MM and np.percentile(err, 95) < AIST_P95_MM, path.name
    cmu = np.load(shared_data / "motion" / "cmu_55_01_dance.npz")
    poses = cmu15_to_h36m(cmu["positions"])
    err = np.linalg.norm(body.body_round_trip(poses, float(cmu["fps"])) - poses, axis=-1) * 1000
    assert err.mean() < 5.0


def test_rotation_helpers():
    g = torch.Generator().manual_seed(1)
    m = body.rotation_6d_to_matrix(torch.randn(10, 6, generator=g, dtype=torch.float64))
    assert torch.allclose(m @ m.transpose(-1, -2), torch.eye(3, dtype=torch.float64).expand(10, 3, 3), atol=1e-9)
    assert torch.allclose(torch.linalg.det(m), torch.ones(10, dtype=torch.float64))
    assert torch.allclose(body.rotation_6d_to_matrix(body.matrix_to_rotation_6d(m)), m, atol=1e-9)
    d = torch.nn.functional.normalize(torch.randn(10, 3, generator=g, dtype=torch.float64), dim=-1)
    rest = torch.tensor([0.0, -1.0, 0.0], dtype=torch.float64)
    assert torch.allclose((body.swing(rest, d) @ rest[:, None])[..., 0], d, atol=1e-9)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="body parameters"):
        body.body_to_poses(torch.zeros(3, 2, 10), torch.zeros(2, 17, 3), None, FPS)
    with pytest.raises(ValueError, match="poses must be"):
        body.poses_to_body(torch.zeros(3, 15, 3), FPS)
