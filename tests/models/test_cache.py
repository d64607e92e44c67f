"""The score cache: hits, misses, normalised keys, eviction and its Prometheus counters."""

from __future__ import annotations

from gnosis.models.sentiment import LexiconScorer, ScoreCache
from gnosis.sinks.metrics import REGISTRY


def _counter(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def test_hits_and_misses_are_counted(recording_lexicon) -> None:
    inner = recording_lexicon
    cache = ScoreCache(inner, max_size=100)
    hits0, misses0 = _counter("gnosis_sentiment_cache_hits_total"), _counter(
        "gnosis_sentiment_cache_misses_total")
    first = cache.score_batch(["Acme beats estimates", "Globex plunges"])
    second = cache.score_batch(["  ACME   beats estimates ", "Initech names CFO"])
    assert (cache.hits, cache.misses) == (1, 3)
    assert cache.hit_rate == 0.25
    assert second[0] == first[0]
    assert inner.batches == [["acme beats estimates", "globex plunges"], ["initech names cfo"]]
    assert _counter("gnosis_sentiment_cache_hits_total") - hits0 == 1
    assert _counter("gnosis_sentiment_cache_misses_total") - misses0 == 3


def test_repeats_within_a_batch_are_scored_once(recording_lexicon) -> None:
    inner = recording_lexicon
    cache = ScoreCache(inner)
    results = cache.score_batch(["Acme beats", "acme beats", "Acme  Beats", "Globex falls"])
    assert inner.batches == [["acme beats", "globex falls"]]
    assert results[0] == results[1] == results[2] != results[3]
    assert (cache.hits, cache.misses) == (2, 2)


def test_least_recently_used_is_evicted(recording_lexicon) -> None:
    inner = recording_lexicon
    cache = ScoreCache(inner, max_size=2)
    cache.score_batch(["a gain"])
    cache.score_batch(["a loss"])
    cache.score_batch(["a gain"])  # refreshes "a gain"
    cache.score_batch(["a surge"])  # evicts "a loss"
    assert len(cache) == 2
    cache.score_batch(["a gain", "a loss"])
    assert inner.batches[-1] == ["a loss"]


def test_cache_is_a_scorer_with_the_inner_model_id() -> None:
    cache = ScoreCache(LexiconScorer(model_id="lexicon-test"))
    assert cache.model_id == "lexicon-test"
    assert cache.score_batch([]) == []
    assert cache.score_batch(["Acme beats"])[0].model_id == "lexicon-test"
