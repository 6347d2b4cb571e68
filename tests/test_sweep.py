"""The loss sweep through notebooks/04_train.ipynb: parallel, resumable, on Dask too."""
import json

import pytest

from kakashi.sweep import is_complete, sweep


@pytest.mark.slow
def test_sweep_runs_only_what_is_missing(tmp_path):
    rows = sweep(["mse", "l1"], "smoke", runs_dir=tmp_path, workers=2, nice=3)
    assert [r["status"] for r in rows] == ["completed", "completed"], rows
    executed = json.loads((tmp_path / "smoke_mse" / "04_train.ipynb").read_text())
    assert any("nice = 3" in "".join(c["source"]) for c in executed["cells"])    # each run was told to yield
    for loss in ("mse", "l1"):
        run = tmp_path / f"smoke_{loss}"
        assert is_complete(run) and (run / "04_train.ipynb").is_file()
        assert json.loads((run / "history.json").read_text())["loss"] == loss
    # a killed or failed run leaves no completed history: only that loss runs again
    (tmp_path / "smoke_l1" / "history.json").unlink()
    rows = sweep(["mse", "l1"], "smoke", runs_dir=tmp_path, workers=2)
    assert {r["loss"]: r["status"] for r in rows} == {"mse": "skipped", "l1": "completed"}


@pytest.mark.slow
def test_sweep_on_a_dask_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        rows = sweep(["smooth_l1"], "smoke", runs_dir=tmp_path, scheduler=cluster.scheduler_address)
    assert rows[0]["status"] == "completed", rows
    assert is_complete(tmp_path / "smoke_smooth_l1")


def test_unknown_loss_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown loss"):
        sweep(["nope"], "smoke", runs_dir=tmp_path)
