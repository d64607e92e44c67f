"""The backtester's public face: :class:`BacktestRunner`, which makes a
:class:`~gnosis.backtest.result.BacktestResult`.

    >>> runner = BacktestRunner(initial_capital=100_000, transaction_cost=0.001)
    >>> result = runner.run(signals, prices)          # doctest: +SKIP
    >>> result.as_series()                             # doctest: +SKIP
    >>> print(generate_report(result))                 # doctest: +SKIP

Execution semantics are in :mod:`gnosis.backtest.execution` (next-open fills, costs and
slippage on traded notional, units held between signals), input conventions in
:mod:`gnosis.backtest.inputs`, statistics in :mod:`gnosis.backtest.metrics` and the
significance test in :mod:`gnosis.backtest.permutation`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from gnosis.backtest.execution import extract_trades, round_trips, simulate
from gnosis.backtest.inputs import BacktestInputError, price_arrays, signals_frame, target_weights
from gnosis.backtest.metrics import compute_metrics, periods_per_year
from gnosis.backtest.permutation import PermutationTest, permutation_test
from gnosis.backtest.result import ROUND_TRIP_COLUMNS, TRADE_COLUMNS, BacktestResult
from gnosis.config import BacktestConfig


class BacktestRunner:
    """Run signal-driven backtests with costs, slippage and a permutation test.

    Args:
        initial_capital: starting equity.
        transaction_cost: fee as a fraction of traded notional, paid on every fill.
        slippage: adverse price move on every fill, as a fraction of the open price.
        permutations: Monte Carlo permutations for the p-value (0 disables the test).
        seed: random seed of the permutation test (same seed, same p-value).
        risk_free_rate: annual rate subtracted in Sharpe and Sortino.
        significance: ``is_significant`` is ``mcpt_p_value < significance``.
        periods_per_year: bars per year for annualisation; ``None`` or 0 infers it from
            the price index (see :func:`gnosis.backtest.metrics.periods_per_year`).
        hold: ``"keep"`` (a HOLD signal keeps the current position) or ``"flat"``.
    """

    def __init__(
        self,
        initial_capital: float = 100_000.0,
        transaction_cost: float = 0.001,
        slippage: float = 0.0005,
        *,
        permutations: int = 1_000,
        seed: int | None = 7,
        risk_free_rate: float = 0.0,
        significance: float = 0.05,
        periods_per_year: float | None = None,
        hold: str = "keep",
    ) -> None:
        if initial_capital <= 0:
            raise ValueError("initial_capital must be positive")
        if transaction_cost < 0 or slippage < 0:
            raise ValueError("transaction_cost and slippage must be non-negative")
        self.initial_capital = float(initial_capital)
        self.transaction_cost = float(transaction_cost)
        self.slippage = float(slippage)
        self.permutations = int(permutations)
        self.seed = seed
        self.risk_free_rate = float(risk_free_rate)
        self.significance = float(significance)
        self.periods_per_year = periods_per_year or None
        self.hold = hold

    @classmethod
    def from_config(cls, config: BacktestConfig) -> BacktestRunner:
        """A runner set up from the ``[backtest]`` configuration section."""
        return cls(config.initial_capital, config.transaction_cost, config.slippage,
                   permutations=config.permutations, seed=config.seed,
                   risk_free_rate=config.risk_free_rate, significance=config.significance,
                   periods_per_year=config.periods_per_year or None, hold=config.hold)

    # ------------------------------------------------------------------ single instrument

    def run(
        self,
        signals: Any,
        prices: pd.DataFrame,
        position_sizes: Any = None,
        validate: bool = True,
    ) -> BacktestResult:
        """Backtest one instrument.

        Args:
            signals: a list of :class:`~gnosis.events.TradingSignal`, a signals DataFrame
                (one ticker), or a Series/array aligned to ``prices`` holding BUY/SELL/HOLD
                or numeric target positions. See :func:`gnosis.backtest.inputs.target_weights`.
            prices: OHLCV DataFrame indexed by bar close time (``Open`` and ``Close`` used).
            position_sizes: fraction of equity per signal (scalar or aligned with signals);
                defaults to each signal's ``suggested_position_size``, else 1.0.
            validate: run the Monte Carlo permutation test.
        """
        index, open_, close = price_arrays(prices)
        target = target_weights(signals, index, position_sizes, hold=self.hold)
        return self._run_arrays(index, open_, close, target, validate)

    def _run_arrays(self, index: pd.Index, open_: np.ndarray, close: np.ndarray,
                    target: np.ndarray, validate: bool) -> BacktestResult:
        if len(index) == 0:
            raise BacktestInputError("prices are empty")
        ex = simulate(open_, close, target, initial_capital=self.initial_capital,
                      transaction_cost=self.transaction_cost, slippage=self.slippage)
        table = extract_trades(ex, float(close[-1]))
        trips = round_trips(table)
        test = None
        if validate and self.permutations > 0:
            test = permutation_test(target, bar_returns(open_, close),
                                    n_permutations=self.permutations, seed=self.seed)
        lots = {"return": table.returns, **{c: getattr(table, c) for c in TRADE_COLUMNS
                                            if hasattr(table, c)}}
        return self._result(index, ex.equity, target, _frame(lots, index, TRADE_COLUMNS),
                            _frame(trips, index, ROUND_TRIP_COLUMNS), test)

    def _result(self, index: pd.Index, equity: np.ndarray, target: np.ndarray,
                trades: pd.DataFrame, trips: pd.DataFrame, test: PermutationTest | None,
                exposed: np.ndarray | None = None) -> BacktestResult:
        periods = self.periods_per_year or periods_per_year(index)
        stats = compute_metrics(
            equity, self.initial_capital, trades["return"].to_numpy(dtype=np.float64),
            trades["pnl"].to_numpy(dtype=np.float64),
            target if exposed is None else exposed, periods=periods,
            risk_free_rate=self.risk_free_rate, round_trips=len(trips),
            p_value=test.p_value if test is not None else math.nan,
            significance=self.significance)
        return BacktestResult(
            stats=stats,
            equity_curve=pd.Series(equity, index=index, name="equity"),
            trades=trades,
            round_trips=trips,
            positions=pd.Series(target, index=index, name="position"),
            initial_capital=self.initial_capital,
            periods_per_year=periods,
            permutation=test,
        )

    # ------------------------------------------------------------------ several instruments

    def run_portfolio(
        self,
        signals: Any,
        prices_by_ticker: Mapping[str, pd.DataFrame],
        position_sizes: Any = None,
        validate: bool = True,
    ) -> BacktestResult:
        """Backtest several tickers, each with an equal share of the capital.

        ``signals`` is a signals DataFrame or a list of TradingSignal with a ``ticker``
        column/attribute, or a mapping ticker -> signals in any form :meth:`run` accepts.
        Each ticker is simulated on its own sleeve of ``initial_capital / k``; the result's
        equity is the sum of the sleeves (each carried forward between its own bars),
        ``positions`` the mean of the sleeves' weights (net exposure of the whole book),
        and ``trades`` / ``round_trips`` those of every sleeve with a ``ticker`` column.
        The permutation test permutes each ticker's returns independently and sums the
        sleeves' statistics.
        """
        if isinstance(signals, Mapping):
            per_ticker = dict(signals)
        else:
            frame = signals_frame(signals)
            per_ticker = dict(iter(frame.groupby("ticker", sort=False)))
        tickers = list(prices_by_ticker)
        if not tickers:
            raise BacktestInputError("no prices given")
        unknown = sorted(set(per_ticker) - set(tickers))
        if unknown:
            raise BacktestInputError(f"signals for tickers without prices: {unknown}")
        sleeve = BacktestRunner(self.initial_capital / len(tickers), self.transaction_cost,
                                self.slippage, permutations=0, hold=self.hold)
        equities, weights, trades, trips, nulls = [], [], [], [], []
        observed = 0.0
        for k, ticker in enumerate(tickers):
            index, open_, close = price_arrays(prices_by_ticker[ticker])
            sizes = position_sizes.get(ticker) if isinstance(position_sizes, Mapping) \
                else position_sizes
            target = (target_weights(per_ticker[ticker], index, sizes, hold=self.hold)
                      if ticker in per_ticker else np.zeros(len(index)))
            part = sleeve._run_arrays(index, open_, close, target, validate=False)
            equities.append(part.equity_curve.rename(ticker))
            weights.append(part.positions.rename(ticker))
            trades.append(part.trades.assign(ticker=ticker))
            trips.append(part.round_trips.assign(ticker=ticker))
            if validate and self.permutations > 0:
                seed = None if self.seed is None else self.seed + k
                test = permutation_test(target, bar_returns(open_, close),
                                        n_permutations=self.permutations, seed=seed)
                observed += test.observed / len(tickers)
                nulls.append(test.null / len(tickers))

        book = pd.concat(equities, axis=1).sort_index().ffill()
        book = book.fillna(self.initial_capital / len(tickers))
        equity = book.sum(axis=1).to_numpy()
        exposure = pd.concat(weights, axis=1).reindex(book.index).ffill().fillna(0.0)
        net = exposure.mean(axis=1).to_numpy()
        all_trades = _concat(trades)
        all_trips = _concat(trips)
        # A trade's round_trip points into the combined round-trip table.
        offsets = np.cumsum([0] + [len(t) for t in trips[:-1]])
        all_trades["round_trip"] += np.repeat(offsets, [len(t) for t in trades])
        test = None
        if nulls:
            null = np.sum(nulls, axis=0)
            scale = 1e-9 * max(abs(observed), float(np.abs(null).max()))
            p = (1 + int(np.count_nonzero(null >= observed - scale))) / (1 + len(null))
            test = PermutationTest(p, observed, null)
        # Both tables in time order; trades keep pointing at their round trip.
        trip_order = np.argsort(all_trips["entry_time"].to_numpy(), kind="stable")
        renumber = np.empty(len(trip_order), dtype=np.int64)
        renumber[trip_order] = np.arange(len(trip_order))
        all_trades["round_trip"] = renumber[all_trades["round_trip"].to_numpy()]
        order = np.argsort(all_trades["entry_time"].to_numpy(), kind="stable")
        return self._result(book.index, equity, net,
                            all_trades.iloc[order].reset_index(drop=True),
                            all_trips.iloc[trip_order].reset_index(drop=True), test,
                            exposed=exposure.abs().sum(axis=1).to_numpy())

    # ------------------------------------------------------------------ comparison, reports

    def compare_strategies(self, strategies: Mapping[str, Any]) -> pd.DataFrame:
        """One row of statistics per named strategy.

        Each value is a :class:`BacktestResult`, a tuple ``(signals, prices)`` or
        ``(signals, prices, position_sizes)``, or a dict of :meth:`run` keyword arguments.
        """
        rows = {}
        for name, spec in strategies.items():
            if isinstance(spec, BacktestResult):
                result = spec
            elif isinstance(spec, Mapping):
                result = self.run(**spec)
            elif isinstance(spec, tuple) and len(spec) in (2, 3):
                result = self.run(*spec)
            else:
                raise BacktestInputError(f"strategy {name!r}: expected a BacktestResult, "
                                         "(signals, prices[, position_sizes]) or a dict")
            rows[name] = result.metrics()
        return pd.DataFrame.from_dict(rows, orient="index")


def bar_returns(open_: np.ndarray, close: np.ndarray) -> np.ndarray:
    """Return earned by the position held over each bar: open to next open (last: to close)."""
    nxt = np.concatenate((open_[1:], close[-1:]))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(open_ > 0, nxt / open_ - 1.0, 0.0)


def _frame(columns: Mapping[str, np.ndarray], index: pd.Index,
           names: tuple[str, ...]) -> pd.DataFrame:
    """A trades-like table: bar numbers also as times from ``index``."""
    return pd.DataFrame({"entry_time": index[columns["entry_bar"]],
                         "exit_time": index[columns["exit_bar"]], **columns},
                        columns=list(names))


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Frames stacked, skipping empty ones (their all-NA columns would blur the dtypes)."""
    full = [f for f in frames if len(f)]
    return pd.concat(full, ignore_index=True) if full else frames[0].iloc[:0].copy()
