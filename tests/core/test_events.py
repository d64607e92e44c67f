"""Event validation and codecs."""

from __future__ import annotations

import math

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gnosis.events import (
    MAX_PAYLOAD_BYTES,
    NO_INFORMATION_SE,
    SCHEMA_VERSION,
    Bar,
    InvalidEvent,
    NewsItem,
    TradingSignal,
    format_timestamp,
    parse_timestamp,
    signal_id,
)

GOOD_BAR = {"ticker": "AAPL", "timestamp": "2024-01-02T15:30:00Z", "open": 10.0, "high": 11.0,
            "low": 9.5, "close": 10.5, "volume": 1200.0, "interval": "1m"}


def bar_with(**changes):
    return orjson.dumps({**GOOD_BAR, **changes})


def test_bar_round_trip_is_exact():
    bar = Bar.from_json(orjson.dumps(GOOD_BAR))
    assert Bar.from_json(bar.to_json()) == bar
    assert bar.timestamp.isoformat() == "2024-01-02T15:30:00+00:00"


@pytest.mark.parametrize(("changes", "code", "field"), [
    ({"high": 10.2}, "high_below_body", "high"),
    ({"low": 10.1}, "low_above_body", "low"),
    ({"open": -1.0, "low": -2.0}, "negative_value", "open"),
    ({"volume": -5}, "negative_value", "volume"),
    ({"timestamp": "yesterday"}, "bad_timestamp", "timestamp"),
    ({"ticker": ""}, "bad_ticker", "ticker"),
    ({"ticker": "A A"}, "bad_ticker", "ticker"),
    ({"close": "NaN"}, "non_finite", "close"),
    ({"close": "ten"}, "wrong_type", "close"),
    ({"close": True}, "wrong_type", "close"),
    ({"close": None}, "missing_field", "close"),
    ({"interval": "7x"}, "bad_interval", "interval"),
])
def test_bar_validation_names_code_and_field(changes, code, field):
    with pytest.raises(InvalidEvent) as err:
        Bar.from_json(bar_with(**changes))
    assert (err.value.code, err.value.field) == (code, field)


def test_missing_field_and_bad_payloads():
    payload = dict(GOOD_BAR)
    del payload["volume"]
    with pytest.raises(InvalidEvent) as err:
        Bar.from_json(orjson.dumps(payload))
    assert (err.value.code, err.value.field) == ("missing_field", "volume")
    for raw, code in [(b"{not json", "malformed_json"), (b"[1, 2]", "malformed_json"),
                      (b" " * (MAX_PAYLOAD_BYTES + 1), "oversized"),
                      (b'{"open": Infinity}', "malformed_json")]:
        with pytest.raises(InvalidEvent) as err:
            Bar.from_json(raw)
        assert err.value.code == code


def test_non_finite_float_in_dict_is_rejected():
    with pytest.raises(InvalidEvent) as err:
        Bar.from_dict({**GOOD_BAR, "high": math.inf})
    assert err.value.code == "non_finite"


def test_epoch_millis_and_naive_timestamps_are_utc():
    ms = parse_timestamp(1_704_209_400_000)
    assert ms == parse_timestamp("2024-01-02T15:30:00Z") == parse_timestamp("2024-01-02T15:30:00")
    assert format_timestamp(ms) == "2024-01-02T15:30:00Z"


def test_news_validation_and_round_trip():
    item = NewsItem.from_json(orjson.dumps({
        "id": "n1", "timestamp": "2024-01-02T15:29:00Z", "tickers": ["AAPL", "MSFT", "AAPL"],
        "headline": "Apple and Microsoft rally", "source": "wire"}))
    assert item.tickers == ("AAPL", "MSFT")
    assert NewsItem.from_json(item.to_json()) == item
    for changes, code, field in [({"tickers": []}, "bad_ticker", "tickers"),
                                 ({"headline": "x" * 5000}, "oversized", "headline"),
                                 ({"headline": 5}, "wrong_type", "headline"),
                                 ({"id": ""}, "wrong_type", "id")]:
        payload = {"id": "n1", "timestamp": "2024-01-02T15:29:00Z", "tickers": ["AAPL"],
                   "headline": "h", **changes}
        with pytest.raises(InvalidEvent) as err:
            NewsItem.from_json(orjson.dumps(payload))
        assert (err.value.code, err.value.field) == (code, field)


def make_signal(**changes) -> TradingSignal:
    ts = parse_timestamp("2024-01-02T15:30:00Z")
    base = dict(signal_id=signal_id("AAPL", ts, "1m"), ticker="AAPL", ts=ts, signal_type="BUY",
                confidence=0.73, sentiment_mean=0.25, sentiment_std=0.1, sentiment_count=3,
                is_contrarian_market=False, vsa_score=0.4, hawkes_branching=0.3,
                hawkes_se=0.06, hurst_exponent=0.61, hurst_se=0.028, volatility_clustering=0.9,
                risk_level="LOW",
                suggested_position_size=0.12, price=10.5,
                reasons=("buy: positive sentiment, trending, low volatility clustering",))
    base.update(changes)
    return TradingSignal(**base)


@given(confidence=st.floats(0, 1), mean=st.floats(-1, 1), size=st.floats(0, 1))
def test_signal_round_trip_is_exact(confidence, mean, size):
    signal = make_signal(confidence=confidence, sentiment_mean=mean, suggested_position_size=size)
    assert TradingSignal.from_json(signal.to_json()) == signal


def test_signal_id_is_deterministic_and_distinct():
    ts = parse_timestamp("2024-01-02T15:30:00Z")
    assert signal_id("AAPL", ts, "1m") == signal_id("AAPL", ts, "1m")
    assert len({signal_id("AAPL", ts, "1m"), signal_id("MSFT", ts, "1m"),
                signal_id("AAPL", ts + 1, "1m"), signal_id("AAPL", ts, "5m")}) == 4


def test_version_1_signals_are_read_with_no_information_standard_errors():
    raw = orjson.loads(make_signal().to_json())
    assert (raw["schema_version"], raw["hurst_se"], raw["hawkes_se"]) == (2, 0.028, 0.06)
    old = {k: v for k, v in raw.items() if k not in ("hurst_se", "hawkes_se")}
    signal = TradingSignal.from_dict({**old, "schema_version": 1})
    assert (signal.hurst_se, signal.hawkes_se) == (NO_INFORMATION_SE, NO_INFORMATION_SE)
    assert signal.schema_version == SCHEMA_VERSION == 2
    with pytest.raises(InvalidEvent) as err:
        TradingSignal.from_dict(old)
    assert (err.value.code, err.value.field) == ("missing_field", "hawkes_se")


def test_signal_rejects_bad_enums():
    raw = orjson.loads(make_signal().to_json())
    for key, value in [("signal_type", "STRONG_BUY"), ("risk_level", "EXTREME"),
                       ("confidence", 1.5), ("schema_version", 99)]:
        with pytest.raises(InvalidEvent) as err:
            TradingSignal.from_dict({**raw, key: value})
        assert err.value.field == key
