"""Export a Hugging Face sequence classifier to ONNX, optimise and quantise it.

Small steps, each usable alone::

    export_model("ProsusAI/finbert", "models/finbert")           # torch -> ONNX (+ below)
    optimize_model("models/finbert-fp32", "models/finbert-opt")   # fuse attention, layer norm
    quantize_model("models/finbert-fp32", "models/finbert-int8")  # dynamic int8 (CPUs)
    convert_fp16("models/finbert-fp32", "models/finbert-fp16")    # half precision (GPUs)

Every step writes a directory that :class:`gnosis.models.sentiment.OnnxSentimentScorer`
loads: ``model.onnx``, ``tokenizer.json``, ``labels.json`` and ``manifest.json``.
:func:`export_model` needs the ``export`` extra (torch, transformers, onnx); the other two
need only ``onnx`` and ``onnxruntime``.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import replace
from importlib import metadata
from pathlib import Path

from gnosis.models.sentiment.manifest import TOKENIZER, ModelManifest, sha256_file

MODEL_FILE = "model.onnx"
PRECISIONS = ("fp32", "fp16", "int8")
"""fp32 runs everywhere; fp16 is for GPUs (CUDA, TensorRT); int8 is for CPUs."""
DEFAULT_CHECKPOINT = "ProsusAI/finbert"
_SAMPLE = ["Acme shares surge after profit beats estimates",
           "Globex falls as regulators open a probe into its accounts"]


def export_model(checkpoint: str | Path = DEFAULT_CHECKPOINT, out_dir: str | Path = "model",
                 *, max_length: int = 64, opset: int = 17, optimize: bool = True,
                 precision: str = "int8", name: str | None = None) -> ModelManifest:
    """Export ``checkpoint`` (hub name or local directory) to an ONNX model directory.

    The graph has dynamic ``batch`` and ``sequence`` axes. Labels come from the
    checkpoint's ``config.id2label`` (FinBERT: positive, negative, neutral). With
    ``optimize`` the ONNX Runtime transformer optimiser fuses the graph. ``precision`` is
    one of :data:`PRECISIONS`: ``int8`` quantises the weights of matrix multiplications
    (CPUs), ``fp16`` halves weights and activations (GPUs). ``name`` defaults to
    ``<checkpoint name>-onnx-<precision>``. Returns the manifest written.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    try:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
    except ImportError as exc:
        raise RuntimeError("export needs the 'export' extra: "
                           "pip install 'gnosis-sentiment-engine[export]'") from exc

    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint))
    if not tokenizer.is_fast:
        raise ValueError(f"{checkpoint}: a fast tokenizer (tokenizer.json) is required")
    model = AutoModelForSequenceClassification.from_pretrained(
        str(checkpoint), attn_implementation="eager").eval()
    labels = tuple(model.config.id2label[i].lower() for i in range(model.config.num_labels))
    stem = Path(str(checkpoint)).name.lower()
    out_dir = Path(out_dir)

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "fp32"
        work.mkdir()
        tokenizer.backend_tokenizer.save(str(work / TOKENIZER))
        sample = tokenizer(_SAMPLE, padding=True, return_tensors="pt")
        names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]
        axes = {n: {0: "batch", 1: "sequence"} for n in names}
        with torch.inference_mode():
            torch.onnx.export(model, tuple(sample[n] for n in names), str(work / MODEL_FILE),
                              input_names=names, output_names=["logits"],
                              dynamic_axes={**axes, "logits": {0: "batch"}},
                              opset_version=opset, do_constant_folding=True, dynamo=False)
        manifest = _write(work, ModelManifest(
            name=f"{stem}-onnx-fp32", source=str(checkpoint), model_file=MODEL_FILE,
            sha256="", labels=labels, max_length=max_length,
            max_positions=model.config.max_position_embeddings,
            versions=_versions("torch", "transformers", "onnxruntime")))
        if optimize:
            manifest = optimize_model(work, Path(tmp) / "opt",
                                      num_heads=model.config.num_attention_heads,
                                      hidden_size=model.config.hidden_size)
            work = Path(tmp) / "opt"
        if precision != "fp32":
            convert = quantize_model if precision == "int8" else convert_fp16
            manifest = convert(work, Path(tmp) / precision)
            work = Path(tmp) / precision
        if name:
            manifest = replace(manifest, name=name)
        return _copy(work, out_dir, manifest)


