"""Live signals equal the replay at the topologies we ship, and under the faults they meet.

Real worker processes in one consumer group on a real broker: one, two and three of them,
one killed with SIGKILL under either guarantee, workers added mid-stream, a rolling
restart, one paused until the group went on without it, and the broker itself killed and
restarted. Input is published while the workers
run (news stamped ``<= t`` acknowledged before bars at ``t``, as a live feed does), so
every interleaving the network allows can occur. Each run must deliver every expected
signal with every field equal to the in-process replay; under exactly-once none twice.
Small windows and thresholds a random walk meets (``active_rules``) make the compared
signals warm: BUY and SELL decisions, Hurst and Hawkes values.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from dataclasses import dataclass, replace

import pytest
from hypothesis import strategies as st

from gnosis.config import Settings
from gnosis.engine import run_events
from gnosis.events import Bar, NewsItem
from gnosis.replay.kafka import publish
from gnosis.streams.kafka.broker import LocalKafka, free_port
from gnosis.streams.records import ticker_partition

from .conftest import (
    active_rules,
    assert_same_signals,
    collect_all,
    drawn,
    http_get,
    kill_when,
    market_events,
    wait_for_records,
    wait_until,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

PARTITIONS = 4


@dataclass(frozen=True)
class Market:
    tickers: tuple[str, ...]
    bars_per_ticker: int
    news_per_bar: float
    seed: int


markets = st.builds(
    Market,
    st.lists(st.from_regex(r"[A-Z]{2,4}", fullmatch=True), min_size=6, max_size=9,
             unique=True).map(tuple),
    st.integers(260, 340), st.floats(0.15, 0.4), st.integers(0, 2**16))


def generated_market(key: int) -> Market:
    """One market drawn from :data:`markets`, the same on every run for a given ``key``."""
    return drawn(markets, key)


def market_input(market: Market) -> tuple[list[Bar], list[NewsItem]]:
    bars, news = market_events(market.tickers, market.bars_per_ticker, market.news_per_bar,
                               market.seed)
    # The case that broke the old barrier: one headline, two tickers on one partition.
    shared = [n for n in news if len(n.tickers) != len({ticker_partition(t, PARTITIONS)
                                                         for t in n.tickers})]
    assert shared, "the market should name tickers that share a partition"
    return bars, news


# Event time runs this many times faster than wall time while publishing: a market of
# about 300 one-minute bars per ticker takes ~9 s, long enough for faults to land mid-stream.
PACE = 2_000.0


def publish_in_background(bars: list[Bar], news: list[NewsItem], settings: Settings, *,
                          speed: float | None = PACE) -> threading.Thread:
    thread = threading.Thread(target=publish, args=(bars, news, settings),
                              kwargs={"progress": False, "speed": speed}, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize(("workers", "guarantee", "key"), [
    (1, "at_least_once", 1), (2, "exactly_once", 2), (3, "exactly_once", 3)])
def test_n_workers_equal_the_replay(workers, guarantee, key, kafka_settings, kafka_topics,
                                    worker_process) -> None:
    settings = active_rules(kafka_settings(partitions=PARTITIONS,
                                            processing_guarantee=guarantee))
    kafka_topics(settings)
    bars, news = market_input(generated_market(key))
    expected = run_events(bars, news, settings)
    for _ in range(workers):
        worker_process(replace(settings, worker=replace(settings.worker,
                                                        web_port=free_port())))
    publisher = publish_in_background(bars, news, settings, speed=None)
    got = collect_all(settings, len(expected), exactly_once=guarantee == "exactly_once")
    publisher.join(60)
    assert_same_signals(got, expected, exactly_once=guarantee == "exactly_once")


@pytest.mark.parametrize("guarantee", ["exactly_once", "at_least_once"])
def test_one_of_two_workers_killed(guarantee, kafka_settings, kafka_topics,
                                   worker_process) -> None:
    settings = active_rules(kafka_settings(partitions=PARTITIONS,
                                            processing_guarantee=guarantee))
    kafka_topics(settings)
    bars, news = market_input(generated_market(4))
    expected = run_events(bars, news, settings)
    first = worker_process(replace(settings, worker=replace(settings.worker,
                                                            web_port=free_port())))
    worker_process(replace(settings, worker=replace(settings.worker, web_port=free_port())))
    # Slower than PACE: the kill must land while input still arrives, however quickly the
    # workers keep up and however long counting the signals takes on a busy machine.
    publisher = publish_in_background(bars, news, settings, speed=PACE / 4)
    held = kill_when(first, settings.kafka.bootstrap_servers, settings.kafka.signals_topic,
                     len(expected) // 4, timeout=120)
    assert 0 < held < len(expected), "the kill did not land mid-stream"
    got = collect_all(settings, len(expected), exactly_once=guarantee == "exactly_once")
    publisher.join(60)
    assert_same_signals(got, expected, exactly_once=guarantee == "exactly_once")


@pytest.mark.parametrize("guarantee", ["exactly_once", "at_least_once"])
def test_workers_added_mid_stream_and_a_rolling_restart(guarantee, kafka_settings,
                                                        kafka_topics, worker_process) -> None:
    settings = active_rules(kafka_settings(partitions=PARTITIONS,
                                            processing_guarantee=guarantee))
    kafka_topics(settings)
    bars, news = market_input(generated_market(5))
    expected = run_events(bars, news, settings)

    def start():
        return worker_process(replace(settings, worker=replace(settings.worker,
                                                               web_port=free_port())))

    first = start()
    publisher = publish_in_background(bars, news, settings)
    wait_for_records(settings.kafka.bootstrap_servers, settings.kafka.signals_topic,
                     len(expected) // 5, timeout=120)
    second, third = start(), start()  # 1 -> 3 workers
    wait_for_records(settings.kafka.bootstrap_servers, settings.kafka.signals_topic,
                     len(expected) // 2, timeout=120)
    for old in (first, second):  # rolling restart: stop one, start its replacement
        old.stop()
        start()
    got = collect_all(settings, len(expected), exactly_once=guarantee == "exactly_once")
    publisher.join(60)
    assert third.alive()
    assert_same_signals(got, expected, exactly_once=guarantee == "exactly_once")


def owned_bars(settings: Settings) -> set[int] | None:
    """The bars partitions a ready worker owns (``None`` while it is not ready)."""
    status, body = http_get(f"http://127.0.0.1:{settings.worker.web_port}/health")
    if status != 200:
        return None
    prefix = f"{settings.kafka.bars_topic}:"
    return {int(tp[len(prefix):]) for tp in json.loads(body)["assigned_partitions"]
            if tp.startswith(prefix)}


def test_a_worker_the_group_went_on_without(kafka_settings, kafka_topics,
                                            worker_process) -> None:
    """A worker paused past its session misses a generation in which another worker owns
    its tasks and moves their state on; when it rejoins, what it kept in memory is stale,
    and the signals of the tasks it gets back must still equal the replay."""
    settings = active_rules(kafka_settings(partitions=PARTITIONS, session_timeout=6.0))
    # The input goes out in three parts cut at bar closes: a headline is known at its stamp,
    # so that each part holds exactly what was known before the next.
    settings = replace(settings, replay=replace(settings.replay, news_latency="0"))
    kafka_topics(settings)
    bars, news = market_input(generated_market(7))
    times = sorted({b.ts for b in bars})
    first_cut, second_cut = times[len(times) // 3], times[2 * len(times) // 3]
    # Headlines stamped during the pause move to just after it (both runs see the same
    # input): the paused worker may fetch the bars published meanwhile before it learns
    # that it is out of the group, and without news both workers then write the same
    # journal entries (see docs/operations.md on at-least-once and paused workers).
    news = [replace(n, ts=second_cut) if first_cut <= n.ts < second_cut else n for n in news]
    expected = run_events(bars, news, settings)
    parts = [([b for b in bars if lo <= b.ts < hi], [n for n in news if lo <= n.ts < hi])
             for lo, hi in ((0, first_cut), (first_cut, second_cut), (second_cut, times[-1] + 1))]
    bootstrap, signals = settings.kafka.bootstrap_servers, settings.kafka.signals_topic

    def start():
        return worker_process(replace(settings, worker=replace(settings.worker,
                                                               web_port=free_port())))

    paused = start()
    publish(*parts[0], settings, progress=False)
    assert wait_for_records(bootstrap, signals, len(parts[0][0]), 120) >= len(parts[0][0])
    time.sleep(1)  # its last commit (every 0.1 s) lands
    os.kill(paused.process.pid, signal.SIGSTOP)
    try:
        other = start()
        wait_until("the other worker owns every task",
                   lambda: owned_bars(other.settings) == set(range(PARTITIONS)))
        publish(*parts[1], settings, progress=False)
        done = len(parts[0][0]) + len(parts[1][0])
        assert wait_for_records(bootstrap, signals, done, 120) >= done
    finally:
        os.kill(paused.process.pid, signal.SIGCONT)
    # Until it learns that the group went on, the resumed worker still reports its old
    # tasks: wait for what it does once it has rejoined.
    wait_until("the resumed worker restores what it kept",
               lambda: "restores every task from its changelog" in paused.log.read_text())
    wait_until("both workers own tasks", lambda: bool(owned_bars(paused.settings))
               and bool(owned_bars(other.settings)))
    publish(*parts[2], settings, progress=False)
    got = collect_all(settings, len(expected), exactly_once=False)
    assert paused.alive() and other.alive()
    assert_same_signals(got, expected, exactly_once=False)


def test_broker_killed_and_restarted(tmp_path, kafka_settings, kafka_topics,
                                     worker_process) -> None:
    kafka = LocalKafka(port=free_port(), data_dir=tmp_path / "kafka").start(timeout=120)
    try:
        base = kafka_settings(partitions=PARTITIONS, processing_guarantee="exactly_once")
        settings = active_rules(replace(base, kafka=replace(
            base.kafka, bootstrap_servers=kafka.bootstrap_servers)))
        kafka_topics(settings)
        bars, news = market_input(generated_market(6))
        expected = run_events(bars, news, settings)
        publish(bars, news, settings, progress=False)
        worker = worker_process(replace(settings, worker=replace(settings.worker,
                                                                 web_port=free_port())))
        wait_for_records(kafka.bootstrap_servers, settings.kafka.signals_topic,
                         len(expected) // 4, timeout=120)
        os.kill(kafka.process.pid, signal.SIGKILL)
        kafka.process.wait(30)
        kafka.start(timeout=120)
        got = collect_all(settings, len(expected), exactly_once=True)
        assert worker.alive()
        assert_same_signals(got, expected, exactly_once=True)
    finally:
        kafka.stop()
