"""A worker that owns a headline's news partition and its ticker applies it directly.

Once the re-keyed records it sent before have come back, the worker applies a headline to
the tickers it owns as it re-keys it, so their bars wait for no Kafka round trip. The test
takes the round trip away (``news-by-ticker`` is paused) and the bar still counts the
headline: nothing else could have brought it.
"""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import TopicPartition

from gnosis.events import Bar, NewsItem, TradingSignal

from .conftest import MINUTE_NS, START_NS, worker_in_loop

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def _bar(i: int) -> Bar:
    return Bar("AAPL", START_NS + i * MINUTE_NS, 100.0, 101.0, 99.0, 100.5, 1_000.0, "1m")


def _headline(i: int) -> NewsItem:
    return NewsItem(f"n{i}", START_NS + i * MINUTE_NS - 1, ("AAPL",), "AAPL beats estimates")


async def _scenario(settings) -> None:
    async with worker_in_loop(settings) as (worker, producer, signals):
        await _steps(settings, worker, producer, signals)


async def _steps(settings, worker, producer, signals) -> None:
    got: dict[int, TradingSignal] = {}

    async def signal_of(i: int) -> TradingSignal:
        for _ in range(300):
            if _bar(i).ts in got:
                return got[_bar(i).ts]
            for records in (await signals.getmany(timeout_ms=100)).values():
                for r in records:
                    s = TradingSignal.from_json(r.value)
                    got[s.ts] = s
        raise AssertionError(f"no signal for bar {i}")

    async def send(i: int) -> None:
        # Keyed by ticker: the headline's news partition is the ticker's partition.
        await producer.send_and_wait(settings.kafka.news_topic, _headline(i).to_json(),
                                     key=b"AAPL")
        await producer.send_and_wait(settings.kafka.bars_topic, _bar(i).to_json(),
                                     key=b"AAPL")

    # The first headline goes through Kafka: its bar waits for the mark behind it.
    await send(1)
    assert (await signal_of(1)).sentiment_count == 1
    rekeyed = [TopicPartition(worker.topics.news_by_ticker, p)
               for p in range(settings.kafka.partitions)]
    worker.consumer.pause(*rekeyed)
    await send(2)
    assert (await signal_of(2)).sentiment_count == 2
    assert worker.consumer.paused() >= set(rekeyed)


def test_a_headline_for_a_ticker_the_worker_owns_needs_no_round_trip(kafka_settings,
                                                                      kafka_topics) -> None:
    settings = kafka_settings(partitions=2)
    kafka_topics(settings)
    asyncio.run(_scenario(settings))
