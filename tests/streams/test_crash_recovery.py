"""kill -9 mid-stream, restart: no signal lost; none repeated under exactly-once."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from gnosis.engine import run_events
from gnosis.replay.kafka import collect_signals, publish
from gnosis.streams.kafka.broker import free_port

from .conftest import kill_when, market_events

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

# The input is published over this long in wall time while the worker runs, so that the
# kill lands mid-stream however fast the worker drains what it has.
PUBLISH_SECONDS = 8.0


@pytest.mark.parametrize("guarantee", ["exactly_once", "at_least_once"])
def test_kill_and_restart(guarantee, kafka_settings, kafka_topics, worker_process) -> None:
    settings = kafka_settings(partitions=2, processing_guarantee=guarantee,
                              web_port=free_port(), snapshot_every=64)
    kafka_topics(settings)
    bars, news = market_events(tickers=("AAPL", "MSFT", "GOOG", "TSLA"),
                               bars_per_ticker=2_000, news_per_bar=0.2)
    expected = run_events(bars, news, settings)
    speed = (bars[-1].ts - bars[0].ts) / 1e9 / PUBLISH_SECONDS
    publisher = threading.Thread(target=publish, args=(bars, news, settings),
                                 kwargs={"progress": False, "speed": speed}, daemon=True)

    first = worker_process(settings)
    publisher.start()
    # Kill once a good part, but not all, of the output exists (uncommitted included).
    produced = kill_when(first, settings.kafka.bootstrap_servers, settings.kafka.signals_topic,
                         len(expected) // 4, timeout=90)
    assert 0 < produced < len(expected), "the kill did not land mid-stream"
    publisher.join()

    worker_process(settings)
    got = collect_signals(settings, expected=len(expected), timeout=120)
    # Wait a little for anything that would arrive twice.
    got = collect_signals(settings, expected=None, timeout=10) if len(got) >= len(
        expected) else got
    counts = Counter(s.signal_id for s in got)
    assert set(counts) == {s.signal_id for s in expected}, "signals lost"
    if guarantee == "exactly_once":
        assert max(counts.values()) == 1, "a signal was emitted twice"
        by_id = {s.signal_id: s for s in got}
        for ref in expected:
            live = by_id[ref.signal_id]
            assert live.signal_type == ref.signal_type
            assert live.confidence == pytest.approx(ref.confidence, abs=1e-9)
    else:
        # Repeats are allowed, but only as copies of a signal that was already emitted.
        first_seen = {}
        for s in got:
            first_seen.setdefault(s.signal_id, s)
            assert s.signal_type == first_seen[s.signal_id].signal_type
