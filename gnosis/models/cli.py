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
    precision: Annotated[str, typer.Option(
        help="fp32, fp16 (GPUs: CUDA, TensorRT) or int8 (CPUs: dynamic quantisation).")]
        = "int8",
    name: Annotated[str | None, typer.Option(help="Model name (default from checkpoint).")]
        = None,
) -> None:
    """Export a sequence-classification checkpoint to an ONNX model directory.

    Writes model.onnx, tokenizer.json, labels.json and manifest.json; set
    GNOSIS_SENTIMENT__MODEL_DIR to the directory to score with it.
    """
    from gnosis.models.export import PRECISIONS, export_model

    if precision not in PRECISIONS:
        raise typer.BadParameter(f"one of {', '.join(PRECISIONS)}", param_hint="--precision")
    manifest = export_model(checkpoint, out, max_length=max_length, opset=opset,
                            optimize=optimize, precision=precision, name=name)
    typer.echo(f"{manifest.model_id} -> {out}")


@app.command()
def convert(
    model_dir: Annotated[Path, typer.Argument(help="An exported fp32 model directory.",
                                              exists=True, file_okay=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to write.")],
    precision: Annotated[str, typer.Option(help="fp16 (GPUs) or int8 (CPUs).")] = "int8",
) -> None:
    """Convert an exported fp32 model to fp16 or int8 (no torch needed)."""
    from gnosis.models.export import convert_fp16, quantize_model

    if precision not in ("fp16", "int8"):
        raise typer.BadParameter("fp16 or int8", param_hint="--precision")
    manifest = (convert_fp16 if precision == "fp16" else quantize_model)(model_dir, out)
    typer.echo(f"{manifest.model_id} -> {out}")


@app.command()
def score(
    headlines: Annotated[list[str], typer.Argument(help="Headlines to score.")],
    model_dir: Annotated[Path | None, typer.Option(
        "--model-dir", "-m", help="Exported model directory (default: the lexicon).")] = None,
    providers: Annotated[str, typer.Option(
        help="ONNX Runtime providers, e.g. cuda,cpu (as sentiment.providers).")] = "cpu",
) -> None:
    """Score headlines and print one JSON object per line."""
    from gnosis.models.sentiment import LexiconScorer, OnnxSentimentScorer, SentimentScorer

    scorer: SentimentScorer = (OnnxSentimentScorer(model_dir, providers=providers)
                               if model_dir else LexiconScorer())
    for text, result in zip(headlines, scorer.score_batch(headlines), strict=True):
        typer.echo(json.dumps({"headline": text, "score": round(result.score, 4),
                               "positive": round(result.positive, 4),
                               "negative": round(result.negative, 4),
                               "neutral": round(result.neutral, 4),
                               "model_id": result.model_id}))
