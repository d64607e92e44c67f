"""Vectorised order execution: target weights in, equity curve and trades out.

Conventions (the whole backtester follows them):

* ``target[j]`` is the position, as a signed fraction of equity, that is *in force from the
  open of bar j*. A decision taken at the close of bar ``i`` is therefore ``target[i + 1]``:
  it fills at the next bar's open, never at the close it was computed on (no look-ahead).
* When the target changes at bar ``j``, the book is re-sized at ``open[j]``: the new holding
  in units is ``target[j] * equity / open[j]``, where ``equity`` is the pre-trade equity at
  that open. Between changes the number of units is held constant (like a real account and
  like backtesting.py), so the weight drifts with the price.
* A fill of ``d`` units is done at ``open * (1 + slippage * sign(d))`` and pays
  ``transaction_cost * |d| * fill_price``: both act on traded notional, on entry and exit.
* Equity is marked at each bar's close. A position still open after the last bar is valued
  at the last close; it is not liquidated and pays no exit cost.

The only Python loop runs over the bars where the target changes (the trades), not over
the bars, so a million bars with a few thousand trades take milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Execution:
    """Raw result of :func:`simulate`, all arrays indexed by bar unless said otherwise."""

    equity: np.ndarray
    """Mark-to-market equity at each bar's close."""
    units: np.ndarray
    """Units held during each bar (signed)."""
    fill_bar: np.ndarray
    """Per fill: the bar at whose open it was executed."""
    units_before: np.ndarray
    """Per fill: units held before the fill."""
    units_after: np.ndarray
    """Per fill: units held after the fill."""
    fill_price: np.ndarray
    """Per fill: the price paid, slippage included."""
    fee: np.ndarray
    """Per fill: the transaction cost paid."""


def simulate(
    open_: np.ndarray,
    close: np.ndarray,
    target: np.ndarray,
    *,
    initial_capital: float,
    transaction_cost: float,
    slippage: float,
) -> Execution:
    """Execute ``target`` weights (in force from each bar's open) against open/close prices."""
    open_ = np.asarray(open_, dtype=np.float64)
    close = np.asarray(close, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    n = len(target)
    if not (len(open_) == len(close) == n):
        raise ValueError("open, close and target must have the same length")
    if n and not np.isfinite(target).all():
        raise ValueError("target weights must be finite")

    previous = np.concatenate(([0.0], target[:-1]))
    changes = np.flatnonzero(target != previous)
    m = len(changes)
    cash_after = np.empty(m)
    units_after = np.empty(m)
    fill_price = np.empty(m)
    fee = np.empty(m)

    cash, units = float(initial_capital), 0.0
    opens = open_[changes].tolist()
    weights = target[changes].tolist()
    for i, (price, weight) in enumerate(zip(opens, weights, strict=True)):
        equity = cash + units * price
        new_units = weight * equity / price if equity > 0 and price > 0 else 0.0
        delta = new_units - units
        fill = price * (1.0 + slippage) if delta > 0 else price * (1.0 - slippage)
        cost = abs(delta) * fill * transaction_cost
        cash -= delta * fill + cost
        units = new_units
        cash_after[i], units_after[i], fill_price[i], fee[i] = cash, units, fill, cost

    # Segment s holds between fill s-1 and fill s; segment 0 is the all-cash start.
    seg_cash = np.concatenate(([float(initial_capital)], cash_after))
    seg_units = np.concatenate(([0.0], units_after))
    segment = np.searchsorted(changes, np.arange(n), side="right")
    held = seg_units[segment]
    equity = seg_cash[segment] + held * close
    return Execution(
        equity=equity,
        units=held,
        fill_bar=changes,
        units_before=seg_units[:-1],
        units_after=units_after,
        fill_price=fill_price,
        fee=fee,
    )


@dataclass(frozen=True)
class TradeTable:
    """Round trips as column arrays (see :func:`extract_trades`)."""

    entry_bar: np.ndarray
    exit_bar: np.ndarray
    direction: np.ndarray
    size: np.ndarray
    entry_price: np.ndarray
    exit_price: np.ndarray
    pnl: np.ndarray
    fees: np.ndarray
    closed: np.ndarray

    @property
    def returns(self) -> np.ndarray:
        """P&L (after costs) as a fraction of the entry notional."""
        notional = np.abs(self.size) * self.entry_price
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(notional > 0, self.pnl / notional, 0.0)


def extract_trades(ex: Execution, last_close: float) -> TradeTable:
    """Split fills into round trips.

    A trade runs from the fill that opens a position (from flat, or the opening half of a
    reversal) to the fill that brings it back to flat (or the closing half of a reversal).
    Re-sizing in the same direction stays within the trade. A reversal's fill is split in
    two legs at the same price, its cost shared in proportion to the units of each leg.
    """
    moved = ex.units_after != ex.units_before
    before, after = ex.units_before[moved], ex.units_after[moved]
    fill_price, fill_bar, fill_fee = ex.fill_price[moved], ex.fill_bar[moved], ex.fee[moved]
    sb, sa = np.sign(before), np.sign(after)
    flips = (sb != 0) & (sa != 0) & (sb != sa)
    # Leg 1 of every fill: a close (for reversals, the closing half) or the whole fill.
    leg1 = np.where(flips, -before, after - before)
    leg2 = np.where(flips, after, 0.0)
    total = np.abs(leg1) + np.abs(leg2)
    with np.errstate(divide="ignore", invalid="ignore"):
        share1 = np.where(total > 0, np.abs(leg1) / total, 1.0)

    has2 = flips
    m = len(before)
    legs_per_fill = 1 + has2.astype(np.int64)
    order = np.repeat(np.arange(m), legs_per_fill)
    second = np.zeros(len(order), dtype=bool)
    second[np.cumsum(legs_per_fill)[has2] - 1] = True
    leg_units = np.where(second, leg2[order], leg1[order])
    leg_fee = fill_fee[order] * np.where(second, 1 - share1[order], share1[order])
    leg_price = fill_price[order]
    leg_bar = fill_bar[order]
    # A leg opens a trade when the book was flat just before it.
    opens = np.where(second, True, before[order] == 0)
    trade_id = np.cumsum(opens) - 1
    count = int(opens.sum())
    if count == 0:
        empty = np.empty(0)
        return TradeTable(empty.astype(np.int64), empty.astype(np.int64), empty.astype(np.int64),
                          empty, empty, empty, empty, empty, empty.astype(bool))

    cash_flow = -leg_units * leg_price - leg_fee
    pnl = np.bincount(trade_id, weights=cash_flow, minlength=count)
    fees = np.bincount(trade_id, weights=leg_fee, minlength=count)
    first = np.flatnonzero(opens)
    # A leg closes its trade when the book is flat (or reversed) right after it.
    after_leg = np.where(second, after[order], np.where(flips[order], 0.0, after[order]))
    closes = after_leg == 0
    last = np.full(count, -1, dtype=np.int64)
    last[trade_id[closes]] = np.flatnonzero(closes)
    closed = last >= 0
    open_units = np.zeros(count)
    if not closed[-1]:
        open_units[-1] = after[-1]
    pnl = pnl + open_units * last_close
    n_bars = len(ex.equity)
    return TradeTable(
        entry_bar=leg_bar[first],
        exit_bar=np.where(closed, leg_bar[last], n_bars - 1),
        direction=np.sign(leg_units[first]).astype(np.int64),
        size=leg_units[first],
        entry_price=leg_price[first],
        exit_price=np.where(closed, leg_price[last], last_close),
        pnl=pnl,
        fees=fees,
        closed=closed,
    )
