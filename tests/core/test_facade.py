"""The notebook façade: the last bar's signal, through the same core."""

from __future__ import annotations

import pandas as pd
import pytest

import gnosis
from gnosis.engine import run_events
from gnosis.replay.sample import sample_bars, sample_news
from gnosis.replay.synthetic import bars_to_events, news_to_events


@pytest.fixture(scope="module")
def goog():
    bars = sample_bars()
    bars = bars[bars["ticker"] == "GOOG"].reset_index(drop=True)
    news = sample_news(bars)
    index = pd.to_datetime(bars["ts"], utc=True)
    ohlcv = bars.set_index(index)[["open", "high", "low", "close", "volume"]]
    ohlcv.columns = ["Open", "High", "Low", "Close", "Volume"]
    headlines = pd.DataFrame({"timestamp": pd.to_datetime(news["ts"], utc=True),
                              "headline": news["headline"]})
    return bars, news, ohlcv, headlines


def test_generate_signal_is_the_engine_result_for_the_last_bar(goog):
    bars, news, ohlcv, headlines = goog
    signal = gnosis.generate_signal("GOOG", ohlcv, headlines, interval="1d")
    expected = run_events(bars_to_events(bars), news_to_events(news))[-1]
    assert signal is not None
    assert signal.signal_id == expected.signal_id
    assert signal.signal_type == expected.signal_type
    assert signal.confidence == pytest.approx(expected.confidence, abs=1e-9)
    assert signal.sentiment_count == expected.sentiment_count


def test_min_confidence_filters_and_batch_covers_every_ticker(goog):
    _, _, ohlcv, headlines = goog
    engine = gnosis.Engine()
    out = engine.generate_signals_batch(["A", "B"], {"A": ohlcv, "B": ohlcv.iloc[:-5]},
                                        headlines, min_confidence=0.0)
    assert set(out) == {"A", "B"}
    assert out["A"].ts != out["B"].ts
    assert engine.generate_signal("A", ohlcv, min_confidence=1.01) is None


def test_features_config_path_changes_the_features(tmp_path, goog):
    _, _, ohlcv, _ = goog
    path = tmp_path / "features.toml"
    path.write_text("[features]\nwindow = 256\nvol_long = 64\n")
    short = gnosis.Engine(features_config_path=path)
    assert short.settings.features.window == 256
    assert (short.generate_signal("G", ohlcv).hurst_exponent
            != gnosis.Engine().generate_signal("G", ohlcv).hurst_exponent)


def test_missing_columns_are_named(goog):
    _, _, ohlcv, _ = goog
    with pytest.raises(ValueError, match="volume"):
        gnosis.generate_signal("G", ohlcv.drop(columns="Volume"))
