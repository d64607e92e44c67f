"""The backtester's public face: :class:`BacktestRunner` and :class:`BacktestResult`.

    >>> runner = BacktestRunner(initial_capital=100_000, transaction_cost=0.001)
    >>> result = runner.run(signals, prices)          # doctest: +SKIP
    >>> result.as_series()                             # doctest: +SKIP
    >>> print(runner.generate_report(result))          # doctest: +SKIP

Execution semantics are in :mod:`gnosis.backtest.execution` (next-open fills, costs and
slippage on traded notional, units held between signals), input conventions in
:mod:`gnosis.backtest.inputs`, statistics in :mod:`gnosis.backtest.metrics` and the
significance test in :mod:`gnosis.backtest.permutation`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

from gnosis.backtest.execution import extract_trades, simulate
from gnosis.backtest.inputs import BacktestInputError, price_arrays, signals_frame, target_weights
from gnosis.backtest.metrics import compute_metrics, drawdown, periods_per_year
from gnosis.backtest.permutation import PermutationTest, permutation_test
from gnosis.config import BacktestConfig

_TRADE_COLUMNS = ("entry_time", "exit_time", "entry_bar", "exit_bar", "direction", "size",
                  "entry_price", "exit_price", "pnl", "return", "fees", "closed")


@dataclass(frozen=True)
class BacktestResult:
    """Statistics (fractions, not percent) plus the curves and trades behind them."""

    total_return: float
    annual_return: float
    annual_volatility: float
    sharpe_ratio: float
    sortino_ratio: float
    calmar_ratio: float
    max_drawdown: float
    """Worst peak-to-trough fall of equity, negative (-0.2 is a 20 % drawdown)."""
    max_drawdown_duration: int
    """Longest time under a previous equity peak, in bars."""
    num_trades: int
    win_rate: float
    avg_win: float
    avg_loss: float
    profit_factor: float
    expectancy: float
    exposure: float
    mcpt_p_value: float
    """Monte Carlo permutation test p-value (NaN when the test was not run)."""
    is_significant: bool
    equity_curve: pd.Series = field(repr=False)
    trades: pd.DataFrame = field(repr=False)
    """One row per round trip: ``entry_time``, ``exit_time``, ``entry_bar``, ``exit_bar``
    (bars whose open filled it), ``direction`` (+1/-1), ``size`` (units), ``entry_price``,
    ``exit_price``, ``pnl`` (after costs), ``return`` (pnl over entry notional), ``fees``,
    ``closed`` (False for the position still open at the end, valued at the last close)."""
    positions: pd.Series = field(repr=False)
    """Target weight (signed fraction of equity) in force during each bar."""
    initial_capital: float = 100_000.0
    periods_per_year: float = 252.0
    permutation: PermutationTest | None = field(default=None, repr=False)

    @property
    def final_equity(self) -> float:
        return float(self.equity_curve.iloc[-1]) if len(self.equity_curve) else \
            self.initial_capital

    @property
    def drawdown(self) -> pd.Series:
        """Drawdown of the equity curve at each bar (zero or negative)."""
        return pd.Series(drawdown(self.equity_curve.to_numpy()), index=self.equity_curve.index,
                         name="drawdown")

    def metrics(self) -> dict[str, Any]:
        """The scalar statistics as a dict, field names as keys."""
        skip = {"equity_curve", "trades", "positions", "permutation"}
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}

    def as_series(self) -> pd.Series:
        """A readable summary, in the spirit of backtesting.py's stats."""
        index = self.equity_curve.index
        rows: dict[str, Any] = {}
        if len(index):
            rows["Start"], rows["End"] = index[0], index[-1]
            if isinstance(index, pd.DatetimeIndex):
                rows["Duration"] = index[-1] - index[0]
        rows.update({
            "Bars": len(index),
            "Exposure": self.exposure,
            "Initial Capital": self.initial_capital,
            "Equity Final": self.final_equity,
            "Equity Peak": float(self.equity_curve.max()) if len(index) else math.nan,
            "Total Return": self.total_return,
            "Annual Return": self.annual_return,
            "Annual Volatility": self.annual_volatility,
            "Sharpe Ratio": self.sharpe_ratio,
            "Sortino Ratio": self.sortino_ratio,
            "Calmar Ratio": self.calmar_ratio,
            "Max Drawdown": self.max_drawdown,
            "Max Drawdown Duration (bars)": self.max_drawdown_duration,
            "Trades": self.num_trades,
            "Win Rate": self.win_rate,
            "Avg Win": self.avg_win,
            "Avg Loss": self.avg_loss,
            "Profit Factor": self.profit_factor,
            "Expectancy": self.expectancy,
            "MCPT p-value": self.mcpt_p_value,
            "Significant": self.is_significant,
            "Periods per Year": self.periods_per_year,
        })
        return pd.Series(rows, dtype=object, name="stats")


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
        periods = self.periods_per_year or periods_per_year(index)
        stats = compute_metrics(ex.equity, self.initial_capital, table.returns, table.pnl,
                                target, periods=periods, risk_free_rate=self.risk_free_rate)
        test = None
        if validate and self.permutations > 0:
            test = permutation_test(target, bar_returns(open_, close),
                                    n_permutations=self.permutations, seed=self.seed)
        return self._result(stats, index, ex.equity, target, _trades_frame(table, index),
                            periods, test)

    def _result(self, stats: dict[str, Any], index: pd.Index, equity: np.ndarray,
                target: np.ndarray, trades: pd.DataFrame, periods: float,
                test: PermutationTest | None) -> BacktestResult:
        p_value = test.p_value if test is not None else math.nan
        return BacktestResult(
            **stats,
            mcpt_p_value=p_value,
            is_significant=bool(p_value < self.significance),
            equity_curve=pd.Series(equity, index=index, name="equity"),
            trades=trades,
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
        and ``trades`` all round trips with a ``ticker`` column. The permutation test
        permutes each ticker's returns independently and sums the sleeves' statistics.
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
        equities, weights, trades, nulls = [], [], [], []
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
        all_trades = pd.concat(trades, ignore_index=True).sort_values("entry_time",
                                                                      kind="stable")
        returns = all_trades["return"].to_numpy(dtype=np.float64)
        pnl = all_trades["pnl"].to_numpy(dtype=np.float64)
        periods = self.periods_per_year or periods_per_year(book.index)
        stats = compute_metrics(equity, self.initial_capital, returns, pnl,
                                exposure.abs().sum(axis=1).to_numpy(), periods=periods,
                                risk_free_rate=self.risk_free_rate)
        test = None
        if nulls:
            null = np.sum(nulls, axis=0)
            scale = 1e-9 * max(abs(observed), float(np.abs(null).max()))
            p = (1 + int(np.count_nonzero(null >= observed - scale))) / (1 + len(null))
            test = PermutationTest(p, observed, null)
        return self._result(stats, book.index, equity, net,
                            all_trades.reset_index(drop=True), periods, test)

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

    def generate_report(self, result: BacktestResult) -> str:
        """Plain-text report of a result (see :func:`gnosis.backtest.report.generate_report`)."""
        from gnosis.backtest.report import generate_report

        return generate_report(result)


def bar_returns(open_: np.ndarray, close: np.ndarray) -> np.ndarray:
    """Return earned by the position held over each bar: open to next open (last: to close)."""
    nxt = np.concatenate((open_[1:], close[-1:]))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(open_ > 0, nxt / open_ - 1.0, 0.0)


def _trades_frame(table: Any, index: pd.Index) -> pd.DataFrame:
    return pd.DataFrame({
        "entry_time": index[table.entry_bar],
        "exit_time": index[table.exit_bar],
        "entry_bar": table.entry_bar,
        "exit_bar": table.exit_bar,
        "direction": table.direction,
        "size": table.size,
        "entry_price": table.entry_price,
        "exit_price": table.exit_price,
        "pnl": table.pnl,
        "return": table.returns,
        "fees": table.fees,
        "closed": table.closed,
    }, columns=list(_TRADE_COLUMNS))
