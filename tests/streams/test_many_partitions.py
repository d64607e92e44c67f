"""A worker keeps its place in the group however many partitions (tasks) it owns.

aiokafka sends no heartbeat while the rebalance listener runs; a worker that restored its
tasks and looked up their offsets there, one partition at a time, spent about a minute on
32 tasks, was put out of the group for it, restored everything again, and so on. Here a
single worker drains a backlog on 32 partitions within the one group generation it
joined. The topology tests (``test_topology.py``) run most scenarios at 32 partitions too.
"""

from __future__ import annotations

import asyncio

import orjson
import pytest

from gnosis.engine import run_events
from gnosis.replay.kafka import publish
from gnosis.sinks import metrics
from gnosis.streams.assignor import group_generation

from .conftest import (
    active_rules,
    assert_same_signals,
    collect_all,
    market_events,
    worker_in_loop,
)

pytestmark = pytest.mark.kafka

PARTITIONS = 32
TICKERS = ("AAPL", "MSFT", "GOOG", "TSLA", "NVDA", "AMZN", "META", "NFLX", "AMD", "INTC")


def test_one_worker_drains_a_backlog_on_32_partitions_in_one_generation(
        kafka_settings, kafka_topics) -> None:
    settings = active_rules(kafka_settings(partitions=PARTITIONS))
    kafka_topics(settings)
    bars, news = market_events(TICKERS, bars_per_ticker=300, news_per_bar=0.2, seed=11)
    expected = run_events(bars, news, settings)
    publish(bars, news, settings, progress=False, speed=None)  # all of it before the worker
    expulsions = metrics.GROUP_EXPULSIONS._value.get()

    async def drain() -> tuple[int | None, int | None, int, bool]:
        async with worker_in_loop(settings) as (worker, _, signals):
            seen: set[str] = set()
            async with asyncio.timeout(240):
                while len(seen) < len(expected):
                    batch = await signals.getmany(timeout_ms=500)
                    seen.update(orjson.loads(r.value)["signal_id"] for records in batch.values()
                                for r in records)
            hand = worker.assignment
            return (hand.assigned_in, group_generation(worker.consumer), hand.expulsions,
                    worker.health()[0]["group_expulsions"] == hand.expulsions)

    joined, now, expelled, reported = asyncio.run(drain())
    assert joined is not None and now == joined, "the group rebalanced while it drained"
    assert expelled == 0 and reported
    assert metrics.GROUP_EXPULSIONS._value.get() == expulsions
    assert_same_signals(collect_all(settings, len(expected), exactly_once=False), expected,
                        exactly_once=False)
