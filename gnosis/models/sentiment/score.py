"""The score of one headline, the scorer protocol, and text clean-up shared by scorers."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

MAX_CHARS = 4_096
"""Longer texts are cut to this many characters before scoring: a headline is far shorter,
and the model only sees ``max_length`` tokens anyway, so this only bounds the work."""

_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class SentimentScore:
    """Sentiment of one headline.

    ``positive``, ``negative`` and ``neutral`` are probabilities summing to 1;
    ``score = positive - negative`` lies in [-1, 1]. ``model_id`` names the scorer that
    produced it, with the model file's hash for ONNX models
    (``"finbert-onnx-int8@1a2b3c4d5e6f"``), so every score can be traced to its model.
    """

    positive: float
    negative: float
    neutral: float
    score: float
    model_id: str

    @classmethod
    def neutral_for(cls, model_id: str) -> SentimentScore:
        """The score of a text with nothing to score (empty, blank, only control characters)."""
        return cls(0.0, 0.0, 1.0, 0.0, model_id)


@runtime_checkable
class SentimentScorer(Protocol):
    """Anything that scores headlines in batches.

    Scorers may also carry ``digest`` (identity of their scores, the key of the score
    store; ``model_id`` stands in when absent) and ``provider`` (where they run).
    """

    model_id: str

    def score_batch(self, texts: Sequence[str]) -> list[SentimentScore]:
        """One score per text, in order. Never raises on bad text."""
        ...


def clean_text(text: object) -> str:
    """``text`` made safe to score: valid UTF-8, no control characters, single spaces.

    Lone surrogates become ``?``, control and format characters become spaces, and the
    text is cut to :data:`MAX_CHARS`. Anything that is not a ``str`` scores as empty.
    """
    if not isinstance(text, str):
        return ""
    text = text[:MAX_CHARS]
    if not text.isascii():
        text = text.encode("utf-8", "replace").decode("utf-8")
        text = "".join(" " if unicodedata.category(ch) in ("Cc", "Cf") else ch
                       for ch in text)
    elif not text.isprintable():
        text = "".join(ch if ch.isprintable() else " " for ch in text)
    return _SPACE.sub(" ", text).strip()


def normalise_key(text: object) -> str:
    """Cache key of a headline: cleaned, case-folded, whitespace collapsed and stripped."""
    return clean_text(text).casefold()