def optimize_model(src_dir: str | Path, out_dir: str | Path, *, num_heads: int = 0,
                   hidden_size: int = 0) -> ModelManifest:
    """Fuse a BERT graph (attention, layer norm, GELU) with the ONNX Runtime optimiser.

    Attention is fused only when ``num_heads`` and ``hidden_size`` are given (or, left at
    0, when the optimiser can read them from the graph, which fails for some exports);
    :func:`export_model` passes them from the checkpoint's config.
    """
    from onnxruntime.transformers.optimizer import optimize_model as ort_optimize

    src = ModelManifest.read(src_dir)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    optimized = ort_optimize(str(Path(src_dir) / src.model_file), model_type="bert",
                             num_heads=num_heads, hidden_size=hidden_size, opt_level=0)
    optimized.save_model_to_file(str(out_dir / MODEL_FILE))
    shutil.copy(Path(src_dir) / TOKENIZER, out_dir / TOKENIZER)
    return _write(out_dir, replace(src, model_file=MODEL_FILE, optimized=True))


def quantize_model(src_dir: str | Path, out_dir: str | Path) -> ModelManifest:
    """Dynamic int8 quantisation (weights int8, activations quantised at run time)."""
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    src = ModelManifest.read(src_dir)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    quantize_dynamic(Path(src_dir) / src.model_file, out_dir / MODEL_FILE,
                     weight_type=QuantType.QInt8, per_channel=False, reduce_range=False,
                     op_types_to_quantize=["MatMul", "Attention", "Gemm"],
                     # fused contrib ops defeat shape inference; their outputs are float
                     extra_options={"DefaultTensorType": TensorProto.FLOAT})
    shutil.copy(Path(src_dir) / TOKENIZER, out_dir / TOKENIZER)
    name = src.name.replace("-fp32", "-int8") if "-fp32" in src.name else f"{src.name}-int8"
    return _write(out_dir, replace(src, name=name, model_file=MODEL_FILE, precision="int8",
                                   versions={**src.versions, **_versions("onnxruntime")}))


def convert_fp16(src_dir: str | Path, out_dir: str | Path) -> ModelManifest:
    """Half-precision weights and activations for GPUs; the inputs and the logits keep
    their types, so the scorer feeds and reads the model as before."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    src = ModelManifest.read(src_dir)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = onnx.load(str(Path(src_dir) / src.model_file))
    onnx.save(convert_float_to_float16(model, keep_io_types=True), str(out_dir / MODEL_FILE))
    shutil.copy(Path(src_dir) / TOKENIZER, out_dir / TOKENIZER)
    name = src.name.replace("-fp32", "-fp16") if "-fp32" in src.name else f"{src.name}-fp16"
    return _write(out_dir, replace(src, name=name, model_file=MODEL_FILE, precision="fp16",
                                   versions={**src.versions, **_versions("onnxruntime")}))


def _write(directory: Path, manifest: ModelManifest) -> ModelManifest:
    manifest = replace(manifest, sha256=sha256_file(directory / manifest.model_file))
    manifest.write(directory)
    return manifest


def _copy(src: Path, out_dir: Path, manifest: ModelManifest) -> ModelManifest:
    out_dir.mkdir(parents=True, exist_ok=True)
    for item in (manifest.model_file, TOKENIZER):
        shutil.copy(src / item, out_dir / item)
    return _write(out_dir, manifest)


def _versions(*packages: str) -> dict[str, str]:
    found = {}
    for package in packages:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found
