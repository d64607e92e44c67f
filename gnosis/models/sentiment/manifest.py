"""``manifest.json``: what an exported model directory holds, and its file hash."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Self

MANIFEST = "manifest.json"
TOKENIZER = "tokenizer.json"
LABELS = "labels.json"
SENTIMENT_LABELS = ("positive", "negative", "neutral")


@dataclass(frozen=True)
class ModelManifest:
    """Description of an exported sentiment model directory.

    The directory holds ``model_file`` (ONNX), ``tokenizer.json`` (a Hugging Face fast
    tokenizer), ``labels.json`` (output index -> label) and this manifest.
    """

    name: str
    """Model name without hash, e.g. ``"finbert-onnx-int8"``."""
    source: str
    """The checkpoint it was exported from (hub name or directory)."""
    model_file: str
    sha256: str
    """SHA-256 of ``model_file``; checked when the model is loaded."""
    labels: tuple[str, ...]
    """Label of each output logit, in index order (FinBERT: positive, negative, neutral)."""
    max_length: int
    """Default tokens per text at run time."""
    max_positions: int = 512
    """The model's position-embedding limit: no run-time ``max_length`` may exceed it."""
    precision: str = "fp32"
    """``"fp32"``, ``"fp16"`` (half precision, for GPUs) or ``"int8"`` (dynamic
    quantisation, for CPUs)."""
    optimized: bool = False
    """Whether the ONNX Runtime transformer optimiser fused the graph."""
    versions: dict[str, str] = field(default_factory=dict)
    """Versions of the tools that produced the file."""

    @property
    def model_id(self) -> str:
        """``name@<first 12 hex digits of sha256>``: what every score carries."""
        return f"{self.name}@{self.sha256[:12]}"

    @classmethod
    def read(cls, directory: str | Path) -> Self:
        """Read ``manifest.json`` from ``directory``."""
        data: dict[str, Any] = json.loads((Path(directory) / MANIFEST).read_text("utf-8"))
        data["labels"] = tuple(data["labels"])
        return cls(**data)

    def write(self, directory: str | Path) -> Path:
        """Write ``manifest.json`` and ``labels.json`` into ``directory``."""
        directory = Path(directory)
        labels = {str(i): label for i, label in enumerate(self.labels)}
        (directory / LABELS).write_text(json.dumps(labels, indent=2) + "\n", "utf-8")
        path = directory / MANIFEST
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n", "utf-8")
        return path


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
