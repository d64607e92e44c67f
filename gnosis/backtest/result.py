"""What one backtest produced: :class:`BacktestResult`.

The runner makes results; reports, sweeps and the metrics exporter only read them, so
none of those imports the runner. The statistics themselves (names, labels, formulas) are
in :data:`gnosis.backtest.metrics.STATISTICS`; a result holds their values in ``stats``
and exposes each as an attribute (``result.sharpe_ratio``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from gnosis.backtest.metrics import STATISTIC_BY_KEY, STATISTICS, drawdown

if TYPE_CHECKING:
    from gnosis.backtest.permutation import PermutationTest

TRADE_COLUMNS: tuple[str, ...] = (
    "entry_time", "exit_time", "entry_bar", "exit_bar", "direction", "size", "entry_price",
    "exit_price", "pnl", "return", "fees", "closed", "round_trip")
"""Columns of :attr:`BacktestResult.trades` (one row per lot)."""

ROUND_TRIP_COLUMNS: tuple[str, ...] = (
    "entry_time", "exit_time", "entry_bar", "exit_bar", "direction", "size", "entry_price",
    "exit_price", "pnl", "return", "fees", "closed", "lots")
"""Columns of :attr:`BacktestResult.round_trips` (one row per position, flat to flat)."""


@dataclass(frozen=True)
class BacktestResult:
    """Statistics plus the curves and trades behind them.

    Every key of :data:`~gnosis.backtest.metrics.STATISTICS` is an attribute:
    ``result.total_return``, ``result.sharpe_ratio``, … (fractions, not percent).
    """

    stats: Mapping[str, Any]
    """The statistics, keyed and ordered as :data:`~gnosis.backtest.metrics.STATISTICS`."""
    equity_curve: pd.Series = field(repr=False)
    """Mark-to-market equity at each bar's close."""
    trades: pd.DataFrame = field(repr=False)
    """One row per lot, first in first out (backtesting.py's convention): a fill in the
    direction of the position opens a lot at its own price; a fill against it closes the
    oldest lots first, each closed part its own row. Columns :data:`TRADE_COLUMNS`:
    ``entry_bar``/``exit_bar`` (bars whose open filled it), ``direction`` (+1/-1),
    ``size`` (signed units), ``entry_price``/``exit_price``, ``fees`` (the lot's share
    of the entry fill's cost plus the exit fill's), ``pnl`` (``size * (exit - entry) -
    fees``), ``return`` (``direction * (exit / entry - 1) - fees / (|size| * entry)``,
    backtesting.py's ``ReturnPct``), ``closed`` (False for a lot still open at the end,
    valued at the last close) and ``round_trip`` (row of :attr:`round_trips`)."""
    round_trips: pd.DataFrame = field(repr=False)
    """One row per position from flat back to flat, columns :data:`ROUND_TRIP_COLUMNS`:
    ``size`` is the units opened, ``entry_price``/``exit_price`` the volume-weighted
    prices of its lots, ``pnl`` and ``fees`` their sums, ``return`` the P&L over the
    entry notional (a notional-weighted mean of the lots' returns)."""
    positions: pd.Series = field(repr=False)
    """Target weight (signed fraction of equity) in force during each bar."""
    initial_capital: float = 100_000.0
    periods_per_year: float = 252.0
    permutation: PermutationTest | None = field(default=None, repr=False)

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails; guard the fields themselves so copying
        # and unpickling (which look attributes up before ``stats`` is set) stay safe.
        if name in STATISTIC_BY_KEY:
            stats = self.__dict__.get("stats")
            if stats is not None and name in stats:
                return stats[name]
        raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")

    @property
    def drawdown(self) -> pd.Series:
        """Drawdown of the equity curve at each bar (zero or negative)."""
        return pd.Series(drawdown(self.equity_curve.to_numpy()), index=self.equity_curve.index,
                         name="drawdown")

    def metrics(self) -> dict[str, Any]:
        """The statistics as a plain dict, keys as in ``STATISTICS``."""
        return dict(self.stats)

    def as_series(self) -> pd.Series:
        """A readable summary with report labels, in the spirit of backtesting.py's stats."""
        index = self.equity_curve.index
        rows: dict[str, Any] = {}
        if len(index):
            rows["Start"], rows["End"] = index[0], index[-1]
            if isinstance(index, pd.DatetimeIndex):
                rows["Duration"] = index[-1] - index[0]
        rows["Bars"] = len(index)
        rows["Initial Capital"] = self.initial_capital
        rows.update({s.label: self.stats[s.key] for s in STATISTICS})
        rows["Periods per Year"] = self.periods_per_year
        return pd.Series(rows, dtype=object, name="stats")
