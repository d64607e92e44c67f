"""ONNX Runtime scorer: a FinBERT-style sequence classifier exported by ``gnosis model export``."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from gnosis.models.sentiment.manifest import (
    MANIFEST,
    SENTIMENT_LABELS,
    TOKENIZER,
    ModelManifest,
    sha256_file,
)
from gnosis.models.sentiment.providers import check_active, resolve_providers
from gnosis.models.sentiment.score import SentimentScore, clean_text

MIN_CHUNK = 4
"""Fewest texts per model call before a batch is split at a length jump."""
PAD_SLACK = 0.25
"""A text more than this much longer than the shortest of its group starts a new group."""


class OnnxSentimentScorer:
    """Scores headlines with an exported sequence-classification model.

    Texts are tokenized with the model's fast tokenizer, truncated to ``max_length`` tokens
    and padded only to the longest text of each model call (not to ``max_length``). A
    batch is sorted by length and run in calls of at most ``batch_size`` texts, split
    where the length jumps, so that short headlines are not padded to a long neighbour.
    Probabilities are the softmax of the logits, mapped to positive/negative/neutral
    through the manifest's labels.

    ``providers`` is passed to ONNX Runtime (``sentiment.providers``: ``"cpu"``,
    ``"cuda,cpu"``, ...); one the installed build lacks raises
    :class:`~gnosis.models.sentiment.providers.ProviderError`, and so does a provider that
    ONNX Runtime dropped at start-up: there is never a silent fallback to the CPU.

    Padding does not change an fp32 model's scores (the attention mask hides it). An int8
    model quantises activations per tensor at run time, so its probabilities can move by a
    few thousandths with the other texts of a call (5e-3 measured on BERT-base); use an
    fp32 model, or ``batch_size=1``, where replay must match live to the last digit.
    """

    def __init__(self, model_dir: str | Path, *, max_length: int | None = None,
                 batch_size: int = 32, intra_op_threads: int = 1,
                 inter_op_threads: int = 1, verify_hash: bool = True,
                 providers: str | Sequence[str] = "cpu") -> None:
        model_dir = Path(model_dir)
        self.manifest = ModelManifest.read(model_dir)
        model_path = model_dir / self.manifest.model_file
        if verify_hash:
            actual = sha256_file(model_path)
            if actual != self.manifest.sha256:
                raise ValueError(f"{model_path}: sha256 {actual[:12]} does not match the "
                                 f"manifest's {self.manifest.sha256[:12]}")
        missing = set(SENTIMENT_LABELS) - set(self.manifest.labels)
        if missing:
            raise ValueError(f"{model_dir}: labels {self.manifest.labels} lack {sorted(missing)}")
        self._columns = [self.manifest.labels.index(label) for label in SENTIMENT_LABELS]
        self.model_id = self.manifest.model_id
        self.max_length = min(max_length or self.manifest.max_length,
                              self.manifest.max_positions)
        self.batch_size = max(1, batch_size)

        self.tokenizer = Tokenizer.from_file(str(model_dir / TOKENIZER))
        self.tokenizer.enable_truncation(self.max_length)
        self.tokenizer.no_padding()  # padded per chunk in _run, to the chunk's longest text
        self._pad_id = self.tokenizer.token_to_id("[PAD]") or 0

        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = inter_op_threads
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        requested = resolve_providers(providers)
        self.session = ort.InferenceSession(str(model_path), options, providers=requested)
        self.provider = check_active(requested, self.session.get_providers())
        """The execution provider that runs the model (the first one requested)."""
        self.digest = _digest(model_dir, self.max_length)
        """Identity of the scores this scorer gives: the manifest's hash and the run-time
        truncation; the score store keys its entries by it."""
        self._inputs = {i.name for i in self.session.get_inputs()}

    def score_batch(self, texts: Sequence[str]) -> list[SentimentScore]:
        """One score per text, in order; empty or unreadable text is neutral."""
        cleaned = [clean_text(text) for text in texts]
        results: list[SentimentScore | None] = [None] * len(cleaned)
        todo = [i for i, text in enumerate(cleaned) if text]
        if todo:
            encodings = self.tokenizer.encode_batch([cleaned[i] for i in todo])
            for chunk in self._chunks([len(e.ids) for e in encodings]):
                probs = self._probabilities([encodings[k] for k in chunk])
                for k, row in zip(chunk, probs, strict=True):
                    positive, negative, neutral = (float(p) for p in row)
                    results[todo[k]] = SentimentScore(positive, negative, neutral,
                                                      positive - negative, self.model_id)
        neutral = SentimentScore.neutral_for(self.model_id)
        return [neutral if score is None else score for score in results]

    def _chunks(self, lengths: list[int]) -> list[list[int]]:
        """Indices grouped for model calls: sorted by length, at most ``batch_size`` each,
        and a new group where the length jumps by more than :data:`PAD_SLACK`, once a group
        holds :data:`MIN_CHUNK` texts (smaller calls would waste more than padding)."""
        chunks: list[list[int]] = []
        for k in sorted(range(len(lengths)), key=lengths.__getitem__):
            chunk = chunks[-1] if chunks else None
            if (chunk is None or len(chunk) >= self.batch_size
                    or (len(chunk) >= MIN_CHUNK
                        and lengths[k] > lengths[chunk[0]] * (1 + PAD_SLACK))):
                chunks.append([k])
            else:
                chunk.append(k)
        return chunks

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        """Raw model logits (in the model's label order) of clean, non-empty texts, run as
        one batch padded to the longest; for parity checks against the source model."""
        return self._run(self.tokenizer.encode_batch(list(texts)))

    def _probabilities(self, encodings: list) -> np.ndarray:
        logits = self._run(encodings).astype(np.float64)[:, self._columns]
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def feeds(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """The model inputs for clean, non-empty texts run as one batch: token ids,
        attention mask (and token types), truncated to ``max_length`` and padded to the
        longest text."""
        return self._feeds(self.tokenizer.encode_batch(list(texts)))

    def _feeds(self, encodings: list) -> dict[str, np.ndarray]:
        width = max(len(e.ids) for e in encodings)
        feeds = {
            "input_ids": _stack([e.ids for e in encodings], width, self._pad_id),
            "attention_mask": _stack([e.attention_mask for e in encodings], width, 0),
            "token_type_ids": _stack([e.type_ids for e in encodings], width, 0),
        }
        return {k: v for k, v in feeds.items() if k in self._inputs}

    def _run(self, encodings: list) -> np.ndarray:
        return self.session.run(None, self._feeds(encodings))[0]


def _digest(model_dir: Path, max_length: int) -> str:
    """SHA-256 (hex, 16 digits) of ``manifest.json`` (which holds the model file's hash,
    labels and precision) and the truncation length: a new, re-quantised or differently
    truncated model gets another digest."""
    digest = hashlib.sha256((model_dir / MANIFEST).read_bytes())
    digest.update(f"max_length={max_length}".encode())
    return digest.hexdigest()[:16]


def _stack(rows: list[list[int]], width: int, pad: int) -> np.ndarray:
    """Rows right-padded with ``pad`` to ``width``, as an int64 matrix."""
    out = np.full((len(rows), width), pad, dtype=np.int64)
    for i, row in enumerate(rows):
        out[i, :len(row)] = row
    return out
