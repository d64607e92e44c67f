"""The unit of work of a sweep: many configurations over a chunk of tickers.

:func:`run_task` takes a few tickers' bars and scored news (:class:`TickerData`) and a
:class:`Batch` of configurations. It computes each ticker's features once per distinct
feature configuration and its as-of sentiment once per sentiment window, then, per
configuration, applies the
rules (:func:`gnosis.models.rules.decide_arrays`), turns decisions into target weights
(:func:`gnosis.backtest.inputs.target_weights`) and executes them
(:func:`gnosis.backtest.execution.simulate`) on every requested time window. The same
public functions ``replay_frame`` and ``BacktestRunner.run_portfolio`` use, so a
configuration's figures equal a from-scratch replay and backtest.

What a task returns (:class:`Part`) is additive over tickers: sleeve equity summed on the
window's bars, trade rows, and the permutation statistics. :func:`combine_chunks` adds the
parts of every chunk in a fixed order, so the result does not depend on which process ran
what.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from gnosis.backtest.execution import extract_trades, simulate
from gnosis.backtest.inputs import target_weights
from gnosis.backtest.metrics import compute_metrics, periods_per_year
from gnosis.backtest.runner import bar_returns
from gnosis.config import FeatureConfig, Settings
from gnosis.engine import duration_ns
from gnosis.features import compute_features, ticker_phase
from gnosis.features.batch import FeatureFrame
from gnosis.models.rules import SIGNAL_OF_RULE, decide_arrays
from gnosis.replay.inprocess import asof_sentiment
from gnosis.research.significance import permuted_statistics

# Target direction per rule code: +1 BUY, -1 SELL, NaN for HOLD (no new decision).
_DIRECTION_OF_RULE = np.array([{"BUY": 1.0, "SELL": -1.0}.get(s, np.nan)
                               for s in SIGNAL_OF_RULE])


@dataclass(frozen=True)
class TickerData:
    """One ticker's bars (sorted, unique times) and the scores of its news."""

    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    news_ts: np.ndarray
    news_score: np.ndarray
    known: np.ndarray
    """Knowledge time of each bar (see :mod:`gnosis.replay.knowledge`)."""
    news_known: np.ndarray
    """Knowledge time of each headline."""
    number: int
    """Position of the ticker in the whole sweep (seeds its permutations)."""
    phase: int = 0
    """The ticker's :func:`~gnosis.features.ticker_phase` (where its stride points fall)."""


@dataclass(frozen=True)
class Batch:
    """Configurations to evaluate, on any chunk of tickers, over some time windows."""

    settings: Sequence[Settings]
    windows: Sequence[tuple[int, int]]
    """``[start, end)`` in epoch ns of bar close times; each window is its own backtest."""
    window_bars: Sequence[np.ndarray]
    """The union of bar times (all tickers) inside each window."""
    total_tickers: int
    """Tickers in the whole sweep: each sleeve gets ``initial_capital / total_tickers``."""
    permutations: int = 0
    seed: int = 7


@dataclass
class Part:
    """One configuration on one window, summed over some tickers."""

    equity: np.ndarray
    """Sum of the sleeves' equity on the window's bars (a sleeve's capital before its first
    bar, its last value carried forward between its bars)."""
    exposed: np.ndarray
    """Whether any sleeve holds a position during each bar."""
    trade_returns: np.ndarray
    trade_pnl: np.ndarray
    round_trips: int
    observed: float
    """Mean gross strategy return per bar, averaged over all the sweep's tickers."""
    null: np.ndarray = field(repr=False)
    """The same statistic under each permutation (empty without the test)."""

    def __add__(self, other: Part) -> Part:
        return Part(self.equity + other.equity, self.exposed | other.exposed,
                    np.concatenate((self.trade_returns, other.trade_returns)),
                    np.concatenate((self.trade_pnl, other.trade_pnl)),
                    self.round_trips + other.round_trips, self.observed + other.observed,
                    self.null + other.null)


def run_task(tickers: Sequence[TickerData], task: Batch) -> list[list[Part]]:
    """Evaluate a batch on a chunk of tickers: ``parts[config][window]``, summed over
    the tickers."""
    capital = [s.backtest.initial_capital / task.total_tickers for s in task.settings]
    parts: list[list[Part | None]] = [[None] * len(task.windows) for _ in task.settings]
    for data in tickers:
        features: dict[FeatureConfig, FeatureFrame] = {}
        sentiment: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        bounds = [np.searchsorted(data.ts, w, side="left") for w in task.windows]
        rets = [bar_returns(data.open[a:b], data.close[a:b]) if b > a else np.empty(0)
                for a, b in bounds]
        targets = []
        for settings in task.settings:
            feats = features.get(settings.features)
            if feats is None:
                feats = features[settings.features] = compute_features(
                    data.ts, data.open, data.high, data.low, data.close, data.volume,
                    settings.features, data.phase)
            window = settings.rules.sentiment_window
            if window not in sentiment:
                mean, _, count = asof_sentiment(data.ts, data.known, data.news_ts,
                                                data.news_known, data.news_score,
                                                duration_ns(window))
                sentiment[window] = (mean, count)
            mean, count = sentiment[window]
            d = decide_arrays(
                ready=feats.ready, vsa_score=feats.vsa_score,
                hawkes_branching=feats.hawkes_branching, hurst_exponent=feats.hurst_exponent,
                hurst_se=feats.hurst_se, volatility_clustering=feats.volatility_clustering,
                realized_volatility=feats.realized_volatility, trend=feats.trend,
                sentiment_mean=mean, sentiment_count=count, config=settings.rules)
            direction = _DIRECTION_OF_RULE[d.rule_code]
            if settings.backtest.hold == "flat":
                direction = np.nan_to_num(direction, nan=0.0)
            targets.append(target_weights(direction, pd.RangeIndex(len(data.ts)),
                                          d.suggested_position_size))
        for w, (a, b) in enumerate(bounds):
            positions = np.array([t[a:b] for t in targets]).reshape(len(targets), b - a)
            observed, null = permuted_statistics(
                positions, rets[w], task.permutations,
                seed=(task.seed, data.number, w))
            for c, settings in enumerate(task.settings):
                part = _sleeve(data, a, b, positions[c], settings, capital[c],
                               task.window_bars[w])
                part.observed = float(observed[c]) / task.total_tickers
                part.null = null[:, c] / task.total_tickers
                parts[c][w] = part if parts[c][w] is None else parts[c][w] + part
    return parts  # type: ignore[return-value]


