"""Run one function over many items: a local process pool by default, a Dask cluster on request.

The embarrassingly parallel jobs (the loss sweep, dataset builds, evaluating many dances)
go through `map_items`, so each of them runs on a Dask distributed cluster when the user
gives a scheduler address (DESIGN.md, "Beyond one machine"). Results keep the items' order.
"""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Callable, Sequence

from tqdm.auto import tqdm


def map_items(fn: Callable, items: Sequence, workers: int | None = None, scheduler: str | None = None,
              desc: str = "", progress: bool = True) -> list:
    """[fn(*item) for item in items] in parallel; items are argument tuples.

    workers: local processes (default: the number of cores; 1 runs in this process).
    scheduler: a Dask scheduler address (``tcp://host:8786``) or a ``distributed.Client``.
    """
    items = [tuple(item) for item in items]
    if not items:
        return []
    if scheduler is not None:
        return _map_dask(fn, items, scheduler, desc, progress)
    workers = max(1, min(workers or os.cpu_count() or 1, len(items)))
    if workers == 1:
        return [fn(*item) for item in tqdm(items, desc=desc, disable=not progress)]
    results = [None] * len(items)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(fn, *item): i for i, item in enumerate(items)}
        for future in tqdm(as_completed(futures), total=len(items), desc=desc, disable=not progress):
            results[futures[future]] = future.result()
    return results


def _map_dask(fn, items, scheduler, desc, progress):
    from distributed import Client, as_completed as dask_completed

    client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
    try:
        futures = [client.submit(fn, *item, pure=False) for item in items]
        index = {f.key: i for i, f in enumerate(futures)}
        results = [None] * len(items)
        for future in tqdm(dask_completed(futures), total=len(items), desc=desc, disable=not progress):
            results[index[future.key]] = future.result()
        return results
    finally:
        if client is not scheduler:
            client.close()
