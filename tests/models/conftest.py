"""Shared fixtures: the shipped tiny ONNX model and texts that try to break scorers."""

from __future__ import annotations

import pytest

from gnosis.models.sentiment import TINY_MODEL_DIR, OnnxSentimentScorer

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
