"""The ONNX scorer on the committed tiny model, in a real ONNX Runtime session."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

from gnosis.models.sentiment import TINY_MODEL_DIR, ModelManifest, OnnxSentimentScorer
from gnosis.models.sentiment.manifest import sha256_file
from gnosis.models.sentiment.synthetic import synthetic_headlines

HEADLINES = [*synthetic_headlines(40, seed=11), "Acme beats", "Globex shares plunge after "
             "regulators open a fraud investigation into its accounting practices in Europe"]


def test_probabilities_sum_to_one(tiny: OnnxSentimentScorer) -> None:
    for result in tiny.score_batch(HEADLINES):
        assert math.isclose(result.positive + result.negative + result.neutral, 1.0,
                            abs_tol=1e-9)
        assert min(result.positive, result.negative, result.neutral) >= 0
        assert math.isclose(result.score, result.positive - result.negative)


def test_batch_equals_one_by_one(tiny: OnnxSentimentScorer) -> None:
    batched = tiny.score_batch(HEADLINES)
    single = [tiny.score_batch([text])[0] for text in HEADLINES]
    for b, s in zip(batched, single, strict=True):
        assert b.positive == pytest.approx(s.positive, abs=1e-5)
        assert b.negative == pytest.approx(s.negative, abs=1e-5)
        assert b.neutral == pytest.approx(s.neutral, abs=1e-5)


def test_padding_does_not_change_logits(tiny: OnnxSentimentScorer) -> None:
    short, long = "Acme beats", HEADLINES[-1]
    alone = tiny.logits([short])
    padded = tiny.logits([short, long])[:1]
    np.testing.assert_allclose(padded, alone, atol=1e-5)


def test_dynamic_padding_to_longest_in_batch(tiny: OnnxSentimentScorer) -> None:
    feeds = tiny.feeds(["Acme beats", "Globex shares plunge after profit warning"])
    lengths = [len(tiny.tokenizer.encode(t).ids) for t in ("Acme beats",
               "Globex shares plunge after profit warning")]
    assert feeds["input_ids"].shape == (2, max(lengths))
    assert max(lengths) < tiny.max_length
    assert feeds["attention_mask"].sum(axis=1).tolist() == lengths
    assert feeds["input_ids"].dtype == np.int64


def test_long_text_is_truncated_to_max_length(tiny: OnnxSentimentScorer) -> None:
    feeds = tiny.feeds(["profit " * 500])
    assert feeds["input_ids"].shape == (1, tiny.max_length)
    assert tiny.tokenizer.id_to_token(int(feeds["input_ids"][0, -1])) == "[SEP]"


def test_model_id_carries_file_hash(tiny: OnnxSentimentScorer) -> None:
    digest = sha256_file(TINY_MODEL_DIR / "model.onnx")
    assert tiny.model_id == f"tiny-finbert-onnx-fp32@{digest[:12]}"
    assert {r.model_id for r in tiny.score_batch(HEADLINES[:3])} == {tiny.model_id}


def test_shipped_model_points_the_right_way(tiny: OnnxSentimentScorer) -> None:
    good, bad = tiny.score_batch(["Acme shares surge after profit beats estimates",
                                  "Globex shares plunge after profit warning"])
    assert good.score > 0.5
    assert bad.score < -0.5


def test_empty_and_bad_text_never_crash(tiny: OnnxSentimentScorer,
                                        bad_texts: list[str]) -> None:
    results = tiny.score_batch(bad_texts)
    assert len(results) == len(bad_texts)
    for text, result in zip(bad_texts, results, strict=True):
        assert math.isclose(result.positive + result.negative + result.neutral, 1.0)
        if not text.strip() or text in ("\x00\x01\x02", "\u200b\u200d\ufeff"):
            assert (result.score, result.neutral) == (0.0, 1.0)


def test_label_order_comes_from_manifest(tmp_path, tiny: OnnxSentimentScorer) -> None:
    copy = tmp_path / "swapped"
    shutil.copytree(TINY_MODEL_DIR, copy)
    data = json.loads((copy / "manifest.json").read_text())
    data["labels"] = ["negative", "positive", "neutral"]
    (copy / "manifest.json").write_text(json.dumps(data))
    swapped = OnnxSentimentScorer(copy)
    for a, b in zip(tiny.score_batch(HEADLINES[:5]), swapped.score_batch(HEADLINES[:5]),
                    strict=True):
        assert (a.positive, a.negative, a.score) == pytest.approx((b.negative, b.positive,
                                                                    -b.score))


def test_tampered_model_is_refused(tmp_path) -> None:
    copy = tmp_path / "tampered"
    shutil.copytree(TINY_MODEL_DIR, copy)
    manifest = ModelManifest.read(copy)
    manifest.__class__(**{**manifest.__dict__, "sha256": "0" * 64}).write(copy)
    with pytest.raises(ValueError, match="does not match"):
        OnnxSentimentScorer(copy)


def test_threads_are_configurable() -> None:
    scorer = OnnxSentimentScorer(TINY_MODEL_DIR, intra_op_threads=2, inter_op_threads=1)
    assert scorer.session.get_session_options().intra_op_num_threads == 2
    assert scorer.score_batch(["Acme beats"])[0].model_id == scorer.model_id


def test_max_length_is_capped_at_the_position_limit() -> None:
    scorer = OnnxSentimentScorer(TINY_MODEL_DIR, max_length=10_000)
    assert scorer.max_length == scorer.manifest.max_positions == 128
    assert scorer.feeds(["profit " * 500])["input_ids"].shape == (1, 128)
    assert scorer.score_batch(["profit " * 500])[0].model_id == scorer.model_id
