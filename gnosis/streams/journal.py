"""Recoverable per-ticker state for the live worker: snapshots plus a short journal.

A :class:`~gnosis.engine.TickerEngine` snapshot is about 20 KB at the defaults, far too big
to write to a changelog on every bar. So a ticker's state lives in two tables (each a
compacted changelog topic):

* ``snapshots[ticker]`` holds ``engine.to_state()`` plus the journal position, written
  every ``snapshot_every`` journal entries (at positions of the ticker's own);
* ``journal[f"{ticker}:{seq % snapshot_every}"]`` holds each event applied since, one
  small record per scored headline or bar with its knowledge time (slot-keyed, so
  compaction keeps the ring).

Recovery loads the snapshot and re-applies journal entries ``seq, seq + 1, ...`` while
each slot holds the expected sequence number. Everything here is pure: the live shell
passes table lookups in as functions.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

from gnosis.carryover import Change, carry, saved_engine
from gnosis.config import Settings
from gnosis.engine import TickerEngine
from gnosis.events import Bar, TradingSignal, compact_json
from gnosis.features import ticker_phase
from gnosis.sinks import metrics

log = logging.getLogger(__name__)

_HEADER = struct.Struct("<qqI")  # next seq, offset of the last bar, news-source JSON length
NEWS, BAR = 0, 1


@dataclass(slots=True)
class TickerState:
    """One ticker's engine and its position in the journal."""

    engine: TickerEngine
    seq: int = 0
    bar_offset: int = -1
    news_offsets: dict[int, int] = field(default_factory=dict)
    """Per news partition, the offset of the last headline applied (for idempotence)."""
    snapshot_seq: int = 0
    """Journal position of the last snapshot taken (or restored from)."""

    def snapshot(self) -> bytes:
        """Header + applied news positions + engine state: the value of ``snapshots[ticker]``
        (the journal restarts from here: see :meth:`snapshot_due`)."""
        sources = orjson.dumps({str(q): o for q, o in self.news_offsets.items()})
        self.snapshot_seq = self.seq
        return (_HEADER.pack(self.seq, self.bar_offset, len(sources)) + sources
                + self.engine.to_state())

    def snapshot_due(self, every: int) -> bool:
        """Whether to take a snapshot now: every ``every`` journal entries, at positions of
        the ticker's own (:func:`~gnosis.features.ticker_phase`: tickers whose bars close
        together do not all snapshot on one bar), and never more than ``every`` entries
        after the last one, which the journal's ``every`` slots would no longer hold."""
        return ((self.seq - ticker_phase(self.engine.ticker)) % every == 0
                or self.seq - self.snapshot_seq >= every)

    def is_applied(self, q: int, offset: int) -> bool:
        """Whether the headline at news ``(q, offset)`` was already applied (a re-delivery)."""
        return offset <= self.news_offsets.get(q, -1)

    def add_news(self, ts: int, score: float, q: int, offset: int, known: int
                 ) -> bytes | None:
        """Apply a scored headline from news ``(q, offset)``, known at ``known``; the journal
        entry to write, or ``None`` if no later bar's window can cover it (then nothing
        changed)."""
        if not self.engine.add_sentiment(ts, score, known):
            return None
        self.news_offsets[q] = max(offset, self.news_offsets.get(q, -1))
        return self._entry([NEWS, ts, score, q, offset, known])

    def add_bar(self, bar: Bar, offset: int, known: int) -> tuple[TradingSignal, bytes]:
        """Apply a bar known at ``known``; its signal and journal entry. Raises
        ``InvalidEvent`` unchanged."""
        signal = self.engine.on_bar(bar, known)
        self.bar_offset = offset
        return signal, self._entry([BAR, offset, bar.ts, bar.open, bar.high, bar.low, bar.close,
                                     bar.volume, bar.interval, known])

    def _entry(self, body: list) -> bytes:
        entry = compact_json([self.seq, *body])  # held by the hundred per ticker
        self.seq += 1
        return entry

    def replay(self, entry: bytes, until_ts: int | None = None) -> bool:
        """Re-apply one journal entry if it is the next one expected (and, with
        ``until_ts``, not a bar stamped after it); ``False`` otherwise."""
        seq, kind, *rest = orjson.loads(entry)
        if seq != self.seq:
            return False
        # Entries written before knowledge times were kept lack the last field: such an
        # event was counted at its stamp.
        if kind == NEWS:
            ts, score, q, offset, *known = rest
            self.engine.add_sentiment(ts, score, known[0] if known else ts)
            self.news_offsets[q] = max(offset, self.news_offsets.get(q, -1))
        else:
            offset, ts, o, h, lo, c, v, interval, *known = rest
            if until_ts is not None and ts > until_ts:
                return False
            self.engine.on_bar(Bar(self.engine.ticker, ts, o, h, lo, c, v, interval),
                               known[0] if known else ts)
            self.bar_offset = offset
        self.seq += 1
        return True


