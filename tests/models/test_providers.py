"""``sentiment.providers``: passed to ONNX Runtime; a provider the build lacks is one clear
error naming the setting and the package, never a silent fallback to the CPU."""

from __future__ import annotations

import subprocess
import sys

import onnxruntime as ort
import pytest

from gnosis.config import SentimentConfig
from gnosis.models.sentiment import TINY_MODEL_DIR, OnnxSentimentScorer, load_scorer
from gnosis.models.sentiment.providers import ProviderError, check_active, resolve_providers

MISSING = [(alias, full, package) for alias, full, package in (
    ("cuda", "CUDAExecutionProvider", "onnxruntime-gpu"),
    ("openvino", "OpenVINOExecutionProvider", "onnxruntime-openvino"),
    ("directml", "DmlExecutionProvider", "onnxruntime-directml"),
) if full not in ort.get_available_providers()]


def test_short_and_full_names_resolve_in_order() -> None:
    assert resolve_providers("cpu") == ["CPUExecutionProvider"]
    assert resolve_providers(" CPUExecutionProvider , cpu") == ["CPUExecutionProvider"]
    assert resolve_providers("") == ["CPUExecutionProvider"]


def test_the_scorer_runs_on_the_provider_it_was_given() -> None:
    scorer = OnnxSentimentScorer(TINY_MODEL_DIR, providers="cpu")
    assert scorer.session.get_providers() == ["CPUExecutionProvider"]
    assert scorer.provider == "CPUExecutionProvider"


@pytest.mark.skipif(not MISSING, reason="this onnxruntime build has every provider tried")
@pytest.mark.parametrize(("alias", "full", "package"), MISSING)
def test_a_missing_provider_names_the_setting_and_the_package(alias, full, package) -> None:
    with pytest.raises(ProviderError) as caught:
        load_scorer(SentimentConfig(model_dir=str(TINY_MODEL_DIR), providers=f"{alias},cpu"))
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"sentiment.providers: {full} is not in the installed "
                              f"onnxruntime {ort.__version__}")
    assert f"install {package} in place of onnxruntime" in message


def test_an_unknown_provider_is_named() -> None:
    with pytest.raises(ProviderError, match=r"^sentiment.providers: unknown provider 'gpu'"):
        resolve_providers("gpu")


def test_a_provider_dropped_at_start_up_is_an_error() -> None:
    # What ONNX Runtime does when, e.g., the CUDA libraries are missing: it starts on the
    # CPU and only logs. The scorer compares what it asked for with what runs.
    with pytest.raises(ProviderError, match="CUDAExecutionProvider failed to start"):
        check_active(["CUDAExecutionProvider", "CPUExecutionProvider"],
                     ["CPUExecutionProvider"])
    assert check_active(["CPUExecutionProvider"], ["CPUExecutionProvider"]) == \
        "CPUExecutionProvider"


@pytest.mark.skipif(not MISSING, reason="this onnxruntime build has every provider tried")
def test_cli_prints_one_line(tmp_path) -> None:
    """The real command in a real process: one line on stderr, exit status 2."""
    env = {"GNOSIS_SENTIMENT__MODEL_DIR": str(TINY_MODEL_DIR),
           "GNOSIS_SENTIMENT__PROVIDERS": f"{MISSING[0][0]},cpu", "PATH": ""}
    news = tmp_path / "news.csv"
    news.write_text("id,timestamp,tickers,headline\nn1,2024-01-02T15:30:00Z,AAPL,Acme beats\n")
    done = subprocess.run([sys.executable, "-m", "gnosis.cli", "news", "score", str(news),
                           "--store", str(tmp_path / "store")], env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: sentiment.providers: {MISSING[0][1]} is not in")
    assert MISSING[0][2] in lines[0]
