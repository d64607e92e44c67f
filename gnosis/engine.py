"""The functional core: per-ticker state, features, as-of sentiment and rules.

Nothing here knows about Kafka, Faust or asyncio. The live shell (``gnosis.streams``)
keeps one :class:`TickerEngine` per ticker in its partitions' state; the replay shell
drives :class:`SignalEngine` (or the vectorised :mod:`gnosis.replay.inprocess`) over
history. Both call the same code, so live trading and backtests cannot disagree.

Event time: a bar's timestamp is its close. The signal for a bar closing at ``t`` sees
only bars stamped ``<= t`` and news stamped in ``(t - sentiment_window, t]``.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import orjson

from gnosis.config import Settings
from gnosis.events import Bar, InvalidEvent, NewsItem, TradingSignal, interval_seconds, signal_id
from gnosis.features import FeatureSnapshot, TickerFeatures
from gnosis.models.rules import decide, explain

if TYPE_CHECKING:
    from gnosis.models.sentiment import SentimentScorer

_NS = 1_000_000_000
_STATE_VERSION = 1
_SCORE_CHUNK = 256


def window_stats(scores: Sequence[float]) -> tuple[float, float, int]:
    """Mean, population std and count of sentiment scores, order-independent.

    ``math.fsum`` is exactly rounded, so the result does not depend on the order in
    which news arrived; the streaming and vectorised paths therefore agree bit for bit.
    """
    n = len(scores)
    if n == 0:
        return 0.0, 0.0, 0
    mean = math.fsum(scores) / n
    var = math.fsum((s - mean) * (s - mean) for s in scores) / n
    return mean, math.sqrt(var), n


def score_headlines(scorer: SentimentScorer, headlines: Sequence[str]) -> np.ndarray:
    """Scores in [-1, 1] for many headlines, in chunks the scorer can batch."""
    out = np.empty(len(headlines), dtype=np.float64)
    for start in range(0, len(headlines), _SCORE_CHUNK):
        chunk = headlines[start:start + _SCORE_CHUNK]
        out[start:start + len(chunk)] = [s.score for s in scorer.score_batch(list(chunk))]
    return out


def duration_ns(text: str) -> int:
    """Nanoseconds in a duration such as ``0s``, ``30s``, ``5m`` or ``1h``."""
    if text.strip() in {"0", "0s"}:
        return 0
    return interval_seconds(text.strip()) * _NS


class TickerEngine:
    """All state and logic for one ticker: features, news window, last bar time."""

    __slots__ = ("_late_ns", "_news_scores", "_news_ts", "_window_ns", "features", "last_ts",
                 "model_id", "settings", "ticker")

    def __init__(self, ticker: str, settings: Settings, model_id: str = "lexicon") -> None:
        self.ticker = ticker
        self.settings = settings
        self.model_id = model_id
        self.features = TickerFeatures(settings.features)
        self.last_ts: int | None = None
        # News kept sorted by time; may run ahead of bars when the news topic is ahead.
        self._news_ts: list[int] = []
        self._news_scores: list[float] = []
        self._window_ns = duration_ns(settings.rules.sentiment_window)
        self._late_ns = duration_ns(settings.worker.allowed_lateness)

    def add_sentiment(self, ts: int, score: float) -> bool:
        """Add one scored headline; ``False`` (ignored) when it is too late to count.

        Late means stamped before the last bar's close minus the allowed lateness; such
        an item could only have changed signals that were already emitted.
        """
        if self.last_ts is not None and ts < self.last_ts - self._late_ns:
            return False
        i = bisect.bisect_right(self._news_ts, ts)
        self._news_ts.insert(i, ts)
        self._news_scores.insert(i, score)
        return True

    def sentiment_at(self, ts: int) -> tuple[float, float, int]:
        """As-of sentiment (mean, std, count) over news stamped in ``(ts - window, ts]``."""
        lo = bisect.bisect_right(self._news_ts, ts - self._window_ns)
        hi = bisect.bisect_right(self._news_ts, ts)
        return window_stats(self._news_scores[lo:hi])

    def on_bar(self, bar: Bar) -> TradingSignal:
        """Update the features with one bar and return its signal.

        Raises :class:`InvalidEvent` (``duplicate_bar`` or ``out_of_order``) for a bar
        not strictly after the previous one; the state is then unchanged.
        """
        if self.last_ts is not None and bar.ts <= self.last_ts:
            code = "duplicate_bar" if bar.ts == self.last_ts else "out_of_order"
            raise InvalidEvent(code, f"bar at {bar.ts} not after the last bar at {self.last_ts}",
                               "timestamp")
        snap = self.features.update(bar.ts, bar.open, bar.high, bar.low, bar.close, bar.volume)
        self.last_ts = bar.ts
        mean, std, count = self.sentiment_at(bar.ts)
        self._prune(bar.ts)
        return build_signal(self.ticker, bar.ts, bar.close, bar.interval, snap, mean, std, count,
                            self.settings, self.model_id)

    def _prune(self, ts: int) -> None:
        # News at or before ts - window can never count again: bars only move forward.
        cut = bisect.bisect_right(self._news_ts, ts - self._window_ns)
        if cut:
            del self._news_ts[:cut]
            del self._news_scores[:cut]

    def to_state(self) -> bytes:
        """A compact snapshot from which :meth:`from_state` rebuilds this engine exactly."""
        return orjson.dumps({
            "v": _STATE_VERSION,
            "bars": self.features.bars,
            "last_ts": self.last_ts,
            "history": self.features.history(),
            "news_ts": self._news_ts,
            "news_scores": self._news_scores,
        }, option=orjson.OPT_SERIALIZE_NUMPY)

    @classmethod
    def from_state(cls, ticker: str, settings: Settings, data: bytes,
                   model_id: str = "lexicon") -> TickerEngine:
        """Rebuild an engine from :meth:`to_state` output."""
        obj = orjson.loads(data)
        if obj.get("v") != _STATE_VERSION:
            raise ValueError(f"state version {obj.get('v')!r}, expected {_STATE_VERSION}")
        engine = cls(ticker, settings, model_id)
        history = np.asarray(obj["history"], dtype=np.float64).reshape(-1, 6)
        engine.features = TickerFeatures.restore(settings.features, history, obj["bars"])
        engine.last_ts = obj["last_ts"]
        engine._news_ts = list(obj["news_ts"])
        engine._news_scores = list(obj["news_scores"])
        return engine


def build_signal(ticker: str, ts: int, price: float, interval: str, snap: FeatureSnapshot,
                 sentiment_mean: float, sentiment_std: float, sentiment_count: int,
                 settings: Settings, model_id: str) -> TradingSignal:
    """Run the rules on one bar's features and sentiment and assemble the signal."""
    d = decide(
        ready=snap.ready, vsa_score=snap.vsa_score, hawkes_branching=snap.hawkes_branching,
        hurst_exponent=snap.hurst_exponent, hurst_se=snap.hurst_se,
        volatility_clustering=snap.volatility_clustering,
        realized_volatility=snap.realized_volatility, trend=snap.trend,
        sentiment_mean=sentiment_mean, sentiment_count=sentiment_count, config=settings.rules,
    )
    reasons = explain(d.rule, vsa_class=snap.vsa_class, hurst_exponent=snap.hurst_exponent,
                      hurst_se=snap.hurst_se,
                      volatility_clustering=snap.volatility_clustering,
                      sentiment_mean=sentiment_mean, sentiment_count=sentiment_count,
                      is_contrarian_market=d.is_contrarian_market)
    return TradingSignal(
        signal_id=signal_id(ticker, ts, interval), ticker=ticker, ts=ts,
        signal_type=d.signal_type, confidence=d.confidence,  # type: ignore[arg-type]
        sentiment_mean=sentiment_mean, sentiment_std=sentiment_std,
        sentiment_count=sentiment_count, is_contrarian_market=d.is_contrarian_market,
        vsa_score=snap.vsa_score, hawkes_branching=snap.hawkes_branching,
        hawkes_se=snap.hawkes_se, hurst_exponent=snap.hurst_exponent, hurst_se=snap.hurst_se,
        volatility_clustering=snap.volatility_clustering,
        risk_level=d.risk_level, suggested_position_size=d.suggested_position_size,  # type: ignore[arg-type]
        price=price, reasons=reasons, model_id=model_id, interval=interval,
    )


