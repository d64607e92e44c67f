"""In-process replay: the functional core, vectorised over whole histories.

:func:`replay_frame` computes, for every bar, exactly what the live engine would emit
for it (``gnosis.engine.TickerEngine.on_bar``), but a series at a time with numpy:
batch features, as-of sentiment windows by binary search, vectorised rules. A series is
one ticker's bars of one interval (1m and 5m bars of a ticker are two series, as in the
engine); news counts for every series of the tickers it names. Like the live engine it is
point in time: a bar's signal counts only the headlines known no later than the bar
(:mod:`gnosis.replay.knowledge`). The result is a *signal
frame*: one row per bar with the TradingSignal columns, cheap to hand to the
backtester. :func:`to_signals` turns rows into :class:`TradingSignal` events with
:func:`gnosis.engine.signal_from_row`, the constructor the streaming core uses, so ids
and reasons are the live ones; :func:`write_frame` writes them to a signal file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from gnosis.config import Settings
from gnosis.engine import (
    duration_ns,
    score_headlines,
    signal_from_row,
    signal_reasons,
    window_stats,
)
from gnosis.events import TradingSignal, signal_id
from gnosis.features import VSA_CLASSES, compute_features, ticker_phase
from gnosis.models.rules import RULES, decide_arrays
from gnosis.replay.knowledge import bar_known, news_known
from gnosis.sinks.files import file_kind, write_signals

if TYPE_CHECKING:
    from gnosis.models.sentiment import SentimentScorer

SIGNAL_COLUMNS: tuple[str, ...] = (
    "ticker", "ts", "interval", "signal_type", "rule", "confidence", "sentiment_mean",
    "sentiment_std", "sentiment_count", "is_contrarian_market", "vsa_score", "vsa_class",
    "hawkes_branching", "hawkes_se", "hurst_exponent", "hurst_se", "volatility_clustering",
    "realized_volatility", "trend", "risk_level", "suggested_position_size", "price", "model_id",
)


def explode_news(news: pd.DataFrame, scores: np.ndarray, known: np.ndarray) -> pd.DataFrame:
    """One (ticker, ts, score, known) row per ticker a headline names, sorted by time."""
    tickers = news["tickers"].to_numpy()
    counts = np.fromiter((len(t) for t in tickers), dtype=np.int64, count=len(tickers))
    flat = pd.DataFrame({
        "ticker": [t for group in tickers for t in group],
        "ts": np.repeat(news["ts"].to_numpy(dtype=np.int64), counts),
        "score": np.repeat(scores, counts),
        "known": np.repeat(known, counts),
    })
    return flat.sort_values("ts", kind="stable", ignore_index=True)


def asof_sentiment(bar_ts: np.ndarray, bar_known: np.ndarray, news_ts: np.ndarray,
                   news_known: np.ndarray, news_scores: np.ndarray, window_ns: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sentiment (mean, std, count) for each bar over the news stamped in
    ``(t - window, t]`` and known no later than the bar (``news_ts`` sorted)."""
    n = len(bar_ts)
    mean = np.zeros(n)
    std = np.zeros(n)
    count = np.zeros(n, dtype=np.int64)
    if len(news_ts) == 0:
        return mean, std, count
    lo = np.searchsorted(news_ts, bar_ts - window_ns, side="right")
    hi = np.searchsorted(news_ts, bar_ts, side="right")
    has = hi > lo
    # Which headlines of a window a bar knows depends on its knowledge time only through
    # how many knowledge times are <= it (its rank): bars sharing window and rank share
    # the result, and consecutive bars mostly do, so each distinct triple is computed once.
    ordered = np.sort(news_known)
    rank = np.searchsorted(ordered, bar_known, side="right")
    triples, inverse = np.unique(np.stack([lo[has], hi[has], rank[has]], axis=1), axis=0,
                                 return_inverse=True)
    known = news_known.tolist()
    scores = news_scores.tolist()
    stats = np.zeros((len(triples), 3))
    for i, (a, b, r) in enumerate(triples.tolist()):
        if r == 0:
            continue
        limit = int(ordered[r - 1])
        stats[i] = window_stats([s for s, k in zip(scores[a:b], known[a:b], strict=True)
                                 if k <= limit])
    if len(stats):
        picked = stats[inverse.ravel()]
        mean[has], std[has], count[has] = picked[:, 0], picked[:, 1], picked[:, 2]
    return mean, std, count


