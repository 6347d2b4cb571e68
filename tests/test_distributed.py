"""Training under torchrun with DistributedDataParallel: 2 CPU processes on gloo."""
import json
import os
import subprocess
import sys

import pytest

from helpers import make_clips


@pytest.mark.slow
def test_torchrun_two_cpu_processes(tmp_path):
    root = make_clips(tmp_path / "ds")
    env = {**os.environ, "KAKASHI_RUNS_DIR": str(tmp_path / "runs"), "OMP_NUM_THREADS": "1",
           "TQDM_DISABLE": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "kakashi", "train", "--preset", "smoke", "--dataset", str(root), "--run-name", "ddp",
           "--epochs", "2"]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "runs" / "ddp"
    history = json.loads((run / "history.json").read_text())
    assert history["status"] == "completed" and history["world_size"] == 2
    assert len(history["epochs"]) == 2 and all(e["train_loss"] > 0 for e in history["epochs"])
    assert (run / "best.pt").is_file() and (run / "metrics.json").is_file()
