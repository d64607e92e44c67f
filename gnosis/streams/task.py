"""One partition's work: its tickers' state, bars in, signals and state records out.

A :class:`PartitionTask` owns partition ``p`` of the bars, news, news-by-ticker and both
changelog topics (they are co-partitioned, see :mod:`gnosis.streams.assignor`). It is
pure bookkeeping: the runtime hands it decoded records and sends the :data:`Out`
records it returns, in order, in partition ``p``'s transaction under exactly-once.
"""

from __future__ import annotations

import logging
import time

from gnosis.config import Settings
from gnosis.events import Bar, InvalidEvent, NewsItem
from gnosis.sinks import metrics
from gnosis.streams.journal import TickerState, journal_key, reset, restore
from gnosis.streams.records import (
    MARK_KEY,
    ScoredHeadline,
    WarmCommand,
    deadletter_record,
    encode_mark,
    ticker_partition,
)
from gnosis.streams.topics import Topics
from gnosis.warm import WarmRefused, adopt, warmed_engine

log = logging.getLogger(__name__)

REJECTED_RUN = 5
"""Rejected bars in a row after which a ticker is reported as rejecting its feed."""

Out = tuple[str, bytes | None, bytes, int | None]
"""An output record: topic, key, value, partition (``None``: the producer's partitioner)."""


def parse_bar(key: bytes | None, value: bytes | None, partition: int, partitions: int, *,
              now_ns: int, max_future_ns: int) -> Bar:
    """Validate a bar record, including that it sits where its ticker's state lives.

    Raises :class:`InvalidEvent`: the schema's reasons (``bad_timestamp`` for a time that
    cannot be true, more than ``max_future_ns`` after ``now_ns`` included), ``key_mismatch``
    when the record's key is not its ticker, ``wrong_partition`` when the key is not on its
    murmur2 partition.
    """
    # A tombstone is malformed JSON.
    bar = Bar.from_json(value or b"", now_ns=now_ns, max_future_ns=max_future_ns)
    if key != bar.ticker.encode():
        shown = "no key" if key is None else f"key {key[:64]!r}"
        raise InvalidEvent("key_mismatch", f"{shown} but ticker {bar.ticker!r}: producers "
                           "must key bars by ticker", "key")
    if partition != ticker_partition(bar.ticker, partitions):
        raise InvalidEvent("wrong_partition", "bar is not in its ticker's partition "
                           "(use the murmur2 key partitioner, key = ticker)", "key")
    return bar


