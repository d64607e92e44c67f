"""Quantise, halve and optimise the committed tiny model (needs only onnx + onnxruntime)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx", reason="quantisation needs the 'onnx' package")

from typer.testing import CliRunner

from gnosis.models.cli import app
from gnosis.models.export import convert_fp16, optimize_model, quantize_model
from gnosis.models.sentiment import TINY_MODEL_DIR, OnnxSentimentScorer
from gnosis.models.sentiment.synthetic import synthetic_headlines

HEADLINES = synthetic_headlines(100, seed=21)


def _probs(scorer: OnnxSentimentScorer) -> np.ndarray:
    return np.array([(r.positive, r.negative, r.neutral) for r in scorer.score_batch(HEADLINES)])


def test_int8_agrees_with_fp32(tmp_path, tiny: OnnxSentimentScorer) -> None:
    manifest = quantize_model(TINY_MODEL_DIR, tmp_path)
    int8 = OnnxSentimentScorer(tmp_path)
    assert manifest.precision == "int8"
    assert int8.model_id.startswith("tiny-finbert-onnx-int8@")
    assert int8.model_id != tiny.model_id
    fp32, q = _probs(tiny), _probs(int8)
    error = float(np.abs(fp32 - q).max())
    agreement = float((fp32.argmax(1) == q.argmax(1)).mean())
    print(f"tiny int8 vs fp32: max abs probability error {error:.3f}, agreement {agreement:.2f}")
    assert error < 0.1
    assert agreement >= 0.95


def test_fp16_agrees_with_fp32(tmp_path, tiny: OnnxSentimentScorer) -> None:
    manifest = convert_fp16(TINY_MODEL_DIR, tmp_path)
    half = OnnxSentimentScorer(tmp_path)
    assert manifest.precision == "fp16"
    assert half.model_id.startswith("tiny-finbert-onnx-fp16@")
    assert half.digest != tiny.digest
    fp32, h = _probs(tiny), _probs(half)
    error = float(np.abs(fp32 - h).max())
    print(f"tiny fp16 vs fp32: max abs probability error {error:.4f}")
    assert error < 2e-3  # fp16 carries ~3 significant digits
    assert (fp32.argmax(1) == h.argmax(1)).mean() >= 0.98


def test_cli_convert(tmp_path) -> None:
    result = CliRunner().invoke(app, ["convert", str(TINY_MODEL_DIR), "-o", str(tmp_path),
                                      "--precision", "fp16"])
    assert result.exit_code == 0, result.output
    assert "tiny-finbert-onnx-fp16@" in result.output


def test_optimized_graph_keeps_scores(tmp_path, tiny: OnnxSentimentScorer) -> None:
    manifest = optimize_model(TINY_MODEL_DIR, tmp_path)
    assert manifest.optimized
    np.testing.assert_allclose(_probs(OnnxSentimentScorer(tmp_path)), _probs(tiny), atol=1e-5)


def test_cli_scores_with_lexicon_and_model() -> None:
    runner = CliRunner()
    lexicon = runner.invoke(app, ["score", "Acme beats estimates"])
    model = runner.invoke(app, ["score", "Acme beats estimates", "-m", str(TINY_MODEL_DIR)])
    assert lexicon.exit_code == model.exit_code == 0
    assert '"model_id": "lexicon-v1"' in lexicon.output
    assert '"model_id": "tiny-finbert-onnx-fp32@' in model.output
