"""A worker keeps its place in the group however many partitions (tasks) it owns.

aiokafka sends no heartbeat while the rebalance listener runs; a worker that restored its
tasks and looked up their offsets there, one partition at a time, spent about a minute on
32 tasks, was put out of the group for it, restored everything again, and so on. Here a
single worker drains a backlog on 32 partitions within the one group generation it
joined, and two workers on 32 partitions, one killed with SIGKILL, deliver the replay's
signals field for field.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import replace

import orjson
import pytest

from gnosis.engine import run_events
from gnosis.replay.kafka import publish
from gnosis.sinks import metrics
from gnosis.streams.assignor import group_generation
from gnosis.streams.kafka.broker import free_port

from .conftest import (
    active_rules,
    assert_same_signals,
    collect_all,
    http_get,
    kill_when,
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


@pytest.mark.slow
def test_one_of_two_workers_on_32_partitions_killed(kafka_settings, kafka_topics,
                                                    worker_process) -> None:
    settings = active_rules(kafka_settings(partitions=PARTITIONS))
    kafka_topics(settings)
    bars, news = market_events(TICKERS, bars_per_ticker=260, news_per_bar=0.25, seed=12)
    expected = run_events(bars, news, settings)
    first = worker_process(replace(settings, worker=replace(settings.worker,
                                                            web_port=free_port())))
    port = free_port()
    worker_process(replace(settings, worker=replace(settings.worker, web_port=port)))
    publisher = threading.Thread(target=publish, args=(bars, news, settings),
                                 kwargs={"progress": False, "speed": 500.0}, daemon=True)
    publisher.start()
    held = kill_when(first, settings.kafka.bootstrap_servers, settings.kafka.signals_topic,
                     len(expected) // 4, timeout=120)
    assert 0 < held < len(expected), "the kill did not land mid-stream"
    got = collect_all(settings, len(expected), exactly_once=False)
    publisher.join(60)
    assert_same_signals(got, expected, exactly_once=False)
    # The survivor took the killed worker's 16 tasks over without missing a generation.
    status, body = http_get(f"http://127.0.0.1:{port}/health")
    assert status == 200 and json.loads(body)["group_expulsions"] == 0
