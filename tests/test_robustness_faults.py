"""Numerical faults, untrusted files and determinism.

- a loss, an input feature or a target pose that is NaN/inf stops training with a message
  naming the epoch and batch, and keeps the best checkpoint as it was;
- gradients are clipped to the preset's norm;
- checkpoints carrying pickled code are refused without running it; no other module unpickles;
  names made from titles and URLs stay inside their folder;
- one seed gives one dataset, one set of features and one training history.
"""
from __future__ import annotations

import ast
import json
import math
import pickle
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from kakashi import checkpoint, clips, losses
from kakashi.clips import clip_features
from kakashi.config import REPO_ROOT, get_preset
from kakashi.dataset import load_splits
from kakashi.loaders import read_aistpp_keypoints
from kakashi.pipeline.download import cache_name, cached
from kakashi.pipeline.manifest import default_clip_id
from kakashi.synth import build_dataset
from kakashi.train import TrainingDiverged, train

from helpers import make_clips

PRESET = get_preset("smoke", seq_len=24, stride=12, hidden=16, batch_size=3, epochs=3, loss="mse")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_clips(tmp_path_factory.mktemp("faults") / "ds")


@pytest.fixture
def splits(dataset):
    return load_splits(dataset, PRESET)  # fresh arrays per test: some tests poison them


def train_batches(splits) -> int:
    return -(-len(splits.windows["train"]) // PRESET.batch_size)


# ----------------------------------------------------------------------------------------------
# numerical faults

def test_inf_loss_stops_naming_epoch_and_batch_and_keeps_best(splits, tmp_path, monkeypatch):
    per_epoch, calls = train_batches(splits), {"n": 0}

    def exploding(output, target):
        loss = torch.nn.functional.mse_loss(output, target)
        if output.requires_grad:
            calls["n"] += 1
            if calls["n"] == per_epoch + 2:  # epoch 2, batch 2
                return loss * float("inf")
        return loss

    monkeypatch.setitem(losses.LOSSES, "exploding", exploding)
    run = tmp_path / "inf"
    with pytest.raises(TrainingDiverged, match=r"exploding: loss became inf at epoch 2, batch 2; "
                                               r"training stopped \(best checkpoint kept"):
        train(replace(PRESET, loss="exploding"), run, splits=splits, progress=False)
    history = json.loads((run / "history.json").read_text())
    assert history["status"] == "diverged" and len(history["epochs"]) == 1
    assert "epoch 2, batch 2" in history["message"]
    best = checkpoint.read(run / "best.pt")
    assert best["epoch"] == 1 and all(torch.isfinite(v).all() for v in best["state_dict"].values())
    assert checkpoint.read(run / "last.pt")["epoch"] == 1


def poison_window(splits, field: str, value: float) -> None:
    """Put `value` into the first training window of the first training clip."""
    data = splits.clips["train"][0]
    getattr(data, field)[5] = value


def test_nan_in_input_features_stops_in_the_first_epoch_without_a_checkpoint(splits, tmp_path):
    poison_window(splits, "features", np.nan)
    run = tmp_path / "nan_features"
    with pytest.raises(TrainingDiverged, match=r"mse: the audio features of a training batch hold NaN or inf "
                                               r"at epoch 1, batch \d+; training stopped \(no checkpoint yet"):
        train(PRESET, run, splits=splits, progress=False)
    assert not (run / "best.pt").exists() and not (run / "last.pt").exists()
    assert json.loads((run / "history.json").read_text())["status"] == "diverged"


def test_nan_in_target_poses_after_a_good_epoch_keeps_that_best_checkpoint(splits, tmp_path):
    run = tmp_path / "nan_poses"
    train(replace(PRESET, epochs=1), run, splits=splits, progress=False)
    best_bytes = (run / "best.pt").read_bytes()
    poison_window(splits, "poses", np.inf)   # the data goes bad while the run resumes
    with pytest.raises(TrainingDiverged, match=r"the target poses of a training batch hold NaN or inf "
                                               r"at epoch 2, batch \d+; training stopped \(best checkpoint kept"):
        train(PRESET, run, splits=splits, progress=False)
    assert (run / "best.pt").read_bytes() == best_bytes      # untouched, still loadable
    checkpoint.load_model(run / "best.pt")
    history = json.loads((run / "history.json").read_text())
    assert history["status"] == "diverged" and [e["epoch"] for e in history["epochs"]] == [1]


@pytest.mark.parametrize("scale", [1e6, 1e-6])
def test_gradients_are_clipped_to_the_preset_norm(splits, tmp_path, monkeypatch, scale):
    """After clipping, the total gradient norm the optimiser sees is min(norm, clip_grad)."""
    clip = 0.5
    before, after = [], []
    real_clip = torch.nn.utils.clip_grad_norm_

    def recording_clip(parameters, max_norm, *args, **kwargs):
        parameters = list(parameters)
        assert max_norm == clip
        norm = real_clip(parameters, max_norm, *args, **kwargs)
        before.append(float(norm))
        return norm

    real_step = torch.optim.SGD.step

    def recording_step(self, *args, **kwargs):
        grads = [p.grad for group in self.param_groups for p in group["params"] if p.grad is not None]
        after.append(float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))))
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", recording_clip)
    monkeypatch.setattr(torch.optim.SGD, "step", recording_step)
    monkeypatch.setitem(losses.LOSSES, "scaled", lambda out, target: scale * torch.nn.functional.mse_loss(out, target))
    train(replace(PRESET, loss="scaled", clip_grad=clip, epochs=1), tmp_path / "clip", splits=splits, progress=False)
    assert len(before) == len(after) == train_batches(splits)
    for pre, post in zip(before, after):
        assert post == pytest.approx(min(pre, clip), rel=1e-4)
    if scale > 1:
        assert min(before) > 100 * clip        # the huge loss really needed clipping
    else:
        assert max(before) < clip              # the tiny loss was left alone


