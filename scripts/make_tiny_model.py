"""Regenerate the tiny FinBERT-shaped model shipped in ``gnosis/models/assets/tiny-finbert``.

A 2-layer, 32-wide BERT classifier with a WordPiece tokenizer over a finance vocabulary,
randomly initialised with a fixed seed and then fitted for a few hundred steps to the
lexicon's labels on synthetic headlines, so that its scores point the right way on clear
headlines. It is then exported with the same code path as ``gnosis model export``. The
runtime tests use it, so they always run a real ONNX file in the real ONNX Runtime.

    .venv/bin/python scripts/make_tiny_model.py [--out DIR] [--steps 400]

Needs the ``export`` extra (torch, transformers, onnx).
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

import torch
from transformers import AutoTokenizer, BertForSequenceClassification

from gnosis.models.export import export_model
from gnosis.models.export.toy import build_checkpoint
from gnosis.models.sentiment import TINY_MODEL_DIR, LexiconScorer
from gnosis.models.sentiment.synthetic import synthetic_headlines

THRESHOLD = 0.15
"""|lexicon score| below this is labelled neutral."""


def lexicon_labels(texts: list[str]) -> torch.Tensor:
    """FinBERT label indices (0 positive, 1 negative, 2 neutral) from the lexicon."""
    scores = [s.score for s in LexiconScorer().score_batch(texts)]
    return torch.tensor([0 if s > THRESHOLD else 1 if s < -THRESHOLD else 2 for s in scores])


def fit(checkpoint: Path, steps: int, seed: int) -> float:
    """Fit the checkpoint to lexicon labels in place; returns held-out accuracy."""
    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = BertForSequenceClassification.from_pretrained(checkpoint)
    train, test = synthetic_headlines(4000, seed=seed), synthetic_headlines(500, seed=seed + 1)
    train_y, test_y = lexicon_labels(train), lexicon_labels(test)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        idx = torch.randint(len(train), (32,), generator=generator)
        batch = tokenizer([train[i] for i in idx], padding=True, return_tensors="pt")
        loss = model(**batch, labels=train_y[idx]).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.inference_mode():
        logits = model(**tokenizer(test, padding=True, return_tensors="pt")).logits
    model.save_pretrained(checkpoint)
    return float((logits.argmax(1) == test_y).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=TINY_MODEL_DIR)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)  # same float reductions on every machine
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = build_checkpoint(Path(tmp) / "tiny-finbert", seed=args.seed)
        accuracy = fit(checkpoint, args.steps, args.seed)
        manifest = export_model(checkpoint, args.out, max_length=64, optimize=False,
                                precision="fp32", name="tiny-finbert-onnx-fp32")
    source = f"scripts/make_tiny_model.py --seed {args.seed} --steps {args.steps}"
    replace(manifest, source=source).write(args.out)
    print(f"{manifest.model_id}: agreement with lexicon labels {accuracy:.3f} -> {args.out}")


if __name__ == "__main__":
    main()
