"""Existing datasets -> clips: Kakashi layout, AIST++ keypoints, BVH, EDGE's SMPL CSV slices."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import soundfile as sf

from kakashi import loaders
from kakashi.bvh import read_bvh
from kakashi.clips import SR, read_clip
from kakashi.skeleton import FEET, HEAD, ROOT, bone_length_cv


def _head_above_hip(poses, fraction=0.95):
    return np.mean(poses[:, HEAD, 1] > poses[:, ROOT, 1]) >= fraction


def test_smpl_csv_slices(shared_data, tmp_path):
    report = loaders.load_dataset(shared_data / "motion" / "aistpp_slices", tmp_path)
    assert report.ok and len(report.written) == 5
    for path in report.written:
        clip = read_clip(path)
        assert clip.fps == 24.0 and clip.num_frames == 120  # 150 frames at 30 fps -> 24 fps
        assert bone_length_cv(clip.poses) < 0.02
        assert _head_above_hip(clip.poses, 1.0)
        assert 0.0 < clip.poses[:, FEET, 1].min() < 0.2  # ankles just above the floor (feet at 0)
        assert 1.3 < clip.poses[:, HEAD, 1].max() < 2.2
        assert clip.meta["audio"] == loaders.SILENT
        audio, sr = sf.read(clip.audio_path)
        assert sr == SR and abs(len(audio) / SR - clip.seconds) < 0.05


def test_kakashi_layout(shared_data, tmp_path):
    sample = np.load(shared_data / "motion" / "kakashi_wod" / "kakashi_wod_keypoints_h36m17.npy")
    root = tmp_path / "kakashi"
    for number, (a, b) in {"00000": (0, 300), "00001": (300, 450), "00002": (450, 500)}.items():
        folder = root / "wod" / number
        folder.mkdir(parents=True)
        np.save(folder / f"{number}.keypoints.npy", sample[a:b])
        if number != "00002":  # the third one lacks its music
            t = np.arange(int((b - a) / 30 * 44100)) / 44100
            sf.write(folder / f"{number}.wav", np.stack([np.sin(2 * np.pi * 440 * t)] * 2, axis=1), 44100)
    report = loaders.load_dataset(root, tmp_path / "out", fps=30.0)
    assert [p.name for p in report.written] == ["wod_00000", "wod_00001"]
    assert list(report.failed) == [str(root / "wod" / "00002" / "00002.keypoints.npy")]
    assert "00002.wav: music of 00002.keypoints.npy not found" in next(iter(report.failed.values()))
    clip = read_clip(report.written[0])
    assert clip.num_frames == 240 and clip.fps == 24.0  # 300 frames at 30 fps
    assert _head_above_hip(clip.poses)  # y down camera space turned y up
    assert clip.poses[:, FEET, 1].min() == pytest.approx(0.0, abs=1e-5)
    audio, sr = sf.read(clip.audio_path)
    assert sr == SR and audio.ndim == 1 and abs(len(audio) / SR - 10.0) < 0.01


def _coco_standing(T=120):
    """COCO-17 keypoints in cm, y up: a person standing, swaying in x."""
    base = np.array([[0, 160, 10], [-3, 163, 8], [3, 163, 8], [-7, 160, 0], [7, 160, 0],
                     [-18, 140, 0], [18, 140, 0], [-22, 112, 0], [22, 112, 0], [-24, 85, 0],
                     [24, 85, 0], [-10, 95, 0], [10, 95, 0], [-10, 50, 0], [10, 50, 0],
                     [-10, 8, 0], [10, 8, 0]], np.float64)
    kp = np.tile(base, (T, 1, 1))
    kp[:, :, 0] += 20 * np.sin(np.arange(T) / 60 * 2 * np.pi)[:, None]
    return kp


def test_aistpp_npz_and_pickle(tmp_path):
    kp = _coco_standing()
    kp[5] = np.nan  # a missing frame is interpolated
    np.savez(tmp_path / "seq.npz", keypoints3d=kp)
    t = np.arange(2 * SR) / SR
    sf.write(tmp_path / "music.wav", 0.1 * np.sin(2 * np.pi * 220 * t), SR)
    path = loaders.load_aistpp(tmp_path / "seq.npz", tmp_path / "music.wav", tmp_path / "out")
    clip = read_clip(path)
    assert clip.num_frames == 48 and np.isfinite(clip.poses).all()  # 120 frames at 60 fps -> 24
    assert clip.poses[0, HEAD, 1] > clip.poses[0, ROOT, 1]
    assert clip.poses[0, ROOT, 1] == pytest.approx(0.95, abs=1e-4)  # cm -> m, global position kept
    with open(tmp_path / "seq.pkl", "wb") as f:
        pickle.dump({"keypoints3d": _coco_standing()}, f)
    with pytest.raises(ValueError, match="allow_pickle=True"):
        loaders.load_aistpp(tmp_path / "seq.pkl", None, tmp_path / "out2")
    clip = read_clip(loaders.load_aistpp(tmp_path / "seq.pkl", None, tmp_path / "out2", allow_pickle=True))
    assert clip.num_frames == 48
    np.save(tmp_path / "bad.npy", np.zeros((10, 5, 3)))
    with pytest.raises(ValueError, match=r"bad.npy.*\[T, 17, 3\]"):
        loaders.load_aistpp(tmp_path / "bad.npy", None, tmp_path / "out3")


BVH_TEXT = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT RightUpLeg
  { OFFSET -10 0 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    JOINT RightLeg
    { OFFSET 0 -45 0
      CHANNELS 3 Zrotation Xrotation Yrotation
      JOINT RightFoot
      { OFFSET 0 -42 0
        CHANNELS 3 Zrotation Xrotation Yrotation
        End Site
        { OFFSET 0 0 10 }
      }
    }
  }
  JOINT LeftUpLeg
  { OFFSET 10 0 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    JOINT LeftLeg
    { OFFSET 0 -45 0
      CHANNELS 3 Zrotation Xrotation Yrotation
      JOINT LeftFoot
      { OFFSET 0 -42 0
        CHANNELS 3 Zrotation Xrotation Yrotation
        End Site
        { OFFSET 0 0 10 }
      }
    }
  }
  JOINT Spine
  { OFFSET 0 20 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    JOINT Neck
    { OFFSET 0 30 0
      CHANNELS 3 Zrotation Xrotation Yrotation
      JOINT Head
      { OFFSET 0 10 0
        CHANNELS 3 Zrotation Xrotation Yrotation
        End Site
        { OFFSET 0 15 0 }
      }
    }
    JOINT LeftShoulder
    { OFFSET 3 28 0
      CHANNELS 3 Zrotation Xrotation Yrotation
      JOINT LeftArm
      { OFFSET 15 0 0
        CHANNELS 3 Zrotation Xrotation Yrotation
        JOINT LeftForeArm
        { OFFSET 28 0 0
          CHANNELS 3 Zrotation Xrotation Yrotation
          JOINT LeftHand
          { OFFSET 25 0 0
            CHANNELS 3 Zrotation Xrotation Yrotation
            End Site
            { OFFSET 8 0 0 }
          }
        }
      }
    }
    JOINT RightShoulder
    { OFFSET -3 28 0
      CHANNELS 3 Zrotation Xrotation Yrotation
      JOINT RightArm
      { OFFSET -15 0 0
        CHANNELS 3 Zrotation Xrotation Yrotation
        JOINT RightForeArm
        { OFFSET -28 0 0
          CHANNELS 3 Zrotation Xrotation Yrotation
          JOINT RightHand
          { OFFSET -25 0 0
            CHANNELS 3 Zrotation Xrotation Yrotation
            End Site
            { OFFSET -8 0 0 }
          }
        }
      }
    }
  }
}
MOTION
Frames: 3
Frame Time: 0.0333333
"""
# 18 joints with channels: 6 + 17 * 3 = 57 values a frame.
_REST = [0, 90, 0] + [0] * 54


