"""File-to-file replay and backtest, in process: several bar intervals in one file."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from rich.console import Console

from gnosis.config import Settings
from gnosis.replay.run import ReplayError, backtest_files, replay_files
from gnosis.replay.synthetic import synthetic_bars


def test_backtest_trades_one_interval_of_a_multi_interval_replay(tmp_path):
    bars = pd.concat([synthetic_bars(2, 200, seed=1), synthetic_bars(2, 60, seed=2,
                                                                     interval="5m")])
    bars.assign(timestamp=pd.to_datetime(bars["ts"], utc=True)).drop(columns="ts").to_csv(
        tmp_path / "bars.csv", index=False)
    quiet = Console(file=io.StringIO())
    summary = replay_files(tmp_path / "bars.csv", None, tmp_path / "s.parquet",
                           settings=Settings(), console=quiet)
    assert summary.startswith("520 signals from bars: 520 rows (0 skipped)")
    with pytest.raises(ReplayError, match=r"T000, T001 have signals of several bar "
                                          r"intervals \(1m, 5m\): backtest one with --interval"):
        backtest_files(tmp_path / "s.parquet", tmp_path / "bars.csv", tmp_path / "r",
                       settings=Settings(), permutations=0, console=quiet)
    text, _ = backtest_files(tmp_path / "s.parquet", tmp_path / "bars.csv", tmp_path / "r",
                             settings=Settings(), permutations=0, interval="5m",
                             console=quiet)
    assert "T000" in text.read_text() and "T001" in text.read_text()
    # Two tickers of one interval: the book, on the time axis both share.
    overview = (tmp_path / "r" / "report.html").read_text()
    assert "Backtest report: equal-weight book of 2 tickers, 5m bars" in text.read_text()
    assert "No combined book" not in overview
    assert overview.count("<svg") == 3  # equity, drawdown, position of the book
    assert 'href="report-T000.html"' in overview and 'id="mix"' in overview
