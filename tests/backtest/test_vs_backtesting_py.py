"""Agreement with backtesting.py on the same SMA cross over real GOOG daily data.

Both trade at the next bar's open, pay the same commission on entry and exit, and always
hold one position (long or short). Sizing conventions differ: backtesting.py buys whole
shares with the cash left after reserving the commission, i.e. ``equity / (price * (1 +
commission))`` units; we give our runner that same fraction of equity. The remaining
differences are backtesting.py sizing a reversal after paying the closing commission (we
size on equity before the fill) and whole-share rounding (negligible with large cash), so
trades match exactly and equity within a fraction of a percent.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from backtesting import Backtest, Strategy
from backtesting.lib import crossover
from backtesting.test import GOOG, SMA

from gnosis.backtest import BacktestRunner

COMMISSION = 0.002
CASH = 1e9  # whole shares cost nothing in precision at this size


class SmaCross(Strategy):
    fast, slow = 10, 20

    def init(self):
        self.a = self.I(SMA, self.data.Close, self.fast)
        self.b = self.I(SMA, self.data.Close, self.slow)

    def next(self):
        if crossover(self.a, self.b):
            self.buy()
        elif crossover(self.b, self.a):
            self.sell()


def sma_cross_signals(close: pd.Series, fast: int = 10, slow: int = 20) -> pd.Series:
    a, b = close.rolling(fast).mean(), close.rolling(slow).mean()
    up = (a > b) & (a.shift() < b.shift())
    down = (a < b) & (a.shift() > b.shift())
    return pd.Series(np.where(up, "BUY", np.where(down, "SELL", "HOLD")), index=close.index)


@pytest.fixture(scope="module")
def both():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = Backtest(GOOG, SmaCross, cash=CASH, commission=COMMISSION,
                         exclusive_orders=True, trade_on_close=False).run()
    ours = BacktestRunner(CASH, COMMISSION, 0.0).run(
        sma_cross_signals(GOOG.Close), GOOG, position_sizes=1 / (1 + COMMISSION),
        validate=False)
    return stats, ours


def test_same_trades(both):
    stats, ours = both
    theirs = stats._trades
    closed = ours.trades[ours.trades.closed]
    assert len(closed) == len(theirs) > 80
    assert closed.entry_bar.tolist() == theirs.EntryBar.tolist()
    assert closed.exit_bar.tolist() == theirs.ExitBar.tolist()
    assert closed.direction.tolist() == np.sign(theirs.Size).astype(int).tolist()
    assert np.allclose(closed.entry_price, theirs.EntryPrice)
    assert np.allclose(closed.exit_price, theirs.ExitPrice)
    # Per-trade return after commissions does not depend on sizing: equal to rounding.
    assert np.allclose(closed["return"], theirs.ReturnPct, rtol=1e-9, atol=1e-12)


def test_equity_agrees_within_sizing_tolerance(both):
    stats, ours = both
    theirs = stats._equity_curve.Equity.to_numpy()
    mine = ours.equity_curve.to_numpy()
    assert np.max(np.abs(mine / theirs - 1)) < 0.005
    assert ours.total_return == pytest.approx(stats["Return [%]"] / 100, rel=0.005)
    assert ours.max_drawdown == pytest.approx(stats["Max. Drawdown [%]"] / 100, abs=0.005)
    assert ours.exposure == pytest.approx(stats["Exposure Time [%]"] / 100, abs=0.03)
