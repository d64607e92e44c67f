"""Warm start: a ticker's live state brought up to the end of recorded history.

A ticker whose state has no bars (a new deployment, a newly listed ticker, after ``gnosis
state reset`` or a state started afresh) emits warm-up HOLDs for as many bars as the
features look back. ``gnosis state warm BARS [NEWS]`` instead replays the history in the
command (:func:`warm_states`: the same :meth:`~gnosis.engine.SignalEngine.run` as a
replay, every bar and headline at its knowledge time), and sends each ticker's engine
state to the worker that owns it, which adopts it (:func:`adopt`) without emitting a
signal for the history. The next live bar's signal is then the one a replay of history
and live input together gives. With ``--replace`` it may also take the place of bars the
state has, when the history reaches their last one: how a ticker that a settings change
started afresh is rebuilt from the archive.

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


def overlap(current: TickerEngine, warmed: TickerEngine, replace: bool = False) -> str | None:
    """Why ``warmed`` cannot be taken by ``current`` (``None``: it can): ``current``
    already has bars of an interval the history covers, or with ``replace`` bars after the
    history's last one."""
    for interval, series in sorted(warmed.series.items()):
        held = current.series.get(interval)
        if held is None or held.last_ts is None:
            continue
        have = (f"{current.ticker} {interval}: the state already has {held.features.bars} "
                f"bars up to {format_timestamp(held.last_ts)}")
        if not replace:
            return (f"{have}, and the history's {series.features.bars} bars up to "
                    f"{format_timestamp(series.last_ts)} would replace them: warm start is for "
                    "a ticker without bars of the interval (or --replace with history that "
                    "reaches its last bar)")
        if series.last_ts is not None and held.last_ts > series.last_ts:
            return (f"{have}, after the history's last bar at "
                    f"{format_timestamp(series.last_ts)}: --replace needs history that "
                    "reaches the state's last bar")
    return None


def adopt(current: TickerEngine, warmed: TickerEngine, replace: bool = False) -> TickerEngine:
    """``warmed``, with what ``current`` holds besides: the intervals the history does not
    cover, and the headlines it holds (live news applied before the warm start; with
    ``replace``, the history stands for everything up to its last bar, so only those
    stamped after it).

    Raises :class:`WarmRefused` when the state cannot take it (see :func:`overlap`).
    """
    reason = overlap(current, warmed, replace)
    if reason is not None:
        raise WarmRefused(reason)
    for interval, series in current.series.items():
        warmed.series.setdefault(interval, series)
    end = warmed.last_ts if replace and warmed.last_ts is not None else None
    held = set(warmed.headlines())
    for ts, known, score in current.headlines():
        if (ts, known, score) not in held and (end is None or ts > end):
            warmed.add_sentiment(ts, score, known)
    return warmed
