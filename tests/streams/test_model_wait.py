"""A slow model holds back only the bars its headline concerns.

The scorer here blocks until the test lets it go, so nothing depends on timing: while it
holds a headline about one ticker, bars of a ticker on another partition get their signals,
and the named ticker's bar waits until the score is in, then counts it.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

import pytest

from gnosis.events import Bar, NewsItem, TradingSignal
from gnosis.streams.records import ticker_partition

from .conftest import MINUTE_NS, START_NS, worker_in_loop

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

PARTITIONS = 4


@dataclass
class _Score:
    score: float


class GatedModel:
    """A 'model' (so it runs in the worker's scoring thread) that waits for :attr:`go`."""

    model_id = "gated-test-model"

    def __init__(self) -> None:
        self.go = threading.Event()
        self.holding = threading.Event()

    def score_batch(self, headlines: list[str]) -> list[_Score]:
        if any("HOLD-ME" in h for h in headlines):
            self.holding.set()
            assert self.go.wait(120), "the test never let the model go"
        return [_Score(0.5) for _ in headlines]


def _tickers() -> tuple[str, str]:
    names = [f"T{i}" for i in range(40)]
    named = names[0]
    other = next(t for t in names if ticker_partition(t, PARTITIONS) != ticker_partition(
        named, PARTITIONS))
    return named, other


def _bar(ticker: str, i: int) -> Bar:
    return Bar(ticker, START_NS + i * MINUTE_NS, 100.0, 101.0, 99.0, 100.5, 1_000.0, "1m")


async def _scenario(settings) -> None:
    named, other = _tickers()
    model = GatedModel()
    async with worker_in_loop(settings, model) as (_, producer, signals):
        try:
            await _steps(settings, model, producer, signals, named, other)
        finally:
            model.go.set()  # before the worker stops: it waits for the model in flight


async def _steps(settings, model: GatedModel, producer, signals, named: str,
                 other: str) -> None:
    got: dict[tuple[str, int], TradingSignal] = {}

    async def until(predicate, what: str) -> None:
        for _ in range(1200):
            if predicate():
                return
            batch = await signals.getmany(timeout_ms=100)
            for records in batch.values():
                for r in records:
                    s = TradingSignal.from_json(r.value)
                    got[(s.ticker, s.ts)] = s
        raise AssertionError(f"timed out waiting for {what}")

    for i in (1, 2):
        for t in (named, other):
            await producer.send_and_wait(settings.kafka.bars_topic, _bar(t, i).to_json(),
                                         key=t.encode())
    await until(lambda: len(got) == 4, "the first bars' signals")
    headline = NewsItem("n1", START_NS + 2 * MINUTE_NS + 1, (named,), "HOLD-ME: news")
    await producer.send_and_wait(settings.kafka.news_topic, headline.to_json(),
                                 key=named.encode())
    await asyncio.get_running_loop().run_in_executor(None, model.holding.wait, 60)
    for t in (named, other):
        await producer.send_and_wait(settings.kafka.bars_topic, _bar(t, 3).to_json(),
                                     key=t.encode())
    # The other partition's bar is not held back by the model...
    await until(lambda: (other, _bar(other, 3).ts) in got, "the other ticker's bar")
    assert (named, _bar(named, 3).ts) not in got, "the named ticker did not wait"
    assert model.holding.is_set() and not model.go.is_set()
    # ...the named ticker's bar waits for its headline, then counts it.
    model.go.set()
    await until(lambda: (named, _bar(named, 3).ts) in got, "the named ticker's bar")
    assert got[(named, _bar(named, 3).ts)].sentiment_count == 1
    assert got[(other, _bar(other, 3).ts)].sentiment_count == 0


def test_a_slow_model_holds_back_only_the_bars_its_headline_names(kafka_settings,
                                                                 kafka_topics) -> None:
    settings = kafka_settings(partitions=PARTITIONS)
    kafka_topics(settings)
    asyncio.run(_scenario(settings))
