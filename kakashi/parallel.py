"""Run one function over many items: a local process pool by default, a Dask cluster on request.

The embarrassingly parallel jobs (the loss sweep, dataset builds, evaluating many dances)
go through `map_items`, so each of them runs on a Dask distributed cluster when the user
gives a scheduler address (DESIGN.md, "Beyond one machine"). Results keep the items' order.
Local workers end with the process that started them, even when it is killed (SIGKILL).
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Callable, Iterator, Sequence

from tqdm.auto import tqdm

PR_SET_PDEATHSIG = 1  # prctl option from <linux/prctl.h>: a signal sent to us when our parent ends
AUTOGROUP_TRIES = 20  # times yield_cpu asks for its session's priority, 0.1 s apart


def end_with_parent(parent: int) -> None:
    """Make this process (a pool worker) end when its parent `parent` ends, however it ends.

    On Linux the kernel sends SIGKILL at the parent's death (prctl PR_SET_PDEATHSIG); the
    parent may already be gone by the time this runs, so that is checked afterwards. Also
    restores the default SIGTERM action, which a forked worker inherits from kakashi.cli.
    Elsewhere only the SIGTERM reset applies.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return
    if os.getppid() != parent:  # the parent ended before the request was made
        os._exit(1)


def yield_cpu(nice: int) -> None:
    """Give this process's CPU time to other work: raise its nice value by `nice` (0..19) and,
    on Linux with autogroup scheduling, its session's too (there nice ranks processes only
    within a session, and a notebook kernel runs in a session of its own). 0: nothing."""
    if nice <= 0:
        return
    os.nice(nice)
    for _ in range(AUTOGROUP_TRIES):
        try:
            with open("/proc/self/autogroup", "w") as f:
                f.write(str(nice))
            return
        except BlockingIOError:                     # without privileges: one change per 0.1 s, machine-wide
            time.sleep(0.1)
        except OSError:                             # no autogroup scheduling here
            return


@contextlib.contextmanager
def worker_pool(workers: int, mp_context=None) -> Iterator[ProcessPoolExecutor]:
    """A process pool whose workers end with this process (`end_with_parent`).

    Leaving the block normally waits for the work; leaving it by an exception (an error, Ctrl-C,
    kakashi.cli's SIGTERM, a closed generator) cancels what is queued and stops the workers now.
    """
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp_context,
                               initializer=end_with_parent, initargs=(os.getpid(),))
    try:
        yield pool
    except BaseException:
        processes = list((getattr(pool, "_processes", None) or {}).values())  # no public accessor
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(timeout=5)
        raise
    pool.shutdown(wait=True)


def map_items(fn: Callable, items: Sequence, workers: int | None = None, scheduler: str | None = None,
              desc: str = "", progress: bool = True, mp_context=None, sizes: Sequence[float] | None = None) -> list:
    """[fn(*item) for item in items] in parallel; items are argument tuples.

    workers: local processes (default: the number of cores; 1 runs in this process).
    scheduler: a Dask scheduler address (``tcp://host:8786``) or a ``distributed.Client``.
    mp_context: the local pool's multiprocessing context (e.g. spawn, for libraries that
    cannot be forked). sizes: the items' expected costs: the largest start first, so that no
    worker is left with a long item at the end (the results keep the items' order).
    """
    items = [tuple(item) for item in items]
    order = list(range(len(items))) if sizes is None else sorted(range(len(items)), key=lambda i: -sizes[i])
    results = [None] * len(items)
    done = imap_items(fn, [items[i] for i in order], workers, scheduler, mp_context)
    for i, result in tqdm(done, total=len(items), desc=desc, disable=not progress):
        results[order[i]] = result
    return results


def imap_items(fn: Callable, items: Sequence, workers: int | None = None, scheduler: str | None = None,
               mp_context=None) -> Iterator[tuple[int, object]]:
    """(index, fn(*items[index])) for every item, as each finishes (in order with one worker):
    for callers that record results as they come (a build report). Arguments as map_items."""
    items = [tuple(item) for item in items]
    if not items:
        return
    if scheduler is not None:
        yield from _imap_dask(fn, items, scheduler)
        return
    workers = max(1, min(workers or os.cpu_count() or 1, len(items)))
    if workers == 1:
        for i, item in enumerate(items):
            yield i, fn(*item)
        return
    with worker_pool(workers, mp_context) as pool:
        futures = {pool.submit(fn, *item): i for i, item in enumerate(items)}
        for future in as_completed(futures):
            yield futures[future], future.result()


def _imap_dask(fn, items, scheduler):
    from distributed import Client, as_completed as dask_completed

    client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
    try:
        futures = [client.submit(fn, *item, pure=False) for item in items]
        index = {f.key: i for i, f in enumerate(futures)}
        for future in dask_completed(futures):
            yield index[future.key], future.result()
    finally:
        if client is not scheduler:
            client.close()
