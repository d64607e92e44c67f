"""A saved engine restored under changed settings goes on as documented in
gnosis.carryover: as a replay under the new settings where rebuilt, afresh otherwise."""

from __future__ import annotations

from dataclasses import replace

import orjson
import pytest

from gnosis.carryover import carry
from gnosis.config import Duration, Settings
from gnosis.engine import TickerEngine
from gnosis.events import TradingSignal
from gnosis.fingerprint import differences, fingerprint, recorded

from .conftest import assert_signals_equal, market_events

BASE = Settings()
BASE = replace(BASE, features=replace(BASE.features, window=160, vol_long=48, vol_short=8,
                                      vsa_window=10, trend_lookback=10, hawkes_window=300,
                                      hurst_stride=4, hawkes_stride=8),
               rules=replace(BASE.rules, sentiment_window=Duration("30m")))
CUT = 600
LATENCY = 30 * 1_000_000_000  # a headline's knowledge time after its stamp


def _with(settings: Settings, **changes) -> Settings:
    rules = {k: v for k, v in changes.items() if k == "sentiment_window"}
    features = {k: v for k, v in changes.items() if k not in rules}
    return replace(settings, features=replace(settings.features, **features),
                   rules=replace(settings.rules, **rules))


def _score(headline: str) -> float:
    return 0.4 if len(headline) % 2 else -0.3


def _feed(engine: TickerEngine, events: list) -> list[TradingSignal]:
    out = []
    for _, kind, event in events:
        if kind == 0:
            engine.add_sentiment(event.ts, _score(event.headline), event.ts + LATENCY)
        else:
            out.append(engine.on_bar(event, event.ts))
    return out


def _stream() -> tuple[list, list]:
    bars, news = market_events(tickers=("AAPL",), bars_per_ticker=CUT + 200, news_per_bar=0.5,
                               seed=5)
    events = sorted([(n.ts, 0, n) for n in news] + [(b.ts, 1, b) for b in bars],
                    key=lambda e: e[:2])
    cut = next(i for i, e in enumerate(events) if e[1] == 1 and e[2].ts == bars[CUT - 1].ts)
    return events[:cut + 1], events[cut + 1:]


@pytest.mark.parametrize("change", [{"window": 128}, {"vsa_window": 6},
                                    {"hawkes_window": 260}, {"sentiment_window": "20m"}],
                         ids=["window", "vsa_window", "hawkes_window", "sentiment_window"])
def test_a_rebuilt_ticker_signals_as_a_replay_under_the_new_settings(change) -> None:
    before, after = _stream()
    old = TickerEngine("AAPL", BASE)
    _feed(old, before)
    new_settings = _with(BASE, **change)
    engine, changes = carry(old, new_settings)
    (name, value), = change.items()
    section = "rules" if name == "sentiment_window" else "features"
    (line,) = [c.line("AAPL") for c in changes]
    assert line.startswith(f"AAPL: {section}.{name} {recorded(BASE)[f'{section}.{name}']} -> "
                           f"{value}: ")
    assert {c.action for c in changes} == {"kept" if section == "rules" else "rebuilt"}
    replay = TickerEngine("AAPL", new_settings)
    _feed(replay, before)
    expected = _feed(replay, after)
    got = _feed(engine, after)
    # The signals compared are warm: some buy, every one has Hurst and Hawkes estimates.
    assert "BUY" in {s.signal_type for s in expected}
    assert all(s.hurst_se < 1.0 and s.hawkes_se < 1.0 for s in expected)
    assert len(got) == len(expected)
    assert_signals_equal({s.signal_id: s for s in got}, expected)


@pytest.mark.parametrize("change", [{"window": 200}, {"event_threshold": 2.0}],
                         ids=["longer window", "event_threshold"])
def test_a_ticker_whose_state_does_not_keep_enough_starts_afresh(change) -> None:
    before, after = _stream()
    old = TickerEngine("AAPL", BASE)
    _feed(old, before)
    new_settings = _with(BASE, **change)
    engine, (change_made,) = carry(old, new_settings)
    assert change_made.action == "afresh"
    assert "started afresh, the state does not keep enough (1m: " in change_made.line("AAPL")
    # Its features warm up again from the next bar; the headlines held still count.
    fresh = TickerEngine("AAPL", new_settings)
    for _, kind, event in before:
        if kind == 0:
            fresh.add_sentiment(event.ts, _score(event.headline), event.ts + LATENCY)
    assert_signals_equal({s.signal_id: s for s in _feed(engine, after)}, _feed(fresh, after))


def test_the_same_settings_restore_exactly_and_the_snapshot_records_them() -> None:
    before, after = _stream()
    old = TickerEngine("AAPL", BASE)
    _feed(old, before)
    saved = orjson.loads(old.to_state())
    assert saved["settings"] == recorded(BASE)
    assert saved["fingerprint"] == fingerprint(recorded(BASE))
    # "60m" is "1h": the same window, no change.
    assert differences(recorded(_with(BASE, sentiment_window="1h")),
                       recorded(_with(BASE, sentiment_window="60m"))) == []
    engine, changes = carry(TickerEngine.from_state("AAPL", BASE, old.to_state()), BASE)
    assert changes == []
    assert _feed(engine, after) == _feed(old, after)
