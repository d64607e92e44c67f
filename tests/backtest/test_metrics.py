"""Statistics against hand computation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from gnosis.backtest.metrics import compute_metrics, max_drawdown_duration, periods_per_year


def test_metrics_match_hand_computation():
    equity = np.array([100.0, 110.0, 99.0, 103.95, 120.0])
    trade_pnl = np.array([10.0, -11.0, 21.0])
    trade_returns = np.array([0.1, -0.1, 0.2])
    positions = np.array([1.0, 1.0, 0.0, -1.0, 1.0])
    m = compute_metrics(equity, 100.0, trade_returns, trade_pnl, positions, periods=252)

    returns = np.array([0.0, 0.1, -0.1, 0.05, 120.0 / 103.95 - 1])
    assert m["total_return"] == pytest.approx(0.2)
    assert m["annual_return"] == pytest.approx(1.2 ** (252 / 5) - 1)
    assert m["annual_volatility"] == pytest.approx(returns.std(ddof=1) * math.sqrt(252))
    assert m["sharpe_ratio"] == pytest.approx(returns.mean() / returns.std(ddof=1)
                                              * math.sqrt(252))
    downside = math.sqrt(0.1 ** 2 / 5)
    assert m["sortino_ratio"] == pytest.approx(returns.mean() / downside * math.sqrt(252))
    assert m["max_drawdown"] == pytest.approx(-0.1)
    assert m["calmar_ratio"] == pytest.approx(m["annual_return"] / 0.1)
    assert m["max_drawdown_duration"] == 2
    assert m["num_trades"] == 3
    assert m["win_rate"] == pytest.approx(2 / 3)
    assert m["avg_win"] == pytest.approx(0.15)
    assert m["avg_loss"] == pytest.approx(-0.1)
    assert m["profit_factor"] == pytest.approx(31 / 11)
    assert m["expectancy"] == pytest.approx(0.2 / 3)
    assert m["exposure"] == pytest.approx(0.8)


def test_risk_free_rate_lowers_sharpe():
    equity = 100 * np.cumprod(1 + np.tile([0.01, -0.005], 50))
    empty = np.empty(0)
    base = compute_metrics(equity, 100.0, empty, empty, np.ones(100), periods=252)
    rf = compute_metrics(equity, 100.0, empty, empty, np.ones(100), periods=252,
                         risk_free_rate=0.05)
    assert rf["sharpe_ratio"] < base["sharpe_ratio"]
    assert math.isnan(base["win_rate"])
    assert base["num_trades"] == 0


def test_drawdown_duration_counts_until_recovery_or_end():
    assert max_drawdown_duration(np.array([1, 2, 1, 1, 2, 3, 2, 2, 2.5])) == 3
    assert max_drawdown_duration(np.array([1.0, 2.0, 3.0])) == 0


@pytest.mark.parametrize(("freq", "expected"), [
    ("1min", 252 * 390), ("5min", 252 * 78), ("1h", 252 * 6.5), ("1D", 252), ("B", 252),
    ("W", 52),
])
def test_periods_per_year_from_spacing(freq, expected):
    index = pd.date_range("2024-01-01", periods=50, freq=freq)
    assert periods_per_year(index) == pytest.approx(expected)


def test_periods_per_year_without_times_uses_default():
    assert periods_per_year(pd.RangeIndex(10)) == 252


def test_every_statistic_is_defined_once_and_computed():
    from gnosis.backtest.metrics import STATISTICS, compute_metrics

    keys = [s.key for s in STATISTICS]
    assert len(set(keys)) == len(keys)
    assert len({s.label for s in STATISTICS}) == len(keys)
    equity = np.array([100.0, 101.0, 99.0, 103.0])
    stats = compute_metrics(equity, 100.0, np.array([0.01, -0.02]), np.array([1.0, -2.0]),
                            np.array([0, 1, 1, 0]), periods=252, round_trips=1)
    assert list(stats) == keys


def test_result_exposes_statistics_and_exporter_publishes_them():
    import pickle

    from gnosis.backtest import BacktestRunner
    from gnosis.backtest.metrics import STATISTICS
    from gnosis.sinks import metrics as prom

    prices = pd.DataFrame({"Open": [10.0, 11.0, 12.0, 11.0], "Close": [11.0, 12.0, 11.0, 12.0]},
                          index=pd.date_range("2024-01-01", periods=4, freq="D"))
    result = BacktestRunner(1_000.0, 0.0, 0.0).run(pd.Series([1.0, 1.0, 0.0, 0.0],
                                                             index=prices.index),
                                                   prices, validate=False)
    assert result.total_return == result.stats["total_return"]
    assert pickle.loads(pickle.dumps(result)).sharpe_ratio == pytest.approx(
        result.sharpe_ratio, nan_ok=True)
    assert list(result.as_series().index[-len(STATISTICS) - 1:-1]) == [
        s.label for s in STATISTICS]
    with pytest.raises(AttributeError):
        _ = result.no_such_statistic
    prom.publish_backtest("unit-test", result)
    exported = [s for s in STATISTICS if s.gauge]
    assert sorted(prom.BACKTEST_GAUGES) == sorted(s.key for s in exported)
    for stat in exported:
        value = prom.REGISTRY.get_sample_value(f"gnosis_backtest_{stat.gauge}",
                                               {"strategy": "unit-test"})
        assert value == pytest.approx(float(result.stats[stat.key]), nan_ok=True)
