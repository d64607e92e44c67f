"""A ticker poisoned by a bar from the future is seen in /health and /metrics, shown and
healed with ``gnosis state`` while the worker runs, and every record is accounted for."""

from __future__ import annotations

import re
from dataclasses import replace

import orjson
import pytest

from gnosis.events import format_timestamp
from gnosis.replay.kafka import collect_signals, publish
from gnosis.streams.kafka.broker import free_port
from gnosis.streams.task import REJECTED_RUN

from .conftest import MINUTE_NS, http_get, market_events, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]




def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if re.match(rf"{name}(\{{|\s)", line) and all(f'{k}="{v}"' in line
                                                      for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_poisoned_ticker_is_reported_shown_and_healed(kafka_settings, kafka_topics,
                                                       worker_process, gnosis_cli) -> None:
    settings = kafka_settings(partitions=2, processing_guarantee="exactly_once",
                              web_port=free_port())
    kafka_topics(settings)
    bars, news = market_events(tickers=("AAPL", "MSFT"), bars_per_ticker=120, seed=5)
    cut = sorted(b.ts for b in bars)[len(bars) // 2]
    first, rest = [b for b in bars if b.ts <= cut], [b for b in bars if b.ts > cut]
    good = [b for b in first if b.ticker == "AAPL"][-1]
    # A bar thirty days ahead of the feed: valid on its own, it makes every later AAPL bar
    # "out_of_order".
    future = replace(good, ts=good.ts + 30 * 24 * 60 * MINUTE_NS)
    worker_process(settings)
    url = f"http://127.0.0.1:{settings.worker.web_port}"
    publish([*first, future], [n for n in news if n.ts <= good.ts], settings, progress=False)
    publish(rest[: 2 * REJECTED_RUN * 2], [], settings, progress=False)
    wait_until("/health says degraded", lambda: orjson.loads(
        http_get(f"{url}/health")[1]).get("status") == "degraded", 60)
    status, body = http_get(f"{url}/health")
    health = orjson.loads(body)
    assert status == 200 and health["rejecting_tickers"] == ["AAPL"]
    assert _metric(http_get(f"{url}/metrics")[1].decode(), "gnosis_tickers_rejecting_bars") == 1

    shown = gnosis_cli(settings, "state", "show", "AAPL")
    assert shown.returncode == 0, shown.stderr
    assert format_timestamp(future.ts) in shown.stdout

    healed = gnosis_cli(settings, "state", "reset", "AAPL", "--to", format_timestamp(good.ts))
    assert healed.returncode == 0, healed.stderr
    assert format_timestamp(good.ts) in healed.stdout
    wait_until("/health says ok", lambda: orjson.loads(
        http_get(f"{url}/health")[1]).get("status") == "ok", 60)

    # Bars after the reset produce signals again, continuing from the good state.
    later = [b for b in rest[2 * REJECTED_RUN * 2:] if b.ticker == "AAPL"][:10]
    publish(later, [], settings, progress=False)
    wait_until("signals after the reset", lambda: {b.ts for b in later} <= {
        s.ts for s in collect_signals(settings, expected=None, timeout=10) if s.ticker == "AAPL"},
        60)

    # Accounting: every bar consumed became exactly one signal or one deadletter.
    text = http_get(f"{url}/metrics")[1].decode()
    taken = _metric(text, "gnosis_records_in_total", topic=settings.kafka.bars_topic)
    decided = (_metric(text, "gnosis_record_outcomes_total", topic=settings.kafka.bars_topic,
                       outcome="signal")
               + _metric(text, "gnosis_record_outcomes_total", topic=settings.kafka.bars_topic,
                         outcome="deadletter"))
    assert taken == decided == len(first) + 1 + 2 * REJECTED_RUN * 2 + len(later)

    bad = gnosis_cli(settings, "state", "show", "NOPE")
    assert bad.returncode == 1 and "no state for 'NOPE'" in bad.stderr
