"""The loss sweep: every loss through notebooks/04_train.ipynb with papermill, in parallel.

Each loss is one item run by a local process pool (default) or by a Dask distributed
cluster when a scheduler address is given. A loss whose run already completed is skipped,
so a re-run after a killed worker or a failure runs only what is missing.
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path

from .config import REPO_ROOT, RUNS_DIR, get_preset
from .parallel import map_items
from .runs import is_complete, run_dir_for

NOTEBOOK = REPO_ROOT / "notebooks" / "04_train.ipynb"


def run_loss(loss: str, preset: str, run_name: str, runs_dir: str, threads: int,
             params: dict | None = None, notebook: str = str(NOTEBOOK)) -> dict:
    """Execute 04_train for one loss (one process); returns {loss, status, seconds, error}."""
    import papermill

    run_dir = Path(runs_dir) / run_name
    if is_complete(run_dir):
        return {"loss": loss, "run": run_name, "status": "skipped", "seconds": 0.0, "error": ""}
    run_dir.mkdir(parents=True, exist_ok=True)
    # The notebook's kernel inherits this process's environment: its threads.
    env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    t0 = time.perf_counter()
    try:
        papermill.execute_notebook(
            notebook, str(run_dir / "04_train.ipynb"), cwd=str(Path(notebook).parent),
            parameters={"loss": loss, "preset": preset, "run_name": run_name, "runs_dir": str(runs_dir),
                        "threads": threads, **(params or {})},
            progress_bar=False, log_output=False)
        status, error = "completed", ""
    except Exception as e:  # a failed notebook is reported, the other losses go on
        status, error = "failed", _last_line(e)
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    return {"loss": loss, "run": run_name, "status": status,
            "seconds": round(time.perf_counter() - t0, 1), "error": error}


def _last_line(e: Exception) -> str:
    lines = [ln for ln in str(e).splitlines() if ln.strip()]
    return lines[-1][:300] if lines else type(e).__name__


def sweep(losses: list[str], preset: str, runs_dir: Path = RUNS_DIR, workers: int | None = None,
          scheduler: str | None = None, model: str | None = None, nice: int = 0) -> list[dict]:
    """Run every loss; returns one result row per loss (completed / skipped / failed). nice:
    CPU priority each run gives away (0..19, kakashi.parallel.yield_cpu), so that work beside
    the sweep goes first."""
    from .dataset import load_splits
    from .losses import LOSSES
    from .models import uses_loss
    from .sources import preset_dataset

    unknown = [loss for loss in losses if loss not in LOSSES]
    if unknown:
        raise ValueError(f"unknown loss(es) {unknown}; choose from {sorted(LOSSES)}")
    base = get_preset(preset, model=model)
    if len(losses) > 1 and not uses_loss(base.model):
        raise ValueError(f"{base.model} trains with its own objective, not one of the losses: sweep one loss")
    load_splits(preset_dataset(base), base)  # build the dataset and feature caches once, up front
    names = [run_dir_for(get_preset(preset, loss=loss, model=model)).name for loss in losses]
    workers = max(1, min(workers or os.cpu_count() or 1, len(losses)))
    threads = base.threads or max(1, (os.cpu_count() or 1) // workers)  # the preset's, else a share of the cores
    params = {"max_frames": 48, "nice": nice, **({"model": model} if model else {})}  # a short animation per run
    jobs = [(loss, base.name, name, str(runs_dir), threads, params) for loss, name in zip(losses, names)]
    return map_items(run_loss, jobs, workers=workers, scheduler=scheduler, desc="sweep")


def configure(parser) -> None:
    parser.add_argument("--preset", default=None, help="paper | quick | smoke (default: $KAKASHI_PRESET or quick)")
    parser.add_argument("--losses", default=None, help="comma-separated losses (default: all ten)")
    parser.add_argument("--model", default=None, help="model name (default: the preset's)")
    parser.add_argument("--workers", type=int, default=None, help="parallel processes (default: cores)")
    parser.add_argument("--scheduler", default=None, help="Dask scheduler address, e.g. tcp://host:8786")
    parser.add_argument("--nice", type=int, default=0,
                        help="CPU priority the runs give away, 0-19 (default 0): work beside the sweep goes first")


def run(args) -> int:
    from .arguments import check_outputs, check_range
    from .losses import LOSSES

    check_range("--workers", args.workers, 1, math.inf)
    check_range("--nice", args.nice, 0, 19)
    losses = args.losses.split(",") if args.losses else list(LOSSES)
    unknown = [loss for loss in losses if loss not in LOSSES]
    if unknown:
        raise ValueError(f"unknown loss(es) {unknown} in --losses; choose from {sorted(LOSSES)}")
    get_preset(args.preset)  # an unknown preset fails here, listing the valid ones
    check_outputs([("runs folder", RUNS_DIR, None)])
    rows = sweep(losses, args.preset or get_preset().name, workers=args.workers,
                 scheduler=args.scheduler, model=args.model, nice=args.nice)
    for r in rows:
        print(f"{r['loss']:>14}  {r['status']:<9} {r['seconds']:>7.1f} s  {r['run']}  {r['error']}")
    failed = [r["loss"] for r in rows if r["status"] == "failed"]
    if failed:
        print(f"sweep: {len(failed)} loss(es) failed: {', '.join(failed)}; re-run to retry only those")
    return 1 if failed else 0
