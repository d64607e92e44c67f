"""Headline sentiment: FinBERT on ONNX Runtime, with a lexicon fallback.

:func:`load_scorer` picks the scorer from :class:`gnosis.config.SentimentConfig`: the ONNX
model in ``model_dir`` when set, else the finance lexicon; either behind a
:class:`ScoreCache`. A :class:`MicroBatcher` turns concurrent ``await score(text)`` calls
into batched model calls. Every :class:`SentimentScore` carries the id of the model
that produced it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from gnosis.config import SentimentConfig
from gnosis.models.sentiment.batcher import MicroBatcher
from gnosis.models.sentiment.cache import ScoreCache
from gnosis.models.sentiment.lexicon import LexiconScorer
from gnosis.models.sentiment.manifest import ModelManifest
from gnosis.models.sentiment.onnx_scorer import OnnxSentimentScorer
from gnosis.models.sentiment.score import SentimentScore, SentimentScorer, clean_text
from gnosis.sinks.metrics import MODEL_INFO

__all__ = [
    "TINY_MODEL_DIR",
    "LexiconScorer",
    "MicroBatcher",
    "ModelManifest",
    "OnnxSentimentScorer",
    "ScoreCache",
    "SentimentScore",
    "SentimentScorer",
    "clean_text",
    "load_scorer",
]

TINY_MODEL_DIR = Path(__file__).resolve().parent.parent / "assets" / "tiny-finbert"
"""A tiny BERT classifier shipped with the package (random-initialised, then fitted to the
lexicon's labels by ``scripts/make_tiny_model.py``): a real ONNX model for tests and demos,
not for trading."""

log = logging.getLogger(__name__)


def load_scorer(config: SentimentConfig) -> ScoreCache:
    """The configured scorer behind a cache of ``config.cache_size`` headlines.

    ONNX when ``config.model_dir`` is set (a directory written by ``gnosis model export``),
    else the lexicon. Logs the choice and publishes it as ``gnosis_sentiment_model_info``.
    """
    scorer: SentimentScorer
    if config.model_dir:
        scorer = OnnxSentimentScorer(config.model_dir, max_length=config.max_length,
                                     batch_size=config.batch_size,
                                     intra_op_threads=config.intra_op_threads,
                                     inter_op_threads=config.inter_op_threads)
        kind = "onnx"
    else:
        scorer = LexiconScorer()
        kind = "lexicon"
    log.info("sentiment scorer: %s (%s, cache of %d headlines)", scorer.model_id, kind,
             config.cache_size)
    MODEL_INFO.info({"model_id": scorer.model_id, "kind": kind})
    return ScoreCache(scorer, config.cache_size)
