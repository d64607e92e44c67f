"""Walk-forward: folds, choice on the training window only, out-of-sample figures that
equal a from-scratch backtest of the chosen configuration on the test window."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from gnosis.cli import app
from gnosis.research import Grid, SweepError, config_id, walk_forward
from gnosis.research.walkforward import fold_windows

from .conftest import SETTINGS, from_scratch, prices_of, write_files

GRID = Grid.from_dict({"rules": {"trending_hurst": [0.5, 0.55, 0.6],
                                 "min_confidence": [0.0, 0.4]}})


def test_fold_windows_rolling_and_anchored():
    bars = np.arange(100, dtype=np.int64) * 10
    rolling = fold_windows(bars, 4, "rolling")
    anchored = fold_windows(bars, 4, "anchored")
    assert [test for _, test in rolling] == [test for _, test in anchored]
    assert [train[0] for train, _ in anchored] == [0, 0, 0, 0]
    for (train, test), (a_train, _) in zip(rolling, anchored, strict=True):
        assert train[1] == test[0] == a_train[1]  # train ends where the test starts
        assert test[0] > train[0]
    assert [train[0] for train, _ in rolling] == [0, 200, 400, 600]
    assert rolling[-1][1][1] == 991
    assert fold_windows(bars, 4, "rolling", train_blocks=2)[2][0][0] == 200
    with pytest.raises(SweepError, match="too few"):
        fold_windows(bars[:5], 4, "rolling")


@pytest.fixture(scope="module")
def walked(market):
    calls = []
    result = walk_forward(market, grid=GRID, settings=SETTINGS, folds=3, mode="rolling",
                          batch_size=4, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(4, 6), (6, 6)]
    return result


def test_choice_is_made_on_training_data(walked, bars, news, scorer):
    folds = walked.folds
    assert list(folds["fold"]) == [1, 2, 3]
    assert (folds["test_start"] >= folds["train_end"]).all()
    first = folds.iloc[0]
    prices = {t: p[(p.index >= first.train_start) & (p.index < first.train_end)]
              for t, p in prices_of(bars).items()}
    scores = {}
    for overrides in GRID.configurations():
        result = from_scratch(bars, news, GRID.apply(SETTINGS, overrides), scorer, prices)
        scores[config_id(overrides)] = result.sharpe_ratio
    assert first["config_id"] == max(scores, key=scores.get)
    assert first["train_sharpe_ratio"] == pytest.approx(max(scores.values()), rel=1e-9)


def test_out_of_sample_figures_equal_a_backtest_of_the_test_window(walked, bars, news,
                                                                  scorer):
    for row in walked.folds.itertuples():
        overrides = dict(zip(GRID.names, [walked.folds.loc[row.Index, k] for k in GRID.names],
                             strict=True))
        settings = GRID.apply(SETTINGS, overrides)
        prices = {t: p[(p.index >= row.test_start) & (p.index < row.test_end)]
                  for t, p in prices_of(bars).items()}
        reference = from_scratch(bars, news, settings, scorer, prices)
        assert row.total_return == pytest.approx(reference.total_return, rel=1e-9, abs=1e-12)
        assert row.num_trades == reference.num_trades


def test_stitched_equity_compounds_the_test_windows(walked):
    equity = walked.equity
    assert equity.index.is_monotonic_increasing
    assert equity.index[0] == walked.folds["test_start"].iloc[0]
    growth = np.prod(1 + walked.folds["total_return"].to_numpy())
    assert equity.iloc[-1] / SETTINGS.backtest.initial_capital == pytest.approx(growth)
    assert walked.total_return == pytest.approx(growth - 1)
    assert isinstance(walked.folds["test_start"].iloc[0], pd.Timestamp)


def test_cli_walkforward_writes_folds_and_equity(bars, news, tmp_path):
    bars_path, news_path, grid = write_files(bars, news, tmp_path)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["walkforward", str(bars_path), str(news_path),
                                      "--grid", str(grid), "--out", str(out), "--folds", "2",
                                      "--mode", "anchored", "--workers", "0"])
    assert result.exit_code == 0, result.output
    assert "out-of-sample total return" in result.output
    assert len(pd.read_csv(out / "folds.csv")) == 2
    assert len(pd.read_csv(out / "oos_equity.csv")) > 100
    bad = CliRunner().invoke(app, ["walkforward", str(bars_path), "--grid", str(grid),
                                   "--mode", "sideways", "--workers", "0"])
    assert bad.exit_code != 0
    assert "rolling" in bad.output
