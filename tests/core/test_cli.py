"""The ``gnosis`` command as a user runs it: help, errors as one line, replay → backtest."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from gnosis.replay.synthetic import synthetic_bars, synthetic_news
from gnosis.sinks.files import read_signals

GNOSIS = Path(sys.executable).with_name("gnosis")  # the installed console script


def gnosis(*args: str, cwd=None, env=None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gnosis.cli", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=300, check=False)


COMMANDS = ("worker", "replay", "record", "backtest", "sweep", "walkforward", "demo", "sample",
            "config", "kafka", "model", "state", "news")


def help_commands(text: str) -> list[str]:
    """The command names of a help page's Commands panel (first word of each entry)."""
    panel = text.split("─ Commands ─", 1)[1].split("╰", 1)[0]
    return [line[2:].split()[0] for line in panel.splitlines()
            if line.startswith("│ ") and line[2:3].strip()]


def test_help_lists_every_command():
    out = gnosis("--help", env={**os.environ, "COLUMNS": "120"})
    assert out.returncode == 0
    assert help_commands(out.stdout) == list(COMMANDS)
    for command in COMMANDS:  # and each one answers --help
        sub = gnosis(command, "--help", env={**os.environ, "COLUMNS": "120"})
        assert sub.returncode == 0, (command, sub.stderr)
        assert f"Usage: python -m gnosis.cli {command}" in sub.stdout


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
    # GOOG trades daily bars and EURUSD hourly ones: no book splices them together.
    overview = (report / "report.html").read_text()
    assert "No combined book" in overview and "<svg" not in overview
    assert 'href="report-GOOG.html"' in overview
    assert (report / "report-GOOG.html").read_text().count("<svg") == 4


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
    assert "rows (1 skipped: 1 high_below_body)" in out.stderr

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


def installed_gnosis(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The real ``gnosis`` executable, with only the given GNOSIS_* variables set."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GNOSIS_")}
    return subprocess.run([str(GNOSIS), *args], capture_output=True, text=True,
                          env={**clean, **env}, timeout=120, check=False)


@pytest.mark.parametrize(("variable", "value", "allowed", "commands"), [
    ("GNOSIS_WORKER__PROCESSING_GUARANTEE", "exactly-once", "'at_least_once', 'exactly_once'",
     ("config", "worker", "replay", "sample")),
    ("GNOSIS_RULES__SENTIMENT_WINDOW", "1", "a duration like 0, 30s, 5m, 1h or 1d",
     ("config", "replay")),
])
def test_every_command_refuses_a_bad_setting_before_doing_anything(tmp_path, variable, value,
                                                                   allowed, commands):
    bars = tmp_path / "bars.csv"
    bars.write_text("ticker,timestamp,open,high,low,close,volume\n"
                    "AAA,2024-01-02T00:00:00Z,1,1,1,1,1\n")
    setting = variable.removeprefix("GNOSIS_").lower().replace("__", ".")
    arguments = {"config": [], "worker": [], "sample": [str(tmp_path / "sample")],
                 "replay": [str(bars), "-o", str(tmp_path / "s")]}
    # No broker listens on port 9: a worker that tried to connect would fail differently.
    for command in ([name, *arguments[name]] for name in commands):
        out = installed_gnosis(*command, GNOSIS_KAFKA__BOOTSTRAP_SERVERS="127.0.0.1:9",
                               **{variable: value})
        assert out.returncode == 2, (command, out.stderr)
        lines = [line for line in out.stderr.splitlines() if line.strip()]
        assert lines == [f"error: environment {variable}: {setting} = {value!r}: allowed: "
                         f"{allowed}"], command
        assert out.stdout == ""
    assert not (tmp_path / "s").exists() and not (tmp_path / "sample").exists()


def test_replay_keeps_every_interval_and_counts_every_dropped_row(tmp_path):
    minute = synthetic_bars(2, 150, seed=3)
    five = synthetic_bars(2, 40, seed=4, interval="5m")
    bars = pd.concat([minute, five], ignore_index=True)
    rows = bars.assign(timestamp=pd.to_datetime(bars["ts"], utc=True).dt.strftime(
        "%Y-%m-%dT%H:%M:%SZ")).drop(columns="ts")
    repeat = rows.iloc[[5]]
    future = rows.iloc[[6]].assign(timestamp="2100-01-01T00:00:00Z")
    pd.concat([rows, repeat, future]).to_csv(tmp_path / "bars.csv", index=False)
    news = synthetic_news(minute, per_bar=0.3, seed=5)
    pd.DataFrame({"id": news["id"], "timestamp": pd.to_datetime(news["ts"], utc=True),
                  "tickers": [";".join(t) for t in news["tickers"]],
                  "headline": news["headline"]}).to_csv(tmp_path / "news.csv", index=False)

    out = installed_gnosis("replay", str(tmp_path / "bars.csv"), str(tmp_path / "news.csv"),
                           "-o", str(tmp_path / "signals.jsonl"))
    assert out.returncode == 0, out.stderr
    summary = out.stderr.strip().splitlines()[-1]
    assert summary.startswith(f"{len(bars):,} signals from bars: {len(bars) + 2:,} rows "
                              "(2 skipped: 1 duplicate_bar, 1 bad_timestamp); news: "
                              f"{len(news):,} rows (0 skipped)")
    assert ("bars.csv:382: field 'timestamp': repeats the 1m bar of T001 at "
            "2024-01-02T14:33:00Z (row 7) [duplicate_bar]") in out.stderr
    assert ("bars.csv:383: field 'timestamp': 2100-01-01T00:00:00Z (year 2100) is more than "
            "1d ahead of now") in out.stderr
    signals = read_signals(tmp_path / "signals.jsonl")
    assert signals.groupby("interval").size().to_dict() == {"1m": 300, "5m": 80}
    assert all(len(r) >= 1 for r in signals["reasons"])
    assert signals["signal_id"].is_unique