class SignalEngine:
    """Many tickers in one process: the in-process reference path used by replay."""

    def __init__(self, settings: Settings | None = None,
                 scorer: SentimentScorer | None = None) -> None:
        from gnosis.models.sentiment import load_scorer

        self.settings = settings or Settings()
        self.scorer = scorer or load_scorer(self.settings.sentiment)
        self.engines: dict[str, TickerEngine] = {}

    def engine(self, ticker: str) -> TickerEngine:
        """The ticker's engine, created on first use."""
        engine = self.engines.get(ticker)
        if engine is None:
            engine = TickerEngine(ticker, self.settings, self.scorer.model_id)
            self.engines[ticker] = engine
        return engine

    def add_scored_news(self, item: NewsItem, score: float) -> None:
        """Apply an already-scored headline to every ticker it names."""
        for ticker in item.tickers:
            self.engine(ticker).add_sentiment(item.ts, score)

    def on_news(self, item: NewsItem) -> None:
        """Score one headline and apply it to every ticker it names."""
        self.add_scored_news(item, self.scorer.score_batch([item.headline])[0].score)

    def on_bar(self, bar: Bar) -> TradingSignal:
        """The signal for one bar (see :meth:`TickerEngine.on_bar`)."""
        return self.engine(bar.ticker).on_bar(bar)


def run_events(bars: Iterable[Bar], news: Iterable[NewsItem], settings: Settings | None = None,
               scorer: SentimentScorer | None = None) -> list[TradingSignal]:
    """Signals for a batch of history, in event-time order: the reference result.

    News stamped at or before a bar's close is applied before that bar. Invalid bars
    (duplicates, out of order) are skipped, as the live worker deadletters them.
    """
    engine = SignalEngine(settings, scorer)
    news = sorted(news, key=lambda item: item.ts)
    scores = score_headlines(engine.scorer, [n.headline for n in news])
    out: list[TradingSignal] = []
    i = 0
    for bar in sorted(bars, key=lambda b: b.ts):
        while i < len(news) and news[i].ts <= bar.ts:
            engine.add_scored_news(news[i], float(scores[i]))
            i += 1
        try:
            out.append(engine.on_bar(bar))
        except InvalidEvent:
            continue
    return out
