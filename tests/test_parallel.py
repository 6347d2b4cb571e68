"""The local process pool and the Dask path of map_items give the same ordered results."""
import operator

import pytest

from kakashi.parallel import map_items

ITEMS = [(i, i + 1) for i in range(7)]
EXPECTED = [i * (i + 1) for i in range(7)]


def test_local_pool_keeps_order():
    assert map_items(operator.mul, ITEMS, workers=2, progress=False) == EXPECTED
    assert map_items(operator.mul, ITEMS, workers=1, progress=False) == EXPECTED
    assert map_items(operator.mul, [], workers=2) == []


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
