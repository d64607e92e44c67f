"""Trade rows when a position scales in and out, against backtesting.py's own accounting.

A backtesting.py strategy buys and sells share counts at planned bars: it builds a long in
three steps, closes part of it with ``Trade.close(portion)`` and with a smaller opposite
order (both first in first out), adds again, reverses to a short and scales that too. We
give our runner the same holdings (the units backtesting.py held each bar, turned into
weights of our own pre-trade equity so the units come out equal) and compare the trade
rows: every closed lot, its entry and exit bars and prices, its P&L and its ``ReturnPct``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from backtesting import Backtest, Strategy
from backtesting.test import GOOG

from gnosis.backtest import BacktestRunner

COMMISSION = 0.002
CASH = 1e7
# bar -> what the strategy does at that bar's close (filled at the next open).
PLAN: dict[int, tuple[str, float]] = {
    20: ("buy", 300), 35: ("buy", 200), 50: ("buy", 500),
    70: ("close_first", 0.5),      # half of the oldest trade
    90: ("sell", 400),              # FIFO: the rest of the first, then part of the second
    110: ("buy", 100),
    140: ("close_first", 1.0),
    170: ("sell", 1500),            # reversal: closes every lot, opens a short
    190: ("sell", 300),
    220: ("buy", 250),              # partly covers the short, oldest lot first
    260: ("close_all", 1.0),
    300: ("sell", 100), 320: ("buy", 400),  # short, then straight through flat to long
}


class Planned(Strategy):
    def init(self):
        pass

    def next(self):
        step = PLAN.get(len(self.data) - 1)
        if step is None:
            return
        action, amount = step
        if action == "buy":
            self.buy(size=int(amount))
        elif action == "sell":
            self.sell(size=int(amount))
        elif action == "close_first":
            self.trades[0].close(amount)
        else:
            self.position.close()


@pytest.fixture(scope="module")
def both():
    data = GOOG.iloc[:400]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = Backtest(data, Planned, cash=CASH, commission=COMMISSION,
                         trade_on_close=False, finalize_trades=False).run()
    theirs = stats._trades
    # Units held during each bar: a trade holds from the open of EntryBar to ExitBar.
    n = len(data)
    units = np.zeros(n)
    for t in theirs.itertuples():
        units[t.EntryBar:t.ExitBar] += t.Size
    for t in stats._strategy.trades:  # still open at the end
        units[t.entry_bar:] += t.size
    equity = stats._equity_curve.Equity.to_numpy()
    open_, close = data.Open.to_numpy(), data.Close.to_numpy()
    prev_units = np.concatenate(([0.0], units[:-1]))
    pre_trade = np.concatenate(([CASH], equity[:-1] + prev_units[1:] * (open_[1:] - close[:-1])))
    # A weight only where the holding changes (NaN: no decision), so units stay put between.
    weights = np.where(units != prev_units, units * open_ / pre_trade, np.nan)
    ours = BacktestRunner(CASH, COMMISSION, 0.0).run(
        pd.Series(np.concatenate((weights[1:], weights[-1:])), index=data.index), data,
        validate=False)
    return theirs, ours, units


def test_same_holdings(both):
    _, ours, units = both
    closed = ours.trades[ours.trades.closed]
    held = np.zeros(len(units))
    for t in ours.trades.itertuples():
        held[t.entry_bar:t.exit_bar if t.closed else len(units)] += t.size
    assert np.allclose(held, units, rtol=1e-9, atol=1e-6)
    assert len(closed) >= 10


def test_same_lots(both):
    theirs, ours, _ = both
    mine = ours.trades[ours.trades.closed].sort_values(["exit_bar", "entry_bar"],
                                                       kind="stable")
    theirs = theirs.sort_values(["ExitBar", "EntryBar"], kind="stable")
    assert mine.entry_bar.tolist() == theirs.EntryBar.tolist()
    assert mine.exit_bar.tolist() == theirs.ExitBar.tolist()
    assert np.allclose(mine["size"], theirs.Size, rtol=1e-9)
    assert np.allclose(mine.entry_price, theirs.EntryPrice)
    assert np.allclose(mine.exit_price, theirs.ExitPrice)
    assert np.allclose(mine.pnl, theirs.PnL, rtol=1e-6, atol=1e-6)
    assert np.allclose(mine["return"], theirs.ReturnPct, rtol=1e-9, atol=1e-12)


def test_round_trips_add_up(both):
    _, ours, _ = both
    trips, lots = ours.round_trips, ours.trades
    assert trips.pnl.sum() == pytest.approx(lots.pnl.sum())
    assert trips.lots.sum() == len(lots)
    # Every lot of a round trip is on its side; the trip's entry is the VWAP of its lots.
    for k, group in lots.groupby("round_trip"):
        trip = trips.iloc[k]
        assert (np.sign(group["size"]) == trip.direction).all()
        vwap = np.average(group.entry_price, weights=group["size"].abs())
        assert trip.entry_price == pytest.approx(vwap)
    assert ours.num_round_trips == len(trips) >= 4
    assert trips.pnl.sum() == pytest.approx(ours.equity_curve.iloc[-1] - CASH, rel=1e-9)
