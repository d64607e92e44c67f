"""The functional core: per-ticker state, features, as-of sentiment and rules.

Nothing here knows about Kafka or asyncio. The live shell (``gnosis.streams``)
keeps one :class:`TickerEngine` per ticker in its partitions' state (with a feature state
per bar interval inside, and the news window shared by the ticker's intervals); the replay shell
computes the same over whole histories, vectorised (:mod:`gnosis.replay.inprocess`), and
:class:`SignalEngine` runs the per-ticker engines over a batch of history in one process
(``gnosis state warm``, and the reference result). Both call the same code, so live
trading and backtests cannot disagree.

Point in time: a bar's timestamp is its close, and every bar and headline also carries
its *knowledge time*, when Gnosis knew it (live: the input record's Kafka timestamp; in
files: ``received_at``, else a modelled delay, see :mod:`gnosis.replay.knowledge`). The
signal of a bar ``b`` of ticker ``k`` counts headline ``h`` iff ``h`` names ``k``, its
stamp lies in ``(b.ts - sentiment_window, b.ts]`` and ``h.known <= b.known``. A headline
that arrives late counts for every later bar whose window covers it; nothing is dropped
for lateness. Example, with one-minute bars known at their close: a headline stamped
10:00:30 that arrived at 10:01:20 is not in the 10:01 signal (known at 10:01:00) but is
in the 10:02 one, live and in every backtest.
"""

from __future__ import annotations

import base64
import bisect
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from gnosis.config import Settings, duration_ns
from gnosis.events import Bar, InvalidEvent, NewsItem, TradingSignal, format_timestamp, signal_id
from gnosis.features import FeatureSnapshot, SavedFeatures, TickerFeatures, ticker_phase
from gnosis.fingerprint import fingerprint, recorded
from gnosis.models.rules import decide, explain

if TYPE_CHECKING:
    from gnosis.models.sentiment import SentimentScorer

_NS = 1_000_000_000
_STATE_VERSION = 5
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


class BarSeries:
    """The feature state of one bar interval of a ticker (e.g. its 1m or its 5m bars)."""

    __slots__ = ("features", "last_ts")

    def __init__(self, features: TickerFeatures, last_ts: int | None = None) -> None:
        self.features = features
        self.last_ts = last_ts


class StateVersionError(ValueError):
    """A saved engine state of a version this code cannot restore."""


