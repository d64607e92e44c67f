"""LRU cache of headline scores in front of any scorer."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence

from gnosis.models.sentiment.score import SentimentScore, SentimentScorer, normalise_key
from gnosis.sinks.metrics import SENTIMENT_CACHE_HITS, SENTIMENT_CACHE_MISSES


class ScoreCache:
    """A :class:`SentimentScorer` that remembers the last ``max_size`` headlines it scored.

    Keys are normalised headlines (cleaned, case-folded, whitespace collapsed), so the
    same headline from two wires is scored once. The wrapped scorer sees the normalised
    text, so a headline's score cannot depend on which spelling arrived first (FinBERT is
    uncased anyway). Misses of one batch are scored in one
    call to the wrapped scorer, each distinct key once. Hits and misses are counted here
    and in ``gnosis_sentiment_cache_{hits,misses}_total``. Thread-safe.
    """

    def __init__(self, scorer: SentimentScorer, max_size: int = 10_000) -> None:
        self.scorer = scorer
        self.model_id = scorer.model_id
        self.digest: str = getattr(scorer, "digest", scorer.model_id)
        """The wrapped scorer's score identity (its score-store key)."""
        self.provider: str = getattr(scorer, "provider", "")
        """Where the wrapped scorer runs (an ONNX Runtime execution provider)."""
        self.max_size = max_size
        self.hits = 0
        self.misses = 0
        self._scores: OrderedDict[str, SentimentScore] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def hit_rate(self) -> float:
        """Share of look-ups served from the cache (0 before the first)."""
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    def __len__(self) -> int:
        return len(self._scores)

    def score_batch(self, texts: Sequence[str]) -> list[SentimentScore]:
        """One score per text, in order, from the cache or the wrapped scorer."""
        keys = [normalise_key(text) for text in texts]
        found: dict[str, SentimentScore] = {}
        with self._lock:
            for key in keys:
                score = self._scores.get(key)
                if score is not None:
                    self._scores.move_to_end(key)
                    found[key] = score
        missing = list(dict.fromkeys(key for key in keys if key not in found))
        hits = len(keys) - len(missing)  # a repeat within the batch is scored once: a hit
        if missing:
            found.update(zip(missing, self.scorer.score_batch(missing), strict=True))
            with self._lock:
                for key in missing:
                    self._scores[key] = found[key]
                while len(self._scores) > self.max_size:
                    self._scores.popitem(last=False)
        with self._lock:
            self.hits += hits
            self.misses += len(missing)
        SENTIMENT_CACHE_HITS.inc(hits)
        SENTIMENT_CACHE_MISSES.inc(len(missing))
        return [found[key] for key in keys]

    def preload(self, items: Iterable[tuple[str, SentimentScore]]) -> int:
        """Put (normalised key, score) pairs in, oldest first, without counting hits or
        misses; returns how many the cache holds afterwards. The score store's
        :func:`~gnosis.models.sentiment.store.warm_cache` feeds it."""
        with self._lock:
            for key, score in items:
                self._scores[key] = score
                self._scores.move_to_end(key)
            while len(self._scores) > self.max_size:
                self._scores.popitem(last=False)
            return len(self._scores)

    def clear(self) -> None:
        """Forget every score (counters are kept)."""
        with self._lock:
            self._scores.clear()
