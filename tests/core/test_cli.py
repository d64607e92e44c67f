"""The ``gnosis`` command as a user runs it: help, errors as one line, replay → backtest."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from gnosis.sinks.files import read_signals


def gnosis(*args: str, cwd=None, env=None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gnosis.cli", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=300, check=False)


def test_help_lists_every_command():
    out = gnosis("--help")
    assert out.returncode == 0
    for command in ("worker", "replay", "backtest", "demo", "kafka", "model", "config",
                    "sample"):
        assert command in out.stdout


def test_config_shows_environment_variable_names():
    out = gnosis("config")
    assert out.returncode == 0
    assert "GNOSIS_KAFKA__BOOTSTRAP_SERVERS" in out.stdout
    assert "GNOSIS_RULES__MIN_CONFIDENCE" in out.stdout


def test_bad_config_is_one_clear_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[kafka]\npartitions = 'many'\n")
    out = gnosis("config", "--config", str(path))
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "bad.toml" in lines[0]
    assert "partitions" in lines[0]


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sample")
    assert gnosis("sample", str(folder)).returncode == 0
    return folder


def test_replay_then_backtest(sample, tmp_path):
    signals = tmp_path / "signals.parquet"
    out = gnosis("replay", str(sample / "bars.csv"), str(sample / "news.csv"), "-o",
                 str(signals))
    assert out.returncode == 0, out.stderr
    frame = read_signals(signals)
    bars = pd.read_csv(sample / "bars.csv")
    assert len(frame) == len(bars)
    assert set(frame["signal_type"]) <= {"BUY", "SELL", "HOLD"}
    assert frame["signal_id"].is_unique

    report = tmp_path / "report"
    out = gnosis("backtest", str(signals), str(sample / "bars.csv"), "-r", str(report),
                 "--permutations", "50")
    assert out.returncode == 0, out.stderr
    assert "Sharpe Ratio" in out.stdout
    html = (report / "report.html").read_text()
    assert "<svg" in html
    assert (report / "report-GOOG.html").exists()


def test_bad_rows_are_named_skipped_and_counted(sample, tmp_path):
    lines = (sample / "bars.csv").read_text().splitlines()
    header = lines[0].split(",")
    row = lines[5].split(",")
    row[header.index("high")] = "0.5"  # below the body
    lines[5] = ",".join(row)
    bad = tmp_path / "bars.csv"
    bad.write_text("\n".join(lines) + "\n")
    out = gnosis("replay", str(bad), "-o", str(tmp_path / "s.jsonl"))
    assert out.returncode == 0, out.stderr
    assert "bars.csv:6: field 'high'" in out.stderr
    assert "high_below_body" in out.stderr
    assert "(1 rows skipped)" in out.stderr

    strict = gnosis("replay", str(bad), "--strict", "-o", str(tmp_path / "t.jsonl"))
    assert strict.returncode == 2
    assert "Traceback" not in strict.stderr
    assert "bars.csv:6" in strict.stderr


def test_missing_column_names_file_and_column(tmp_path):
    path = tmp_path / "bars.csv"
    path.write_text("ticker,timestamp,open,high,low,close\nAAA,2024-01-02T00:00:00Z,1,1,1,1\n")
    out = gnosis("replay", str(path), "-o", str(tmp_path / "s.jsonl"))
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert "bars.csv" in out.stderr
    assert "volume" in out.stderr