class TickerEngine:
    """All state and logic for one ticker: a :class:`BarSeries` per bar interval, and the
    news window, which every interval of the ticker shares.

    A feed may publish several intervals of one ticker (1m and 5m bars, say): each
    interval has its own features, order check and signals (the signal id includes the
    interval), while a headline counts for all of them.
    """

    __slots__ = ("_news_known", "_news_scores", "_news_ts", "_window_ns", "model_id", "series",
                 "settings", "ticker")

    def __init__(self, ticker: str, settings: Settings, model_id: str = "lexicon") -> None:
        self.ticker = ticker
        self.settings = settings
        self.model_id = model_id
        self.series: dict[str, BarSeries] = {}
        # News kept sorted by stamp, with its knowledge time and score alongside; it may run
        # ahead of bars when the news topic is ahead.
        self._news_ts: list[int] = []
        self._news_known: list[int] = []
        self._news_scores: list[float] = []
        self._window_ns = duration_ns(settings.rules.sentiment_window)

    @property
    def last_ts(self) -> int | None:
        """Close of the latest bar of any interval (the ticker's event-time clock)."""
        return max((s.last_ts for s in self.series.values() if s.last_ts is not None),
                   default=None)

    def add_sentiment(self, ts: int, score: float, known: int) -> bool:
        """Add one scored headline stamped ``ts`` and known at ``known`` (epoch ns).

        It counts for every later bar whose window covers its stamp and which was known
        no earlier than it, however late it came. ``False`` (nothing kept) only when no
        later bar's window can cover it: stamped at or before the laggiest interval's last
        close minus the window.
        """
        oldest = self._oldest_close()
        if oldest is not None and ts <= oldest - self._window_ns:
            return False
        i = bisect.bisect_right(self._news_ts, ts)
        self._news_ts.insert(i, ts)
        self._news_known.insert(i, known)
        self._news_scores.insert(i, score)
        return True

    def headlines(self) -> list[tuple[int, int, float]]:
        """The headlines held: (stamp, knowledge time, score), by stamp."""
        return list(zip(self._news_ts, self._news_known, self._news_scores, strict=True))

    def news_times(self) -> tuple[int, ...]:
        """Stamps of the headlines held for the as-of window (pruned as bars advance)."""
        return tuple(self._news_ts)

    def sentiment_at(self, ts: int, known: int) -> tuple[float, float, int]:
        """As-of sentiment (mean, std, count) over the news stamped in ``(ts - window, ts]``
        and known at or before ``known``."""
        lo = bisect.bisect_right(self._news_ts, ts - self._window_ns)
        hi = bisect.bisect_right(self._news_ts, ts, lo)
        if lo == hi:
            return 0.0, 0.0, 0
        scores, knowns = self._news_scores[lo:hi], self._news_known[lo:hi]
        if max(knowns) > known:
            scores = [s for s, k in zip(scores, knowns, strict=True) if k <= known]
        return window_stats(scores)

    def on_bar(self, bar: Bar, known: int) -> TradingSignal:
        """Update the features of the bar's interval with it and return its signal, which
        counts the headlines known at or before ``known``, the bar's knowledge time.

        Raises :class:`InvalidEvent` (``duplicate_bar`` or ``out_of_order``) for a bar
        not strictly after the previous one of its interval; the state is then unchanged.
        """
        series = self.series.get(bar.interval)
        if series is None:
            series = self.series[bar.interval] = BarSeries(
                TickerFeatures(self.settings.features, ticker_phase(self.ticker)))
        if series.last_ts is not None and bar.ts <= series.last_ts:
            code = "duplicate_bar" if bar.ts == series.last_ts else "out_of_order"
            raise InvalidEvent(code, f"{bar.interval} bar at {format_timestamp(bar.ts)} not "
                               f"after the last one at {format_timestamp(series.last_ts)}",
                               "timestamp")
        snap = series.features.update(bar.ts, bar.open, bar.high, bar.low, bar.close,
                                      bar.volume)
        series.last_ts = bar.ts
        mean, std, count = self.sentiment_at(bar.ts, known)
        self._prune()
        return build_signal(self.ticker, bar.ts, bar.close, bar.interval, snap, mean, std, count,
                            self.settings, self.model_id)

    def _oldest_close(self) -> int | None:
        return min((s.last_ts for s in self.series.values() if s.last_ts is not None),
                   default=None)

    def _prune(self) -> None:
        # News at or before (the laggiest interval's close - window) can never count again:
        # each interval's bars only move forward.
        if not self._news_ts:
            return
        oldest = self._oldest_close()
        if oldest is None:
            return
        cut = bisect.bisect_right(self._news_ts, oldest - self._window_ns)
        if cut:
            del self._news_ts[:cut]
            del self._news_known[:cut]
            del self._news_scores[:cut]

    def to_state(self) -> bytes:
        """A compact snapshot from which :meth:`from_state` rebuilds this engine exactly,
        with the settings its numbers depend on (see :mod:`gnosis.carryover`)."""
        return orjson.dumps({
            "v": _STATE_VERSION,
            "series": {interval: {"last_ts": s.last_ts, **_saved_to_json(s.features.history())}
                       for interval, s in self.series.items()},
            "news_ts": self._news_ts,
            "news_known": self._news_known,
            "news_scores": self._news_scores,
            "settings": (values := recorded(self.settings)),
            "fingerprint": fingerprint(values),
        }, option=orjson.OPT_SERIALIZE_NUMPY)

    @classmethod
    def from_state(cls, ticker: str, settings: Settings, data: bytes,
                   model_id: str = "lexicon") -> TickerEngine:
        """Rebuild an engine from :meth:`to_state` output.

        Raises :class:`StateVersionError` for a snapshot of another state version:
        versions 1 and 2 kept bar rows that do not reach back over the Hawkes window, 3
        re-estimated every ticker on the same bars (no :func:`ticker_phase`), 4 kept no
        knowledge time with its headlines, so their tickers start afresh (the live worker
        does so, and says it).
        """
        obj = orjson.loads(data)
        version = obj.get("v")
        if version != _STATE_VERSION:
            raise StateVersionError(f"{ticker}: state version {version!r} cannot be restored "
                                    f"by this version (expects {_STATE_VERSION})")
        engine = cls(ticker, settings, model_id)
        for interval, saved in obj["series"].items():
            features = TickerFeatures.restore(settings.features, _saved_from_json(saved),
                                              ticker_phase(ticker))
            engine.series[interval] = BarSeries(features, saved["last_ts"])
        engine._news_ts = list(obj["news_ts"])
        engine._news_known = list(obj["news_known"])
        engine._news_scores = list(obj["news_scores"])
        return engine


