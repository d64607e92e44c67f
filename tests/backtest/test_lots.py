"""Lot accounting on arbitrary scaling sequences: what must hold whatever the targets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gnosis.backtest import BacktestRunner
from gnosis.backtest.execution import simulate

weights = st.lists(st.sampled_from([-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0, np.nan]),
                   min_size=2, max_size=40)


def market(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    open_ = np.concatenate(([100.0], close[:-1])) * np.exp(rng.normal(0, 0.005, n))
    return pd.DataFrame({"Open": open_, "Close": close},
                        index=pd.date_range("2024-01-01", periods=n, freq="D"))


@settings(max_examples=80, deadline=None)
@given(weights, st.integers(0, 1000), st.sampled_from([0.0, 0.001]))
def test_lots_add_up_and_agree_with_their_prices(targets, seed, cost):
    prices = market(len(targets), seed)
    result = BacktestRunner(10_000.0, cost, 0.0).run(pd.Series(targets, index=prices.index),
                                                     prices, validate=False)
    lots = result.trades
    # Every unit of P&L is in exactly one row.
    assert lots.pnl.sum() == pytest.approx(result.equity_curve.iloc[-1] - 10_000.0,
                                           abs=1e-6)
    # Holdings rebuilt from the lots are the units the book held.
    held = np.zeros(len(targets))
    for t in lots.itertuples():
        held[t.entry_bar:t.exit_bar if t.closed else len(targets)] += t.size
    ex = simulate(prices.Open.to_numpy(), prices.Close.to_numpy(),
                  result.positions.to_numpy(), initial_capital=10_000.0,
                  transaction_cost=cost, slippage=0.0)
    assert np.allclose(held, ex.units, rtol=1e-9, atol=1e-9)
    # Before fees, a row's return has the sign its own prices say (the reported bug).
    gross = lots["return"] + lots.fees / (lots["size"].abs() * lots.entry_price)
    moved = np.sign(lots.direction * (lots.exit_price - lots.entry_price))
    assert (np.sign(gross.round(12)) == moved).all()
    assert ((lots["size"] > 0) == (lots.direction > 0)).all()
    # Round trips partition the lots and never mix sides.
    trips = result.round_trips
    assert trips.lots.sum() == len(lots)
    assert trips.pnl.sum() == pytest.approx(lots.pnl.sum(), abs=1e-6)
    assert (lots.groupby("round_trip").direction.nunique() == 1).all()