class PartitionTask:
    """State and processing of one partition number ``p``."""

    def __init__(self, p: int, settings: Settings, topics: Topics, model_id: str,
                 snapshots: dict[bytes, bytes], journal: dict[bytes, bytes],
                 tally: metrics.BarTally | None = None) -> None:
        """``tally`` gathers the per-bar metrics; its owner flushes it after each batch."""
        self.p = p
        self.settings = settings
        self.topics = topics
        self.model_id = model_id
        self.snapshots = snapshots
        self.journal = journal
        self.every = settings.worker.snapshot_every
        self.partitions = settings.kafka.partitions
        self.tally = tally if tally is not None else metrics.BarTally()
        self.states: dict[str, TickerState] = {}
        self.rejected_run: dict[str, int] = {}
        """Per ticker, bars rejected as duplicate or out of order since its last good bar."""

    # ------------------------------------------------------------------ inputs

    def on_bar(self, bar: Bar, offset: int, known: int, received: float) -> list[Out]:
        """Apply a released bar known at ``known`` (epoch ns): its signal and state records
        (or its deadletter)."""
        state = self.state(bar.ticker)
        if offset <= state.bar_offset:  # re-delivered after a crash; already applied
            metrics.child(metrics.RECORD_OUTCOMES, self.topics.bars, "repeat").inc()
            return []
        started = time.perf_counter()
        try:
            signal, entry = state.add_bar(bar, offset, known)
            value = signal.to_json()
        except InvalidEvent as exc:
            if exc.code in {"out_of_order", "duplicate_bar"}:
                self.rejected_run[bar.ticker] = self.rejected_run.get(bar.ticker, 0) + 1
            return [self.deadletter(self.topics.bars, bar.ticker.encode(), bar.to_json(), offset,
                                    exc)]
        except Exception as exc:  # an input the edge should have refused: log, keep going
            log.exception("bar %s@%d of %s failed", self.topics.bars, offset, bar.ticker)
            return [self.deadletter(self.topics.bars, bar.ticker.encode(), bar.to_json(), offset,
                                    InvalidEvent("processing_error", repr(exc)[:300]))]
        self.rejected_run.pop(bar.ticker, None)
        now = time.perf_counter()
        self.tally.add(now - started, now - received, signal.signal_type, signal.confidence)
        # Signal first, then the state that covers it (the checkpoint keeps that order
        # durable under at-least-once too).
        return [(self.topics.signals, bar.ticker.encode(), value, self.p),
                *self._persist(state, entry)]

    def rejecting(self) -> list[str]:
        """Tickers whose last :data:`REJECTED_RUN` bars or more were all rejected."""
        return sorted(t for t, n in self.rejected_run.items() if n >= REJECTED_RUN)

    def on_scored_headline(self, rec: ScoredHeadline) -> list[Out]:
        """Apply a re-keyed headline to its ticker (skipped if applied before a crash)."""
        state = self.state(rec.ticker)
        topic = self.topics.news_by_ticker
        if state.is_applied(rec.q, rec.o):
            metrics.child(metrics.RECORD_OUTCOMES, topic, "repeat").inc()
            return []
        last = state.engine.last_ts
        entry = state.add_news(rec.ts, rec.score, rec.q, rec.o, rec.known)
        if entry is None:  # outside every later bar's window: it can count for none
            metrics.child(metrics.RECORD_OUTCOMES, topic, "expired").inc()
            return []
        if last is not None and rec.ts <= last:
            # Stamped at or before a bar already processed: it counts from later bars on.
            metrics.child(metrics.LATE_NEWS, self.topics.news).inc()
        metrics.child(metrics.RECORD_OUTCOMES, topic, "applied").inc()
        return self._persist(state, entry)

    def rekey(self, scored: list[tuple[int, ScoredHeadline]]) -> list[Out]:
        """The re-keyed records of a headline read from news partition ``p``: one per ticker
        (see :func:`~gnosis.streams.records.scored_headlines`)."""
        metrics.NEWS_CONSUMED.inc()
        metrics.child(metrics.RECORD_OUTCOMES, self.topics.news, "rekeyed").inc()
        return [(self.topics.news_by_ticker, rec.ticker.encode(), rec.to_json(), r)
                for r, rec in scored]

    def mark(self, r: int, offset: int) -> Out:
        """A progress mark for partition ``r``: every headline of news partition ``p`` below
        ``offset`` that names a ticker of ``r`` has been re-keyed."""
        return (self.topics.news_by_ticker, MARK_KEY, encode_mark(self.p, offset), r)

    def reset(self, ticker: str, to_ts: int | None) -> list[Out]:
        """An operator's reset of ``ticker`` (see :func:`gnosis.streams.journal.reset`): the
        new snapshot to write. Bars held for news are untouched and apply after it."""
        current = self.state(ticker)
        state = reset(current, self.settings, self.model_id, self.snapshots.get(ticker.encode()),
                      lambda key: self.journal.get(key.encode()), self.every, to_ts)
        self.states[ticker] = state
        self.rejected_run.pop(ticker, None)
        snap = state.snapshot()
        self.snapshots[ticker.encode()] = snap
        log.warning("state of %s reset%s: last bar now %s", ticker,
                    "" if to_ts is None else f" to {to_ts}", state.engine.last_ts)
        return [(self.topics.snapshots_changelog, ticker.encode(), snap, self.p)]

    def warm(self, command: WarmCommand) -> list[Out]:
        """An operator's warm start (see :mod:`gnosis.warm`): the new snapshot to write, or
        nothing when the ticker's state cannot take it (logged in one line, counted)."""
        ticker, topic = command.ticker, self.topics.control
        current = self.state(ticker)
        try:
            warmed = warmed_engine(ticker, self.settings, command.state, self.model_id,
                                   command.model_id)
            current.engine = adopt(current.engine, warmed, command.replace)
        except WarmRefused as exc:
            log.warning("warm start refused: %s", exc)
            metrics.child(metrics.RECORD_OUTCOMES, topic, "refused").inc()
            return []
        snap = current.snapshot()
        self.snapshots[ticker.encode()] = snap
        log.info("%s warmed: %s", ticker, ", ".join(
            f"{interval} {series.features.bars} bars" for interval, series
            in sorted(current.engine.series.items())))
        metrics.child(metrics.RECORD_OUTCOMES, topic, "warmed").inc()
        return [(self.topics.snapshots_changelog, ticker.encode(), snap, self.p)]

    def deadletter(self, topic: str, key: bytes | None, value: bytes | None, offset: int,
                   exc: InvalidEvent) -> Out:
        """The deadletter record of an invalid input record from partition ``p``."""
        metrics.child(metrics.DEADLETTER_EVENTS, exc.code, topic).inc()
        metrics.child(metrics.RECORD_OUTCOMES, topic, "deadletter").inc()
        return (self.topics.deadletter, key,
                deadletter_record(value, exc, topic, self.p, offset), None)

    # ------------------------------------------------------------------ state

    def state(self, ticker: str) -> TickerState:
        """The ticker's state, rebuilt from the tables on first use."""
        state = self.states.get(ticker)
        if state is None:
            state = restore(ticker, self.settings, self.model_id,
                            self.snapshots.get(ticker.encode()),
                            lambda key: self.journal.get(key.encode()), self.every)
            self.states[ticker] = state
        return state

    def _persist(self, state: TickerState, entry: bytes) -> list[Out]:
        """Update the tables; return their changelog records, sent with the output."""
        ticker = state.engine.ticker
        key = journal_key(ticker, state.seq - 1, self.every).encode()
        self.journal[key] = entry
        records: list[Out] = [(self.topics.journal_changelog, key, entry, self.p)]
        if state.snapshot_due(self.every):
            snap = state.snapshot()
            self.snapshots[ticker.encode()] = snap
            records.append((self.topics.snapshots_changelog, ticker.encode(), snap, self.p))
        return records


def decode_news(value: bytes | None, *, now_ns: int, max_future_ns: int
                ) -> NewsItem | InvalidEvent:
    """A news record, or the reason it is invalid (see :func:`parse_bar` for the clock)."""
    try:
        return NewsItem.from_json(value or b"", now_ns=now_ns, max_future_ns=max_future_ns)
    except InvalidEvent as exc:
        return exc