def _saved_to_json(saved: SavedFeatures) -> dict[str, Any]:
    # Floats as JSON numbers (orjson writes the shortest exact form); event bits packed.
    return {"bars": saved.bars, "rows": saved.rows, "returns": saved.returns,
            "events": [saved.events.size,
                       base64.b64encode(np.packbits(saved.events)).decode("ascii")],
            "held": list(saved.held), "sums": saved.sums}


def _saved_from_json(obj: Mapping[str, Any]) -> SavedFeatures:
    count, packed = obj["events"]
    events = np.unpackbits(np.frombuffer(base64.b64decode(packed), dtype=np.uint8),
                           count=count)
    return SavedFeatures(bars=obj["bars"],
                         rows=np.asarray(obj["rows"], dtype=np.float64).reshape(-1, 4),
                         returns=np.asarray(obj["returns"], dtype=np.float64),
                         events=events.astype(bool), held=tuple(obj["held"]),
                         sums=dict(obj["sums"]))


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
    return signal_from_row({
        "ticker": ticker, "ts": ts, "interval": interval, "signal_type": d.signal_type,
        "rule": d.rule, "confidence": d.confidence, "sentiment_mean": sentiment_mean,
        "sentiment_std": sentiment_std, "sentiment_count": sentiment_count,
        "is_contrarian_market": d.is_contrarian_market, "vsa_score": snap.vsa_score,
        "vsa_class": snap.vsa_class, "hawkes_branching": snap.hawkes_branching,
        "hawkes_se": snap.hawkes_se, "hurst_exponent": snap.hurst_exponent,
        "hurst_se": snap.hurst_se,
        "volatility_clustering": snap.volatility_clustering, "risk_level": d.risk_level,
        "suggested_position_size": d.suggested_position_size, "price": price,
        "model_id": model_id,
    })


def signal_reasons(row: Mapping[str, Any]) -> tuple[str, ...]:
    """The ``reasons`` of the signal of one signal row (see :func:`signal_from_row`)."""
    return explain(str(row["rule"]), vsa_class=str(row["vsa_class"]),
                   hurst_exponent=float(row["hurst_exponent"]),
                   hurst_se=float(row["hurst_se"]),
                   volatility_clustering=float(row["volatility_clustering"]),
                   sentiment_mean=float(row["sentiment_mean"]),
                   sentiment_count=int(row["sentiment_count"]),
                   is_contrarian_market=bool(row["is_contrarian_market"]))


