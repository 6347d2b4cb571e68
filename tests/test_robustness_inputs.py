"""Bad input at every entry point, one table.

Each case feeds one entry point (audio loading, features, dataset build from a manifest,
generation, rendering, checkpoints, the training notebook) one bad input: a missing file, an
empty or truncated file, a read-only output folder, a full disk, a duplicate manifest row,
or an odd but valid input that must work (a path with spaces and unicode, an audio file with
the wrong extension). Expected: one clear error naming the file, or success; exit status 1 for
command lines; existing outputs intact and no partial output files left.

BAD_ARGUMENTS is the table of every command's arguments and output paths (an output that is an
input under any name, unknown suffixes, out-of-range values, damaged checkpoints, truncated
audio): each must fail before any work, with every file in its folder unchanged.

The cases and their outcomes are printed as a table at the end of the session and written
to <pytest basetemp>/bad_input_cases.txt.

Read-only folders and full disks are real: a tmpfs remounted read-only, and a tiny tmpfs
(both need root and `mount`; without them those cases are skipped, with the reason).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from kakashi import checkpoint, clips
from kakashi.audio import load_audio
from kakashi.clips import clip_features
from kakashi.cli import main as cli_main
from kakashi.config import REPO_ROOT, get_preset
from kakashi.dataset import load_splits
from kakashi.losses import LOSSES
from kakashi.pipeline import pose
from kakashi.pipeline.build import BuildSettings, build_dataset
from kakashi.render import save_video
from kakashi.train import train

from helpers import make_clips

ODD = "my sóng — 舞 dance"   # spaces, accents, CJK, an em dash: valid, must work
CASES: list[tuple[str, str, str]] = []  # (entry point, input, outcome)


@pytest.fixture(scope="session", autouse=True)
def case_table(request, tmp_path_factory):
    """Print every case with its outcome at the end, and keep the table in a file."""
    yield CASES
    if not CASES:
        return
    width = [max(len(row[i]) for row in CASES + [("entry point", "input", "")]) for i in range(2)]
    lines = [f"{'entry point':<{width[0]}}  {'input':<{width[1]}}  outcome",
             f"{'-' * width[0]}  {'-' * width[1]}  -------"]
    lines += [f"{e:<{width[0]}}  {i:<{width[1]}}  {o}" for e, i, o in CASES]
    path = tmp_path_factory.getbasetemp() / "bad_input_cases.txt"
    path.write_text("\n".join(lines) + "\n")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    text = f"\nbad-input cases ({len(CASES)}), also in {path}:\n" + "\n".join(lines)
    if reporter is not None:
        reporter.write_line(text)
    else:
        print(text)


def one_line(text: str) -> str:
    return text.strip().replace("\n", " | ")


def expect_error(entry: str, what: str, fn, exc, names: str):
    """fn() must raise `exc` with a one-line message naming `names`; the case goes in the table."""
    with pytest.raises(exc) as info:
        fn()
    message = str(info.value)
    assert names in message, f"{entry} / {what}: the error does not name {names!r}: {message}"
    assert len(message.strip().splitlines()) == 1, message
    CASES.append((entry, what, f"{type(info.value).__name__}: {message}"))
    return info.value


def expect_ok(entry: str, what: str, fn):
    result = fn()
    CASES.append((entry, what, "works"))
    return result


def expect_cli_error(capsys, argv: list[str], what: str, names: str) -> str:
    """`python -m kakashi ARGV` (in this process) must exit 1 with one line naming `names`."""
    capsys.readouterr()
    code = cli_main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 1, f"exit {code}: {err}"
    assert err.startswith(f"kakashi {argv[0]}: error:") and len(err.splitlines()) == 1, err
    assert names in err, err
    CASES.append((f"kakashi {argv[0]}", what, f"exit 1: {err}"))
    return err


def leftovers(folder: Path) -> list[str]:
    """Temporary files a writer left behind."""
    return sorted(p.name for p in folder.rglob("*") if ".tmp" in p.name or p.name.startswith("."))


# ----------------------------------------------------------------------------------------------
# read-only folders and full disks

def _mount(*args: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@contextlib.contextmanager
def tmpfs(path: Path, size: str):
    path.mkdir(parents=True, exist_ok=True)
    if not _mount("-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)):
        pytest.skip("cannot mount a tmpfs here (needs root and mount): read-only / full-disk case not run")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.fixture
def readonly_dir(tmp_path):
    """A folder holding `existing.npz` (an earlier output) on a read-only file system."""
    with tmpfs(tmp_path / "read-only", "4m") as path:
        (path / "existing.npz").write_bytes(b"earlier output")
        if not _mount("-o", "remount,ro", str(path)):
            pytest.skip("cannot remount read-only")
        assert not os.access(path, os.W_OK)
        yield path


@pytest.fixture
def full_disk(tmp_path):
    """A 512 KiB file system holding `existing.npz` (an earlier output), with 4 KiB left."""
    with tmpfs(tmp_path / "full disk", "512k") as path:
        (path / "existing.npz").write_bytes(b"earlier output")
        free = shutil.disk_usage(path).free
        (path / "filler").write_bytes(b"\0" * max(free - 4 * 1024, 0))
        yield path


def assert_intact(folder: Path, expected: set[str]) -> None:
    assert (folder / "existing.npz").read_bytes() == b"earlier output"
    assert {p.name for p in folder.iterdir()} == expected, "partial output left"


# ----------------------------------------------------------------------------------------------
# shared inputs

@pytest.fixture(scope="module")
def song(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("song") / "song.wav"
    t = np.arange(3 * clips.SR) / clips.SR
    y = 0.3 * np.sin(2 * np.pi * 330 * t) * (1 + np.sign(np.sin(2 * np.pi * 2 * t)))
    sf.write(path, y.astype(np.float32), clips.SR, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """best.pt of a two-epoch smoke run on a tiny dataset."""
    root = tmp_path_factory.mktemp("trained")
    preset = get_preset("smoke", seq_len=24, stride=12, hidden=8, batch_size=4, epochs=2)
    train(preset, root / "run", splits=load_splits(make_clips(root / "ds"), preset), progress=False)
    return root / "run" / "best.pt"


@pytest.fixture
def bad_files(tmp_path, trained) -> dict[str, Path]:
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(trained.read_bytes()[: trained.stat().st_size // 2])
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("these are not samples\n")
    empty_wav = tmp_path / "empty.wav"
    empty_wav.write_bytes(b"")
    return {"empty": empty, "truncated": truncated, "not_audio": not_audio, "empty_wav": empty_wav,
            "missing": tmp_path / "missing.wav"}


# ----------------------------------------------------------------------------------------------
# audio loading and features

def test_load_audio(song, bad_files, tmp_path):
    expect_error("audio.load_audio", "missing file", lambda: load_audio(bad_files["missing"]),
                 FileNotFoundError, "missing.wav")
    expect_error("audio.load_audio", "empty file", lambda: load_audio(bad_files["empty_wav"]),
                 ValueError, "empty.wav")
    expect_error("audio.load_audio", "text file named .wav", lambda: load_audio(bad_files["not_audio"]),
                 ValueError, "notes.wav")
    reference = load_audio(song)
    odd = tmp_path / ODD / f"{ODD}.wav"
    odd.parent.mkdir()
    shutil.copyfile(song, odd)
    assert np.array_equal(expect_ok("audio.load_audio", "path with spaces and unicode", lambda: load_audio(odd)),
                          reference)
    for suffix in (".mp3", ".ogg", ".txt", ""):
        wrong = tmp_path / f"song_wav_named{suffix}"
        shutil.copyfile(song, wrong)
        y = expect_ok("audio.load_audio", f"wav file with extension {suffix or '(none)'!r}", lambda: load_audio(wrong))
        assert np.array_equal(y, reference)


@pytest.fixture
def one_clip(tmp_path) -> Path:
    ds = make_clips(tmp_path / ODD, n=1)
    return clips.list_clips(ds)[0]


def test_clip_features(one_clip, tmp_path):
    feats = expect_ok("audio.clip_features", "clip under a path with spaces and unicode",
                      lambda: clip_features(one_clip))
    assert feats.shape == (clips.read_clip(one_clip).num_frames, 20)
    expect_error("audio.clip_features", "missing clip folder", lambda: clip_features(tmp_path / "no clip"),
                 ValueError, "no clip")
    broken = tmp_path / "broken"
    shutil.copytree(one_clip, broken)
    shutil.rmtree(broken / "features")
    (broken / "audio.wav").write_bytes(b"")
    expect_error("audio.clip_features", "clip with an empty audio.wav", lambda: clip_features(broken),
                 ValueError, str(broken / "audio.wav"))
    assert not (broken / "features" / "mfcc.npy").exists()


def test_clip_features_on_a_read_only_dataset_still_computes(one_clip, readonly_dir):
    expected = clip_features(one_clip)
    shutil.rmtree(one_clip / "features")
    subprocess.run(["mount", "-o", "remount,rw", str(readonly_dir)], check=True)
    target = readonly_dir / one_clip.name
    shutil.copytree(one_clip, target)
    subprocess.run(["mount", "-o", "remount,ro", str(readonly_dir)], check=True)
    with pytest.warns(UserWarning, match="not cached"):
        feats = expect_ok("audio.clip_features", "clip on a read-only file system (cache not writable)",
                          lambda: clip_features(target))
    assert np.array_equal(feats, expected) and not (target / "features").exists()


def test_clip_features_on_a_full_disk_leaves_no_partial_cache(one_clip, full_disk):
    expected = clip_features(one_clip, "rich")
    (full_disk / "filler").unlink()
    target = full_disk / one_clip.name
    shutil.copytree(one_clip, target, ignore=shutil.ignore_patterns("features"))
    (target / "features").mkdir()
    (full_disk / "filler").write_bytes(b"\0" * max(shutil.disk_usage(full_disk).free - 4096, 0))
    with pytest.warns(UserWarning, match=r"rich features not cached \(.*rich\.npy"):
        feats = expect_ok("audio.clip_features", "full disk while writing the feature cache",
                          lambda: clip_features(target, "rich"))
    assert np.array_equal(feats, expected)
    assert os.listdir(target / "features") == [], "partial cache left"


# ----------------------------------------------------------------------------------------------
# dataset build from a manifest

@pytest.fixture
def no_pose_model(monkeypatch):
    """An estimator that is never reached (every case fails or skips before pose estimation)."""
    monkeypatch.setitem(pose.ESTIMATORS, "unused", lambda **settings: object())
    return BuildSettings(estimator="unused", estimator_settings=())


def test_build_from_manifest(tmp_path, no_pose_model, capsys):
    out = make_clips(tmp_path / f"{ODD} out", n=1)
    built = clips.list_clips(out)[0]
    stamp = (built / "clip.npz").stat().st_mtime_ns
    manifest = tmp_path / f"{ODD}.csv"
    video = tmp_path / "videos" / "gone.mp4"
    manifest.write_text("source,start,end,id\n"
                        f"{video},0,5,{built.name}\n"
                        f"{video},0,5,{built.name}\n"       # a duplicate row
                        f"{tmp_path / 'videos' / 'missing dance.mp4'},,,\n")
    report = expect_ok("pipeline.build_dataset", "manifest (unicode path) with a duplicate row and a missing video",
                       lambda: build_dataset(manifest, out, workers=1, settings=no_pose_model, progress=False))
    assert [e for e in report.manifest_errors if "duplicate of" in e and "line 3" in e and "built once" in e]
    assert len(report.manifest_errors) == 1
    assert [r.status for r in report.results] == ["skipped", "failed"]
    failed = report.failed[0]
    assert "missing dance.mp4" in failed.message, failed.message
    CASES[-1] = (*CASES[-1][:2], f"report: {report.manifest_errors[0]} / failed: {failed.message}")
    assert (built / "clip.npz").stat().st_mtime_ns == stamp      # the existing clip is kept as is
    assert not leftovers(out) or leftovers(out) == []

    expect_cli_error(capsys, ["build", str(tmp_path / "no such.csv"), "--out", str(out)],
                     "missing manifest", "no such.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    expect_cli_error(capsys, ["build", str(empty), "--out", str(out)], "empty manifest", "empty.csv")
    assert [p.name for p in clips.list_clips(out)] == [built.name]


def test_build_into_a_read_only_folder(tmp_path, no_pose_model, readonly_dir):
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"source\n{tmp_path / 'gone.mp4'}\n")
    expect_error("pipeline.build_dataset", "read-only output folder",
                 lambda: build_dataset(manifest, readonly_dir / "ds", workers=1, settings=no_pose_model,
                                       progress=False), OSError, str(readonly_dir / "ds"))
    assert_intact(readonly_dir, {"existing.npz"})


# ----------------------------------------------------------------------------------------------
# generation: python -m kakashi choreograph

def test_choreograph_bad_inputs(song, trained, bad_files, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "existing.npz").write_bytes(b"earlier output")
    npz = ["--npz", str(out / "existing.npz")]   # every failing case would overwrite it
    expect_cli_error(capsys, ["choreograph", str(bad_files["missing"]), "-c", str(trained), *npz],
                     "missing song", "missing.wav")
    expect_cli_error(capsys, ["choreograph", str(bad_files["empty_wav"]), "-c", str(trained), *npz],
                     "empty song file", "empty.wav")
    expect_cli_error(capsys, ["choreograph", str(bad_files["not_audio"]), "-c", str(trained), *npz],
                     "text file named .wav", "notes.wav")
    expect_cli_error(capsys, ["choreograph", str(song), "-c", str(tmp_path / "none.pt"), *npz],
                     "missing checkpoint", "none.pt")
    expect_cli_error(capsys, ["choreograph", str(song), "-c", str(bad_files["truncated"]), *npz],
                     "truncated checkpoint", "truncated.pt")
    expect_cli_error(capsys, ["choreograph", str(song), "-c", str(bad_files["empty"]), *npz],
                     "empty checkpoint", "empty.pt")
    assert_intact(out, {"existing.npz"})


def test_choreograph_odd_but_valid_inputs(song, trained, tmp_path, capsys):
    folder = tmp_path / ODD
    folder.mkdir()
    odd_song, odd_ckpt = folder / f"{ODD}.ogg", folder / f"{ODD}.pt"   # a wav named .ogg
    shutil.copyfile(song, odd_song)
    shutil.copyfile(trained, odd_ckpt)
    npz, bvh = folder / "out" / f"{ODD}.npz", folder / "out" / f"{ODD}.bvh"
    code = expect_ok("kakashi choreograph", "song, checkpoint and outputs under unicode paths; wav named .ogg",
                     lambda: cli_main(["choreograph", str(odd_song), "-c", str(odd_ckpt), "--npz", str(npz),
                                       "--bvh", str(bvh)]))
    assert code == 0, capsys.readouterr().err
    with np.load(npz, allow_pickle=False) as data:
        assert data["poses"].shape == (72, 17, 3) and np.isfinite(data["poses"]).all()
    assert bvh.read_text().startswith("HIERARCHY")
    assert not leftovers(folder / "out")


def test_choreograph_into_a_read_only_folder(song, trained, readonly_dir, capsys):
    expect_cli_error(capsys, ["choreograph", str(song), "-c", str(trained), "--npz", str(readonly_dir / "new.npz")],
                     "read-only output folder (--npz)", "new.npz")
    expect_cli_error(capsys, ["choreograph", str(song), "-c", str(trained), "--npz", str(readonly_dir / "existing.npz")],
                     "read-only folder, output already there", "existing.npz")
    assert_intact(readonly_dir, {"existing.npz"})


def test_choreograph_on_a_full_disk(song, trained, full_disk, capsys):
    expect_cli_error(capsys, ["choreograph", str(song), "-c", str(trained), "--npz", str(full_disk / "existing.npz")],
                     "full disk (--npz over an earlier output)", "existing.npz")
    expect_cli_error(capsys, ["choreograph", str(song), "-c", str(trained), "--bvh", str(full_disk / "dance.bvh")],
                     "full disk (--bvh)", "dance.bvh")
    assert_intact(full_disk, {"existing.npz", "filler"})


@pytest.mark.parametrize("writer", ["write_npz", "Dance.save_npz"])
def test_an_npz_that_fills_the_disk_is_closed_at_once(full_disk, writer):
    """The archive is closed when a write fails: nothing is left for the garbage collector to
    write again later (numpy.savez leaves its zip file open, and its collection raises again)."""
    import gc

    from kakashi.fileio import atomic_path, write_npz
    from kakashi.generate import Dance

    poses = np.random.default_rng(0).normal(size=(2000, 17, 3)).astype(np.float32)   # 400 KB
    unraised, hook = [], sys.unraisablehook
    sys.unraisablehook = unraised.append
    try:
        with pytest.raises(OSError, match="No space left on device|dance.npz"):
            if writer == "write_npz":
                with atomic_path(full_disk / "dance.npz") as tmp:
                    write_npz(tmp, poses=poses)
            else:
                dance = Dance(poses, 24.0, root_relative=False, song="song.wav", checkpoint="model.pt")
                dance.save_npz(full_disk / "dance.npz")
        gc.collect()
    finally:
        sys.unraisablehook = hook
    assert not unraised, [str(u.exc_value) for u in unraised]
    assert_intact(full_disk, {"existing.npz", "filler"})


# ----------------------------------------------------------------------------------------------
# rendering

POSES = np.zeros((12, 17, 3), np.float32) + np.linspace(0, 1.7, 17)[None, :, None] * [0, 1, 0]


def test_save_video(song, tmp_path):
    expect_error("render.save_video", "missing audio file",
                 lambda: save_video(POSES, 24.0, tmp_path / "a.mp4", audio=tmp_path / "gone.wav", size=64,
                                    progress=False), FileNotFoundError, "gone.wav")
    assert not (tmp_path / "a.mp4").exists() and not leftovers(tmp_path)
    out = tmp_path / ODD / f"{ODD}.mp4"
    expect_ok("render.save_video", "output and audio under unicode paths",
              lambda: save_video(POSES, 24.0, out, audio=song, size=64, progress=False))
    assert out.stat().st_size > 0 and not leftovers(out.parent)


def test_save_video_into_a_read_only_folder(readonly_dir):
    expect_error("render.save_video", "read-only output folder",
                 lambda: save_video(POSES, 24.0, readonly_dir / "dance.mp4", size=64, progress=False),
                 PermissionError, "dance.mp4")
    assert_intact(readonly_dir, {"existing.npz"})


def test_save_video_on_a_full_disk(full_disk):
    (full_disk / "existing.mp4").write_bytes(b"earlier output")
    many = np.repeat(POSES, 20, axis=0) + np.random.default_rng(0).normal(0, 0.2, (240, 17, 3)).astype(np.float32)
    expect_error("render.save_video", "full disk (over an earlier video)",
                 lambda: save_video(many, 24.0, full_disk / "existing.mp4", size=256, progress=False),
                 OSError, "existing.mp4")
    assert "No space left on device" in CASES[-1][2]
    assert (full_disk / "existing.mp4").read_bytes() == b"earlier output"
    assert_intact(full_disk, {"existing.npz", "existing.mp4", "filler"})


# ----------------------------------------------------------------------------------------------
# checkpoints

def test_checkpoint_read_and_load(trained, bad_files, tmp_path):
    for kind, fn in (("read", checkpoint.read), ("load_model", checkpoint.load_model)):
        expect_error(f"checkpoint.{kind}", "missing file", lambda: fn(tmp_path / "none.pt"), FileNotFoundError, "none.pt")
        expect_error(f"checkpoint.{kind}", "truncated file", lambda: fn(bad_files["truncated"]), ValueError, "truncated.pt")
        expect_error(f"checkpoint.{kind}", "empty file", lambda: fn(bad_files["empty"]), ValueError, "empty.pt")
    odd = tmp_path / ODD / f"{ODD}.pt"
    odd.parent.mkdir()
    shutil.copyfile(trained, odd)
    model, state = expect_ok("checkpoint.load_model", "path with spaces and unicode", lambda: checkpoint.load_model(odd))
    assert state["epoch"] >= 1 and not model.training


# ----------------------------------------------------------------------------------------------
# notebooks with bad parameters

@pytest.mark.slow
@pytest.mark.parametrize("name, value, expected", [
    ("loss", "nope", ["unknown loss 'nope'", *sorted(LOSSES)]),
    ("preset", "nope", ["unknown preset 'nope'", "paper", "quick", "smoke"]),
])
def test_training_notebook_refuses_bad_parameters(tmp_path, name, value, expected):
    papermill = Path(sys.executable).with_name("papermill")
    if not papermill.is_file():
        pytest.skip("papermill is not installed in this environment")
    data = make_clips(tmp_path / "ds", n=4, seconds=(3.0, 4.0))
    env = {**os.environ, "KAKASHI_PRESET": "smoke", "KAKASHI_RUNS_DIR": str(tmp_path / "runs"),
           "KAKASHI_DATA_DIR": str(tmp_path / "data"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([str(papermill), str(REPO_ROOT / "notebooks" / "04_train.ipynb"), str(tmp_path / "out.ipynb"),
                           "-p", name, value, "-p", "dataset", str(data), "--cwd", str(REPO_ROOT / "notebooks")],
                          capture_output=True, text=True, env=env, timeout=300)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    missing = [e for e in expected if e not in text]
    assert not missing, f"the error does not say {missing}:\n{text[-2000:]}"
    line = next(ln for ln in text.splitlines() if expected[0] in ln)
    CASES.append(("papermill 04_train.ipynb", f"-p {name} {value}", f"exit {proc.returncode}: {line.strip()}"))
    assert not (tmp_path / "runs").exists() and not (tmp_path / "data").exists()  # failed before any work


# ----------------------------------------------------------------------------------------------
# every command: arguments and output paths checked before any work
#
# Each row runs `python -m kakashi ARGV` (in this process) in a folder holding the inputs, links
# to them and damaged checkpoints. Contract: exit 1, one line on stderr naming the file (or the
# argument) and the problem, no traceback, every file in the folder byte-identical, no new file.

def snapshot(folder: Path) -> dict[str, str]:
    """relative path -> content hash (files), link target (links) or 'folder'."""
    import hashlib

    state = {}
    for p in sorted(folder.rglob("*")):
        key = str(p.relative_to(folder))
        if p.is_symlink():
            state[key] = f"-> {os.readlink(p)}"
        elif p.is_dir():
            state[key] = "folder"
        else:
            state[key] = hashlib.sha256(p.read_bytes()).hexdigest()
    return state


@pytest.fixture
def workspace(tmp_path, song, trained, monkeypatch) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    shutil.copyfile(song, ws / "song.wav")
    shutil.copyfile(trained, ws / "model.pt")
    poses = np.repeat(POSES, 4, axis=0) + np.random.default_rng(0).normal(0, 0.01, (48, 17, 3)).astype(np.float32)
    np.savez(ws / "dance.npz", poses=poses, fps=24.0)
    (ws / "link.wav").symlink_to("song.wav")
    os.link(ws / "song.wav", ws / "hard.wav")
    (ws / "dance_link.npz").symlink_to("dance.npz")
    os.link(ws / "dance.npz", ws / "hard.npz")
    (ws / "sub").mkdir()
    (ws / "to_out.bvh").symlink_to("out.npz")  # not there yet: a second name of --npz out.npz
    (ws / "m.csv").write_text(f"source\n{ws / 'song.wav'}\n")
    state = torch.load(trained, weights_only=True)
    drop = object()

    def damaged(name, **changes):
        s = dict(state)
        for key, value in changes.items():
            if value is drop:
                s.pop(key)
            elif isinstance(value, dict):
                s[key] = {**s[key], **value}
            else:
                s[key] = value
        torch.save(s, ws / name)

    n = len(state["norm_std"])
    damaged("no_std.pt", norm_std=drop)
    damaged("no_preset.pt", preset=drop)
    damaged("zero_std.pt", norm_std=torch.where(torch.arange(n) == 3, 0.0, state["norm_std"]))
    damaged("nan_mean.pt", norm_mean=torch.full((n,), float("nan")))
    damaged("short_std.pt", norm_std=state["norm_std"][:-1])
    damaged("pose.pt", seed_pose=torch.zeros(5, 3))
    damaged("no_in_dim.pt", model={"in_dim": None})
    damaged("no_model_name.pt", model={"name": 7})
    damaged("unknown_model.pt", model={"name": "nope"})
    damaged("fps0.pt", preset={"fps": 0.0})
    damaged("features.pt", preset={"features": "nope"})
    damaged("no_weights.pt", state_dict=drop)
    t = np.arange(30 * clips.SR) / clips.SR
    sf.write(ws / "whole.mp3", (0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), clips.SR, format="MP3")
    data = (ws / "whole.mp3").read_bytes()
    (ws / "cut.mp3").write_bytes(data[: len(data) // 3])
    (ws / "whole.mp3").unlink()
    import kakashi.runs
    import kakashi.sweep

    import kakashi.config

    monkeypatch.setattr(kakashi.config, "DATA_DIR", ws / "data")
    monkeypatch.setattr(kakashi.runs, "RUNS_DIR", ws / "runs")
    monkeypatch.setattr(kakashi.sweep, "RUNS_DIR", ws / "runs")
    monkeypatch.chdir(ws)  # relative paths in the table are relative to the workspace
    return ws


C = ["-c", "model.pt"]
CHOREO = ["choreograph", "song.wav", *C]
BAD_ARGUMENTS = [
    # 1. an output that is an input, by any name
    ("--npz is the song", [*CHOREO, "--npz", "song.wav"], "song.wav: --npz is the input song.wav"),
    ("-o is the song", [*CHOREO, "-o", "song.wav"], "-o is the input"),
    ("--bvh is the song", [*CHOREO, "--bvh", "song.wav"], "--bvh is the input"),
    ("-o is the checkpoint", [*CHOREO, "-o", "model.pt"], "model.pt: -o is the input"),
    ("--npz: a symbolic link to the song", [*CHOREO, "--npz", "link.wav"], "link.wav: --npz is the input"),
    ("song through a link, --bvh the file", ["choreograph", "link.wav", *C, "--bvh", "song.wav"], "--bvh is the input"),
    ("--npz: a hard link to the song", [*CHOREO, "--npz", "hard.wav"], "hard.wav: --npz is the input"),
    ("--npz: a relative path to the song", [*CHOREO, "--npz", "sub/../song.wav"], "--npz is the input"),
    ("--npz: the song by its absolute path", [*CHOREO, "--npz", "{ws}/song.wav"], "--npz is the input"),
    ("--npz named like the song, other suffix", [*CHOREO, "--npz", "song.npz", "--bvh", "song.npz"], "--bvh must end with .bvh"),
    ("two outputs, one file (a link)", [*CHOREO, "--npz", "out.npz", "--bvh", "to_out.bvh"], "--npz and --bvh name the same file"),
    ("evaluate --out is the dance", ["evaluate", "dance.npz", "--out", "dance.npz"], "dance.npz: --out is the input"),
    ("evaluate --out: a link to the dance", ["evaluate", "dance.npz", "--out", "dance_link.npz"], "--out is the input"),
    ("evaluate --out: a hard link to the dance", ["evaluate", "dance.npz", "--out", "hard.npz"], "--out is the input"),
    ("evaluate --out: a relative path to the dance", ["evaluate", "dance.npz", "--out", "./sub/../dance.npz"], "--out is the input"),
    ("evaluate --out is the song", ["evaluate", "dance.npz", "--audio", "song.wav", "--out", "link.wav"], "--out is the input"),
    ("build --out is the manifest", ["build", "m.csv", "--out", "m.csv"], "m.csv: --out is the input"),
    # 2. output names the writer does not know
    ("--npz without a suffix", [*CHOREO, "--npz", "dance"], "dance: --npz must end with .npz"),
    ("--npz .txt", [*CHOREO, "--npz", "dance.txt"], "--npz must end with .npz"),
    ("-o .avi", [*CHOREO, "-o", "dance.avi"], "dance.avi: -o must end with .mp4 or .gif"),
    ("-o .txt", [*CHOREO, "-o", "dance.txt"], "-o must end with .mp4 or .gif"),
    ("-o without a suffix", [*CHOREO, "-o", "dance"], "-o must end with .mp4 or .gif"),
    ("--bvh .txt", [*CHOREO, "--bvh", "dance.txt"], "--bvh must end with .bvh"),
    ("--npz is a folder", [*CHOREO, "--npz", "sub"], "--npz must end with .npz"),
    ("--npz is a folder named .npz", [*CHOREO, "--npz", "folder.npz"], "folder.npz: --npz is a folder"),
    ("evaluate --out without a suffix", ["evaluate", "dance.npz", "--out", "metrics"], "--out must end with .json"),
    ("evaluate --out is a folder", ["evaluate", "dance.npz", "--out", "sub"], "sub: --out must end with .json"),
    ("synth --out is a file", ["synth", "--preset", "smoke", "--out", "song.wav"], "song.wav: --out must be a folder"),
    ("build --out is a file", ["build", "m.csv", "--out", "dance.npz"], "dance.npz: --out must be a folder"),
    # output folders that cannot be made
    ("--npz under a file", [*CHOREO, "--npz", "song.wav/x.npz"], "song.wav/x.npz: cannot create the folder"),
    ("-o under a file (other outputs fine)", [*CHOREO, "--npz", "ok.npz", "--bvh", "ok.bvh", "-o", "dance.npz/x.mp4"],
     "cannot create the folder"),
    ("evaluate --out under a file", ["evaluate", "dance.npz", "--out", "song.wav/m.json"], "cannot create the folder"),
    ("build --out under a file", ["build", "m.csv", "--out", "song.wav/ds"], "cannot create the folder"),
    # 3. audio
    ("truncated mp3 (a third of 30 s)", ["choreograph", "cut.mp3", *C, "--npz", "x.npz"], "cut.mp3: truncated audio file"),
    # 4. values out of range
    ("--size 0", [*CHOREO, "--npz", "x.npz", "--size", "0"], "--size must be between 64 and 2048"),
    ("--size 100000", [*CHOREO, "--npz", "x.npz", "--size", "100000"], "--size must be between 64 and 2048"),
    ("--size -480", [*CHOREO, "--npz", "x.npz", "--size", "-480"], "--size must be between"),
    ("--seed -1", [*CHOREO, "--npz", "x.npz", "--seed", "-1"], "--seed must be between 0 and 4294967295"),
    ("--seed 2**64", [*CHOREO, "--npz", "x.npz", "--seed", str(2**64)], "--seed must be between"),
    ("evaluate --fps 0", ["evaluate", "dance.npz", "--fps", "0"], "--fps must be positive"),
    ("evaluate --fps nan", ["evaluate", "dance.npz", "--fps", "nan"], "--fps must be positive"),
    ("evaluate --fps 1e9", ["evaluate", "dance.npz", "--fps", "1e9"], "--fps must be positive and at most"),
    ("evaluate --audio missing", ["evaluate", "dance.npz", "--audio", "gone.wav"], "gone.wav: audio file not found"),
    ("evaluate --reference is a file", ["evaluate", "dance.npz", "--reference", "song.wav"], "song.wav: dataset folder is not a folder"),
    # 4. damaged checkpoints: each names the file
    ("checkpoint without norm_std", [*CHOREO[:2], "-c", "no_std.pt", "--npz", "x.npz"], "no_std.pt: damaged Kakashi checkpoint: no 'norm_std'"),
    ("checkpoint without preset", [*CHOREO[:2], "-c", "no_preset.pt", "--npz", "x.npz"], "no_preset.pt: damaged"),
    ("checkpoint without weights", [*CHOREO[:2], "-c", "no_weights.pt", "--npz", "x.npz"], "no_weights.pt: damaged"),
    ("checkpoint: a zero in norm_std", [*CHOREO[:2], "-c", "zero_std.pt", "--npz", "x.npz"], "zero_std.pt: damaged Kakashi checkpoint: norm_std has 1 zero"),
    ("checkpoint: NaN in norm_mean", [*CHOREO[:2], "-c", "nan_mean.pt", "--npz", "x.npz"], "nan_mean.pt: damaged Kakashi checkpoint: norm_mean holds NaN"),
    ("checkpoint: norm_std one short", [*CHOREO[:2], "-c", "short_std.pt", "--npz", "x.npz"], "short_std.pt: damaged"),
    ("checkpoint: seed pose [5, 3]", [*CHOREO[:2], "-c", "pose.pt", "--npz", "x.npz"], "pose.pt: damaged Kakashi checkpoint: seed_pose"),
    ("checkpoint: model without in_dim", [*CHOREO[:2], "-c", "no_in_dim.pt", "--npz", "x.npz"], "no_in_dim.pt: damaged"),
    ("checkpoint: model name not a string", [*CHOREO[:2], "-c", "no_model_name.pt", "--npz", "x.npz"], "no_model_name.pt: damaged"),
    ("checkpoint: unknown model", [*CHOREO[:2], "-c", "unknown_model.pt", "--npz", "x.npz"], "unknown_model.pt: the model it describes cannot be built"),
    ("checkpoint: preset fps 0", [*CHOREO[:2], "-c", "fps0.pt", "--npz", "x.npz"], "fps0.pt: damaged Kakashi checkpoint: frame rate 0.0"),
    ("checkpoint: unknown feature kind", [*CHOREO[:2], "-c", "features.pt", "--npz", "x.npz"], "features.pt: damaged Kakashi checkpoint: unknown feature kind"),
    ("checkpoint is a folder", [*CHOREO[:2], "-c", "sub", "--npz", "x.npz"], "sub: checkpoint is not a file"),
    # 5. checks that used to come after the work
    ("build --fps 0", ["build", "m.csv", "--out", "ds", "--fps", "0"], "--fps must be between 1 and 120"),
    ("build --fps -24", ["build", "m.csv", "--out", "ds", "--fps", "-24"], "--fps must be between"),
    ("build --fps 1000", ["build", "m.csv", "--out", "ds", "--fps", "1000"], "--fps must be between"),
    ("build --workers 0", ["build", "m.csv", "--out", "ds", "--workers", "0"], "--workers must be at least 1"),
    ("build: missing source", ["build", "gone.csv", "--out", "ds"], "gone.csv: source not found"),
    ("train --epochs 0", ["train", "--preset", "smoke", "--epochs", "0"], "--epochs must be at least 1"),
    ("train --epochs -3", ["train", "--preset", "smoke", "--epochs", "-3"], "--epochs must be at least 1"),
    ("train --seed -1", ["train", "--preset", "smoke", "--seed", "-1"], "--seed must be between"),
    ("train --ema 1", ["train", "--preset", "smoke", "--ema", "1"], "--ema must be at least 0 and below 1, got 1"),
    ("train --ema -0.5", ["train", "--preset", "smoke", "--ema", "-0.5"], "--ema must be at least 0 and below 1"),
    ("train --ema nan", ["train", "--preset", "smoke", "--ema", "nan"], "--ema must be at least 0 and below 1"),
    ("train --run-name ../x", ["train", "--preset", "smoke", "--run-name", "../x"], "'../x': --run-name must be a plain folder name"),
    ("train --run-name /tmp/x", ["train", "--preset", "smoke", "--run-name", "/tmp/x"], "--run-name must be a plain folder name"),
    ("train --run-name ..", ["train", "--preset", "smoke", "--run-name", ".."], "--run-name must be a plain folder name"),
    ("train --run-name a/b", ["train", "--preset", "smoke", "--run-name", "a/b"], "--run-name must be a plain folder name"),
    ("train --run-name ''", ["train", "--preset", "smoke", "--run-name", ""], "--run-name must be a plain folder name"),
    ("train --dataset missing", ["train", "--preset", "smoke", "--dataset", "{ws}/no data"], "no data: dataset not found"),
    ("train --loss nope", ["train", "--preset", "smoke", "--loss", "nope"], "unknown loss 'nope'"),
    ("train --model nope", ["train", "--preset", "smoke", "--model", "nope"], "unknown model 'nope'"),
    ("train --preset nope", ["train", "--preset", "nope"], "unknown preset 'nope'"),
    ("sweep --workers 0", ["sweep", "--preset", "smoke", "--workers", "0"], "--workers must be at least 1"),
    ("sweep --workers -2", ["sweep", "--preset", "smoke", "--workers", "-2"], "--workers must be at least 1"),
    ("sweep --losses nope", ["sweep", "--preset", "smoke", "--losses", "mse,nope"], "unknown loss(es) ['nope']"),
    ("sweep --preset nope", ["sweep", "--preset", "nope"], "unknown preset 'nope'"),
    ("synth --workers 0", ["synth", "--preset", "smoke", "--out", "ds", "--workers", "0"], "--workers must be at least 1"),
    ("synth --songs 0", ["synth", "--preset", "smoke", "--out", "ds", "--songs", "0"], "--songs must be at least 1"),
    ("synth --seed -1", ["synth", "--preset", "smoke", "--out", "ds", "--seed", "-1"], "--seed must be between"),
    ("synth --seconds 0 1", ["synth", "--preset", "smoke", "--out", "ds", "--seconds", "0", "1"], "--seconds must be between"),
    ("synth --seconds 9 2", ["synth", "--preset", "smoke", "--out", "ds", "--seconds", "9", "2"], "0 < MIN <= MAX"),
    ("synth --seconds 1 1e9", ["synth", "--preset", "smoke", "--out", "ds", "--seconds", "1", "1e9"], "--seconds must be between"),
]


@pytest.mark.parametrize("what, argv, names", BAD_ARGUMENTS, ids=[row[0] for row in BAD_ARGUMENTS])
def test_bad_arguments_fail_before_any_work(workspace, capsys, what, argv, names):
    (workspace / "folder.npz").mkdir(exist_ok=True)
    before = snapshot(workspace)
    argv = [a.replace("{ws}", str(workspace)) for a in argv]
    err = expect_cli_error(capsys, argv, what, names)
    assert "Traceback" not in err
    assert snapshot(workspace) == before, "an input changed or an output was written"


def test_outputs_keep_their_exact_names_and_write_through_links(workspace, capsys):
    code = expect_ok("kakashi choreograph", "--npz Dance.NPZ --bvh Dance.BVH -o Dance.GIF (upper-case suffixes)",
                     lambda: cli_main([*CHOREO, "--npz", "Dance.NPZ", "--bvh", "Dance.BVH", "-o", "Dance.GIF",
                                       "--size", "64"]))
    assert code == 0, capsys.readouterr().err
    with np.load(workspace / "Dance.NPZ", allow_pickle=False) as data:
        assert data["poses"].shape == (72, 17, 3)
    assert (workspace / "Dance.BVH").read_text().startswith("HIERARCHY")
    assert (workspace / "Dance.GIF").read_bytes()[:6] in (b"GIF87a", b"GIF89a")
    assert not leftovers(workspace), "a temporary file was left"

    (workspace / "target.npz").write_bytes(b"earlier output")
    (workspace / "out_link.npz").symlink_to("target.npz")
    code = expect_ok("kakashi choreograph", "--npz through a symbolic link (written through, the link kept)",
                     lambda: cli_main([*CHOREO, "--npz", "out_link.npz"]))
    assert code == 0 and os.readlink(workspace / "out_link.npz") == "target.npz"
    with np.load(workspace / "target.npz", allow_pickle=False) as data:
        assert data["poses"].shape == (72, 17, 3)

    (workspace / "metrics.json").write_text("{}")
    (workspace / "metrics_link.json").symlink_to("metrics.json")
    code = expect_ok("kakashi evaluate", "--out through a symbolic link (written through, the link kept)",
                     lambda: cli_main(["evaluate", "dance.npz", "--out", "metrics_link.json"]))
    assert code == 0 and os.readlink(workspace / "metrics_link.json") == "metrics.json"
    assert "jerk" in json.loads((workspace / "metrics.json").read_text())
    assert not leftovers(workspace)


def test_an_unwritable_video_is_found_before_the_other_outputs(workspace, readonly_dir, capsys):
    expect_cli_error(capsys, [*CHOREO, "--npz", "ok.npz", "--bvh", "ok.bvh", "-o", str(readonly_dir / "d.mp4")],
                     "-o in a read-only folder, --npz and --bvh writable", "d.mp4")
    assert not (workspace / "ok.npz").exists() and not (workspace / "ok.bvh").exists()
    assert_intact(readonly_dir, {"existing.npz"})
