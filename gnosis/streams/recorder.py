"""Record what the bars and news topics hold into files that ``gnosis replay`` reads.

``gnosis record OUT`` reads every partition of ``kafka.bars_topic`` and
``kafka.news_topic`` from where the last recording into ``OUT`` stopped up to the end
offsets it finds when it starts, and writes:

* ``OUT/bars.parquet`` and ``OUT/news.parquet``: the records the live worker would apply,
  in the replay readers' columns, with ``received_at``, each record's knowledge time (its
  Kafka timestamp), and its ``partition`` and ``offset``;
* ``OUT/rejected.parquet``: every record the live worker would deadletter, with its
  topic, partition, offset, reason and payload, so that nothing read is lost.

A bar is rejected as the worker rejects it (by the edge's validation, its key and
partition, and a close not after its series' previous one in offset order), so the
recording replays to the live signals field for field. The wall-clock ``max_future``
check is the one rule that depends on when a record is read, not on the topics; it is
applied here as live. Files are rewritten whole through a temporary file, so an
interrupted recording leaves the previous one intact, and running the command again
resumes from the offsets the files hold.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from aiokafka import AIOKafkaConsumer, TopicPartition

from gnosis.config import Settings, duration_ns
from gnosis.events import Bar, InvalidEvent, NewsItem
from gnosis.replay.knowledge import RECEIVED_AT
from gnosis.security import client_options
from gnosis.streams.records import record_known
from gnosis.streams.task import decode_news, parse_bar

BARS_FILE, NEWS_FILE, REJECTED_FILE = "bars.parquet", "news.parquet", "rejected.parquet"


class RecordError(RuntimeError):
    """A recording that cannot start or go on; the message says why."""


@dataclass
class Recording:
    """What one run of :func:`record` added."""

    bars: int = 0
    news: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    resumed_from: int = 0
    """Records the files held before this run."""

    def summary(self, out: Path) -> str:
        rejected = sum(self.rejected.values())
        reasons = ", ".join(f"{n:,} {code}" for code, n in sorted(self.rejected.items()))
        return (f"recorded {self.bars:,} bars and {self.news:,} headlines"
                f" ({rejected:,} rejected{': ' + reasons if reasons else ''})"
                f"{f', after {self.resumed_from:,} recorded before' if self.resumed_from else ''}"
                f" → {out}")


def _iso(ns: int) -> pd.Timestamp:
    return pd.Timestamp(ns, unit="ns", tz="UTC")


class _Series:
    """Last close per (ticker, interval), to reject bars the worker rejects as out of
    order or repeated."""

    def __init__(self, bars: pd.DataFrame | None) -> None:
        self.last: dict[tuple[str, str], int] = {}
        if bars is not None and len(bars):
            ts = bars["timestamp"].astype("int64")
            for (ticker, interval), close in ts.groupby([bars["ticker"],
                                                         bars["interval"]]).max().items():
                self.last[(ticker, interval)] = int(close)

    def check(self, bar: Bar) -> None:
        last = self.last.get((bar.ticker, bar.interval))
        if last is not None and bar.ts <= last:
            code = "duplicate_bar" if bar.ts == last else "out_of_order"
            raise InvalidEvent(code, f"{bar.interval} bar not after the last one", "timestamp")
        self.last[(bar.ticker, bar.interval)] = bar.ts


def _read(path: Path) -> pd.DataFrame | None:
    return pd.read_parquet(path) if path.exists() else None


def _write(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_suffix(".parquet.tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def _resume_offsets(frames: list[pd.DataFrame | None], topic: str) -> dict[int, int]:
    """Next offset per partition of ``topic`` after what the files hold."""
    out: dict[int, int] = {}
    for frame in frames:
        if frame is None or not len(frame):
            continue
        rows = frame[frame["topic"] == topic] if "topic" in frame else frame
        for p, offset in rows.groupby("partition")["offset"].max().items():
            out[int(p)] = max(out.get(int(p), 0), int(offset) + 1)
    return out


async def _partition_counts(settings: Settings, topics: list[str]) -> dict[str, int]:
    """Partitions of each topic; :class:`RecordError` naming a topic that does not exist."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        # Listing first: a metadata request naming a topic may create it on a broker that
        # creates topics on first use.
        missing = [t for t in topics if t not in set(await admin.list_topics())]
        described = {} if missing else {t["topic"]: t for t in
                                        await admin.describe_topics(topics)}
    finally:
        await admin.close()
    for topic in topics:
        found = described.get(topic)
        if found is None or found["error_code"] or not found["partitions"]:
            raise RecordError(f"topic {topic!r} does not exist on "
                              f"{settings.kafka.bootstrap_servers} (set kafka.bars_topic / "
                              "kafka.news_topic, or create the topics with `gnosis kafka "
                              "topics`)")
    return {topic: len(described[topic]["partitions"]) for topic in topics}


