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

The only Python loops run over the bars where the target changes (the fills), not over
the bars, so a million bars with a few thousand fills take milliseconds.
"""

from __future__ import annotations

import math
from collections import deque
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


# Relative size below which what is left of a lot after a partial close is rounding.
_RESIDUE = 1e-12


@dataclass(frozen=True)
class TradeTable:
    """Trade rows (lots) as column arrays (see :func:`extract_trades`)."""

    entry_bar: np.ndarray
    exit_bar: np.ndarray
    direction: np.ndarray
    size: np.ndarray
    """Signed units of the lot (or of the closed part of it)."""
    entry_price: np.ndarray
    exit_price: np.ndarray
    pnl: np.ndarray
    fees: np.ndarray
    closed: np.ndarray
    round_trip: np.ndarray
    """Index of the flat-to-flat position the row belongs to."""

    @property
    def returns(self) -> np.ndarray:
        """backtesting.py's ``ReturnPct``: ``direction * (exit / entry - 1)`` less fees
        as a fraction of the entry notional (equal to ``pnl / (|size| * entry)``)."""
        notional = np.abs(self.size) * self.entry_price
        with np.errstate(divide="ignore", invalid="ignore"):
            gross = self.direction * (self.exit_price / self.entry_price - 1.0)
            return np.where(notional > 0, gross - self.fees / notional, 0.0)


def extract_trades(ex: Execution, last_close: float) -> TradeTable:
    """Split fills into lots, first in first out (backtesting.py's ``_reduce_trade``).

    A fill in the direction of the position (or from flat) opens a lot at its own price
    and bar. A fill against the position closes the oldest lots first; each lot closed in
    full, and the closed part of a lot closed in part, is one row with that lot's entry
    price. A reversal closes every lot and opens one with the rest of the fill. Each fill's
    cost is shared among the units it traded: a row's ``fees`` are its share of the entry
    fill's cost plus its share of the exit fill's. Lots still open after the last bar are
    rows with ``closed`` False, valued at ``last_close`` with no exit cost.

    The loop is over fills, not bars.
    """
    # One tuple per row: entry bar, exit bar, signed units, entry price, exit price, fees,
    # closed, round trip. Lots: [signed units left, entry price, entry bar, fee left, trip].
    rows: list[tuple] = []
    lots: deque[list] = deque()
    trip = -1
    for before, after, price, bar, fee in zip(
            ex.units_before.tolist(), ex.units_after.tolist(), ex.fill_price.tolist(),
            ex.fill_bar.tolist(), ex.fee.tolist(), strict=True):
        delta = after - before
        if delta == 0:
            continue
        fee_per_unit = fee / abs(delta)
        opened = delta
        if before != 0 and (delta > 0) != (before > 0):
            # Against the position: close lots oldest first; all of them if flat or reversed.
            closing = min(abs(delta), abs(before))
            flat = after == 0 or (after > 0) != (before > 0)
            while lots and (flat or closing > _RESIDUE * abs(delta)):
                lot = lots[0]
                whole = flat or closing >= abs(lot[0]) * (1.0 - _RESIDUE)
                units = lot[0] if whole else math.copysign(closing, lot[0])
                entry_fee = lot[3] if whole else lot[3] * units / lot[0]
                rows.append((lot[2], bar, units, lot[1], price,
                             entry_fee + fee_per_unit * abs(units), True, lot[4]))
                closing -= abs(units)
                if whole:
                    lots.popleft()
                else:
                    lot[0] -= units
                    lot[3] -= entry_fee
            opened = after if flat else 0.0
        if opened != 0:
            if before == 0 or (after > 0) != (before > 0):
                trip += 1
            lots.append([opened, price, bar, fee_per_unit * abs(opened), trip])
    last_bar = len(ex.equity) - 1
    rows.extend((lot[2], last_bar, lot[0], lot[1], last_close, lot[3], False, lot[4])
                for lot in lots)

    columns = list(zip(*rows, strict=True)) if rows else [()] * 8
    size = np.asarray(columns[2], dtype=np.float64)
    entry_price = np.asarray(columns[3], dtype=np.float64)
    exit_price = np.asarray(columns[4], dtype=np.float64)
    fees = np.asarray(columns[5], dtype=np.float64)
    return TradeTable(
        entry_bar=np.asarray(columns[0], dtype=np.int64),
        exit_bar=np.asarray(columns[1], dtype=np.int64),
        direction=np.where(size > 0, 1, -1).astype(np.int64),
        size=size,
        entry_price=entry_price,
        exit_price=exit_price,
        pnl=size * (exit_price - entry_price) - fees,
        fees=fees,
        closed=np.asarray(columns[6], dtype=bool),
        round_trip=np.asarray(columns[7], dtype=np.int64),
    )


def round_trips(table: TradeTable) -> dict[str, np.ndarray]:
    """Position-level view of the lots: one entry per flat-to-flat round trip.

    ``size`` is the signed units opened, ``entry_price``/``exit_price`` the volume-weighted
    prices of the lots, ``pnl``/``fees`` their sums and ``return`` the P&L over the entry
    notional. Column arrays keyed like :data:`gnosis.backtest.result.ROUND_TRIP_COLUMNS`.
    """
    trip = table.round_trip
    count = int(trip.max()) + 1 if len(trip) else 0
    units = np.abs(table.size)
    entry_notional = np.bincount(trip, units * table.entry_price, count)
    volume = np.bincount(trip, units, count)
    pnl = np.bincount(trip, table.pnl, count)
    # Rows come trip by trip, oldest lot first: a trip's lots all close before the next opens.
    first = np.searchsorted(trip, np.arange(count))
    last = np.searchsorted(trip, np.arange(count), side="right") - 1
    open_lots = np.bincount(trip, ~table.closed, count)
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "entry_bar": table.entry_bar[first],
            "exit_bar": table.exit_bar[last],
            "direction": table.direction[first],
            "size": np.bincount(trip, table.size, count),
            "entry_price": entry_notional / volume,
            "exit_price": np.bincount(trip, units * table.exit_price, count) / volume,
            "pnl": pnl,
            "return": np.where(entry_notional > 0, pnl / entry_notional, 0.0),
            "fees": np.bincount(trip, table.fees, count),
            "closed": open_lots == 0,
            "lots": np.bincount(trip, minlength=count),
        }