# ----------------------------------------------------------------------------------------------
# untrusted files

class WritesMarker:
    """Unpickling this object writes a file: what a malicious checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "code ran"))


def malicious_checkpoint(path: Path, marker: Path) -> Path:
    torch.save({"format": checkpoint.FORMAT, "model": {"name": "seq2seq_lstm"}, "state_dict": {},
                "payload": WritesMarker(marker)}, path)
    return path


def test_checkpoint_with_pickled_code_is_refused_without_running_it(tmp_path):
    control = tmp_path / "control_marker"
    torch.load(malicious_checkpoint(tmp_path / "control.pt", control), weights_only=False)
    assert control.read_text() == "code ran"   # the payload is live: an unsafe load runs it

    marker = tmp_path / "marker"
    evil = malicious_checkpoint(tmp_path / "evil ckpt.pt", marker)
    with pytest.raises(ValueError, match=r"evil ckpt\.pt: not a readable Kakashi checkpoint"):
        checkpoint.read(evil)
    with pytest.raises(ValueError, match=r"evil ckpt\.pt"):
        checkpoint.load_model(evil)
    song = tmp_path / "song.wav"
    sf.write(song, 0.3 * np.sin(np.linspace(0, 3000, 3 * clips.SR)).astype(np.float32), clips.SR)
    proc = subprocess.run([sys.executable, "-m", "kakashi", "choreograph", str(song), "-c", str(evil),
                           "--npz", str(tmp_path / "out.npz")], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 1
    assert proc.stderr.startswith("kakashi choreograph: error:") and "evil ckpt.pt" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not marker.exists() and not (tmp_path / "out.npz").exists()


def test_aistpp_pickle_needs_the_explicit_opt_in(tmp_path):
    marker = tmp_path / "marker"
    pkl = tmp_path / "keypoints.pkl"
    pkl.write_bytes(pickle.dumps({"keypoints3d": WritesMarker(marker)}))
    with pytest.raises(ValueError, match=r"keypoints\.pkl: reading a \.pkl runs code"):
        read_aistpp_keypoints(pkl)
    assert not marker.exists()


UNSAFE_LOADS = {"pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}
OPT_IN = ("loaders.py", "read_aistpp_keypoints")  # documented: the official AIST++ .pkl files


def unsafe_uses(path: Path) -> list[tuple[str, int, str]]:
    """(function, line, what) for every unpickling import, allow_pickle=True or weights_only=False."""
    tree = ast.parse(path.read_text(), str(path))
    found = []

    def visit(node, function):
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                modules = [a.name.split(".")[0] for a in child.names] + [(getattr(child, "module", "") or "").split(".")[0]]
                found.extend((name, child.lineno, f"import {m}") for m in modules if m in UNSAFE_LOADS)
            if isinstance(child, ast.keyword) and child.arg in ("allow_pickle", "weights_only") \
                    and isinstance(child.value, ast.Constant):
                if child.value.value is (child.arg == "allow_pickle"):
                    found.append((name, child.value.lineno, f"{child.arg}={child.value.value}"))
            if isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute) and child.func.attr == "load" \
                    and isinstance(child.func.value, ast.Name) and child.func.value.id == "torch":
                if not any(k.arg == "weights_only" and getattr(k.value, "value", None) is True for k in child.keywords):
                    found.append((name, child.lineno, "torch.load without weights_only=True"))
            visit(child, name)

    visit(tree, "<module>")
    return found


def test_no_module_unpickles_files_except_the_documented_opt_in():
    package = REPO_ROOT / "kakashi"
    offenders = []
    for path in sorted(package.rglob("*.py")):
        for function, line, what in unsafe_uses(path):
            if (path.name, function) != OPT_IN:
                offenders.append(f"{path.relative_to(REPO_ROOT)}:{line} in {function}: {what}")
    assert not offenders, "\n".join(offenders)
    # the scanner sees what it should: the opt-in itself is found
    assert {what for _, _, what in unsafe_uses(package / "loaders.py")} >= {"import pickle"}


HOSTILE = ["../../etc/passwd", "..", ".", "/abs/path/video", "a/../../b", "..\\..\\windows\\x",
           "~/.ssh/id_rsa", "Dance Battle!! | Finals (2019) \U0001f525", "con\x00tains\nnul", "-rf --no-preserve-root",
           "https://www.youtube.com/watch?v=../../x&list=../y", "https://evil.example/../../x.mp4",
           "https://evil.example/watch?v=..", "file:///etc/passwd", "..%2F..%2Fetc"]


def refused_or_inside(make, name, folder: Path) -> str:
    """The name `make` builds from `name`: inside `folder`, or refused with a clear ValueError."""
    try:
        made = make(name)
    except ValueError as e:
        assert "cannot make a clip id" in str(e)
        return "refused"
    assert clips._SAFE_ID.match(made), made
    assert (folder / made).resolve().parent == folder.resolve(), made
    assert "/" not in made and "\\" not in made and not made.startswith(".")
    return made


@pytest.mark.parametrize("name", HOSTILE)
def test_names_from_titles_and_urls_stay_inside_their_folder(tmp_path, name):
    makers = [clips.safe_clip_id, lambda n: default_clip_id(n, 1.0, 2.0),
              lambda n: default_clip_id(n, None, None, 3), cache_name, lambda n: cache_name(n, 7)]
    made = [refused_or_inside(make, name, tmp_path) for make in makers]
    if name.startswith(("http", "file")):   # a URL always gets a usable cache name
        assert "refused" not in made[3:], made


@pytest.mark.parametrize("bad_id", ["../x", "..", "a/b", "/tmp/x", ".hidden", "", "x" * 200, "a\\..\\b"])
def test_write_clip_refuses_ids_that_leave_the_dataset(tmp_path, bad_id):
    ds = tmp_path / "ds"
    with pytest.raises(ValueError, match="unsafe clip id"):
        clips.write_clip(ds, bad_id, np.zeros((24, 17, 3)), 24.0, np.zeros(clips.SR, np.float32), {})
    assert not any(tmp_path.rglob("*.npz"))


def test_download_cache_ignores_a_note_pointing_outside(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    outside = tmp_path / "secret.mp4"
    outside.write_bytes(b"x")
    url = "https://example.org/watch?v=abc"
    (cache / f"{cache_name(url)}.json").write_text(json.dumps({"file": "../secret.mp4"}))
    assert cached(url, cache) is None
    (cache / "ok.mp4").write_bytes(b"x")
    (cache / f"{cache_name(url)}.json").write_text(json.dumps({"file": "ok.mp4"}))
    assert cached(url, cache) == cache / "ok.mp4"


# ----------------------------------------------------------------------------------------------
# determinism

def test_one_seed_one_synthetic_dataset_serial_or_parallel(tmp_path):
    a = build_dataset(tmp_path / "a", 3, (3.0, 4.0), seed=5, workers=1)
    b = build_dataset(tmp_path / "b", 3, (3.0, 4.0), seed=5, workers=2)
    for pa, pb in zip(a, b):
        for name in ("clip.npz", "meta.json", "audio.wav"):
            assert (pa / name).read_bytes() == (pb / name).read_bytes(), f"{pa.name}/{name}"
        assert np.array_equal(sf.read(pa / "audio.wav")[0], sf.read(pb / "audio.wav")[0])
    c = build_dataset(tmp_path / "c", 3, (3.0, 4.0), seed=6, workers=1)
    assert (c[0] / "clip.npz").read_bytes() != (a[0] / "clip.npz").read_bytes()  # the seed matters


@pytest.mark.parametrize("kind", ["mfcc", "rich"])
def test_features_repeat_exactly(dataset, tmp_path, kind):
    clip = clips.list_clips(dataset)[0]
    copy = tmp_path / clip.name
    copy.mkdir()
    for name in ("audio.wav", "clip.npz", "meta.json"):
        (copy / name).write_bytes((clip / name).read_bytes())
    first = clip_features(copy, kind)
    cache = copy / "features" / f"{kind}.npy"
    cache.unlink()          # computed again from the audio, not read back from the cache
    second = clip_features(copy, kind)
    assert first.dtype == np.float32 and np.array_equal(first, second)
    assert np.array_equal(np.load(cache), first)


def test_one_seed_one_training_history(splits, tmp_path):
    a = train(PRESET, tmp_path / "a", splits=splits, progress=False)
    b = train(PRESET, tmp_path / "b", splits=splits, progress=False)
    key = lambda h: [(e["train_loss"], e["val_loss"]) for e in h["epochs"]]
    assert key(a) == key(b) and all(math.isfinite(x) for pair in key(a) for x in pair)
    wa, wb = (checkpoint.read(tmp_path / r / "last.pt")["state_dict"] for r in "ab")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    c = train(replace(PRESET, seed=1), tmp_path / "c", splits=splits, progress=False)
    assert key(c) != key(a)
