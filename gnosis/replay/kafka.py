"""Replay history through Kafka: publish bars and news in event-time order, collect signals.

This is how the live path is checked against the in-process one: publish the same input
the backtester uses, let a worker process it, read the signals back and compare.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Iterable, Iterator
from typing import Any

from gnosis.config import Settings
from gnosis.events import Bar, NewsItem, TradingSignal

_NS = 1_000_000_000


def event_order(bars: Iterable[Bar], news: Iterable[NewsItem]) -> Iterator[Bar | NewsItem]:
    """Bars and news merged by event time; news stamped ``t`` comes before bars at ``t``."""
    keyed_news = ((n.ts, 0, i, n) for i, n in enumerate(sorted(news, key=lambda n: n.ts)))
    keyed_bars = ((b.ts, 1, i, b) for i, b in enumerate(sorted(bars, key=lambda b: b.ts)))
    for *_, event in heapq.merge(keyed_news, keyed_bars, key=lambda k: k[:3]):
        yield event


async def publish_async(bars: Iterable[Bar], news: Iterable[NewsItem], settings: Settings,
                        speed: float | None = None, progress: bool = False) -> int:
    """Publish in event-time order; returns the number of records sent.

    ``speed`` ``None`` sends as fast as possible; ``60.0`` replays a minute of event time
    per second. A bar is only sent once every headline before it was acknowledged, so
    news stamped ``<= t`` is in the log before any bar stamped ``t`` (the worker's
    event-time rule relies on this).
    """
    from aiokafka import AIOKafkaProducer

    from gnosis.streams.topics import client_options

    k = settings.kafka
    producer = AIOKafkaProducer(**client_options(settings), acks="all",
                                enable_idempotence=True, linger_ms=5,
                                max_batch_size=256 * 1024)
    sent = 0
    news_in_flight: list[asyncio.Future] = []
    first_ts: int | None = None
    started = time.monotonic()
    try:
        await producer.start()  # inside: a refused start must still close the client
        for event in event_order(bars, news):
            if speed:
                first_ts = event.ts if first_ts is None else first_ts
                due = started + (event.ts - first_ts) / _NS / speed
                if (delay := due - time.monotonic()) > 0:
                    await asyncio.sleep(delay)
            if isinstance(event, NewsItem):
                key = event.tickers[0].encode()
                news_in_flight.append(await producer.send(k.news_topic, event.to_json(), key=key))
            else:
                if news_in_flight:
                    await asyncio.gather(*news_in_flight)
                    news_in_flight.clear()
                await producer.send(k.bars_topic, event.to_json(), key=event.ticker.encode())
            sent += 1
            if progress and sent % 10_000 == 0:
                print(f"published {sent:,} records", flush=True)
        await producer.flush()
    finally:
        await producer.stop()
    return sent


def publish(bars: Iterable[Bar], news: Iterable[NewsItem], settings: Settings,
            speed: float | None = None, progress: bool = True) -> int:
    """Blocking :func:`publish_async`."""
    return asyncio.run(publish_async(bars, news, settings, speed, progress))


async def read_committed(options: dict[str, Any], topic: str, *, expected: int | None = None,
                         timeout: float = 60.0, idle: float = 2.0,
                         linger: bool = False) -> list[Any]:
    """Every record of ``topic`` from the start, read with ``read_committed``.

    Stops at ``expected`` records (after ``idle`` more quiet seconds when ``linger``, to
    catch anything that would arrive twice), after ``idle`` seconds without a new record
    when ``expected`` is ``None``, or at ``timeout``. ``options`` are client options,
    e.g. :func:`gnosis.streams.topics.client_options` or ``{"bootstrap_servers": ...}``.
    """
    from aiokafka import AIOKafkaConsumer

    # No group: the consumer takes every partition and starts at the earliest offset.
    consumer = AIOKafkaConsumer(topic, **options, group_id=None, auto_offset_reset="earliest",
                                isolation_level="read_committed", enable_auto_commit=False)
    out: list[Any] = []
    try:
        await consumer.start()
        deadline = time.monotonic() + timeout
        last_new = time.monotonic()
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                out.extend(records)
            if batch:
                last_new = time.monotonic()
            quiet = time.monotonic() - last_new > idle
            if expected is None and quiet:
                break
            if expected is not None and len(out) >= expected and (quiet or not linger):
                break
    finally:
        await consumer.stop()
    return out


async def collect_signals_async(settings: Settings, expected: int | None = None,
                                timeout: float = 60.0, idle: float = 2.0
                                ) -> list[TradingSignal]:
    """The signals topic from the start (``read_committed``) as TradingSignal events.

    Stops at ``expected`` signals, after ``timeout`` seconds, or (when ``expected`` is
    ``None``) after ``idle`` seconds without a new signal.
    """
    from gnosis.streams.topics import client_options

    records = await read_committed(client_options(settings), settings.kafka.signals_topic,
                                   expected=expected, timeout=timeout, idle=idle)
    return [TradingSignal.from_json(r.value) for r in records]


def collect_signals(settings: Settings, expected: int | None = None,
                    timeout: float = 60.0) -> list[TradingSignal]:
    """Blocking :func:`collect_signals_async`."""
    return asyncio.run(collect_signals_async(settings, expected, timeout))


async def replay_via_kafka(bars: list[Bar], news: list[NewsItem], settings: Settings, *,
                           speed: float | None = None, idle: float = 30.0,
                           on_signal: Any = None) -> tuple[list[TradingSignal], set[str]]:
    """Publish ``bars`` and ``news`` and collect the signals of exactly these bars.

    The signals topic's end offsets are noted before publishing, so signals written
    earlier (another run, other producers) are never taken for this run's. Collection
    stops when every bar's signal arrived, or after ``idle`` seconds without one of them
    once publishing is done. Returns the signals in arrival order and the ids that never
    came (e.g. bars the live state had already seen: they go to the deadletter topic).
    """
    from aiokafka import AIOKafkaConsumer

    from gnosis.events import signal_id
    from gnosis.streams.topics import client_options

    want = {signal_id(b.ticker, b.ts, b.interval) for b in bars}
    consumer = AIOKafkaConsumer(settings.kafka.signals_topic, **client_options(settings),
                                group_id=None, enable_auto_commit=False,
                                isolation_level="read_committed")
    found: dict[str, TradingSignal] = {}
    try:
        await consumer.start()
        while not consumer.assignment():  # follows the first metadata response
            await asyncio.sleep(0.05)
        for tp, offset in (await consumer.end_offsets(list(consumer.assignment()))).items():
            consumer.seek(tp, offset)
        publisher = asyncio.create_task(publish_async(bars, news, settings, speed))
        last_new = time.monotonic()
        while len(found) < len(want):
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    signal = TradingSignal.from_json(record.value)
                    if signal.signal_id in want and signal.signal_id not in found:
                        found[signal.signal_id] = signal
                        last_new = time.monotonic()
                        if on_signal is not None:
                            on_signal(signal)
            if publisher.done():
                publisher.result()  # raises if publishing failed
                if time.monotonic() - last_new > idle:
                    break
            else:
                last_new = time.monotonic()
        await publisher
    finally:
        await consumer.stop()
    return list(found.values()), want - set(found)
