"""``gnosis model``: export a sentiment model to ONNX, and score headlines with it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)


@app.command()
def export(
    checkpoint: Annotated[str, typer.Argument(
        help="Hugging Face checkpoint: hub name (needs the hub) or local directory.")]
        = "ProsusAI/finbert",
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to write.")]
        = Path("models/finbert"),
    max_length: Annotated[int, typer.Option(help="Tokens per headline at run time.")] = 64,
    opset: Annotated[int, typer.Option(help="ONNX opset.")] = 17,
    optimize: Annotated[bool, typer.Option(help="Fuse the graph (ORT transformer optimiser).")]
        = True,
    quantize: Annotated[bool, typer.Option(help="Dynamic int8 quantisation.")] = True,
    name: Annotated[str | None, typer.Option(help="Model name (default from checkpoint).")]
        = None,
) -> None:
    """Export a sequence-classification checkpoint to an ONNX model directory.

    Writes model.onnx, tokenizer.json, labels.json and manifest.json; set
    GNOSIS_SENTIMENT__MODEL_DIR to the directory to score with it.
    """
    from gnosis.models.export import export_model

    manifest = export_model(checkpoint, out, max_length=max_length, opset=opset,
                            optimize=optimize, quantize=quantize, name=name)
    typer.echo(f"{manifest.model_id} -> {out}")


@app.command()
def score(
    headlines: Annotated[list[str], typer.Argument(help="Headlines to score.")],
    model_dir: Annotated[Path | None, typer.Option(
        "--model-dir", "-m", help="Exported model directory (default: the lexicon).")] = None,
) -> None:
    """Score headlines and print one JSON object per line."""
    from gnosis.models.sentiment import LexiconScorer, OnnxSentimentScorer, SentimentScorer

    scorer: SentimentScorer = OnnxSentimentScorer(model_dir) if model_dir else LexiconScorer()
    for text, result in zip(headlines, scorer.score_batch(headlines), strict=True):
        typer.echo(json.dumps({"headline": text, "score": round(result.score, 4),
                               "positive": round(result.positive, 4),
                               "negative": round(result.negative, 4),
                               "neutral": round(result.neutral, 4),
                               "model_id": result.model_id}))
