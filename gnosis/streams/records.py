"""Wire formats of the worker's internal records and its deadletter records.

The ``news-by-ticker`` topic (``<app>-news-by-ticker``) carries two kinds of record:

* a **scored headline** for one ticker, key = ticker,
  ``{"ticker", "ts", "score", "id", "q", "o", "k"}`` (``q``/``o``: the headline's news
  partition and offset, so a repeat after a crash is recognised; ``k``: its knowledge
  time, the original news record's timestamp in epoch ns, not the re-keyed copy's);
* a **progress mark**, key ``MARK_KEY``, ``{"q", "n"}``: every headline of news
  partition ``q`` below offset ``n`` has been re-keyed (see :mod:`gnosis.streams.gate`).

The control topic ``<app>-control`` carries operator commands, key = ticker:
``{"command": "reset", "ticker", "to"}`` (``to``: epoch ns or ``null``) and
``{"command": "warm", "ticker", "model", "replace", "state"}`` (``state``: the ticker's engine state
after the history, its headlines scored by sentiment model ``model``; see
:mod:`gnosis.warm`).
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Mapping
from dataclasses import dataclass

import orjson
from aiokafka import TopicPartition
from aiokafka.partitioner import murmur2

from gnosis.events import InvalidEvent, NewsItem, compact_json

MARK_KEY = b"\x00mark"


@functools.lru_cache(maxsize=1 << 16)
def ticker_partition(ticker: str, partitions: int) -> int:
    """The partition of ``ticker``: Java's murmur2 key partitioner (aiokafka, Java clients).

    Cached: aiokafka's murmur2 is pure Python and this runs for every bar and headline.
    """
    return (murmur2(ticker.encode()) & 0x7FFFFFFF) % partitions


@dataclass(frozen=True, slots=True)
class ScoredHeadline:
    """A headline's score for one ticker it names, with its news source position."""

    ticker: str
    ts: int
    score: float
    id: str
    q: int
    o: int
    known: int
    """Knowledge time (epoch ns): the timestamp of the news record it came from."""

    def to_json(self) -> bytes:
        return compact_json({"ticker": self.ticker, "ts": self.ts, "score": self.score,
                             "id": self.id, "q": self.q, "o": self.o, "k": self.known})


def record_known(timestamp_ms: int) -> int:
    """Knowledge time (epoch ns) of an input record from its Kafka timestamp (ms)."""
    return timestamp_ms * 1_000_000


def scored_headlines(item: NewsItem, score: float, q: int, offset: int, known: int,
                     partitions: int) -> list[tuple[int, ScoredHeadline]]:
    """A headline's score for each ticker it names, with that ticker's partition."""
    return [(ticker_partition(ticker, partitions),
             ScoredHeadline(ticker, item.ts, score, item.id, q, offset, known))
            for ticker in item.tickers]


def encode_mark(q: int, n: int) -> bytes:
    """A progress mark: news partition ``q`` is re-keyed below offset ``n``."""
    return compact_json({"q": q, "n": n})


def decode_rekeyed(key: bytes | None, value: bytes) -> ScoredHeadline | tuple[int, int]:
    """A record of ``news-by-ticker``: a :class:`ScoredHeadline` or a mark ``(q, n)``."""
    obj = orjson.loads(value)
    if key == MARK_KEY:
        return obj["q"], obj["n"]
    # A record re-keyed before knowledge times were kept has no "k": known at its stamp.
    return ScoredHeadline(obj["ticker"], obj["ts"], obj["score"], obj["id"], obj["q"], obj["o"],
                          obj.get("k", obj["ts"]))


@dataclass(frozen=True, slots=True)
class ResetCommand:
    """Reset a ticker's state: fresh, or back to its last bar at or before ``to_ts``."""

    ticker: str
    to_ts: int | None = None

    def to_json(self) -> bytes:
        return orjson.dumps({"command": "reset", "ticker": self.ticker, "to": self.to_ts})


@dataclass(frozen=True, slots=True)
class WarmCommand:
    """Give a ticker without bars the engine ``state`` it has after recorded history."""

    ticker: str
    state: bytes
    """:meth:`~gnosis.engine.TickerEngine.to_state` of the warmed engine."""
    model_id: str
    """The sentiment model that scored the history's headlines."""
    replace: bool = False
    """Take the place of bars the state has, if the history reaches their last one."""

    def to_json(self) -> bytes:
        return orjson.dumps({"command": "warm", "ticker": self.ticker, "model": self.model_id,
                             "replace": self.replace, "state": orjson.Fragment(self.state)})


def decode_command(value: bytes | None) -> ResetCommand | WarmCommand:
    """A control record; raises :class:`InvalidEvent` for anything else."""
    try:
        obj = orjson.loads(value or b"")
        if obj.get("command") == "warm":
            return WarmCommand(str(obj["ticker"]), orjson.dumps(obj["state"]),
                               str(obj["model"]), bool(obj.get("replace", False)))
        if obj.get("command") != "reset":
            raise InvalidEvent("unknown_command", f"unknown command {obj.get('command')!r}",
                               "command")
        to_ts = obj.get("to")
        if to_ts is not None and not isinstance(to_ts, int):
            raise InvalidEvent("wrong_type", "to must be epoch nanoseconds or null", "to")
        return ResetCommand(str(obj["ticker"]), to_ts)
    except (orjson.JSONDecodeError, AttributeError, KeyError) as exc:
        raise InvalidEvent("malformed_json", f"not a control command: {exc}") from None


OFFSETS_KEY = b"\x00offsets"
"""Key, in a task's snapshots table, of the offsets its last transaction committed."""


def encode_offsets(offsets: Mapping[TopicPartition, int]) -> bytes:
    """``{"topic": {"partition": offset}}`` of a task's consumed offsets."""
    out: dict[str, dict[str, int]] = {}
    for tp, offset in offsets.items():
        out.setdefault(tp.topic, {})[str(tp.partition)] = offset
    return orjson.dumps(out)


def decode_offsets(value: bytes | None) -> dict[TopicPartition, int]:
    """The inverse of :func:`encode_offsets`; empty for ``None``."""
    if value is None:
        return {}
    return {TopicPartition(topic, int(p)): offset
            for topic, parts in orjson.loads(value).items() for p, offset in parts.items()}


def deadletter_record(payload: bytes | None, exc: InvalidEvent, topic: str, partition: int,
                      offset: int) -> bytes:
    """JSON of a deadletter record: the original payload, reason code, field and source."""
    try:
        text, encoding = (payload or b"").decode(), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(payload or b"").decode(), "base64"
    return orjson.dumps({
        "reason": exc.code, "field": exc.field, "detail": exc.detail,
        "topic": topic, "partition": partition, "offset": offset,
        "payload": text, "payload_encoding": encoding,
    })
