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


@pytest.mark.parametrize(("convert", "precision", "tolerance", "agreement"), [
    (quantize_model, "int8", 0.1, 0.95),
    (convert_fp16, "fp16", 2e-3, 0.98),  # fp16 carries ~3 significant digits
])
def test_lower_precision_agrees_with_fp32(tmp_path, tiny: OnnxSentimentScorer, convert,
                                          precision: str, tolerance: float,
                                          agreement: float) -> None:
    manifest = convert(TINY_MODEL_DIR, tmp_path)
    lower = OnnxSentimentScorer(tmp_path)
    assert manifest.precision == precision
    assert lower.model_id.startswith(f"tiny-finbert-onnx-{precision}@")
    assert lower.model_id != tiny.model_id
    assert lower.digest != tiny.digest
    fp32, low = _probs(tiny), _probs(lower)
    error = float(np.abs(fp32 - low).max())
    agreed = float((fp32.argmax(1) == low.argmax(1)).mean())
    print(f"tiny {precision} vs fp32: max abs probability error {error:.4f}, "
          f"agreement {agreed:.2f}")
    assert error < tolerance
    assert agreed >= agreement


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
