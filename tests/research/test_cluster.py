"""A real Dask LocalCluster (two worker processes) gives the single-process results,
bit for bit: the work is cut the same way and combined in the same order."""

from __future__ import annotations

import dask
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


def test_cli_sweep_on_the_local_cluster_and_an_unreachable_scheduler(bars, news, tmp_path):
    from typer.testing import CliRunner

    from gnosis.cli import app

    from .conftest import write_files

    bars_path, news_path, grid = write_files(bars, news, tmp_path)
    ok = CliRunner().invoke(app, ["sweep", str(bars_path), str(news_path), "--grid", str(grid),
                                  "--out", str(tmp_path / "out"), "--workers", "2",
                                  "--permutations", "0"])
    assert ok.exit_code == 0, ok.output
    assert len(pd.read_csv(tmp_path / "out" / "results.csv")) == 4
    from gnosis.research.parameter_sweep import SweepError

    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        bad = CliRunner().invoke(app, ["sweep", str(bars_path), "--grid", str(grid), "--out",
                                       str(tmp_path / "bad"), "--scheduler",
                                       "tcp://127.0.0.1:1"])
    assert isinstance(bad.exception, SweepError)
    assert "cannot reach the Dask scheduler tcp://127.0.0.1:1" in str(bad.exception)