async def record_async(settings: Settings, out: Path,
                       on_progress: Callable[[int, int], None] | None = None) -> Recording:
    """Record the bars and news topics into ``out`` (see the module docstring);
    ``on_progress(done, total)`` is called as records are read."""
    out.mkdir(parents=True, exist_ok=True)
    k = settings.kafka
    old_bars, old_news, old_rejected = (_read(out / name) for name in
                                        (BARS_FILE, NEWS_FILE, REJECTED_FILE))
    starts = {k.bars_topic: _resume_offsets([old_bars, old_rejected], k.bars_topic),
              k.news_topic: _resume_offsets([old_news, old_rejected], k.news_topic)}
    result = Recording(resumed_from=sum(len(f) for f in (old_bars, old_news, old_rejected)
                                        if f is not None))
    consumer = AIOKafkaConsumer(**client_options(settings), group_id=None,
                                enable_auto_commit=False, isolation_level="read_committed")
    bars_rows: list[dict[str, Any]] = []
    news_rows: list[dict[str, Any]] = []
    rejected_rows: list[dict[str, Any]] = []
    series = _Series(old_bars)
    max_future = duration_ns(settings.worker.max_future)
    counts = await _partition_counts(settings, [k.bars_topic, k.news_topic])
    try:
        await consumer.start()
        tps = [TopicPartition(topic, p) for topic, n in counts.items() for p in range(n)]
        consumer.assign(tps)
        begin = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        first = {tp: max(starts[tp.topic].get(tp.partition, 0), begin[tp]) for tp in tps}
        for tp, offset in first.items():
            consumer.seek(tp, offset)
        todo = {tp for tp in tps if first[tp] < ends[tp]}
        total = sum(ends[tp] - first[tp] for tp in todo)
        done = 0
        while todo:
            batch = await consumer.getmany(*todo, timeout_ms=500)
            for tp, records in batch.items():
                for r in records:
                    if r.offset >= ends[tp]:
                        continue
                    done += 1
                    row = {"topic": tp.topic, "partition": tp.partition, "offset": r.offset,
                           RECEIVED_AT: _iso(record_known(r.timestamp))}
                    now = time.time_ns()
                    try:
                        if tp.topic == k.bars_topic:
                            bar = parse_bar(r.key, r.value, tp.partition, counts[tp.topic],
                                            now_ns=now, max_future_ns=max_future)
                            series.check(bar)
                            bars_rows.append(_bar_row(bar, row))
                        else:
                            item = decode_news(r.value, now_ns=now, max_future_ns=max_future)
                            if isinstance(item, InvalidEvent):
                                raise item
                            news_rows.append(_news_row(item, row))
                    except InvalidEvent as exc:
                        result.rejected[exc.code] = result.rejected.get(exc.code, 0) + 1
                        rejected_rows.append({**row, "reason": exc.code, "field": exc.field,
                                              "detail": exc.detail,
                                              "payload": (r.value or b"").decode(
                                                  "utf-8", "backslashreplace")})
            if on_progress is not None:
                on_progress(done, total)
            todo = {tp for tp in todo if await consumer.position(tp) < ends[tp]}
    finally:
        await consumer.stop()
    result.bars, result.news = len(bars_rows), len(news_rows)
    for rows, old, name in ((bars_rows, old_bars, BARS_FILE), (news_rows, old_news, NEWS_FILE),
                            (rejected_rows, old_rejected, REJECTED_FILE)):
        if rows or old is None:
            frame = pd.DataFrame(rows, columns=_COLUMNS[name])
            _write(frame if old is None else pd.concat([old, frame], ignore_index=True),
                   out / name)
    return result


_COLUMNS = {
    BARS_FILE: ["ticker", "timestamp", "open", "high", "low", "close", "volume", "interval",
                RECEIVED_AT, "topic", "partition", "offset"],
    NEWS_FILE: ["id", "timestamp", "tickers", "headline", "body", "source", RECEIVED_AT,
                "topic", "partition", "offset"],
    REJECTED_FILE: ["topic", "partition", "offset", RECEIVED_AT, "reason", "field", "detail",
                    "payload"],
}


def _bar_row(bar: Bar, row: dict[str, Any]) -> dict[str, Any]:
    return {"ticker": bar.ticker, "timestamp": _iso(bar.ts), "open": bar.open,
            "high": bar.high, "low": bar.low, "close": bar.close, "volume": bar.volume,
            "interval": bar.interval, **row}


def _news_row(item: NewsItem, row: dict[str, Any]) -> dict[str, Any]:
    return {"id": item.id, "timestamp": _iso(item.ts), "tickers": list(item.tickers),
            "headline": item.headline, "body": item.body, "source": item.source, **row}


def record(settings: Settings, out: Path,
           on_progress: Callable[[int, int], None] | None = None) -> Recording:
    """Blocking :func:`record_async`."""
    return asyncio.run(record_async(settings, out, on_progress))
