"""The batch jobs run on a Dask distributed cluster (a LocalCluster here) and give what the
local process pool gives: synthetic dataset builds, video dataset builds, dance evaluation."""
import json

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from kakashi.clips import read_clip  # noqa: E402
from kakashi.metrics import evaluate_dances  # noqa: E402
from kakashi.synth import build_dataset  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as c:
        yield c.scheduler_address


def test_synth_build_on_dask_equals_local(cluster, tmp_path):
    local = build_dataset(tmp_path / "local", n_songs=3, seconds=(6.0, 8.0), seed=4, workers=1)
    remote = build_dataset(tmp_path / "dask", n_songs=3, seconds=(6.0, 8.0), seed=4, scheduler=cluster)
    for a, b in zip(local, remote):
        assert (a / "clip.npz").read_bytes() == (b / "clip.npz").read_bytes()
        assert json.loads((a / "meta.json").read_text()) == json.loads((b / "meta.json").read_text())


def test_evaluation_on_dask_equals_local(cluster, tmp_path):
    paths = build_dataset(tmp_path / "ds", n_songs=3, seconds=(6.0, 8.0), seed=5, workers=1)
    clips = [read_clip(p) for p in paths]
    dances = [c.poses for c in clips]
    beats = [np.asarray(c.meta["beats"]) for c in clips]
    local = evaluate_dances(dances, 24.0, music_beats=beats, reference=dances, workers=1)
    remote = evaluate_dances(dances, 24.0, music_beats=beats, reference=dances, scheduler=cluster)
    assert local.keys() == remote.keys()
    for key in local:
        assert remote[key] == pytest.approx(local[key], rel=1e-9, abs=1e-12), key


@pytest.mark.slow
def test_video_build_on_dask_equals_local(cluster, shared_data, tmp_path):
    from kakashi.pipeline.build import build_dataset as build_videos
    from kakashi.pipeline.manifest import Source

    video = shared_data / "video" / "mgt_dancer.avi"
    sources = [Source(str(video), start=30.0, end=33.0, clip_id="dancer")]  # legs moving: a dance clip
    report = build_videos(sources, tmp_path / "dask", scheduler=cluster, progress=False)
    assert [r.status for r in report.results] == ["built"], report.summary()
    local = build_videos(sources, tmp_path / "local", workers=1, progress=False)
    assert [r.status for r in local.results] == ["built"], local.summary()
    remote, here = read_clip(tmp_path / "dask" / "dancer"), read_clip(tmp_path / "local" / "dancer")
    assert remote.fps == here.fps == 24 and abs(remote.num_frames - 72) <= 1
    np.testing.assert_allclose(remote.poses, here.poses, atol=1e-5)     # metres
    np.testing.assert_allclose(remote.confidence, here.confidence, atol=1e-5)
    assert (tmp_path / "dask" / "dancer" / "audio.wav").read_bytes() == \
        (tmp_path / "local" / "dancer" / "audio.wav").read_bytes()
    strip = lambda meta: {k: v for k, v in meta.items() if k not in ("built_at", "seconds")}
    assert strip(remote.meta) == strip(here.meta)
