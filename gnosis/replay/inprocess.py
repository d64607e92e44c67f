"""In-process replay: the functional core, vectorised over whole histories.

:func:`replay_frame` computes, for every bar, exactly what the live engine would emit
for it (``gnosis.engine.TickerEngine.on_bar``), but a ticker at a time with numpy:
batch features, as-of sentiment windows by binary search, vectorised rules. The result
is a *signal frame*: one row per bar with the TradingSignal columns, cheap to hand to
the backtester. :func:`to_signals` turns rows into :class:`TradingSignal` events (ids
and reasons included) when individual events are wanted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from gnosis.config import Settings
from gnosis.engine import duration_ns, score_headlines, window_stats
from gnosis.events import TradingSignal, signal_id
from gnosis.features import compute_features
from gnosis.models.rules import RULES, decide_arrays, explain

if TYPE_CHECKING:
    from gnosis.models.sentiment import SentimentScorer

SIGNAL_COLUMNS: tuple[str, ...] = (
    "ticker", "ts", "interval", "signal_type", "rule", "confidence", "sentiment_mean",
    "sentiment_std", "sentiment_count", "is_contrarian_market", "vsa_score", "vsa_class",
    "hawkes_branching", "hurst_exponent", "volatility_clustering", "realized_volatility",
    "trend", "risk_level", "suggested_position_size", "price", "model_id",
)


def explode_news(news: pd.DataFrame, scores: np.ndarray) -> pd.DataFrame:
    """One (ticker, ts, score) row per ticker a headline names, sorted by time."""
    tickers = news["tickers"].to_numpy()
    counts = np.fromiter((len(t) for t in tickers), dtype=np.int64, count=len(tickers))
    flat = pd.DataFrame({
        "ticker": [t for group in tickers for t in group],
        "ts": np.repeat(news["ts"].to_numpy(dtype=np.int64), counts),
        "score": np.repeat(scores, counts),
    })
    return flat.sort_values("ts", kind="stable", ignore_index=True)


def asof_sentiment(bar_ts: np.ndarray, news_ts: np.ndarray, news_scores: np.ndarray,
                   window_ns: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sentiment (mean, std, count) over news stamped in ``(t - window, t]`` for each bar."""
    n = len(bar_ts)
    mean = np.zeros(n)
    std = np.zeros(n)
    count = np.zeros(n, dtype=np.int64)
    if len(news_ts) == 0:
        return mean, std, count
    lo = np.searchsorted(news_ts, bar_ts - window_ns, side="right")
    hi = np.searchsorted(news_ts, bar_ts, side="right")
    count = hi - lo
    has = count > 0
    # Consecutive bars mostly share a window: compute each distinct window once.
    pairs, inverse = np.unique(np.stack([lo[has], hi[has]], axis=1), axis=0,
                               return_inverse=True)
    stats = np.array([window_stats(news_scores[a:b].tolist())[:2] for a, b in pairs])
    if len(stats):
        mean[has] = stats[inverse.ravel(), 0]
        std[has] = stats[inverse.ravel(), 1]
    return mean, std, count


def replay_ticker(bars: pd.DataFrame, news: pd.DataFrame | None, settings: Settings,
                  model_id: str) -> pd.DataFrame:
    """The signal frame for one ticker's bars (sorted by time, no duplicates)."""
    ts = bars["ts"].to_numpy(dtype=np.int64)
    close = bars["close"].to_numpy(dtype=np.float64)
    feats = compute_features(ts, bars["open"].to_numpy(dtype=np.float64),
                             bars["high"].to_numpy(dtype=np.float64),
                             bars["low"].to_numpy(dtype=np.float64), close,
                             bars["volume"].to_numpy(dtype=np.float64), settings.features)
    if news is not None and len(news):
        mean, std, count = asof_sentiment(ts, news["ts"].to_numpy(dtype=np.int64),
                                          news["score"].to_numpy(dtype=np.float64),
                                          duration_ns(settings.rules.sentiment_window))
    else:
        mean, std, count = np.zeros(len(ts)), np.zeros(len(ts)), np.zeros(len(ts), np.int64)
    d = decide_arrays(
        ready=feats.ready, vsa_score=feats.vsa_score, hawkes_branching=feats.hawkes_branching,
        hurst_exponent=feats.hurst_exponent, volatility_clustering=feats.volatility_clustering,
        realized_volatility=feats.realized_volatility, trend=feats.trend,
        sentiment_mean=mean, sentiment_count=count, config=settings.rules,
    )
    return pd.DataFrame({
        "ticker": bars["ticker"].to_numpy(), "ts": ts, "interval": bars["interval"].to_numpy(),
        "signal_type": d.signal_type, "rule": np.asarray(RULES, dtype=object)[d.rule_code],
        "confidence": d.confidence, "sentiment_mean": mean, "sentiment_std": std,
        "sentiment_count": count, "is_contrarian_market": d.is_contrarian_market,
        "vsa_score": feats.vsa_score, "vsa_class": feats.vsa_class,
        "hawkes_branching": feats.hawkes_branching, "hurst_exponent": feats.hurst_exponent,
        "volatility_clustering": feats.volatility_clustering,
        "realized_volatility": feats.realized_volatility, "trend": feats.trend,
        "risk_level": d.risk_level, "suggested_position_size": d.suggested_position_size,
        "price": close, "model_id": model_id,
    }, columns=list(SIGNAL_COLUMNS))


