"""Performance statistics of an equity curve and its trades.

All figures are fractions (0.12 is 12 %), never percent. Annualisation uses
``periods_per_year`` (see :func:`periods_per_year`); the risk-free rate is annual.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

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
) -> dict[str, float | int]:
    """Return, risk and trade statistics.

    * ``total_return``: final equity over initial capital, minus one.
    * ``annual_return``: geometric, ``(1 + total_return) ** (periods / bars) - 1``.
    * ``annual_volatility``: sample std of bar returns times ``sqrt(periods)``.
    * ``sharpe_ratio``: mean bar excess return over its std, times ``sqrt(periods)``.
    * ``sortino_ratio``: mean bar excess return over the downside deviation
      ``sqrt(mean(min(excess, 0) ** 2))``, times ``sqrt(periods)``.
    * ``calmar_ratio``: ``annual_return / |max_drawdown|``.
    * ``max_drawdown`` (negative) and ``max_drawdown_duration`` (bars).
    * trades: ``num_trades``, ``win_rate`` (trades with P&L > 0), ``avg_win`` and
      ``avg_loss`` (mean return of winning / losing trades, as fractions of entry notional),
      ``profit_factor`` (gross profit over gross loss), ``expectancy`` (mean trade return).
    * ``exposure``: fraction of bars with a non-zero position.
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
    return {
        "total_return": total_return,
        "annual_return": annual_return,
        "annual_volatility": std * root,
        "sharpe_ratio": _ratio(mean_excess, std) * root,
        "sortino_ratio": _ratio(mean_excess, downside) * root,
        "calmar_ratio": _ratio(annual_return, -max_dd),
        "max_drawdown": max_dd,
        "max_drawdown_duration": max_drawdown_duration(equity) if n else 0,
        "num_trades": num,
        "win_rate": len(wins) / num if num else math.nan,
        "avg_win": float(wins.mean()) if len(wins) else math.nan,
        "avg_loss": float(losses.mean()) if len(losses) else math.nan,
        "profit_factor": _ratio(gross_win, gross_loss) if num else math.nan,
        "expectancy": float(trade_returns.mean()) if num else math.nan,
        "exposure": float(np.count_nonzero(positions) / n) if n else 0.0,
    }


def _ratio(num: float, den: float) -> float:
    """``num / den`` with the limits spelled out: inf for x/0 with x > 0, nan for 0/0."""
    if math.isnan(num) or math.isnan(den):
        return math.nan
    if den == 0:
        return math.inf if num > 0 else (-math.inf if num < 0 else math.nan)
    return num / den
