"""A worker's state across restarts, on a real broker: a crash loop is reported, not
hidden behind 'ok'."""

from __future__ import annotations

import orjson
import pytest
from conftest import produce

from gnosis.replay.kafka import publish
from gnosis.streams.kafka.broker import free_port
from gnosis.streams.records import ticker_partition
from gnosis.streams.topics import topic_names

from .conftest import http_get, market_events, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def _health(url: str) -> tuple[int, dict]:
    status, body = http_get(f"{url}/health")
    return status, orjson.loads(body)


def _metric(url: str, name: str) -> float:
    lines = http_get(f"{url}/metrics")[1].decode().splitlines()
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(name + " "))


def test_a_crash_loop_turns_health_to_503_until_a_worker_commits_progress(
        kafka_settings, kafka_topics, worker_process) -> None:
    settings = kafka_settings(partitions=2, processing_guarantee="exactly_once",
                              web_port=free_port(), failing_after=3, retry_backoff_max=1.0)
    kafka_topics(settings)
    # A snapshot that cannot be decoded: every fresh worker fails on AAPL's first bar.
    changelog = topic_names(settings).snapshots_changelog
    p = ticker_partition("AAPL", settings.kafka.partitions)
    produce(settings.kafka.bootstrap_servers, changelog, [(b"AAPL", b"garbage")], partition=p)
    bars, news = market_events(tickers=("AAPL", "MSFT"), bars_per_ticker=40, news_per_bar=0.2)
    publish(bars, news, settings, progress=False)
    worker_process(settings)
    url = f"http://127.0.0.1:{settings.worker.web_port}"

    wait_until("/health says failing", lambda: _health(url)[1].get("status") == "failing", 120)
    status, health = _health(url)
    assert status == 503
    assert health["cause"] == "error: unpack_from requires a buffer of at least 20 bytes for " \
        "unpacking 20 bytes at offset 0 (actual buffer size is 7)"
    assert health["restarts"] >= health["failures_in_a_row"] >= 3
    assert _metric(url, "gnosis_worker_failing") == 1
    assert _metric(url, "gnosis_worker_restarts_total") >= 3

    # The operator deletes the bad snapshot: the next worker starts AAPL afresh, commits
    # its bars, and the process is healthy again.
    produce(settings.kafka.bootstrap_servers, changelog, [(b"AAPL", None)], partition=p)
    wait_until("/health says ok", lambda: _health(url)[1].get("status") == "ok", 120)
    assert _health(url)[0] == 200
    assert _metric(url, "gnosis_worker_failing") == 0
