"""A real Prometheus scrapes a live worker (a ``gnosis.streams.service`` process on a real
Kafka broker) and sees exactly the work it did."""

from __future__ import annotations

import shutil
import subprocess

import orjson
import pytest

from gnosis.events import Bar
from gnosis.streams.records import ticker_partition

MINUTE_NS = 60 * 1_000_000_000
START_NS = 1_704_204_000 * 1_000_000_000


@pytest.mark.kafka
@pytest.mark.slow
def test_prometheus_scrapes_live_worker(kafka_settings, kafka_topics, worker_process,
                                        prometheus, unused_port: int) -> None:
    settings = kafka_settings(partitions=2, web_port=unused_port)
    kafka_topics(settings)
    price, bars = 100.0, []
    for i in range(30):
        close = price * (1.001 if i % 3 else 0.999)
        bars.append(Bar("AAPL", START_NS + (i + 1) * MINUTE_NS, price, max(price, close) + 0.1,
                        min(price, close) - 0.1, close, 1_000.0 + 10 * i))
        price = close
    records = [(b"AAPL", bar.to_json()) for bar in bars]
    bad = {**bars[9].to_dict(), "high": 1.0}  # high below the body: to the deadletter topic
    records.insert(10, (b"AAPL", orjson.dumps(bad)))
    # Produced by kcat, a client that is not ours, onto the ticker's partition.
    if shutil.which("kcat") is None:
        pytest.skip("kcat is not installed (scripts/setup-system.sh installs it)")
    lines = b"".join(key + b"\t" + value + b"\n" for key, value in records)
    subprocess.run(["kcat", "-P", "-b", settings.kafka.bootstrap_servers, "-t",
                    settings.kafka.bars_topic, "-K", "\t", "-p",
                    str(ticker_partition("AAPL", settings.kafka.partitions))],
                   input=lines, check=True, timeout=60)

    worker_process(settings)
    prom = prometheus({"gnosis-worker": [f"127.0.0.1:{settings.worker.web_port}"]})
    prom.wait_until_up("gnosis-worker", timeout=90)
    prom.wait_for_value("gnosis_bars_consumed_total", 30, timeout=120)
    assert prom.scalar("sum(gnosis_signals_emitted_total)") == 30
    assert prom.scalar("gnosis_bar_to_signal_seconds_count") == 30
    prom.wait_for_value('gnosis_deadletter_events_total{reason="high_below_body"}', 1)
    assert prom.scalar("gnosis_tickers_in_state") == 1
