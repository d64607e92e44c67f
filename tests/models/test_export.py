"""Export a small BERT made here to ONNX and hold it to the PyTorch model's logits.

torch and transformers come with the ``dev`` extra (CPU use of PyPI's wheels), so these
run in every ``make test``: they are the only check that an exported model scores like
its source, at every precision.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import transformers
from typer.testing import CliRunner

from gnosis.models.cli import app
from gnosis.models.export import PRECISIONS, export_model
from gnosis.models.export.toy import build_checkpoint
from gnosis.models.sentiment import ModelManifest, OnnxSentimentScorer
from gnosis.models.sentiment.manifest import sha256_file
from gnosis.models.sentiment.synthetic import synthetic_headlines

HEADLINES = [*synthetic_headlines(31, seed=5), "Acme beats"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return build_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny-bert", seed=1)


@pytest.fixture(scope="module")
def torch_logits(checkpoint) -> np.ndarray:
    tokenizer = transformers.AutoTokenizer.from_pretrained(checkpoint)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(checkpoint).eval()
    with torch.inference_mode():
        batch = tokenizer(HEADLINES, padding=True, truncation=True, max_length=64,
                          return_tensors="pt")
        return model(**batch).logits.numpy()


@pytest.mark.parametrize("optimize", [False, True], ids=["plain", "optimized"])
def test_fp32_matches_torch(tmp_path, checkpoint, torch_logits, optimize: bool) -> None:
    export_model(checkpoint, tmp_path, optimize=optimize, precision="fp32")
    scorer = OnnxSentimentScorer(tmp_path)
    np.testing.assert_allclose(scorer.logits(HEADLINES), torch_logits, atol=1e-4)
    # dynamic axes: one headline of another length runs too, and agrees
    np.testing.assert_allclose(scorer.logits(HEADLINES[-1:]), torch_logits[-1:], atol=1e-4)
    assert [i.shape for i in scorer.session.get_inputs()] == [["batch", "sequence"]] * 3


def test_int8_is_close_to_torch(tmp_path, checkpoint, torch_logits) -> None:
    manifest = export_model(checkpoint, tmp_path, optimize=True, precision="int8")
    logits = OnnxSentimentScorer(tmp_path).logits(HEADLINES)
    error = float(np.abs(logits - torch_logits).max())
    agreement = float((logits.argmax(1) == torch_logits.argmax(1)).mean())
    print(f"int8 vs torch: max abs logit error {error:.2e}, argmax agreement {agreement:.3f}")
    assert manifest.precision == "int8"
    assert manifest.optimized
    assert error < 0.05
    assert agreement >= 0.9


TOLERANCE = {"fp32": 1e-5, "fp16": 1e-3, "int8": 0.02}
"""Largest probability difference to the PyTorch model at each precision (tiny model)."""


@pytest.fixture(scope="module")
def torch_probabilities(torch_logits) -> np.ndarray:
    probabilities = np.exp(torch_logits - torch_logits.max(axis=1, keepdims=True))
    return probabilities / probabilities.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_every_precision_scores_like_torch(tmp_path, checkpoint, torch_probabilities,
                                           precision: str) -> None:
    manifest = export_model(checkpoint, tmp_path, optimize=True, precision=precision)
    assert manifest.precision == precision
    assert manifest.name == f"tiny-bert-onnx-{precision}"
    scorer = OnnxSentimentScorer(tmp_path, batch_size=len(HEADLINES))
    scores = scorer.score_batch(HEADLINES)
    # FinBERT's label order is the model's here: positive, negative, neutral
    ours = np.array([(s.positive, s.negative, s.neutral) for s in scores])
    error = float(np.abs(ours - torch_probabilities).max())
    print(f"{precision} vs torch: max abs probability error {error:.2e}")
    assert error < TOLERANCE[precision]
    assert (ours.argmax(1) == torch_probabilities.argmax(1)).mean() >= 0.9
    assert {s.model_id for s in scores} == {manifest.model_id}


def test_precisions_are_distinct_models(tmp_path, checkpoint) -> None:
    for precision in PRECISIONS:
        export_model(checkpoint, tmp_path / precision, optimize=False, precision=precision)
    digests = {OnnxSentimentScorer(tmp_path / p).digest for p in PRECISIONS}
    assert len(digests) == len(PRECISIONS)  # the score store never mixes them


def test_directory_layout_and_manifest(tmp_path, checkpoint) -> None:
    manifest = export_model(checkpoint, tmp_path / "out", max_length=48, optimize=False,
                            precision="fp32")
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["labels.json", "manifest.json",
                                                    "model.onnx", "tokenizer.json"]
    assert ModelManifest.read(out) == manifest
    assert manifest.sha256 == sha256_file(out / "model.onnx")
    assert manifest.name == "tiny-bert-onnx-fp32"
    assert manifest.max_length == 48
    assert manifest.source == str(checkpoint)
    assert json.loads((out / "labels.json").read_text()) == {
        "0": "positive", "1": "negative", "2": "neutral"}


def test_labels_follow_id2label(tmp_path, checkpoint) -> None:
    config = json.loads((checkpoint / "config.json").read_text())
    config["id2label"] = {"0": "neutral", "1": "Positive", "2": "NEGATIVE"}
    config["label2id"] = {"neutral": 0, "Positive": 1, "NEGATIVE": 2}
    relabelled = tmp_path / "relabelled"
    relabelled.mkdir()
    for item in checkpoint.iterdir():
        (relabelled / item.name).write_bytes(item.read_bytes())
    (relabelled / "config.json").write_text(json.dumps(config))
    manifest = export_model(relabelled, tmp_path / "out", optimize=False, precision="fp32")
    assert manifest.labels == ("neutral", "positive", "negative")
    scorer = OnnxSentimentScorer(tmp_path / "out")
    logits = scorer.logits(["Acme beats"])[0]
    probs = np.exp(logits) / np.exp(logits).sum()
    result = scorer.score_batch(["Acme beats"])[0]
    assert (result.neutral, result.positive, result.negative) == pytest.approx(tuple(probs))


def test_cli_export(tmp_path, checkpoint) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["export", str(checkpoint), "--out", str(tmp_path),
                                 "--no-optimize", "--name", "cli-test"])
    assert result.exit_code == 0, result.output
    assert ModelManifest.read(tmp_path).model_id in result.output
    assert "cli-test@" in result.output
    assert ModelManifest.read(tmp_path).precision == "int8"
    half = runner.invoke(app, ["export", str(checkpoint), "--out", str(tmp_path / "half"),
                               "--precision", "fp16"])
    assert half.exit_code == 0, half.output
    assert ModelManifest.read(tmp_path / "half").precision == "fp16"
    wrong = runner.invoke(app, ["export", str(checkpoint), "--out", str(tmp_path / "x"),
                                "--precision", "fp8"])
    assert wrong.exit_code == 2
    assert "fp32, fp16, int8" in wrong.output
