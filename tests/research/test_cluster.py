"""A real Dask LocalCluster (two worker processes) gives the single-process results,
bit for bit: the work is cut the same way and combined in the same order."""

from __future__ import annotations

import pandas as pd
import pytest

from gnosis.research import sweep, walk_forward
from gnosis.research.cluster import open_client

from .conftest import GRID, SETTINGS


@pytest.fixture(scope="module")
def client():
    with open_client(workers=2) as client:
        yield client


def test_local_cluster_has_two_worker_processes(client):
    info = client.scheduler_info()
    assert len(info["workers"]) == 2
    pids = client.run(lambda: __import__("os").getpid())
    assert len(set(pids.values())) == 2


def test_sweep_on_cluster_equals_single_process(client, market):
    local = sweep(market, grid=GRID, settings=SETTINGS, permutations=30, batch_size=5)
    remote = sweep(market, grid=GRID, settings=SETTINGS, permutations=30, batch_size=5,
                   client=client)
    pd.testing.assert_frame_equal(local.table, remote.table, check_exact=True)
    for key, curve in local.curves.items():
        pd.testing.assert_series_equal(curve, remote.curves[key], check_exact=True)


def test_walk_forward_on_cluster_equals_single_process(client, market):
    local = walk_forward(market, grid=GRID, settings=SETTINGS, folds=2, mode="anchored")
    remote = walk_forward(market, grid=GRID, settings=SETTINGS, folds=2, mode="anchored",
                          client=client)
    pd.testing.assert_frame_equal(local.folds, remote.folds, check_exact=True)
    pd.testing.assert_series_equal(local.equity, remote.equity, check_exact=True)
