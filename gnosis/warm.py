"""Warm start: a ticker's live state brought up to the end of recorded history.

A ticker whose state has no bars (a new deployment, a newly listed ticker, after ``gnosis
state reset`` or a state started afresh) emits warm-up HOLDs for as many bars as the
features look back. ``gnosis state warm BARS [NEWS]`` instead replays the history in the
command (:func:`warm_states`: the same :meth:`~gnosis.engine.SignalEngine.run` as a
replay, every bar and headline at its knowledge time), and sends each ticker's engine
state to the worker that owns it, which adopts it (:func:`adopt`) without emitting a
signal for the history. The next live bar's signal is then the one a replay of history
and live input together gives.

Anchors: Lean's ``SetWarmUp`` (the algorithm is fed history before live data, its orders
suppressed) and NautilusTrader's indicators warmed from requested bars.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from gnosis.carryover import saved_engine
from gnosis.config import Settings
from gnosis.engine import SignalEngine, TickerEngine
from gnosis.events import Bar, NewsItem, format_timestamp
from gnosis.fingerprint import differences, recorded

if TYPE_CHECKING:
    from gnosis.models.sentiment import SentimentScorer


class WarmRefused(ValueError):
    """A warm start the ticker's state cannot take; the message says why, in one line."""


def warm_states(bars: Sequence[Bar], news: Sequence[NewsItem], settings: Settings,
                scorer: SentimentScorer, *, bars_known: Sequence[int] | None = None,
                news_known: Sequence[int] | None = None) -> dict[str, TickerEngine]:
    """Each ticker's engine after the history (knowledge times as in
    :meth:`~gnosis.engine.SignalEngine.run`); only tickers with bars."""
    engine = SignalEngine(settings, scorer)
    engine.run(bars, news, bars_known=bars_known, news_known=news_known)
    return {t: e for t, e in engine.engines.items() if e.series}


def warmed_engine(ticker: str, settings: Settings, data: bytes, model_id: str,
                  scored_by: str) -> TickerEngine:
    """The engine of a warm start's state under the worker's ``settings`` and model.

    Raises :class:`WarmRefused` when the history was replayed under other settings, by
    another sentiment model or state version: its state would not be what a replay under
    the worker's gives.
    """
    if scored_by != model_id:
        raise WarmRefused(f"{ticker}: the history's headlines were scored by {scored_by!r}, "
                          f"the worker's model is {model_id!r}")
    engine, unread = saved_engine(ticker, settings, data, model_id)
    if engine is None:
        raise WarmRefused(unread[0].line(ticker))
    changed = differences(recorded(engine.settings), recorded(settings))
    if changed:
        shown = ", ".join(f"{name} {old} (the worker's {new})" for name, old, new in changed)
        raise WarmRefused(f"{ticker}: the history was replayed under other settings: {shown}; "
                          "warm with the workers' configuration")
    return engine


def overlap(current: TickerEngine, warmed: TickerEngine) -> str | None:
    """Why ``warmed`` cannot replace ``current`` (``None``: it can): ``current`` already
    has bars of an interval the history covers."""
    for interval, series in sorted(warmed.series.items()):
        held = current.series.get(interval)
        if held is not None and held.last_ts is not None:
            return (f"{current.ticker} {interval}: the state already has {held.features.bars} "
                    f"bars up to {format_timestamp(held.last_ts)}, and the history's "
                    f"{series.features.bars} bars up to {format_timestamp(series.last_ts)} "
                    "would replace them: warm start is for a ticker without bars of the "
                    f"interval (`gnosis state reset {current.ticker}` first)")
    return None


def adopt(current: TickerEngine, warmed: TickerEngine) -> TickerEngine:
    """``warmed``, with what ``current`` holds besides: the headlines it holds (live news
    applied before the warm start) and the intervals the history does not cover.

    Raises :class:`WarmRefused` when the history would replace bars (see :func:`overlap`).
    """
    reason = overlap(current, warmed)
    if reason is not None:
        raise WarmRefused(reason)
    for interval, series in current.series.items():
        warmed.series.setdefault(interval, series)
    held = set(warmed.headlines())
    for ts, known, score in current.headlines():
        if (ts, known, score) not in held:
            warmed.add_sentiment(ts, score, known)
    return warmed
