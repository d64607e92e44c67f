"""Live signals equal the replay at the topologies we ship, and under the faults they meet.

Real worker processes in one consumer group on a real broker: one, two and three of them,
one killed with SIGKILL under either guarantee (the survivor never put out of the group),
workers added mid-stream and a rolling restart under either guarantee, one paused until
the group went on without it, and the broker itself killed and restarted. Each scenario
runs at 4 partitions and again at 32, where each worker owns many tasks (to keep the suite
short, only three workers and exactly-once restarts there): at 32 the market has 32 to 40
tickers, so that most partitions hold some, with fewer bars each. Input is published
while the workers run (news stamped ``<= t`` acknowledged before bars at ``t``,
as a live feed does), so every interleaving the network allows can occur. Each run must
deliver every expected signal with every field equal to the in-process replay; under
exactly-once none twice. Small windows and thresholds a random walk meets
(``active_rules``) make the compared signals warm: BUY and SELL decisions, Hurst and
Hawkes values.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable
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


@dataclass(frozen=True)
class Scale:
    """The markets run on a topic of some partition count."""

    tickers: tuple[int, int]
    """Least and most tickers."""
    bars: tuple[int, int]
    """Least and most bars per ticker: about twice ``window``, so that most signals are warm."""
    window: int
    """The features window (see :func:`active_rules`)."""


# At 32 partitions, enough tickers that most partitions hold some (about two thirds), and
# fewer bars each under the shortest window: a few thousand bars in all, as at 4.
SCALES = {4: Scale(tickers=(6, 9), bars=(260, 340), window=160),
          32: Scale(tickers=(32, 40), bars=(140, 170), window=64)}
PARTITIONS = list(SCALES)


@dataclass(frozen=True)
class Market:
    tickers: tuple[str, ...]
    bars_per_ticker: int
    news_per_bar: float
    seed: int


def markets(scale: Scale) -> st.SearchStrategy[Market]:
    return st.builds(
        Market,
        st.lists(st.from_regex(r"[A-Z]{2,4}", fullmatch=True), min_size=scale.tickers[0],
                 max_size=scale.tickers[1], unique=True).map(tuple),
        st.integers(*scale.bars), st.floats(0.15, 0.4), st.integers(0, 2**16))


def topology_settings(kafka_settings: Callable[..., Settings], partitions: int,
                      **worker: object) -> Settings:
    """Settings of a test's topics at ``partitions``, with the rules of :func:`active_rules`
    at that scale's window; ``worker`` overrides ``[worker]`` fields."""
    return active_rules(kafka_settings(partitions=partitions, **worker),
                        SCALES[partitions].window)


def market_input(key: int, partitions: int) -> tuple[list[Bar], list[NewsItem]]:
    """The bars and news of one market drawn for ``partitions``, the same on every run for a
    given ``key``."""
    market = drawn(markets(SCALES[partitions]), key)
    bars, news = market_events(market.tickers, market.bars_per_ticker, market.news_per_bar,
                               market.seed)
    # The case that broke the old barrier: one headline, two tickers on one partition.
    shared = [n for n in news if len(n.tickers) != len({ticker_partition(t, partitions)
                                                         for t in n.tickers})]
    assert shared, "the market should name tickers that share a partition"
    held = {ticker_partition(t, partitions) for t in market.tickers}
    assert 2 * len(held) > partitions, f"{len(held)} of {partitions} partitions hold tickers"
    return bars, news


def speed_for(bars: list[Bar], seconds: float) -> float:
    """How many times faster than wall time event time runs for publishing ``bars`` to take
    ``seconds``."""
    times = [b.ts for b in bars]
    return (max(times) - min(times)) / 1e9 / seconds


# Publishing takes this long in wall time: long enough for faults to land mid-stream.
PUBLISH_SECONDS = 9.0


