"""Headlines that arrive together are scored in micro-batches, and signals stay exact."""

from __future__ import annotations

import time
import urllib.request
from dataclasses import replace

import pytest

from gnosis.engine import run_events
from gnosis.models.sentiment import TINY_MODEL_DIR, load_scorer
from gnosis.replay.kafka import collect_signals, publish
from gnosis.streams.kafka.broker import free_port

from .conftest import market_events

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

BATCH_SIZE = 8


def _metrics(port: int) -> dict[str, float]:
    """Unlabelled samples and the batch-size buckets of the worker's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("gnosis_") and " " in line:
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


@pytest.mark.parametrize("model", ["lexicon", "onnx"])
def test_headlines_arriving_together_are_scored_in_batches(
        model, kafka_settings, kafka_topics, worker_process, monkeypatch) -> None:
    settings = kafka_settings(partitions=2, processing_guarantee="exactly_once",
                              web_port=free_port())
    model_dir = str(TINY_MODEL_DIR) if model == "onnx" else ""
    settings = replace(settings, sentiment=replace(settings.sentiment, batch_size=BATCH_SIZE,
                                                   max_wait_ms=50.0, model_dir=model_dir))
    # The worker subprocess reads its sentiment section from the environment.
    monkeypatch.setenv("GNOSIS_SENTIMENT__BATCH_SIZE", str(BATCH_SIZE))
    monkeypatch.setenv("GNOSIS_SENTIMENT__MAX_WAIT_MS", "50")
    monkeypatch.setenv("GNOSIS_SENTIMENT__MODEL_DIR", model_dir)
    kafka_topics(settings)
    bars, news = market_events(tickers=("AAPL", "MSFT"), bars_per_ticker=150, news_per_bar=0.5)
    expected = run_events(bars, news, settings, load_scorer(settings.sentiment))
    # The whole backlog is in the log before the worker starts: headlines arrive together.
    publish(bars, news, settings, progress=False)
    worker_process(settings)
    got = collect_signals(settings, expected=len(expected), timeout=120)

    assert len(got) == len(expected)
    by_id = {s.signal_id: s for s in got}
    for ref in expected:
        live = by_id[ref.signal_id]
        assert live.sentiment_count == ref.sentiment_count
        assert live.model_id == ref.model_id
        if model == "lexicon":
            assert live.signal_type == ref.signal_type
            assert live.confidence == pytest.approx(ref.confidence, abs=1e-9)
            assert live.sentiment_mean == pytest.approx(ref.sentiment_mean, abs=1e-12)
        else:  # a model's scores move in the last float32 digits with the batch's padding
            assert live.sentiment_mean == pytest.approx(ref.sentiment_mean, abs=1e-5)

    port = settings.worker.web_port
    deadline = time.monotonic() + 30
    while (seen := _metrics(port)).get("gnosis_news_consumed_total") != len(news):
        assert time.monotonic() < deadline, "the worker did not score every headline"
        time.sleep(0.2)
    batches = seen["gnosis_sentiment_batch_size_count"]
    assert seen["gnosis_sentiment_batch_size_sum"] == len(news)
    assert seen["gnosis_sentiment_batch_seconds_count"] == batches
    # Some batches held more than one headline, none more than the batch size.
    assert seen['gnosis_sentiment_batch_size_bucket{le="1.0"}'] < batches < len(news)
    assert seen[f'gnosis_sentiment_batch_size_bucket{{le="{float(BATCH_SIZE)}"}}'] == batches
    assert seen['gnosis_signal_confidence_count{signal_type="HOLD"}'] > 0