def _sleeve(data: TickerData, a: int, b: int, target: np.ndarray, settings: Settings,
            capital: float, bars: np.ndarray) -> Part:
    """One ticker's sleeve on bars ``[a, b)``, aligned to the window's bars."""
    config = settings.backtest
    if b <= a:
        return Part(np.full(len(bars), capital), np.zeros(len(bars), dtype=bool),
                    np.empty(0), np.empty(0), 0, 0.0, np.empty(0))
    ex = simulate(data.open[a:b], data.close[a:b], target, initial_capital=capital,
                  transaction_cost=config.transaction_cost, slippage=config.slippage)
    table = extract_trades(ex, float(data.close[b - 1]))
    where = np.searchsorted(data.ts[a:b], bars, side="right") - 1
    seen = where >= 0
    equity = np.where(seen, ex.equity[np.maximum(where, 0)], capital)
    exposed = seen & (target[np.maximum(where, 0)] != 0)
    return Part(equity, exposed, table.returns, table.pnl,
                int(table.round_trip.max()) + 1 if len(table.round_trip) else 0, 0.0,
                np.empty(0))


def combine_chunks(*chunks: list[list[Part]]) -> list[list[Part]]:
    """``parts[config][window]`` of several chunks of tickers added up, in the order given
    (a fixed order, so the floats do not depend on where or when chunks ran)."""
    out = []
    for c in range(len(chunks[0])):
        row = []
        for w in range(len(chunks[0][c])):
            total = chunks[0][c][w]
            for chunk in chunks[1:]:
                total = total + chunk[c][w]
            row.append(total)
        out.append(row)
    return out


def part_stats(part: Part, bars: np.ndarray, settings: Settings) -> dict[str, float]:
    """The statistics of a combined part (the whole book on one window), plus the
    per-bar Sharpe ratio, skewness, kurtosis and bar count the Deflated Sharpe Ratio needs.
    """
    config = settings.backtest
    index = pd.DatetimeIndex(pd.to_datetime(bars, unit="ns", utc=True))
    periods = config.periods_per_year or periods_per_year(index)
    stats: dict[str, float] = dict(compute_metrics(
        part.equity, config.initial_capital, part.trade_returns, part.trade_pnl,
        part.exposed, periods=periods, risk_free_rate=config.risk_free_rate,
        round_trips=part.round_trips))
    del stats["mcpt_p_value"], stats["is_significant"]
    prev = np.concatenate(([config.initial_capital], part.equity[:-1]))
    returns = part.equity / prev - 1.0
    std = float(returns.std()) if len(returns) > 1 else 0.0
    centred = returns - returns.mean() if len(returns) else returns
    stats["bar_sharpe"] = float(returns.mean()) / std if std > 0 else 0.0
    stats["skewness"] = float((centred ** 3).mean()) / std ** 3 if std > 0 else 0.0
    stats["kurtosis"] = float((centred ** 4).mean()) / std ** 4 if std > 0 else 3.0
    stats["bars"] = len(returns)
    stats["mean_bar_return"] = part.observed
    return stats


def ticker_data(bars: pd.DataFrame, news: pd.DataFrame | None, scores: np.ndarray | None,
                settings: Settings) -> list[TickerData]:
    """Per-ticker arrays from a bars frame (``read_bars`` columns) and scored news, with
    their knowledge times, deduplicated like ``replay_frame`` (a bar not after its
    ticker's previous is skipped)."""
    from gnosis.replay.inprocess import explode_news
    from gnosis.replay.knowledge import bar_known, news_known

    bars = bars.assign(known=bar_known(bars)).sort_values(["ticker", "ts"], kind="stable")
    bars = bars[~bars.duplicated(["ticker", "ts"], keep="first")]
    by_ticker: dict[str, pd.DataFrame] = {}
    if news is not None and len(news) and scores is not None:
        flat = explode_news(news, scores, news_known(news, settings))
        by_ticker = dict(tuple(flat.groupby("ticker", sort=False)))
    out = []
    for number, (ticker, group) in enumerate(bars.groupby("ticker", sort=True)):
        flat = by_ticker.get(ticker)
        out.append(TickerData(
            *(group[c].to_numpy(dtype=np.float64 if c != "ts" else np.int64)
              for c in ("ts", "open", "high", "low", "close", "volume")),
            news_ts=(flat["ts"].to_numpy(dtype=np.int64) if flat is not None
                     else np.empty(0, np.int64)),
            news_score=(flat["score"].to_numpy(dtype=np.float64) if flat is not None
                        else np.empty(0)),
            known=group["known"].to_numpy(dtype=np.int64),
            news_known=(flat["known"].to_numpy(dtype=np.int64) if flat is not None
                        else np.empty(0, np.int64)),
            number=number, phase=ticker_phase(str(ticker))))
    return out
