"""BVH export: positions -> BVH -> forward kinematics gives the positions back."""
from __future__ import annotations

import re

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from kakashi import export
from kakashi.bvh import read_bvh
from kakashi.skeleton import H36M, bone_lengths, cmu15_to_h36m

FPS = 24.0
# Offsets (metres) of each H36M-17 joint from its parent in the synthetic dancer's rest pose.
REST = np.array([
    [0, 0, 0], [-0.12, 0, 0], [0, -0.44, 0.02], [0, -0.42, 0], [0.12, 0, 0], [0, -0.44, 0.02],
    [0, -0.42, 0], [0, 0.24, 0.01], [0, 0.26, 0], [0, 0.1, 0.06], [0, 0.12, 0],
    [0.16, -0.02, 0], [0.28, 0, 0], [0.25, 0, 0], [-0.16, -0.02, 0], [-0.28, 0, 0], [-0.25, 0, 0],
])


def synthetic_dance(frames: int = 96, seed: int = 0) -> np.ndarray:
    """A rigid-bone dance [frames, 17, 3] metres: smooth random joint rotations, a moving root."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / FPS
    amp = rng.uniform(-1.4, 1.4, (17, 3))  # radians, per joint and axis
    freq = rng.uniform(0.2, 1.5, (17, 3))  # Hz
    phase = rng.uniform(0, 2 * np.pi, (17, 3))
    rotvec = amp * np.sin(2 * np.pi * freq * t[:, None, None] + phase)  # [T, 17, 3]
    local = Rotation.from_rotvec(rotvec.reshape(-1, 3)).as_matrix().reshape(frames, 17, 3, 3)
    rot = np.zeros_like(local)
    pos = np.zeros((frames, 17, 3))
    pos[:, 0] = np.stack([np.sin(t), 0.95 + 0.1 * np.sin(3 * t), 0.5 * t], axis=1)
    rot[:, 0] = local[:, 0]
    for j in range(1, 17):
        p = H36M.parents[j]
        rot[:, j] = rot[:, p] @ local[:, j]
        pos[:, j] = pos[:, p] + rot[:, p] @ REST[j]
    return pos


def roundtrip(tmp_path, poses, fps=FPS, **kwargs):
    path = export.write_bvh(tmp_path / "dance.bvh", poses, fps, **kwargs)
    bvh = read_bvh(path)
    scale = kwargs.get("scale", export.SCALE)
    return path, bvh, bvh.positions(scale=1.0 / scale)


def test_synthetic_dance_round_trip_within_1cm(tmp_path):
    poses = synthetic_dance()
    assert np.ptp(bone_lengths(poses), axis=0).max() < 1e-9  # constant bones by construction
    _, bvh, back = roundtrip(tmp_path, poses)
    error = np.linalg.norm(back - poses, axis=-1)  # [T, 17] metres
    assert back.shape == poses.shape
    assert error.max() < 0.01, f"max error {error.max():.4f} m"
    assert error.max() < 1e-4  # in fact exact up to the printed precision
    assert bvh.names == list(H36M.names) and bvh.parents == list(H36M.parents)


@pytest.mark.parametrize("order", ["XYZ", "YXZ"])
def test_other_euler_orders_and_metres(tmp_path, order):
    poses = synthetic_dance(48, seed=1)
    _, bvh, back = roundtrip(tmp_path, poses, order=order, scale=1.0)
    assert bvh.channels[1] == [f"{a}rotation" for a in order]
    assert np.abs(back - poses).max() < 1e-4


def test_file_is_structurally_valid_and_in_centimetres(tmp_path):
    poses = synthetic_dance(30)
    path, bvh, _ = roundtrip(tmp_path, poses)
    text = path.read_text()
    head, motion = text.split("MOTION\n")
    assert head.startswith("HIERARCHY\nROOT hip\n{\n")
    assert head.count("{") == head.count("}") == 17 + 5
    assert len(re.findall(r"^\s*JOINT \w+$", head, re.M)) == 16
    assert len(re.findall(r"^\s*End Site$", head, re.M)) == 5  # one per leaf
    channel_counts = [int(n) for n in re.findall(r"CHANNELS (\d+)", head)]
    assert channel_counts == [6] + [3] * 16
    lines = motion.strip().splitlines()
    assert lines[0] == f"Frames: {len(poses)}"
    assert float(lines[1].split(":")[1]) == pytest.approx(1 / FPS, abs=1e-8)
    assert len(lines) - 2 == len(poses)
    assert {len(row.split()) for row in lines[2:]} == {sum(channel_counts)}
    # Offsets are centimetres: the right thigh's is the thigh length * 100.
    thigh = np.linalg.norm(poses[:, 2] - poses[:, 1], axis=-1).mean()
    assert np.linalg.norm(bvh.offsets[2]) == pytest.approx(100 * thigh, rel=1e-4)
    # The root moves in centimetres in its position channels.
    np.testing.assert_allclose(bvh.motion[:, :3], poses[:, 0] * 100, atol=1e-4)


def test_real_mocap_round_trip_within_1cm(tmp_path, shared_data):
    data = np.load(shared_data / "motion" / "cmu_55_01_dance.npz")
    poses = cmu15_to_h36m(data["positions"]).astype(np.float64)  # [902, 17, 3], 60 fps
    fps = float(data["fps"])
    _, bvh, back = roundtrip(tmp_path, poses, fps)
    assert bvh.fps == pytest.approx(fps)
    # Per-frame deviation of bone lengths from their medians (what one skeleton cannot follow).
    deviation = np.abs(bone_lengths(poses) - np.median(bone_lengths(poses), axis=0)).max()
    error = np.linalg.norm(back - poses, axis=-1)
    assert error.max() < 0.01 + 4 * deviation, f"max error {error.max():.4f} m"
    assert error.max() < 0.01  # this mocap has rigid bones: measured error is below 1 micrometre


def test_wobbly_estimate_keeps_bone_directions(tmp_path, shared_data):
    """Real VideoPose3D estimates (bone lengths wobble): each single-child bone keeps its
    observed direction exactly and takes the median length."""
    poses = np.load(shared_data / "motion" / "kakashi_wod" / "kakashi_wod_keypoints_h36m17.npy")
    poses = poses[:600].astype(np.float64)
    _, _, back = roundtrip(tmp_path, poses)
    for child, parent in enumerate(H36M.parents):
        if child not in export.REST_DIRECTIONS:
            continue
        seen, got = poses[:, child] - poses[:, parent], back[:, child] - back[:, parent]
        cos = np.einsum("ti,ti->t", seen, got) / np.linalg.norm(seen, axis=1) / np.linalg.norm(got, axis=1)
        assert np.degrees(np.arccos(np.clip(cos, -1, 1))).max() < 0.05, H36M.names[child]
        median = np.median(np.linalg.norm(seen, axis=1))
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), median, rtol=1e-5)


def test_rotation_helpers_handle_edge_cases():
    a = np.array([[0, 1, 0], [0, 1, 0], [1, 0, 0], [0, 0, 1]], float)
    b = np.array([[0, -2, 0], [0, 0, 0], [0, 3, 0], [0, 0, 5]], float)
    r = export.rotation_between(a, b)  # opposite, zero-length, 90 degrees, equal
    np.testing.assert_allclose(r @ np.swapaxes(r, 1, 2), np.broadcast_to(np.eye(3), r.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(r), 1.0)
    np.testing.assert_allclose(np.einsum("tij,tj->ti", r[[0, 2, 3]], a[[0, 2, 3]]),
                               [[0, -1, 0], [0, 1, 0], [0, 0, 1]], atol=1e-12)
    np.testing.assert_allclose(r[1], np.eye(3))
    truth = Rotation.from_rotvec([0.3, -1.2, 2.0]).as_matrix()
    rest = np.array([[1.0, 0, 0], [0, 1, 0], [0.2, 0.3, 0.5]])
    found = export.kabsch(rest, (rest @ truth.T)[None])
    np.testing.assert_allclose(found[0], truth, atol=1e-12)


def test_bad_input_raises_clear_errors_and_writes_nothing(tmp_path):
    with pytest.raises(ValueError, match=r"\[T, 17, 3\]"):
        export.write_bvh(tmp_path / "a.bvh", np.zeros((10, 15, 3)), FPS)
    bad = synthetic_dance(10)
    bad[3, 4, 1] = np.nan
    with pytest.raises(ValueError, match="finite"):
        export.write_bvh(tmp_path / "a.bvh", bad, FPS)
    with pytest.raises(ValueError, match="order"):
        export.write_bvh(tmp_path / "a.bvh", synthetic_dance(10), FPS, order="XXZ")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(FileNotFoundError, match="missing.bvh"):
        read_bvh(tmp_path / "missing.bvh")


def test_malformed_files_name_the_file(tmp_path):
    good = export.write_bvh(tmp_path / "good.bvh", synthetic_dance(5), FPS).read_text()
    cases = {
        "nomotion.bvh": good.split("MOTION")[0],
        "truncated.bvh": good.replace("JOINT r_knee", "JOINT r_knee\n{\nOFFSET 1 2").split("MOTION")[0] + "MOTION\n",
        "columns.bvh": good.rstrip("\n") + " 1.0\n",
        "header.bvh": good.replace("Frame Time:", "Frame Rate:"),
        "channel.bvh": good.replace("Zrotation", "Wrotation", 1),
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(ValueError, match=re.escape(name)):
            read_bvh(tmp_path / name)
