"""Headline sentiment: FinBERT on ONNX Runtime, with a lexicon fallback.

:func:`load_scorer` picks the scorer from :class:`gnosis.config.SentimentConfig`: the ONNX
model in ``model_dir`` when set, else the finance lexicon; either behind a
:class:`ScoreCache`. A :class:`ScoreStore` keeps every score on disk (``gnosis news score``
fills it, replays read it, :func:`warm_cache` fills a worker's cache). Every
:class:`SentimentScore` carries the id of the model that produced it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from gnosis.config import SentimentConfig
from gnosis.models.sentiment.cache import ScoreCache
from gnosis.models.sentiment.lexicon import LexiconScorer
from gnosis.models.sentiment.manifest import ModelManifest
from gnosis.models.sentiment.onnx_scorer import OnnxSentimentScorer
from gnosis.models.sentiment.providers import ProviderError
from gnosis.models.sentiment.score import SentimentScore, SentimentScorer, clean_text
from gnosis.models.sentiment.store import ScoreStore, score_column, warm_cache
from gnosis.sinks.metrics import MODEL_INFO

__all__ = [
    "TINY_MODEL_DIR",
    "LexiconScorer",
    "ModelManifest",
    "OnnxSentimentScorer",
    "ProviderError",
    "ScoreCache",
    "ScoreStore",
    "SentimentScore",
    "SentimentScorer",
    "clean_text",
    "load_scorer",
    "score_column",
    "warm_cache",
]

TINY_MODEL_DIR = Path(__file__).resolve().parent.parent / "assets" / "tiny-finbert"
"""A tiny BERT classifier shipped with the package (random-initialised, then fitted to the
lexicon's labels by ``scripts/make_tiny_model.py``): a real ONNX model for tests and demos,
not for trading."""

log = logging.getLogger(__name__)


def load_scorer(config: SentimentConfig) -> ScoreCache:
    """The configured scorer behind a cache of ``config.cache_size`` headlines.

    ONNX when ``config.model_dir`` is set (a directory written by ``gnosis model export``),
    else the lexicon; the model runs on ``config.providers`` (a provider the installed
    onnxruntime lacks raises :class:`ProviderError`). Logs the choice and the provider, and
    publishes both as ``gnosis_sentiment_model_info`` (labels model_id, kind, provider); the
    returned cache's ``provider`` says where the model runs, for ``/health``.
    """
    scorer: SentimentScorer
    if config.model_dir:
        onnx = OnnxSentimentScorer(config.model_dir, max_length=config.max_length,
                                   batch_size=config.batch_size,
                                   intra_op_threads=config.intra_op_threads,
                                   inter_op_threads=config.inter_op_threads,
                                   providers=config.providers)
        scorer, kind, provider = onnx, "onnx", onnx.provider
    else:
        scorer, kind, provider = LexiconScorer(), "lexicon", "python"
    log.info("sentiment scorer: %s (%s on %s, cache of %d headlines)", scorer.model_id, kind,
             provider, config.cache_size)
    MODEL_INFO.info({"model_id": scorer.model_id, "kind": kind, "provider": provider})
    return ScoreCache(scorer, config.cache_size)