def _frame(root_pos=(0, 90, 0), root_rot=(0, 0, 0), knee_x=0.0):
    values = list(_REST)
    values[0:3] = root_pos
    values[3:6] = root_rot  # Z X Y
    values[6 + 3 + 1] = knee_x  # RightLeg Xrotation
    return " ".join(f"{v:g}" for v in values)


def _write_bvh(path):
    frames = [_frame(), _frame((100, 90, 0), (0, 0, 90)), _frame(knee_x=90)]
    path.write_text(BVH_TEXT + "\n".join(frames) + "\n")
    return path


def test_bvh_forward_kinematics(tmp_path):
    bvh = read_bvh(_write_bvh(tmp_path / "dance.bvh"))
    assert bvh.fps == pytest.approx(30.0, rel=1e-4) and bvh.motion.shape == (3, 57)
    pos = bvh.positions()  # [T, J, 3] cm
    names = bvh.names
    foot = names.index("RightFoot")
    assert pos[0, foot] == pytest.approx([-10, 3, 0])  # 90 - 45 - 42
    # Frame 1: root moved 100 cm in x and turned 90 deg about y: the right hip (-x) goes to +z.
    assert pos[1, names.index("RightUpLeg")] == pytest.approx([100, 90, 10])
    # Frame 2: the right knee bent +90 deg about x: the shin, pointing down at rest, now points to -z.
    shin = pos[2, foot] - pos[2, names.index("RightLeg")]
    assert shin == pytest.approx([0, 0, -42], abs=1e-6)


def test_bvh_to_clip(tmp_path):
    path = loaders.load_bvh(_write_bvh(tmp_path / "dance.bvh"), None, tmp_path / "out")
    clip = read_clip(path)
    p = clip.poses[0]
    assert p[ROOT] == pytest.approx([0, 0.9, 0])  # cm -> m
    assert p[11] == pytest.approx([0.18, 1.38, 0])  # l_shoulder is LeftArm, not the clavicle
    assert p[10] == pytest.approx([0, 1.65, 0])  # head top from the head's End Site
    assert p[HEAD, 1] > p[ROOT, 1]
    assert clip.meta["source_fps"] == pytest.approx(30.0, rel=1e-4)


def test_bvh_errors(tmp_path):
    bad = tmp_path / "bad.bvh"
    bad.write_text(BVH_TEXT + "0 1 2\n0 1 2\n0 1 2\n")
    with pytest.raises(ValueError, match="bad.bvh: expected 3 motion rows of 57 values"):
        read_bvh(bad)
    nohead = tmp_path / "nohead.bvh"
    nohead.write_text(_write_bvh(tmp_path / "x.bvh").read_text().replace("Head", "Skull"))
    with pytest.raises(ValueError, match="nohead.bvh: no joint for neck"):
        loaders.load_bvh(nohead, None, tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="missing.bvh"):
        read_bvh(tmp_path / "missing.bvh")


def test_dispatch_errors(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="unknown dataset layout"):
        loaders.load_dataset(tmp_path / "notes.txt", tmp_path / "out")
    with pytest.raises(FileNotFoundError):
        loaders.load_dataset(tmp_path / "nothing", tmp_path / "out")
    with pytest.raises(ValueError, match="unknown layout"):
        loaders.load_dataset(tmp_path, tmp_path / "out", layout="fbx")
