"""Recoverable per-ticker state for the live worker: snapshots plus a short journal.

A :class:`~gnosis.engine.TickerEngine` snapshot is tens of KB at window 512, far too big
to write to a changelog on every bar. So a ticker's state lives in two Faust tables:

* ``snapshots[ticker]`` holds ``engine.to_state()`` plus the journal position, written
  every ``snapshot_every`` journal entries;
* ``journal[f"{ticker}:{seq % snapshot_every}"]`` holds each event applied since, one
  small record per scored headline or bar (slot-keyed, so compaction keeps the ring).

Recovery loads the snapshot and re-applies journal entries ``seq, seq + 1, ...`` while
each slot holds the expected sequence number. Everything here is pure: the Faust shell
passes table lookups in as functions.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from gnosis.config import Settings
from gnosis.engine import TickerEngine
from gnosis.events import Bar, TradingSignal

_HEADER = struct.Struct("<qq")  # next journal seq, offset of the last bar applied
NEWS, BAR = 0, 1


@dataclass(slots=True)
class TickerState:
    """One ticker's engine and its position in the journal."""

    engine: TickerEngine
    seq: int = 0
    bar_offset: int = -1

    def snapshot(self) -> bytes:
        """Header + engine state, the value of ``snapshots[ticker]``."""
        return _HEADER.pack(self.seq, self.bar_offset) + self.engine.to_state()

    def add_news(self, ts: int, score: float) -> bytes | None:
        """Apply a scored headline; the journal entry to write, or ``None`` if it was late."""
        if not self.engine.add_sentiment(ts, score):
            return None
        return self._entry([NEWS, ts, score])

    def add_bar(self, bar: Bar, offset: int) -> tuple[TradingSignal, bytes]:
        """Apply a bar; its signal and journal entry. Raises ``InvalidEvent`` unchanged."""
        signal = self.engine.on_bar(bar)
        self.bar_offset = offset
        return signal, self._entry([BAR, offset, bar.ts, bar.open, bar.high, bar.low, bar.close,
                                     bar.volume, bar.interval])

    def _entry(self, body: list) -> bytes:
        entry = orjson.dumps([self.seq, *body])
        self.seq += 1
        return entry

    def replay(self, entry: bytes) -> bool:
        """Re-apply one journal entry if it is the next one expected; ``False`` otherwise."""
        seq, kind, *rest = orjson.loads(entry)
        if seq != self.seq:
            return False
        if kind == NEWS:
            self.engine.add_sentiment(rest[0], rest[1])
        else:
            offset, ts, o, h, lo, c, v, interval = rest
            self.engine.on_bar(Bar(self.engine.ticker, ts, o, h, lo, c, v, interval))
            self.bar_offset = offset
        self.seq += 1
        return True


def journal_key(ticker: str, seq: int, every: int) -> str:
    """Table key of journal entry ``seq``: slots repeat every ``every`` entries."""
    return f"{ticker}:{seq % every}"


def restore(ticker: str, settings: Settings, model_id: str, snapshot: bytes | None,
            journal: Callable[[str], bytes | None], every: int) -> TickerState:
    """Rebuild a ticker's state from its snapshot (or nothing) and the journal after it."""
    if snapshot is None:
        state = TickerState(TickerEngine(ticker, settings, model_id))
    else:
        seq, offset = _HEADER.unpack_from(snapshot)
        engine = TickerEngine.from_state(ticker, settings, snapshot[_HEADER.size:], model_id)
        state = TickerState(engine, seq, offset)
    while (entry := journal(journal_key(ticker, state.seq, every))) is not None:
        if not state.replay(entry):
            break
    return state
