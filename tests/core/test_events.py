"""Event validation and codecs."""

from __future__ import annotations

import math
from datetime import UTC

import numpy as np
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gnosis.events import (
    MAX_PAYLOAD_BYTES,
    MIN_EPOCH_MS,
    NO_INFORMATION_SE,
    SCHEMA_VERSION,
    TS_MIN,
    Bar,
    InvalidEvent,
    NewsItem,
    TradingSignal,
    format_timestamp,
    parse_timestamp,
    signal_id,
    validate_time,
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


# --------------------------------------------------------------------------- timestamps

NOW = parse_timestamp("2024-06-01T12:00:00Z")
HOUR = 3_600 * 10**9


@pytest.mark.parametrize(("value", "detail"), [
    (1e15, "the year 33658, outside 1973-03-03..2262-04-11; it looks like microseconds"),
    (9.9e300, "the year 3.14e+290, outside 1973-03-03..2262-04-11"),
    (1_717_243_200, "it looks like seconds, not milliseconds"),
    (1_717_243_200_000_000_000, "it looks like nanoseconds, not milliseconds"),
    (-5, "the year 1969, outside"),
    (2**70, "does not fit in 64 bits"),
    ("3000-01-01T00:00:00Z", "'3000-01-01T00:00:00Z' is the year 3000, outside "
                             "1677-09-21..2262-04-11"),
    ("1600-01-01", "is the year 1600"),
    ("2100-01-01T00:00:00Z", "2100-01-01T00:00:00Z (year 2100) is more than 1d ahead of now "
                             "(2024-06-01T12:00:00Z)"),
])
def test_timestamps_that_cannot_be_true_are_refused_with_a_helpful_detail(value, detail):
    news = {"id": "n", "tickers": ["AAPL"], "headline": "h"}
    for cls, obj in ((Bar, GOOD_BAR), (NewsItem, news)):
        payload = {**obj, "timestamp": value}
        decoders = [lambda p, cls=cls: cls.from_dict(p, now_ns=NOW)]
        if value != 2**70:  # JSON cannot carry that one; a mapping can
            decoders.append(lambda p, cls=cls: cls.from_json(orjson.dumps(p), now_ns=NOW))
        for decode in decoders:
            with pytest.raises(InvalidEvent) as err:
                decode(payload)
            assert (err.value.code, err.value.field) == ("bad_timestamp", "timestamp")
            assert detail in err.value.detail


def test_future_is_measured_on_the_callers_clock():
    ahead = format_timestamp(NOW + 23 * HOUR)
    assert Bar.from_json(bar_with(timestamp=ahead), now_ns=NOW).ts == NOW + 23 * HOUR
    later = bar_with(timestamp=format_timestamp(NOW + 25 * HOUR))
    with pytest.raises(InvalidEvent, match="more than 1d ahead"):
        Bar.from_json(later, now_ns=NOW)
    assert Bar.from_json(later, now_ns=NOW + 2 * HOUR).ts == NOW + 25 * HOUR
    with pytest.raises(InvalidEvent, match="more than 1h ahead"):
        Bar.from_json(bar_with(timestamp=ahead), now_ns=NOW, max_future_ns=HOUR)
    assert validate_time(NOW, now_ns=NOW, max_future_ns=0) == NOW


@given(st.one_of(st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False),
                 st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat())))
def test_every_accepted_timestamp_is_representable_and_formats(value):
    try:
        ts = validate_time(parse_timestamp(value), now_ns=NOW)
    except InvalidEvent as exc:
        code = exc.code
    else:
        code = None
    if code is not None:
        assert code == "bad_timestamp"
        return
    assert TS_MIN <= ts <= NOW + 86_400 * 10**9
    assert np.int64(ts) == ts
    assert parse_timestamp(format_timestamp(ts)) == ts // 1_000 * 1_000
    if isinstance(value, int | float):
        assert value >= MIN_EPOCH_MS
