"""ONNX Runtime execution providers: names users write, and the packages that bring them."""

from __future__ import annotations

from collections.abc import Sequence

import onnxruntime as ort

ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "directml": "DmlExecutionProvider",
}
"""Short names accepted in ``sentiment.providers``, besides ONNX Runtime's own names."""

PACKAGES = {
    "CPUExecutionProvider": "onnxruntime",
    "CUDAExecutionProvider": "onnxruntime-gpu",
    "TensorrtExecutionProvider": "onnxruntime-gpu (and NVIDIA TensorRT)",
    "OpenVINOExecutionProvider": "onnxruntime-openvino",
    "CoreMLExecutionProvider": "onnxruntime (the macOS wheel)",
    "DmlExecutionProvider": "onnxruntime-directml",
}
"""The pip package whose onnxruntime build has each provider; they all install the module
``onnxruntime``, so one replaces the other."""


class ProviderError(ValueError):
    """``sentiment.providers`` names a provider this onnxruntime cannot run."""


def resolve_providers(spec: str | Sequence[str]) -> list[str]:
    """ONNX Runtime provider names, in order of preference, for a ``sentiment.providers``
    value (comma-separated short or full names). Raises :class:`ProviderError` naming the
    setting and the package to install when the installed build lacks one."""
    names = [n.strip() for n in spec.split(",")] if isinstance(spec, str) else list(spec)
    names = [n for n in names if n] or ["cpu"]
    known = {full.lower(): full for full in PACKAGES}
    available = ort.get_available_providers()
    resolved = []
    for name in names:
        full = ALIASES.get(name.lower()) or known.get(name.lower())
        if full is None:
            raise ProviderError(f"sentiment.providers: unknown provider {name!r} (one of "
                                f"{', '.join(ALIASES)}, or an ONNX Runtime provider name)")
        if full not in available:
            raise ProviderError(
                f"sentiment.providers: {full} is not in the installed onnxruntime "
                f"{ort.__version__} (it has {', '.join(available)}); install "
                f"{PACKAGES[full]} in place of onnxruntime")
        if full not in resolved:
            resolved.append(full)
    return resolved


def check_active(requested: Sequence[str], active: Sequence[str]) -> str:
    """The provider that runs the model; raises :class:`ProviderError` when ONNX Runtime
    dropped a requested provider (it falls back to CPU silently when, e.g., CUDA libraries
    are missing)."""
    dropped = [p for p in requested if p not in active]
    if dropped:
        raise ProviderError(
            f"sentiment.providers: {', '.join(dropped)} failed to start (onnxruntime fell "
            f"back to {', '.join(active)}); check that {PACKAGES.get(dropped[0], 'its')} "
            "libraries (CUDA, cuDNN, TensorRT, OpenVINO) are installed and visible")
    return active[0]
