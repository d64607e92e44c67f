"""The live worker on a real broker: same signals as in-process, kcat-readable, observable."""

from __future__ import annotations

import shutil
import subprocess

import orjson
import pytest

from gnosis.engine import run_events
from gnosis.events import TradingSignal
from gnosis.replay.kafka import collect_signals, publish
from gnosis.streams.kafka.broker import free_port

from .conftest import http_get, market_events

pytestmark = [pytest.mark.kafka, pytest.mark.slow]




@pytest.fixture
def live_run(kafka_settings, kafka_topics, worker_process):
    """3,000 bars and ~900 headlines through an exactly-once worker; signals read back."""
    settings = kafka_settings(partitions=3, processing_guarantee="exactly_once",
                              web_port=free_port())
    kafka_topics(settings)
    bars, news = market_events(bars_per_ticker=600)
    expected = run_events(bars, news, settings)
    publish(bars, news, settings, progress=False)
    worker = worker_process(settings)
    got = collect_signals(settings, expected=len(expected), timeout=120)
    return settings, worker, expected, got


def test_live_signals_equal_in_process_signals(live_run) -> None:
    settings, worker, expected, got = live_run
    assert worker.alive()
    assert len(got) == len(expected)
    by_id = {s.signal_id: s for s in got}
    assert len(by_id) == len(got), "a signal was emitted twice"
    for ref in expected:
        live = by_id[ref.signal_id]
        assert (live.ticker, live.ts, live.signal_type, live.risk_level) == (
            ref.ticker, ref.ts, ref.signal_type, ref.risk_level)
        assert live.confidence == pytest.approx(ref.confidence, abs=1e-9)
        assert live.sentiment_count == ref.sentiment_count
        assert live.sentiment_mean == pytest.approx(ref.sentiment_mean, abs=1e-9)
        assert live.suggested_position_size == pytest.approx(ref.suggested_position_size,
                                                             abs=1e-9)
    # Per ticker, signals come out in bar order.
    for ticker in {s.ticker for s in got}:
        stamps = [s.ts for s in got if s.ticker == ticker]
        assert stamps == sorted(stamps)

    # /health is ready and names the model; /metrics counts what was processed.
    port = settings.worker.web_port
    status, body = http_get(f"http://127.0.0.1:{port}/health")
    health = orjson.loads(body)
    assert status == 200
    assert health["status"] == "ok"
    assert health["sentiment_model"]
    status, body = http_get(f"http://127.0.0.1:{port}/metrics")
    text = body.decode()
    assert status == 200
    bars_line = next(line for line in text.splitlines()
                     if line.startswith("gnosis_bars_consumed_total "))
    assert float(bars_line.split()[1]) == len(expected)
    assert "gnosis_bar_to_signal_seconds_bucket" in text


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat is not installed")
def test_kcat_reads_every_signal(live_run) -> None:
    settings, _, expected, _ = live_run
    out = subprocess.run(
        ["kcat", "-C", "-b", settings.kafka.bootstrap_servers, "-t",
         settings.kafka.signals_topic, "-X", "isolation.level=read_committed",
         "-o", "beginning", "-e", "-q", "-f", "%s\n"],
        capture_output=True, check=True, timeout=60)
    lines = [line for line in out.stdout.splitlines() if line]
    signals = [TradingSignal.from_json(line) for line in lines]
    assert len(signals) == len(expected)
    assert {s.signal_id for s in signals} == {s.signal_id for s in expected}
