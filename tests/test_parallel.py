"""The local process pool and the Dask path of map_items give the same ordered results."""
import operator
import os
import subprocess
import sys

import pytest

from kakashi.parallel import map_items

ITEMS = [(i, i + 1) for i in range(7)]
EXPECTED = [i * (i + 1) for i in range(7)]


def test_local_pool_keeps_order():
    assert map_items(operator.mul, ITEMS, workers=2, progress=False) == EXPECTED
    assert map_items(operator.mul, ITEMS, workers=1, progress=False) == EXPECTED
    assert map_items(operator.mul, [], workers=2) == []


def test_largest_items_start_first_and_results_keep_the_items_order():
    started = []

    def tenfold(x):   # workers=1: runs in this process, in the order the items start
        started.append(x)
        return 10 * x

    assert map_items(tenfold, [(1,), (2,), (3,)], workers=1, progress=False, sizes=[1, 3, 2]) == [10, 20, 30]
    assert started == [2, 3, 1]
    assert map_items(operator.mul, ITEMS, workers=2, progress=False, sizes=list(range(7))) == EXPECTED


def test_dask_local_cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        assert map_items(operator.mul, ITEMS, scheduler=cluster.scheduler_address, progress=False) == EXPECTED
        with distributed.Client(cluster) as client:
            assert map_items(operator.mul, ITEMS, scheduler=client, progress=False) == EXPECTED


def test_errors_propagate():
    with pytest.raises(ZeroDivisionError):
        map_items(operator.truediv, [(1, 0), (1, 1)], workers=2, progress=False)


def test_yield_cpu_lowers_the_priority_of_the_process_and_its_session():
    """In a process of its own (a new session, as a notebook kernel has): its nice value rises
    by the amount given, and so does its session's where the kernel schedules by session."""
    code = ("import os; from kakashi.parallel import yield_cpu; before = os.nice(0); yield_cpu(3); "
            "group = open('/proc/self/autogroup').read().split()[-1] if os.path.exists('/proc/self/autogroup') else '3'; "
            "yield_cpu(0); print(os.nice(0) - before, group)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         start_new_session=True).stdout.split()
    assert out == ["3", "3"], out
