"""Arbitrary text, including lone surrogates and control characters, never raises."""

from __future__ import annotations

import math
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from gnosis.models.sentiment import LexiconScorer, OnnxSentimentScorer, ScoreCache, clean_text

any_text = st.text(st.characters(exclude_categories=()), max_size=300)
lexicon = LexiconScorer()


def _valid(result) -> bool:
    total = result.positive + result.negative + result.neutral
    return math.isclose(total, 1.0) and -1.0 <= result.score <= 1.0


@given(st.lists(any_text, max_size=8))
@settings(max_examples=150, deadline=None)
def test_lexicon_never_raises(texts: list[str]) -> None:
    assert all(_valid(r) for r in ScoreCache(lexicon).score_batch(texts))


@given(st.lists(any_text, min_size=1, max_size=6))
@settings(max_examples=60, deadline=None)
def test_onnx_never_raises(tiny: OnnxSentimentScorer, texts: list[str]) -> None:
    results = tiny.score_batch(texts)
    assert len(results) == len(texts)
    assert all(_valid(r) for r in results)


@given(any_text)
def test_clean_text_is_valid_utf8_without_controls(text: str) -> None:
    cleaned = clean_text(text)
    cleaned.encode("utf-8")
    assert cleaned == cleaned.strip()
    assert "  " not in cleaned
    assert not any(unicodedata.category(ch) in ("Cc", "Cf", "Cs") for ch in cleaned)


def test_known_bad_texts(bad_texts: list[str]) -> None:
    assert all(_valid(r) for r in lexicon.score_batch(bad_texts))
    assert lexicon.score("").score == 0.0
