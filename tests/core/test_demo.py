"""The main job, as a user runs it: ``gnosis demo`` end to end on a real broker."""

from __future__ import annotations

import dataclasses
import math
import os
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from gnosis.config import Settings
from gnosis.demo import DEMO_SETTINGS, signal_differences
from gnosis.replay.inprocess import replay_frame, to_signals
from gnosis.replay.readers import read_bars, read_news
from gnosis.sinks.files import read_signals, write_signals
from gnosis.streams.kafka.broker import free_port

SIGNALS = 7_148  # 2,148 GOOG daily bars and 5,000 EURUSD hourly bars


def _y_labels(page: str) -> list[list[str]]:
    """The y-axis labels of each chart of a report page."""
    return [re.findall(r'class="axis y-label"[^>]*>([^<]*)<', svg)
            for svg in page.split("<svg")[1:]]


@pytest.mark.kafka
@pytest.mark.slow
def test_demo_runs_end_to_end_and_cleans_up(tmp_path):
    out = subprocess.run([sys.executable, "-m", "gnosis.cli", "demo", "--workdir",
                          str(tmp_path), "--port", str(free_port())], capture_output=True,
                         text=True, timeout=600, env={**os.environ, "COLUMNS": "200"},
                         check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"all {SIGNALS:,} signals identical in all" in out.stderr

    # What the live worker published equals, field by field, what the in-process replay
    # of the same sample with the demo's settings gives.
    live = read_signals(tmp_path / "signals.jsonl")
    settings = Settings.load(DEMO_SETTINGS)
    bars = read_bars(tmp_path / "data" / "bars.csv")
    news = read_news(tmp_path / "data" / "news.csv").frame
    write_signals(to_signals(replay_frame(bars.frame, news, settings)), tmp_path / "ref.jsonl")
    reference = read_signals(tmp_path / "ref.jsonl")
    assert len(live) == len(reference) == SIGNALS
    live = live.sort_values("signal_id", ignore_index=True)
    reference = reference.sort_values("signal_id", ignore_index=True)
    assert list(live.columns) == list(reference.columns)
    for column in reference.columns:
        if reference[column].dtype.kind == "f":
            np.testing.assert_allclose(live[column], reference[column], rtol=1e-9,
                                       atol=1e-9, err_msg=column)
        else:
            assert live[column].tolist() == reference[column].tolist(), column

    # The demo's settings make both instruments trade.
    kinds = live.groupby(["ticker", "signal_type"]).size().unstack(fill_value=0)
    for ticker in ("GOOG", "EURUSD"):
        assert kinds.loc[ticker, "BUY"] + kinds.loc[ticker, "SELL"] >= 10, kinds
    assert kinds.loc["EURUSD", "SELL"] > 0

    report = tmp_path / "report"
    text = (report / "report.txt").read_text()
    for heading in ("Backtest report: GOOG (1d bars)", "Backtest report: EURUSD (1h bars)",
                    "Per ticker", "Signal mix, and why HOLD", "Feature uncertainty"):
        assert heading in text
    per_ticker = text.split("Per ticker")[1]
    for ticker in ("GOOG", "EURUSD"):
        row = next(line.split() for line in per_ticker.splitlines()
                   if line.startswith(ticker))
        assert int(row[5]) > 0, row  # num_trades
    overview = (report / "report.html").read_text()
    assert "No combined book" in overview
    assert "equal-weight book" not in overview
    assert 'href="report-GOOG.html"' in overview and 'href="report-EURUSD.html"' in overview
    assert 'id="mix"' in overview and "BUY blocked" in overview
    for ticker in ("GOOG", "EURUSD"):
        page = (report / f"report-{ticker}.html").read_text()
        assert page.count("<svg") == 4  # price, equity, drawdown, position
        assert 'class="marker buy"' in page
        assert 'id="metrics"' in page and "Sharpe Ratio" in page
        assert page.count("<tr><td>") > 0 and 'id="trades"' in page
        for labels in _y_labels(page):
            assert len(labels) >= 3 and len(set(labels)) == len(labels), labels
    lines = (tmp_path / "signals.jsonl").read_text().splitlines()
    assert len(lines) == SIGNALS
    # Nothing it started is left running.
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True)
    assert str(tmp_path) not in ps.stdout


def test_signal_differences_finds_every_field_that_differs():
    bars = pd.DataFrame({"ticker": "AAA", "ts": np.arange(1, 41) * 60_000_000_000,
                         "interval": "1m", "open": 1.0, "high": 1.2, "low": 0.9,
                         "close": 1.0 + np.arange(40) / 100, "volume": 100.0})
    signals = to_signals(replay_frame(bars))
    assert signal_differences(signals, signals) == []
    nudged = [dataclasses.replace(signals[3], price=signals[3].price * (1 + 1e-12))]
    assert signal_differences(nudged + signals[4:], signals[3:]) == []  # within 1e-9
    changed = dataclasses.replace(signals[5], vsa_score=signals[5].vsa_score + 1e-6,
                                  reasons=("another",), model_id="other")
    found = signal_differences([*signals[:5], changed, *signals[6:]], signals)
    assert [line.split(": ")[1].split()[0] for line in found] == ["vsa_score", "reasons",
                                                                   "model_id"]
    assert any("missing from the live" in line for line in signal_differences(
        signals[1:], signals))
    nan = dataclasses.replace(signals[0], hurst_exponent=math.nan)
    assert signal_differences([nan], [nan]) == []
