"""Skeleton definition, converters on real motion capture, and pose transforms."""
import numpy as np
import pytest

from kakashi import skeleton as sk


def load_cmu(shared_data):
    data = np.load(shared_data / "motion" / "cmu_55_01_dance.npz")
    assert list(data["joint_names"]) == list(sk.CMU15.names)
    return sk.cmu15_to_h36m(data["positions"]), float(data["fps"])


def load_aist_slices(shared_data):
    for path in sorted((shared_data / "motion" / "aistpp_slices").glob("*.csv")):
        joints = np.loadtxt(path, delimiter=",").reshape(-1, 24, 3)
        yield path.name, sk.smpl24_to_h36m(joints)


def test_h36m_definition():
    assert sk.H36M.num_joints == 17
    assert sk.H36M.parents == (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
    assert len(sk.H36M.bones) == 16
    for left, right in zip(sk.H36M.joints_left, sk.H36M.joints_right):
        assert sk.H36M.names[left].replace("l_", "") == sk.H36M.names[right].replace("r_", "")
    assert sorted(sk.H36M.mirror[sk.H36M.mirror]) == list(range(17))


def assert_plausible(poses, name):
    assert poses.shape[1:] == (17, 3) and np.isfinite(poses).all(), name
    cv = sk.bone_length_cv(poses)
    assert cv < 0.02, f"{name}: bone-length variation {cv:.3%}"
    assert (poses[:, sk.HEAD, 1] > poses[:, sk.ROOT, 1]).all(), f"{name}: head below hip"
    assert (poses[:, sk.THORAX, 1] > poses[:, sk.ROOT, 1]).all(), f"{name}: thorax below hip"
    height = np.median(poses[:, sk.HEAD, 1] - np.minimum(poses[:, 3, 1], poses[:, 6, 1]))
    assert 1.2 < height < 2.1, f"{name}: standing height {height:.2f} m"


def test_cmu_mocap_to_h36m(shared_data):
    poses, fps = load_cmu(shared_data)
    assert fps == 60
    assert_plausible(poses, "cmu_55_01")
    assert abs(min(poses[:, 3, 1].min(), poses[:, 6, 1].min())) < 0.15  # feet near the floor


def test_aist_smpl_to_h36m(shared_data):
    for name, poses in load_aist_slices(shared_data):
        assert_plausible(poses, name)


def test_kakashi_wod_sample_is_y_down(shared_data):
    raw = np.load(shared_data / "motion" / "kakashi_wod" / "kakashi_wod_keypoints_h36m17.npy")
    poses = sk.rotate(raw, sk.Y_DOWN_TO_Y_UP)
    assert (np.median(poses[:, sk.HEAD, 1]) > 0.3) and np.allclose(poses[:, 0], 0, atol=1e-3)


def test_left_right_are_anatomical(shared_data):
    """Not mirrored: forward = up x right (right-handed, y up) points where the SMPL toes point."""
    for path in sorted((shared_data / "motion" / "aistpp_slices").glob("*.csv")):
        joints = np.loadtxt(path, delimiter=",").reshape(-1, 24, 3)
        poses = sk.smpl24_to_h36m(joints)
        right = poses[:, 1] - poses[:, 4]                      # l_hip -> r_hip
        up = poses[:, sk.THORAX] - poses[:, sk.ROOT]
        forward = np.cross(up, right)
        toes = sk.rotate(joints[:, 10] - joints[:, 7], sk.Z_UP_TO_Y_UP)  # l_ankle -> l_foot
        agree = np.einsum("ti,ti->t", forward[:, [0, 2]], toes[:, [0, 2]]) > 0
        assert agree.mean() > 0.8, path.name
    assert np.linalg.det(sk.Z_UP_TO_Y_UP) == pytest.approx(1)
    assert np.linalg.det(sk.Y_DOWN_TO_Y_UP) == pytest.approx(1)


def test_resample_keeps_time_and_speed():
    t = np.arange(121) / 60.0
    poses = np.zeros((121, 17, 3))
    poses[:, :, 0] = (1.5 * t)[:, None]           # 1.5 m/s along x
    out = sk.resample(poses, 60, 24)
    assert len(out) == 49                           # 2 s at 24 fps: frames 0..48
    np.testing.assert_allclose(out[:, 0, 0], 1.5 * np.arange(49) / 24, atol=1e-9)
    np.testing.assert_allclose(sk.joint_speed(out, 24), 1.5, atol=1e-9)
    assert sk.resample(poses, 60, 60).shape == poses.shape


def test_root_relative_and_floor():
    rng = np.random.default_rng(0)
    poses = rng.normal(size=(5, 17, 3))
    rel = sk.root_relative(poses)
    assert np.allclose(rel[:, 0], 0) and np.allclose(rel[:, 1] - rel[:, 2], poses[:, 1] - poses[:, 2])
    assert sk.put_on_floor(poses)[..., 1].min() == pytest.approx(0)


def test_bad_shapes_are_clear():
    with pytest.raises(ValueError, match=r"\[T, 24, 3\]"):
        sk.smpl24_to_h36m(np.zeros((4, 17, 3)))
    with pytest.raises(ValueError, match="positive"):
        sk.resample(np.zeros((4, 17, 3)), 0, 24)