def journal_key(ticker: str, seq: int, every: int) -> str:
    """Table key of journal entry ``seq``: slots repeat every ``every`` entries."""
    return f"{ticker}:{seq % every}"


def restore(ticker: str, settings: Settings, model_id: str, snapshot: bytes | None,
            journal: Callable[[str], bytes | None], every: int,
            until_ts: int | None = None) -> TickerState:
    """Rebuild a ticker's state from its snapshot (or nothing) and the journal after it;
    with ``until_ts``, stop before the first bar stamped after it."""
    unread: list[Change] = []
    if snapshot is None:
        state = TickerState(TickerEngine(ticker, settings, model_id))
    else:
        seq, offset, size = _HEADER.unpack_from(snapshot)
        start = _HEADER.size + size
        sources = orjson.loads(snapshot[_HEADER.size:start])
        # Under the settings it was saved with, so that its journal applies as it did.
        engine, unread = saved_engine(ticker, settings, snapshot[start:], model_id)
        state = TickerState(engine or TickerEngine(ticker, settings, model_id), seq, offset,
                            {int(q): o for q, o in sources.items()}, seq)
    while (entry := journal(journal_key(ticker, state.seq, every))) is not None:
        if not state.replay(entry, until_ts):
            break
    _carry(state, settings, model_id, unread)
    return state


def _carry(state: TickerState, settings: Settings, model_id: str,
           unread: list[Change]) -> None:
    """Put a restored state's engine under ``settings`` (its positions hold either way):
    a fresh one for a snapshot that could not be read, else the carried-over one. Each
    change is logged in one line and counted (see :mod:`gnosis.carryover`)."""
    ticker = state.engine.ticker
    if unread:
        state.engine, changes = TickerEngine(ticker, settings, model_id), unread
    else:
        state.engine, changes = carry(state.engine, settings)
    for change in changes:
        log.warning("%s", change.line(ticker))
        metrics.STATE_CHANGES.labels(setting=change.setting, action=change.action).inc()


def reset(current: TickerState, settings: Settings, model_id: str, snapshot: bytes | None,
          journal: Callable[[str], bytes | None], every: int,
          to_ts: int | None = None) -> TickerState:
    """The state an operator's reset leaves: a fresh engine, or with ``to_ts`` the state as
    it was after the last bar stamped at or before ``to_ts``, if the snapshot and journal
    still reach back that far (else fresh too).

    Journal position and applied input offsets carry over, so nothing consumed before the
    reset is applied again and journal slots written before it are never replayed.
    """
    ticker = current.engine.ticker
    state = None
    if to_ts is not None:
        state = restore(ticker, settings, model_id, snapshot, journal, every, to_ts)
        last = state.engine.last_ts
        if last is not None and last > to_ts:
            state = None  # the snapshot itself is past to_ts
    if state is None:
        state = TickerState(TickerEngine(ticker, settings, model_id))
    state.seq = current.seq
    state.bar_offset = current.bar_offset
    state.news_offsets = dict(current.news_offsets)
    return state
