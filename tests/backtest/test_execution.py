"""Execution semantics on hand-built cases: next-open fills, costs, shorts, HOLD, sizing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gnosis.backtest import BacktestInputError, BacktestRunner
from gnosis.events import TradingSignal, signal_id

INDEX = pd.date_range("2024-01-01", periods=6, freq="D")
PRICES = pd.DataFrame({
    "Open": [100.0, 101.0, 102.0, 104.0, 103.0, 105.0],
    "High": [102.0, 103.0, 106.0, 106.0, 106.0, 108.0],
    "Low": [99.0, 100.0, 101.0, 102.0, 101.0, 104.0],
    "Close": [101.0, 102.0, 105.0, 103.0, 104.0, 107.0],
}, index=INDEX)
CAPITAL = 10_000.0


def run(signals, *, cost=0.0, slip=0.0, prices=PRICES, **kwargs):
    runner = BacktestRunner(CAPITAL, cost, slip, **kwargs)
    return runner.run(signals, prices, validate=False)


def labels(*values: str) -> pd.Series:
    return pd.Series(list(values), index=INDEX)


def test_signal_at_close_fills_at_next_open():
    result = run(labels("HOLD", "BUY", "HOLD", "HOLD", "HOLD", "HOLD"))
    equity = result.equity_curve.to_numpy()
    # Decided at bar 1's close, so bars 0 and 1 are flat and the fill is bar 2's open.
    assert equity[:2] == pytest.approx([CAPITAL, CAPITAL])
    units = CAPITAL / 102.0
    assert equity[2] == pytest.approx(CAPITAL + units * (105.0 - 102.0))
    assert equity[5] == pytest.approx(CAPITAL + units * (107.0 - 102.0))
    trade = result.trades.iloc[0]
    assert (trade.entry_bar, trade.entry_price) == (2, 102.0)
    assert trade.entry_time == result.equity_curve.index[2]
    assert not trade.closed
    assert result.positions.tolist() == [0, 0, 1, 1, 1, 1]


def test_signal_on_last_bar_is_never_filled():
    result = run(labels("HOLD", "HOLD", "HOLD", "HOLD", "HOLD", "BUY"))
    assert result.num_trades == 0
    assert result.total_return == 0.0


def test_costs_and_slippage_on_traded_notional_both_ways():
    cost, slip = 0.01, 0.02
    result = run(labels("BUY", "HOLD", "SELL", "HOLD", "HOLD", "HOLD"), cost=cost, slip=slip)
    # Long from bar 1's open, reversed to short at bar 3's open.
    units = CAPITAL / 101.0
    buy = 101.0 * (1 + slip)
    cash = CAPITAL - units * buy - units * buy * cost
    assert result.equity_curve.iloc[1] == pytest.approx(cash + units * 102.0)
    equity_pre = cash + units * 104.0
    short_units = equity_pre / 104.0
    sell = 104.0 * (1 - slip)
    traded = units + short_units
    cash = cash + traded * sell - traded * sell * cost
    assert result.equity_curve.iloc[3] == pytest.approx(cash - short_units * 103.0)
    assert result.equity_curve.iloc[5] == pytest.approx(cash - short_units * 107.0)

    first, second = result.trades.iloc[0], result.trades.iloc[1]
    assert (first.direction, first.entry_bar, first.exit_bar, first.closed) == (1, 1, 3, True)
    assert first.entry_price == pytest.approx(buy)
    assert first.exit_price == pytest.approx(sell)
    close_fee = units * sell * cost
    assert first.fees == pytest.approx(units * buy * cost + close_fee)
    assert first.pnl == pytest.approx(units * (sell - buy) - first.fees)
    assert (second.direction, second.entry_bar, second.closed) == (-1, 3, False)
    # Trade P&L adds up to the change in equity.
    assert result.trades.pnl.sum() == pytest.approx(result.equity_curve.iloc[-1] - CAPITAL)


def test_short_profits_when_price_falls():
    prices = PRICES.assign(Open=[100.0, 100.0, 90.0, 80.0, 70.0, 60.0],
                           Close=[100.0, 95.0, 85.0, 75.0, 65.0, 55.0])
    result = run(labels("SELL", "HOLD", "HOLD", "HOLD", "HOLD", "HOLD"), prices=prices)
    units = CAPITAL / 100.0
    assert result.equity_curve.iloc[-1] == pytest.approx(CAPITAL + units * (100.0 - 55.0))
    assert result.trades.direction.tolist() == [-1]


def test_hold_keeps_position_or_goes_flat():
    signals = labels("BUY", "HOLD", "HOLD", "HOLD", "HOLD", "HOLD")
    assert run(signals).positions.tolist() == [0, 1, 1, 1, 1, 1]
    assert run(signals, hold="flat").positions.tolist() == [0, 1, 0, 0, 0, 0]


def test_numeric_targets_and_position_sizes():
    targets = pd.Series([1.0, np.nan, 0.0, -1.0, np.nan, np.nan], index=INDEX)
    result = BacktestRunner(CAPITAL, 0, 0).run(targets, PRICES, position_sizes=0.5,
                                               validate=False)
    assert result.positions.tolist() == [0, 0.5, 0.5, 0.0, -0.5, -0.5]
    assert result.num_trades == 2
    assert result.exposure == pytest.approx(4 / 6)


def test_scaling_in_opens_lots_within_one_round_trip():
    sizes = [0.5, 1.0, 1.0, 1.0, 1.0, 1.0]
    result = BacktestRunner(CAPITAL, 0, 0).run(labels("BUY", "BUY", "HOLD", "SELL", "HOLD",
                                                      "HOLD"), PRICES, sizes, validate=False)
    assert result.positions.tolist() == [0, 0.5, 1.0, 1.0, -1.0, -1.0]
    trades = result.trades
    # Two long lots at their own opens (bars 1 and 2), both closed by the reversal at bar 4.
    assert trades.direction.tolist() == [1, 1, -1]
    assert trades.entry_price.tolist() == [101.0, 102.0, 103.0]
    assert trades.exit_bar.tolist()[:2] == [4, 4]
    assert trades.round_trip.tolist() == [0, 0, 1]
    first = trades.iloc[0]
    assert first["return"] == pytest.approx(103.0 / 101.0 - 1)
    assert trades.pnl.sum() == pytest.approx(result.equity_curve.iloc[-1] - CAPITAL)
    trip = result.round_trips.iloc[0]
    assert (trip.lots, trip.direction, trip.exit_price) == (2, 1, 103.0)
    assert trip.entry_price == pytest.approx(np.average([101.0, 102.0],
                                                        weights=trades["size"][:2]))
    assert result.num_round_trips == 2


def make_signal(ts: int, kind: str, size: float) -> TradingSignal:
    return TradingSignal(signal_id("X", ts, "1d"), "X", ts, kind, 0.8, 0.2, 0.1, 2, False, 0.1,
                         0.4, 0.05, 0.6, 0.03, 1.0, "LOW", size, 100.0, ("test",),
                         interval="1d")


def test_trading_signals_use_timestamps_and_suggested_sizes():
    ns = INDEX.tz_localize("UTC").as_unit("ns").asi8
    events = [
        make_signal(int(ns[0]) - 1, "BUY", 0.25),          # before the first close: bar 0
        make_signal(int(ns[2]), "SELL", 0.5),              # at bar 2's close: bar 3
        make_signal(int(ns[3]) + 3600 * 10**9, "HOLD", 0.0),  # between closes: no change
    ]
    result = run(events)
    assert result.positions.tolist() == [0.25, 0.25, 0.25, -0.5, -0.5, -0.5]
    frame = pd.DataFrame([e.to_dict() for e in events])  # 'timestamp' strings, no 'ts'
    assert run(frame).positions.tolist() == result.positions.tolist()


def test_bad_inputs_are_named():
    with pytest.raises(BacktestInputError, match="unknown signal 'LONG'"):
        run(labels("LONG", "HOLD", "HOLD", "HOLD", "HOLD", "HOLD"))
    with pytest.raises(BacktestInputError, match="close"):
        run(labels(*["HOLD"] * 6), prices=PRICES.drop(columns="Close"))
    events = [make_signal(1, "BUY", 1.0), make_signal(2, "BUY", 1.0)]
    other = TradingSignal(**{**{f: getattr(events[1], f) for f in events[1].__slots__},
                             "ticker": "Y"})
    with pytest.raises(BacktestInputError, match="run_portfolio"):
        run([events[0], other])


def test_portfolio_splits_capital_equally():
    ns = INDEX.tz_localize("UTC").as_unit("ns").asi8
    x = make_signal(int(ns[0]), "BUY", 1.0)
    y = TradingSignal(**{**{f: getattr(x, f) for f in x.__slots__}, "ticker": "Y",
                         "signal_type": "SELL"})
    runner = BacktestRunner(CAPITAL, 0, 0, permutations=50)
    book = runner.run_portfolio([x, y], {"X": PRICES, "Y": PRICES})
    half = BacktestRunner(CAPITAL / 2, 0, 0)
    long_leg = half.run([x], PRICES, validate=False).equity_curve
    short_leg = half.run([y], PRICES, validate=False).equity_curve
    assert np.allclose(book.equity_curve.to_numpy(), (long_leg + short_leg).to_numpy())
    assert sorted(book.trades.ticker) == ["X", "Y"]
    assert book.positions.tolist() == [0, 0, 0, 0, 0, 0]  # long X and short Y net out
    assert 0 < book.mcpt_p_value <= 1


def test_portfolio_trades_point_at_their_round_trips():
    # Y trades earlier than X, so the time-ordered round trips interleave the tickers.
    x = labels("HOLD", "HOLD", "BUY", "HOLD", "SELL", "HOLD")
    y = labels("BUY", "SELL", "HOLD", "BUY", "HOLD", "HOLD")
    book = BacktestRunner(CAPITAL, 0, 0).run_portfolio(
        {"X": x, "Y": y}, {"X": PRICES, "Y": PRICES}, position_sizes=1.0, validate=False)
    trips = book.round_trips
    assert trips.entry_time.is_monotonic_increasing
    assert trips.ticker.tolist()[:2] == ["Y", "Y"]
    for trade in book.trades.itertuples():
        trip = trips.iloc[trade.round_trip]
        assert (trip.ticker, trip.direction) == (trade.ticker, trade.direction)
        assert trip.entry_time <= trade.entry_time
    assert trips.pnl.sum() == pytest.approx(book.trades.pnl.sum())