def publish_in_background(bars: list[Bar], news: list[NewsItem], settings: Settings, *,
                          speed: float | None) -> threading.Thread:
    thread = threading.Thread(target=publish, args=(bars, news, settings),
                              kwargs={"progress": False, "speed": speed}, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize(("workers", "guarantee", "key", "partitions"), [
    (1, "at_least_once", 1, 4), (2, "exactly_once", 2, 4), (3, "exactly_once", 3, 4),
    (3, "exactly_once", 3, 32)])
def test_n_workers_equal_the_replay(workers, guarantee, key, partitions, kafka_settings,
                                    kafka_topics, worker_process) -> None:
    settings = topology_settings(kafka_settings, partitions, processing_guarantee=guarantee)
    kafka_topics(settings)
    bars, news = market_input(key, partitions)
    expected = run_events(bars, news, settings)
    for _ in range(workers):
        worker_process(replace(settings, worker=replace(settings.worker,
                                                        web_port=free_port())))
    publisher = publish_in_background(bars, news, settings, speed=None)
    got = collect_all(settings, len(expected), exactly_once=guarantee == "exactly_once")
    publisher.join(60)
    assert_same_signals(got, expected, exactly_once=guarantee == "exactly_once")


@pytest.mark.parametrize("partitions", PARTITIONS)
@pytest.mark.parametrize("guarantee", ["exactly_once", "at_least_once"])
def test_one_of_two_workers_killed(guarantee, partitions, kafka_settings, kafka_topics,
                                   worker_process) -> None:
    settings = topology_settings(kafka_settings, partitions, processing_guarantee=guarantee)
    kafka_topics(settings)
    bars, news = market_input(4, partitions)
    expected = run_events(bars, news, settings)
    first = worker_process(replace(settings, worker=replace(settings.worker,
                                                            web_port=free_port())))
    survivor = worker_process(replace(settings, worker=replace(settings.worker,
                                                               web_port=free_port())))
    # Slower than elsewhere: the kill must land while input still arrives, however quickly
    # the workers keep up and however long counting the signals takes on a busy machine.
    publisher = publish_in_background(bars, news, settings,
                                      speed=speed_for(bars, 4 * PUBLISH_SECONDS))
    held = kill_when(first, settings.kafka.bootstrap_servers, settings.kafka.signals_topic,
                     len(expected) // 4, timeout=120)
    assert 0 < held < len(expected), "the kill did not land mid-stream"
    got = collect_all(settings, len(expected), exactly_once=guarantee == "exactly_once")
    publisher.join(60)
    assert_same_signals(got, expected, exactly_once=guarantee == "exactly_once")
    # The survivor took the killed worker's tasks over without missing a generation.
    status, body = http_get(f"http://127.0.0.1:{survivor.settings.worker.web_port}/health")
    assert status == 200 and json.loads(body)["group_expulsions"] == 0


@pytest.mark.parametrize(("guarantee", "partitions"), [
    ("exactly_once", 4), ("at_least_once", 4), ("exactly_once", 32)])
def test_workers_added_mid_stream_and_a_rolling_restart(guarantee, partitions,
                                                        kafka_settings, kafka_topics,
                                                        worker_process) -> None:
    settings = topology_settings(kafka_settings, partitions, processing_guarantee=guarantee)
    kafka_topics(settings)
    bars, news = market_input(5, partitions)
    expected = run_events(bars, news, settings)

    def start():
        return worker_process(replace(settings, worker=replace(settings.worker,
                                                               web_port=free_port())))

    first = start()
    publisher = publish_in_background(bars, news, settings,
                                      speed=speed_for(bars, PUBLISH_SECONDS))
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


@pytest.mark.parametrize("partitions", PARTITIONS)
def test_a_worker_the_group_went_on_without(partitions, kafka_settings, kafka_topics,
                                            worker_process) -> None:
    """A worker paused past its session misses a generation in which another worker owns
    its tasks and moves their state on; when it rejoins, what it kept in memory is stale,
    and the signals of the tasks it gets back must still equal the replay."""
    settings = topology_settings(kafka_settings, partitions, session_timeout=6.0)
    # The input goes out in three parts cut at bar closes: a headline is known at its stamp,
    # so that each part holds exactly what was known before the next.
    settings = replace(settings, replay=replace(settings.replay, news_latency="0"))
    kafka_topics(settings)
    bars, news = market_input(7, partitions)
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
                   lambda: owned_bars(other.settings) == set(range(partitions)))
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


@pytest.mark.parametrize("partitions", PARTITIONS)
def test_broker_killed_and_restarted(partitions, tmp_path, kafka_settings, kafka_topics,
                                     worker_process) -> None:
    kafka = LocalKafka(port=free_port(), data_dir=tmp_path / "kafka").start(timeout=120)
    try:
        base = topology_settings(kafka_settings, partitions,
                                 processing_guarantee="exactly_once")
        settings = replace(base, kafka=replace(base.kafka,
                                               bootstrap_servers=kafka.bootstrap_servers))
        kafka_topics(settings)
        bars, news = market_input(6, partitions)
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
