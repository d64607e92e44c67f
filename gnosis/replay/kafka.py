"""Replay history through Kafka: publish bars and news in knowledge-time order, collect
signals.

This is how the live path is checked against the in-process one: publish the same input
the backtester uses, let a worker process it, read the signals back and compare. Records
are published in the order they were known (``received_at``, else as
:mod:`gnosis.replay.knowledge` models it), so the broker's append times, the live
knowledge times, keep that order.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Iterator, Sequence
from typing import Any

from gnosis.config import Settings, duration_ns
from gnosis.events import Bar, NewsItem, TradingSignal

_NS = 1_000_000_000


def event_order(bars: Sequence[Bar], news: Sequence[NewsItem], bars_known: Sequence[int],
                news_known: Sequence[int]) -> Iterator[tuple[int, Bar | NewsItem]]:
    """``(knowledge time, event)`` of bars and news merged by knowledge time; news known at
    ``t`` comes before bars known at ``t`` (ties then stay ties, or keep their order)."""
    keyed_news = sorted((news_known[i], 0, news[i].ts, i) for i in range(len(news)))
    keyed_bars = sorted((bars_known[i], 1, bars[i].ts, i) for i in range(len(bars)))
    for known, kind, _, i in heapq.merge(keyed_news, keyed_bars):
        yield known, news[i] if kind == 0 else bars[i]


async def publish_async(bars: Sequence[Bar], news: Sequence[NewsItem], settings: Settings,
                        speed: float | None = None, progress: bool = False, *,
                        bars_known: Sequence[int] | None = None,
                        news_known: Sequence[int] | None = None) -> int:
    """Publish in knowledge-time order; returns the number of records sent.

    ``bars_known`` and ``news_known`` are the events' knowledge times (epoch ns, in their
    order); without them a bar is known at its close and a headline
    ``replay.news_latency`` after its stamp (:mod:`gnosis.replay.knowledge`). ``speed``
    ``None`` sends as fast as possible; ``60.0`` replays a minute of knowledge time per
    second. What was known first is appended first: a bar is only sent once every
    headline before it was acknowledged, and a headline known after a bar only once that
    bar was acknowledged and the clock has moved past its append time, so the broker's
    append times order them as their knowledge times do (the brokers' clocks being this
    machine's, as for a local broker).
    """
    from aiokafka import AIOKafkaProducer

    from gnosis.security import client_options

    if bars_known is None:
        bars_known = [b.ts for b in bars]
    if news_known is None:
        delay = duration_ns(settings.replay.news_latency)
        news_known = [n.ts + delay for n in news]
    k = settings.kafka
    producer = AIOKafkaProducer(**client_options(settings), acks="all",
                                enable_idempotence=True, linger_ms=5,
                                max_batch_size=256 * 1024)
    sent = 0
    news_in_flight: list[asyncio.Future] = []
    bars_in_flight: list[asyncio.Future] = []
    first: int | None = None
    started = time.monotonic()
    try:
        await producer.start()  # inside: a refused start must still close the client
        for known, event in event_order(bars, news, bars_known, news_known):
            if speed:
                first = known if first is None else first
                due = started + (known - first) / _NS / speed
                if (wait := due - time.monotonic()) > 0:
                    await asyncio.sleep(wait)
            if isinstance(event, NewsItem):
                if bars_in_flight:
                    await _after(bars_in_flight)
                key = event.tickers[0].encode()
                news_in_flight.append(await producer.send(k.news_topic, event.to_json(), key=key))
            else:
                if news_in_flight:
                    await asyncio.gather(*news_in_flight)
                    news_in_flight.clear()
                bars_in_flight.append(await producer.send(k.bars_topic, event.to_json(),
                                                          key=event.ticker.encode()))
            sent += 1
            if progress and sent % 10_000 == 0:
                print(f"published {sent:,} records", flush=True)
        await producer.flush()
    finally:
        await producer.stop()
    return sent


async def _after(in_flight: list[asyncio.Future]) -> None:
    """Wait for the records in flight, then until the wall clock is past the millisecond of
    the last one's timestamp, so that what is sent next is stamped later; clears the
    list."""
    acked = await asyncio.gather(*in_flight)
    in_flight.clear()
    last_ms = max(meta.timestamp for meta in acked)
    while (wait := (last_ms + 1) / 1000 - time.time()) > 0:
        await asyncio.sleep(wait)


def publish(bars: Sequence[Bar], news: Sequence[NewsItem], settings: Settings,
            speed: float | None = None, progress: bool = True, *,
            bars_known: Sequence[int] | None = None,
            news_known: Sequence[int] | None = None) -> int:
    """Blocking :func:`publish_async`."""
    return asyncio.run(publish_async(bars, news, settings, speed, progress,
                                     bars_known=bars_known, news_known=news_known))


async def read_committed(options: dict[str, Any], topic: str, *, expected: int | None = None,
                         timeout: float = 60.0, idle: float = 2.0,
                         linger: bool = False) -> list[Any]:
    """Every record of ``topic`` from the start, read with ``read_committed``.

    Stops at ``expected`` records (after ``idle`` more quiet seconds when ``linger``, to
    catch anything that would arrive twice), after ``idle`` seconds without a new record
    when ``expected`` is ``None``, or at ``timeout``. ``options`` are client options,
    e.g. :func:`gnosis.security.client_options` or ``{"bootstrap_servers": ...}``.
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
    from gnosis.security import client_options

    records = await read_committed(client_options(settings), settings.kafka.signals_topic,
                                   expected=expected, timeout=timeout, idle=idle)
    return [TradingSignal.from_json(r.value) for r in records]


def collect_signals(settings: Settings, expected: int | None = None,
                    timeout: float = 60.0) -> list[TradingSignal]:
    """Blocking :func:`collect_signals_async`."""
    return asyncio.run(collect_signals_async(settings, expected, timeout))


async def replay_via_kafka(bars: list[Bar], news: list[NewsItem], settings: Settings, *,
                           speed: float | None = None, idle: float = 30.0,
                           on_signal: Any = None, bars_known: Sequence[int] | None = None,
                           news_known: Sequence[int] | None = None
                           ) -> tuple[list[TradingSignal], set[str]]:
    """Publish ``bars`` and ``news`` and collect the signals of exactly these bars.

    The signals topic's end offsets are noted before publishing, so signals written
    earlier (another run, other producers) are never taken for this run's. Collection
    stops when every bar's signal arrived, or after ``idle`` seconds without one of them
    once publishing is done. Returns the signals in arrival order and the ids that never
    came (e.g. bars the live state had already seen: they go to the deadletter topic).
    """
    from aiokafka import AIOKafkaConsumer

    from gnosis.events import signal_id
    from gnosis.security import client_options

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
        publisher = asyncio.create_task(publish_async(bars, news, settings, speed,
                                                      bars_known=bars_known,
                                                      news_known=news_known))
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