def replay_frame(bars: pd.DataFrame, news: pd.DataFrame | None = None,
                 settings: Settings | None = None, scorer: SentimentScorer | None = None,
                 on_ticker: Callable[[str, int], None] | None = None) -> pd.DataFrame:
    """Signals for every bar of a history, computed in-process with the functional core.

    Args:
        bars: columns ``ticker, ts`` (int64 ns, bar close), ``open, high, low, close,
            volume`` and optionally ``interval``. Within a ticker, a bar not strictly
            after the previous one is skipped, as the live worker deadletters it.
        news: columns ``ts``, ``tickers`` (sequences) and ``headline``, and ``score``
            when the headlines are already scored; otherwise they are scored through the
            score store when ``sentiment.store_dir`` is set (only what it lacks goes to
            the model), else by the scorer.
        settings: configuration; defaults apply when omitted.
        scorer: headline scorer; the configured one when omitted.
        on_ticker: called with (ticker, bars) after each ticker, e.g. to drive a
            progress bar.

    Returns:
        The signal frame (:data:`SIGNAL_COLUMNS`), sorted by ``ts`` then ``ticker``.
    """
    from gnosis.models.sentiment import load_scorer, score_column

    settings = settings or Settings()
    scorer = scorer or load_scorer(settings.sentiment)
    if news is not None and len(news):
        if "score" in news:
            scores = news["score"].to_numpy(dtype=np.float64)
        elif settings.sentiment.store_dir:
            scores, _ = score_column(news["headline"], scorer,
                                     settings.sentiment.store_dir)
        else:
            scores = score_headlines(scorer, news["headline"].tolist())
        flat = explode_news(news, scores)
        news_by_ticker = dict(tuple(flat.groupby("ticker", sort=False)))
    else:
        news_by_ticker = {}
    model_id = scorer.model_id
    if "interval" not in bars:
        bars = bars.assign(interval="1m")
    bars = bars.sort_values(["ticker", "ts"], kind="stable")
    bars = bars[~bars.duplicated(["ticker", "ts"], keep="first")]
    frames = []
    for ticker, group in bars.groupby("ticker", sort=True):
        frames.append(replay_ticker(group, news_by_ticker.get(ticker), settings, model_id))
        if on_ticker is not None:
            on_ticker(str(ticker), len(group))
    if not frames:
        return pd.DataFrame(columns=list(SIGNAL_COLUMNS))
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(["ts", "ticker"], kind="stable", ignore_index=True)


def signal_ids(frame: pd.DataFrame) -> list[str]:
    """Deterministic signal ids of a signal frame's rows."""
    return [signal_id(t, int(ts), iv) for t, ts, iv in
            zip(frame["ticker"], frame["ts"], frame["interval"], strict=True)]


def to_signals(frame: pd.DataFrame) -> list[TradingSignal]:
    """TradingSignal events for the rows of a signal frame."""
    out = []
    for row in frame.itertuples(index=False):
        count = int(row.sentiment_count)
        contrarian = bool(row.is_contrarian_market)
        out.append(TradingSignal(
            signal_id=signal_id(row.ticker, int(row.ts), row.interval), ticker=row.ticker,
            ts=int(row.ts), signal_type=row.signal_type, confidence=float(row.confidence),
            sentiment_mean=float(row.sentiment_mean), sentiment_std=float(row.sentiment_std),
            sentiment_count=count, is_contrarian_market=contrarian,
            vsa_score=float(row.vsa_score), hawkes_branching=float(row.hawkes_branching),
            hurst_exponent=float(row.hurst_exponent),
            volatility_clustering=float(row.volatility_clustering),
            risk_level=row.risk_level,
            suggested_position_size=float(row.suggested_position_size),
            price=float(row.price),
            reasons=explain(row.rule, vsa_class=str(row.vsa_class),
                            hurst_exponent=float(row.hurst_exponent),
                            volatility_clustering=float(row.volatility_clustering),
                            sentiment_mean=float(row.sentiment_mean), sentiment_count=count,
                            is_contrarian_market=contrarian),
            model_id=row.model_id, interval=row.interval,
        ))
    return out
