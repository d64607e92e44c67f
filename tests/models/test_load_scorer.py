"""load_scorer picks the scorer from the configuration and puts a cache in front."""

from __future__ import annotations

import logging

from gnosis.config import SentimentConfig
from gnosis.models.sentiment import (
    TINY_MODEL_DIR,
    LexiconScorer,
    OnnxSentimentScorer,
    ScoreCache,
    SentimentScorer,
    load_scorer,
)
from gnosis.sinks.metrics import REGISTRY


def test_lexicon_without_model_dir(caplog) -> None:
    with caplog.at_level(logging.INFO, logger="gnosis.models.sentiment"):
        scorer = load_scorer(SentimentConfig(cache_size=5))
    assert isinstance(scorer, ScoreCache)
    assert isinstance(scorer.scorer, LexiconScorer)
    assert scorer.max_size == 5
    assert scorer.model_id == "lexicon-v1"
    assert "lexicon-v1" in caplog.text
    assert REGISTRY.get_sample_value("gnosis_sentiment_model_info",
                                     {"model_id": "lexicon-v1", "kind": "lexicon",
                                      "provider": "python"}) == 1


def test_onnx_with_model_dir(caplog) -> None:
    config = SentimentConfig(model_dir=str(TINY_MODEL_DIR), max_length=32, batch_size=4,
                             intra_op_threads=1)
    with caplog.at_level(logging.INFO, logger="gnosis.models.sentiment"):
        scorer = load_scorer(config)
    assert scorer.provider == scorer.scorer.provider == "CPUExecutionProvider"
    assert "onnx on CPUExecutionProvider" in caplog.text
    assert REGISTRY.get_sample_value("gnosis_sentiment_model_info", {
        "model_id": scorer.model_id, "kind": "onnx", "provider": "CPUExecutionProvider"}) == 1
    assert isinstance(scorer.scorer, OnnxSentimentScorer)
    assert isinstance(scorer, SentimentScorer)
    assert scorer.scorer.max_length == 32
    assert scorer.scorer.batch_size == 4
    assert scorer.model_id.startswith("tiny-finbert-onnx-fp32@")
    result = scorer.score_batch(["Acme shares surge after profit beats estimates"])[0]
    assert result.score > 0
    assert result.model_id == scorer.model_id