def signal_from_row(row: Mapping[str, Any]) -> TradingSignal:
    """The :class:`TradingSignal` of one bar from its computed values: the only place a
    signal is assembled.

    ``row`` maps the signal-frame columns (:data:`gnosis.replay.inprocess.SIGNAL_COLUMNS`;
    extra keys are ignored) to values: the streaming core passes one dict per bar, the
    vectorised replay one frame row per bar, so both shells emit the same fields, id and
    reasons included.
    """
    ticker, ts, interval = str(row["ticker"]), int(row["ts"]), str(row["interval"])
    return TradingSignal(
        signal_id=signal_id(ticker, ts, interval), ticker=ticker, ts=ts,
        signal_type=row["signal_type"], confidence=float(row["confidence"]),
        sentiment_mean=float(row["sentiment_mean"]),
        sentiment_std=float(row["sentiment_std"]),
        sentiment_count=int(row["sentiment_count"]),
        is_contrarian_market=bool(row["is_contrarian_market"]),
        vsa_score=float(row["vsa_score"]), hawkes_branching=float(row["hawkes_branching"]),
        hawkes_se=float(row["hawkes_se"]), hurst_exponent=float(row["hurst_exponent"]),
        hurst_se=float(row["hurst_se"]),
        volatility_clustering=float(row["volatility_clustering"]),
        risk_level=row["risk_level"],
        suggested_position_size=float(row["suggested_position_size"]),
        price=float(row["price"]), reasons=signal_reasons(row), model_id=str(row["model_id"]),
        interval=interval,
    )


class SignalEngine:
    """Many tickers in one process, bar by bar: warm starts (:mod:`gnosis.warm`) and the
    reference result (:func:`run_events`) the vectorised replay is held equal to."""

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

    def add_scored_news(self, item: NewsItem, score: float, known: int) -> None:
        """Apply an already-scored headline, known at ``known``, to every ticker it names."""
        for ticker in item.tickers:
            self.engine(ticker).add_sentiment(item.ts, score, known)

    def on_bar(self, bar: Bar, known: int) -> TradingSignal:
        """The signal for one bar known at ``known`` (see :meth:`TickerEngine.on_bar`)."""
        return self.engine(bar.ticker).on_bar(bar, known)

    def run(self, bars: Sequence[Bar], news: Sequence[NewsItem], *,
            bars_known: Sequence[int] | None = None,
            news_known: Sequence[int] | None = None) -> list[TradingSignal]:
        """Apply a batch of history; its signals, ordered by (bar close, ticker, interval).

        ``bars_known`` and ``news_known`` are the knowledge times (epoch ns) of ``bars`` and
        ``news``, in their order; without them a bar is known at its close and a headline
        ``replay.news_latency`` after its stamp, as :mod:`gnosis.replay.knowledge` models
        files without ``received_at``. A bar that repeats the close of an earlier bar of its
        ticker and interval is skipped, as the live worker deadletters it. Headlines
        stamped after the last bar are applied last, for bars to come.
        """
        delay = duration_ns(self.settings.replay.news_latency)
        if news_known is None:
            news_known = [item.ts + delay for item in news]
        if bars_known is None:
            bars_known = [bar.ts for bar in bars]
        order = sorted(range(len(news)), key=lambda j: news[j].ts)
        scores = score_headlines(self.scorer, [news[j].headline for j in order])
        out: list[TradingSignal] = []
        i = 0
        for b in sorted(range(len(bars)), key=lambda b: (bars[b].ts, bars[b].ticker,
                                                          bars[b].interval)):
            bar = bars[b]
            # Every headline stamped up to the close is held; its knowledge time decides.
            while i < len(order) and news[order[i]].ts <= bar.ts:
                self.add_scored_news(news[order[i]], float(scores[i]), news_known[order[i]])
                i += 1
            try:
                out.append(self.on_bar(bar, bars_known[b]))
            except InvalidEvent:
                continue
        for j in range(i, len(order)):
            self.add_scored_news(news[order[j]], float(scores[j]), news_known[order[j]])
        return out


def run_events(bars: Sequence[Bar], news: Sequence[NewsItem], settings: Settings | None = None,
               scorer: SentimentScorer | None = None, *,
               bars_known: Sequence[int] | None = None,
               news_known: Sequence[int] | None = None) -> list[TradingSignal]:
    """Signals for a batch of history, ordered by (bar close, ticker, interval): the
    reference result (see :meth:`SignalEngine.run`)."""
    return SignalEngine(settings, scorer).run(bars, news, bars_known=bars_known,
                                              news_known=news_known)
