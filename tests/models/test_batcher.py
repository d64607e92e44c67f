"""The micro-batcher groups concurrent requests and never holds one past max_wait."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from gnosis.models.sentiment import LexiconScorer, MicroBatcher, SentimentScore
from gnosis.sinks.metrics import REGISTRY

HEADLINES = [f"Company {i} shares {'surge' if i % 2 else 'slump'}" for i in range(40)]


def test_concurrent_requests_share_batches(recording_lexicon) -> None:
    scorer = recording_lexicon

    async def main() -> list[SentimentScore]:
        async with MicroBatcher(scorer, batch_size=16, max_wait_ms=200) as batcher:
            return await asyncio.gather(*(batcher.score(h) for h in HEADLINES))

    results = asyncio.run(main())
    assert [len(b) for b in scorer.batches] == [16, 16, 8]
    assert results == LexiconScorer().score_batch(HEADLINES)  # each caller gets its own


def test_lone_request_is_scored_after_max_wait(recording_lexicon) -> None:
    scorer = recording_lexicon

    async def main() -> list[SentimentScore]:
        async with MicroBatcher(scorer, batch_size=64, max_wait_ms=20) as batcher:
            first = await asyncio.wait_for(batcher.score("Acme beats"), timeout=30)
            second = await asyncio.wait_for(batcher.score("Globex falls"), timeout=30)
            return [first, second]

    first, second = asyncio.run(main())
    assert scorer.batches == [["Acme beats"], ["Globex falls"]]
    assert first.score > 0 > second.score


def test_requests_within_max_wait_are_grouped(recording_lexicon) -> None:
    scorer = recording_lexicon

    async def main() -> None:
        async with MicroBatcher(scorer, batch_size=64, max_wait_ms=500) as batcher:
            first = asyncio.ensure_future(batcher.score("Acme beats"))
            await asyncio.sleep(0.02)  # well inside the 500 ms window
            await asyncio.gather(first, batcher.score("Globex falls"))

    asyncio.run(main())
    assert scorer.batches == [["Acme beats", "Globex falls"]]


def test_batches_are_observed_in_prometheus() -> None:
    count = "gnosis_sentiment_batch_size_count"
    total = "gnosis_sentiment_batch_size_sum"
    before = REGISTRY.get_sample_value(count) or 0.0, REGISTRY.get_sample_value(total) or 0.0

    async def main() -> None:
        async with MicroBatcher(LexiconScorer(), batch_size=8, max_wait_ms=200) as batcher:
            await asyncio.gather(*(batcher.score(h) for h in HEADLINES[:20]))

    asyncio.run(main())
    assert REGISTRY.get_sample_value(count) - before[0] == 3
    assert REGISTRY.get_sample_value(total) - before[1] == 20
    assert (REGISTRY.get_sample_value("gnosis_sentiment_batch_seconds_count") or 0) >= 3


def test_scorer_error_reaches_callers_and_batcher_goes_on() -> None:
    class Fragile(LexiconScorer):
        def score_batch(self, texts: Sequence[str]) -> list[SentimentScore]:
            if "boom" in texts:
                raise RuntimeError("model failed")
            return super().score_batch(texts)

    async def main() -> tuple[BaseException | SentimentScore, SentimentScore]:
        async with MicroBatcher(Fragile(), batch_size=1, max_wait_ms=0) as batcher:
            failed = (await asyncio.gather(batcher.score("boom"), return_exceptions=True))[0]
            return failed, await batcher.score("Acme beats")

    failed, ok = asyncio.run(main())
    assert isinstance(failed, RuntimeError)
    assert ok.score > 0


def test_batcher_survives_a_new_event_loop() -> None:
    batcher = MicroBatcher(LexiconScorer(), batch_size=4, max_wait_ms=1)
    first = asyncio.run(batcher.score("Acme beats"))  # loop closed without close()
    second = asyncio.run(asyncio.wait_for(batcher.score("Acme beats"), timeout=30))
    assert first == second
    asyncio.run(batcher.close())
