"""Shared fixtures: the shipped tiny ONNX model, a recording lexicon scorer, and texts
that try to break scorers."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from gnosis.models.sentiment import (
    TINY_MODEL_DIR,
    LexiconScorer,
    OnnxSentimentScorer,
    SentimentScore,
)

_BAD_TEXTS = ["", "   ", "\t\n\r", "\x00\x01\x02", "\ud800 lone surrogate \udfff",
             "\u200b\u200d\ufeff", "Acme\x00beats\x1festimates", "🚀📉💸 " * 50,
             "Ａｃｍｅ ｂｅａｔｓ", "x" * 100_000, "profit " * 20_000, "ا لسهم يرتفع", "\U0010ffff"]


@pytest.fixture(scope="session")
def tiny() -> OnnxSentimentScorer:
    """The committed tiny model in a real ONNX Runtime session."""
    return OnnxSentimentScorer(TINY_MODEL_DIR, batch_size=8)


@pytest.fixture
def bad_texts() -> list[str]:
    """Empty, blank, control characters, lone surrogates, huge and odd unicode texts."""
    return list(_BAD_TEXTS)


class RecordingLexicon(LexiconScorer):
    """The real lexicon scorer, recording every batch it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []

    def score_batch(self, texts: Sequence[str]) -> list[SentimentScore]:
        self.batches.append(list(texts))
        return super().score_batch(texts)


@pytest.fixture
def recording_lexicon() -> RecordingLexicon:
    """A fresh :class:`RecordingLexicon`."""
    return RecordingLexicon()