def replay_ticker(bars: pd.DataFrame, news: pd.DataFrame | None, settings: Settings,
                  model_id: str) -> pd.DataFrame:
    """The signal frame for one series: one ticker's bars of one interval (sorted by
    time, no duplicates, knowledge times in ``known``). ``news`` is the ticker's scored
    news (``ts``, ``score``, ``known``), sorted by ``ts``."""
    ts = bars["ts"].to_numpy(dtype=np.int64)
    close = bars["close"].to_numpy(dtype=np.float64)
    feats = compute_features(ts, bars["open"].to_numpy(dtype=np.float64),
                             bars["high"].to_numpy(dtype=np.float64),
                             bars["low"].to_numpy(dtype=np.float64), close,
                             bars["volume"].to_numpy(dtype=np.float64), settings.features,
                             ticker_phase(str(bars["ticker"].iat[0])) if len(bars) else 0)
    if news is not None and len(news):
        mean, std, count = asof_sentiment(ts, bars["known"].to_numpy(dtype=np.int64),
                                          news["ts"].to_numpy(dtype=np.int64),
                                          news["known"].to_numpy(dtype=np.int64),
                                          news["score"].to_numpy(dtype=np.float64),
                                          duration_ns(settings.rules.sentiment_window))
    else:
        mean, std, count = np.zeros(len(ts)), np.zeros(len(ts)), np.zeros(len(ts), np.int64)
    d = decide_arrays(
        ready=feats.ready, vsa_score=feats.vsa_score, hawkes_branching=feats.hawkes_branching,
        hurst_exponent=feats.hurst_exponent, hurst_se=feats.hurst_se,
        volatility_clustering=feats.volatility_clustering,
        realized_volatility=feats.realized_volatility, trend=feats.trend,
        sentiment_mean=mean, sentiment_count=count, config=settings.rules,
    )
    return pd.DataFrame({
        "ticker": bars["ticker"].to_numpy(), "ts": ts, "interval": bars["interval"].to_numpy(),
        "signal_type": d.signal_type, "rule": np.asarray(RULES, dtype=object)[d.rule_code],
        "confidence": d.confidence, "sentiment_mean": mean, "sentiment_std": std,
        "sentiment_count": count, "is_contrarian_market": d.is_contrarian_market,
        "vsa_score": feats.vsa_score,
        "vsa_class": pd.Categorical.from_codes(feats.vsa_class, VSA_CLASSES),
        "hawkes_branching": feats.hawkes_branching, "hawkes_se": feats.hawkes_se,
        "hurst_exponent": feats.hurst_exponent, "hurst_se": feats.hurst_se,
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
            volume`` and optionally ``interval`` (default ``1m``), e.g. as
            :func:`gnosis.replay.readers.read_bars` returns them (which also applies the
            edge's timestamp rules), and optionally ``received_at`` (int64 ns, when each
            bar was known; else at its close). Each (ticker, interval) is a series of its
            own; a bar repeating the close of an earlier bar of its series is skipped, as
            the live worker deadletters it (:func:`duplicate_bars` finds them).
        news: columns ``ts``, ``tickers`` (sequences) and ``headline``, optionally
            ``received_at`` (else a headline is known ``replay.news_latency`` after its
            stamp), and ``score`` when the headlines are already scored; otherwise they
            are scored through the score store when ``sentiment.store_dir`` is set (only
            what it lacks goes to the model), else by the scorer.
        settings: configuration; defaults apply when omitted.
        scorer: headline scorer; the configured one when omitted.
        on_ticker: called with (ticker, bars) after each series, e.g. to drive a
            progress bar.

    Returns:
        The signal frame (:data:`SIGNAL_COLUMNS`), sorted by ``ts``, ``ticker`` and
        ``interval``.
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
        flat = explode_news(news, scores, news_known(news, settings))
        news_by_ticker = dict(tuple(flat.groupby("ticker", sort=False)))
    else:
        news_by_ticker = {}
    model_id = scorer.model_id
    if "interval" not in bars:
        bars = bars.assign(interval="1m")
    bars = bars.assign(known=bar_known(bars)).sort_values(SERIES_KEY, kind="stable")
    bars = bars[~duplicate_bars(bars)]
    frames = []
    for (ticker, _), group in bars.groupby(["ticker", "interval"], sort=True):
        frames.append(replay_ticker(group, news_by_ticker.get(ticker), settings, model_id))
        if on_ticker is not None:
            on_ticker(str(ticker), len(group))
    if not frames:
        return pd.DataFrame(columns=list(SIGNAL_COLUMNS))
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(["ts", "ticker", "interval"], kind="stable", ignore_index=True)


SERIES_KEY = ["ticker", "interval", "ts"]
"""A bar's identity: two bars with equal key are one bar sent twice."""


def duplicate_bars(bars: pd.DataFrame) -> np.ndarray:
    """Mask of the bars that repeat the (ticker, interval, close) of an earlier row: the
    ones the live worker deadletters as ``duplicate_bar`` and replay skips."""
    key = SERIES_KEY if "interval" in bars else ["ticker", "ts"]
    return bars.duplicated(key, keep="first").to_numpy()


def signal_ids(frame: pd.DataFrame) -> list[str]:
    """Deterministic signal ids of a signal frame's rows."""
    return [signal_id(t, int(ts), iv) for t, ts, iv in
            zip(frame["ticker"], frame["ts"], frame["interval"], strict=True)]


def signal_rows(frame: pd.DataFrame) -> Iterator[dict[str, Any]]:
    """The rows of a signal frame as plain dicts, for :func:`gnosis.engine.signal_from_row`
    (several times faster than ``DataFrame.to_dict``, which iterates Arrow columns)."""
    names = list(frame.columns)
    columns = [frame[name].tolist() for name in names]
    return (dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True))


def to_signals(frame: pd.DataFrame) -> list[TradingSignal]:
    """TradingSignal events for the rows of a signal frame, as the live engine emits them
    (built by :func:`gnosis.engine.signal_from_row`)."""
    return [signal_from_row(row) for row in signal_rows(frame)]


def write_frame(frame: pd.DataFrame, path: str | Path) -> int:
    """Write a signal frame to a signal file (:func:`gnosis.sinks.files.write_signals`), each
    signal with the reasons the live engine gives it; returns how many were written.

    JSON lines hold :func:`to_signals`, the bytes the live engine sends; Parquet keeps the
    frame's extra columns (``rule``, ``trend``, ...) beside a ``reasons`` column.
    """
    if file_kind(path) == "jsonl":
        return write_signals(to_signals(frame), path)
    reasons = [signal_reasons(row) for row in signal_rows(frame)]
    return write_signals(frame.assign(reasons=reasons), path)
