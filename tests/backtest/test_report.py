"""Reports: the text report, and the HTML page rendered by a real headless browser."""

from __future__ import annotations

import shutil
import subprocess
import tempfile

import numpy as np
import pandas as pd
import pytest
from backtesting.test import GOOG

from gnosis.backtest import BacktestRunner, generate_report, write_html_report
from gnosis.backtest.report import feature_uncertainty, value_ticks

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def result():
    close = GOOG.Close
    a, b = close.rolling(10).mean(), close.rolling(20).mean()
    signals = pd.Series(np.where(a > b, 1.0, -1.0), index=GOOG.index).where(b.notna())
    return BacktestRunner(10_000, permutations=100).run(signals, GOOG)


def test_text_report_lists_metrics_and_trades(result):
    text = generate_report(result)
    assert f"{result.total_return:.2%}" in text
    assert "Sharpe Ratio" in text
    assert "MCPT p-value" in text
    assert "Last trades (10 of" in text


def test_html_report_is_self_contained(result, tmp_path):
    path = write_html_report(result, tmp_path / "report.html", title="SMA <cross>",
                             price=GOOG)
    page = path.read_text()
    assert "SMA &lt;cross&gt;" in page
    assert page.count("<svg") == 4  # price, equity, drawdown, position
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "<script" not in page
    assert 'id="trades"' in page and 'id="round-trips"' in page
    buys = page.count('class="marker buy"')
    sells = page.count('class="marker sell"')
    assert buys + sells == int((result.positions.diff().fillna(result.positions) != 0).sum())


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_html_report_renders_in_chromium(result, tmp_path):
    path = write_html_report(result, tmp_path / "report.html", price=GOOG.Close,
                             signals=pd.Series(np.where(result.positions > 0, "BUY", "SELL"),
                                               index=GOOG.index))
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--no-first-run", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={profile}", "--dump-dom", path.as_uri()],
            capture_output=True, text=True, timeout=120, check=True).stdout
    assert dom.count("<svg") == 4
    assert 'id="metrics"' in dom
    assert "Total Return" in dom
    assert f"{result.total_return:.2%}" in dom
    assert 'class="marker buy"' in dom
    assert 'class="marker sell"' in dom


def test_feature_uncertainty_summarises_warm_signals(result, tmp_path):
    ts = GOOG.index.tz_localize("UTC").as_unit("ns").asi8[:6]
    signals = pd.DataFrame({
        "ticker": ["G"] * 6, "ts": ts, "signal_type": ["HOLD"] * 6,
        "suggested_position_size": 0.0,
        "hurst_exponent": [0.5, 0.62, 0.60, 0.52, 0.40, 0.5],
        "hurst_se": [0.03, 0.03, 0.05, 0.03, 0.03, 1.0],  # the last is warming up
        "hawkes_branching": [0.2, 0.3, 0.4, 0.5, 0.6, 0.0],
        "hawkes_se": [0.07, 0.06, 0.05, 0.04, 0.03, 1.0],
    })
    table = feature_uncertainty(signals, hurst_significance=2.0)
    row = table.loc["G"]
    assert row.signals == 5
    assert row.hurst_significant == pytest.approx(2 / 5)  # 0.62 and 0.40
    assert (row.hurst, row.hurst_se, row.hawkes, row.hawkes_se) == pytest.approx(
        (0.52, 0.03, 0.4, 0.05))
    assert feature_uncertainty(signals.drop(columns="hurst_se"), 2.0).empty
    page = write_html_report(result, tmp_path / "r.html", signals=signals).read_text()
    assert 'id="uncertainty"' in page and "0.520 ± 0.030" in page


@pytest.mark.parametrize(("lo", "hi", "fmt", "labels"), [
    (-0.0047, 0.0, "{:.0%}", ["-0.4%", "-0.3%", "-0.2%", "-0.1%", "0.0%"]),
    (-0.0395, 0.0, "{:.0%}", ["-3%", "-2%", "-1%", "0%"]),
    (99_210.0, 100_074.0, "{:,.0f}", ["99,400", "99,600", "99,800", "100,000"]),
    (1.07, 1.25, "{:,.2f}", ["1.10", "1.15", "1.20", "1.25"]),
])
def test_axis_labels_have_the_precision_their_range_needs(lo, hi, fmt, labels):
    ticks, label = value_ticks(lo, hi, fmt)
    assert [label(v) for v in ticks] == labels
    assert all(lo - 1e-12 <= v <= hi + 1e-12 for v in ticks)
