"""Performance statistics: each one's name, label and formula, defined once.

:data:`STATISTICS` is the one list of what a backtest reports. :func:`compute_metrics`
computes exactly those keys; :class:`gnosis.backtest.result.BacktestResult` exposes them
as attributes, the reports print their labels, and the Prometheus exporter
(:func:`gnosis.sinks.metrics.publish_backtest`) publishes the ones with a ``gauge``. In the
spirit of backtesting.py's ``_stats.py``.

All figures are fractions (0.12 is 12 %), never percent. Annualisation uses
``periods_per_year`` (see :func:`periods_per_year`); the risk-free rate is annual.
Trade statistics are over *lots* (see :func:`gnosis.backtest.execution.extract_trades`):
one row per closed part of a position, each with its own entry price, so a position that
scales in and out counts as several rows; their ``return`` follows backtesting.py's
``ReturnPct``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

Kind = Literal["percent", "number", "count", "bars", "money", "flag"]


@dataclass(frozen=True)
class Statistic:
    """One reported statistic."""

    key: str
    """Attribute, column and dict key (``result.sharpe_ratio``)."""
    label: str
    """Human label in reports."""
    kind: Kind
    """How to show it: ``percent`` values are fractions printed as %."""
    formula: str
    """What it is, precisely; also the Prometheus help text."""
    gauge: str | None = None
    """Prometheus gauge ``gnosis_backtest_<gauge>`` when exported."""


STATISTICS: tuple[Statistic, ...] = (
    Statistic("exposure", "Exposure", "percent",
              "Fraction of bars with a non-zero position."),
    Statistic("equity_final", "Equity Final", "money", "Equity at the last close."),
    Statistic("equity_peak", "Equity Peak", "money", "Highest equity at any close."),
    Statistic("total_return", "Total Return", "percent",
              "Final equity over initial capital, minus one (fraction, 0.1 = +10 %).",
              gauge="total_return"),
    Statistic("annual_return", "Annual Return", "percent",
              "Geometric: (1 + total_return) ** (periods_per_year / bars) - 1."),
    Statistic("annual_volatility", "Annual Volatility", "percent",
              "Sample std of bar returns times sqrt(periods_per_year)."),
    Statistic("sharpe_ratio", "Sharpe Ratio", "number",
              "Mean bar excess return over its std, times sqrt(periods_per_year).",
              gauge="sharpe_ratio"),
    Statistic("sortino_ratio", "Sortino Ratio", "number",
              "Mean bar excess return over sqrt(mean(min(excess, 0) ** 2)), "
              "times sqrt(periods_per_year)."),
    Statistic("calmar_ratio", "Calmar Ratio", "number", "annual_return / |max_drawdown|."),
    Statistic("max_drawdown", "Max Drawdown", "percent",
              "Worst peak-to-trough fall of equity, negative (-0.2 is a 20 % drawdown).",
              gauge="max_drawdown"),
    Statistic("max_drawdown_duration", "Max Drawdown Duration (bars)", "bars",
              "Longest run of bars under a previous equity peak."),
    Statistic("num_trades", "Trades (lots)", "count",
              "Trade rows: closed parts of positions, first in first out, plus open lots.",
              gauge="trades"),
    Statistic("num_round_trips", "Round Trips", "count",
              "Positions from flat back to flat (a reversal ends one and starts the next)."),
    Statistic("win_rate", "Win Rate (lots)", "percent",
              "Fraction of trade rows with P&L > 0.", gauge="win_rate"),
    Statistic("avg_win", "Avg Win (mean lot return)", "percent",
              "Unweighted mean return of winning trade rows."),
    Statistic("avg_loss", "Avg Loss (mean lot return)", "percent",
              "Unweighted mean return of losing trade rows."),
    Statistic("profit_factor", "Profit Factor", "number",
              "Gross P&L of winning rows over gross P&L of losing rows (money, not returns)."),
    Statistic("expectancy", "Expectancy (mean lot return)", "percent",
              "Unweighted mean return of all trade rows."),
    Statistic("mcpt_p_value", "MCPT p-value", "number",
              "Monte Carlo permutation test p-value (NaN when not run).", gauge="p_value"),
    Statistic("is_significant", "Significant", "flag", "mcpt_p_value < significance."),
)
"""Every statistic a backtest reports, in report order."""

STATISTIC_BY_KEY: dict[str, Statistic] = {s.key: s for s in STATISTICS}

TRADING_DAYS = 252
TRADING_SECONDS_PER_DAY = 6.5 * 3600
DAY_SECONDS = 86_400.0


def periods_per_year(index: pd.Index, default: float = TRADING_DAYS) -> float:
    """Bars per year, inferred from the median spacing of a datetime index.

    The year is a trading year of 252 sessions of 6.5 hours (a US equity session):

    * intraday bars (spacing under one day): ``252 * 6.5 h / spacing``, so 1-minute bars
      give 98,280 bars a year and hourly bars 1,638;
    * daily-ish bars (one to under seven days): ``252 / days``, so daily bars give 252
      (weekends and holidays do not move the median);
    * weekly and longer: ``52 / weeks``.

    A non-datetime index (or fewer than two bars) gives ``default``. Markets that trade
    around the clock should pass ``periods_per_year`` explicitly.
    """
    if not isinstance(index, pd.DatetimeIndex) or len(index) < 2:
        return float(default)
    ns = index.as_unit("ns").asi8
    spacing = float(np.median(np.diff(ns))) / 1e9
    if spacing <= 0:
        return float(default)
    days = spacing / DAY_SECONDS
    if days < 1:
        return TRADING_DAYS * TRADING_SECONDS_PER_DAY / spacing
    if days < 7:
        return TRADING_DAYS / days
    return 52.0 / (days / 7)


def drawdown(equity: np.ndarray) -> np.ndarray:
    """Drawdown at each bar: equity over its running peak, minus one (zero or negative)."""
    peak = np.maximum.accumulate(equity)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(peak > 0, equity / peak - 1.0, -1.0)


def max_drawdown_duration(equity: np.ndarray) -> int:
    """Longest run of bars spent below a previous peak (to recovery, or to the end)."""
    underwater = equity < np.maximum.accumulate(equity)
    if not underwater.any():
        return 0
    # Lengths of runs of True: distance between a run's end and its start.
    padded = np.concatenate(([False], underwater, [False])).astype(np.int8)
    edges = np.diff(padded)
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return int((ends - starts).max())


def compute_metrics(
    equity: np.ndarray,
    initial_capital: float,
    trade_returns: np.ndarray,
    trade_pnl: np.ndarray,
    positions: np.ndarray,
    *,
    periods: float,
    risk_free_rate: float = 0.0,
    round_trips: int = 0,
    p_value: float = math.nan,
    significance: float = 0.05,
) -> dict[str, float | int | bool]:
    """Every statistic of :data:`STATISTICS`, in that order, by the formulas given there.

    ``trade_returns`` and ``trade_pnl`` are per trade row (lot); ``positions`` is the
    weight held during each bar (only whether it is zero matters).
    """
    n = len(equity)
    prev = np.concatenate(([initial_capital], equity[:-1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = np.where(prev > 0, equity / prev - 1.0, 0.0)
    final = float(equity[-1]) if n else float(initial_capital)
    total_return = final / initial_capital - 1.0
    growth = 1.0 + total_return
    annual_return = growth ** (periods / n) - 1.0 if n and growth > 0 else -1.0
    excess = returns - risk_free_rate / periods
    std = float(returns.std(ddof=1)) if n > 1 else math.nan
    downside = float(np.sqrt(np.mean(np.minimum(excess, 0.0) ** 2))) if n else math.nan
    root = math.sqrt(periods)
    mean_excess = float(excess.mean()) if n else math.nan
    dd = drawdown(equity) if n else np.zeros(1)
    max_dd = float(dd.min())

    wins, losses = trade_returns[trade_pnl > 0], trade_returns[trade_pnl < 0]
    gross_win = float(trade_pnl[trade_pnl > 0].sum())
    gross_loss = float(-trade_pnl[trade_pnl < 0].sum())
    num = len(trade_pnl)
    stats: dict[str, float | int | bool] = {
        "exposure": float(np.count_nonzero(positions) / n) if n else 0.0,
        "equity_final": final,
        "equity_peak": float(equity.max()) if n else float(initial_capital),
        "total_return": total_return,
        "annual_return": annual_return,
        "annual_volatility": std * root,
        "sharpe_ratio": _ratio(mean_excess, std) * root,
        "sortino_ratio": _ratio(mean_excess, downside) * root,
        "calmar_ratio": _ratio(annual_return, -max_dd),
        "max_drawdown": max_dd,
        "max_drawdown_duration": max_drawdown_duration(equity) if n else 0,
        "num_trades": num,
        "num_round_trips": int(round_trips),
        "win_rate": len(wins) / num if num else math.nan,
        "avg_win": float(wins.mean()) if len(wins) else math.nan,
        "avg_loss": float(losses.mean()) if len(losses) else math.nan,
        "profit_factor": _ratio(gross_win, gross_loss) if num else math.nan,
        "expectancy": float(trade_returns.mean()) if num else math.nan,
        "mcpt_p_value": float(p_value),
        "is_significant": bool(p_value < significance),
    }
    return stats


def _ratio(num: float, den: float) -> float:
    """``num / den`` with the limits spelled out: inf for x/0 with x > 0, nan for 0/0."""
    if math.isnan(num) or math.isnan(den):
        return math.nan
    if den == 0:
        return math.inf if num > 0 else (-math.inf if num < 0 else math.nan)
    return num / den
