"""The per-ticker engine: event time, look-ahead, state, and both replay paths agree."""

from __future__ import annotations

import dataclasses

import numpy as np
import orjson
import pandas as pd
import pytest

from gnosis.config import FeatureConfig, Settings
from gnosis.engine import SignalEngine, StateVersionError, TickerEngine, run_events, window_stats
from gnosis.events import Bar, InvalidEvent, NewsItem
from gnosis.replay.inprocess import replay_frame, signal_ids, to_signals
from gnosis.replay.synthetic import bars_to_events, news_to_events, synthetic_bars, synthetic_news

# Small windows so that features warm up inside short test series.
SETTINGS = dataclasses.replace(
    Settings(), features=dataclasses.replace(FeatureConfig(), window=160, vsa_window=10,
                                             vol_short=8, vol_long=32, hurst_stride=4))


@pytest.fixture(scope="module")
def market():
    bars = synthetic_bars(3, 500, seed=11)
    news = synthetic_news(bars, per_bar=0.2, seed=12)
    return bars, news


def assert_same_signals(a, b):
    assert [s.signal_id for s in a] == [s.signal_id for s in b]
    assert [s.signal_type for s in a] == [s.signal_type for s in b]
    np.testing.assert_allclose([s.confidence for s in a], [s.confidence for s in b],
                               rtol=0, atol=1e-9)
    np.testing.assert_allclose([s.hurst_exponent for s in a], [s.hurst_exponent for s in b],
                               rtol=0, atol=1e-9)
    assert [s.sentiment_count for s in a] == [s.sentiment_count for s in b]


def both_paths(bars, news):
    """The streaming core's signals, after checking the vectorised replay agrees."""
    streamed = run_events(bars_to_events(bars), news_to_events(news), SETTINGS)
    frame = replay_frame(bars, news, SETTINGS)
    assert len(streamed) == len(bars) == len(frame)
    assert signal_ids(frame) == [s.signal_id for s in streamed]
    assert_same_signals(streamed, to_signals(frame))
    return streamed


def test_streaming_and_vectorised_paths_agree(market):
    streamed = both_paths(*market)
    kinds = {s.signal_type for s in streamed}
    assert "HOLD" in kinds and any(s.sentiment_count > 0 for s in streamed)
    assert any(s.reasons[0].startswith("warming_up") for s in streamed)
    assert any(not s.reasons[0].startswith("warming_up") for s in streamed)


def test_no_look_ahead(market):
    bars, news = market
    cut = bars["ts"].iloc[len(bars) // 2]
    early_bars, early_news = bars[bars["ts"] <= cut], news[news["ts"] <= cut]
    full = run_events(bars_to_events(bars), news_to_events(news), SETTINGS)
    partial = run_events(bars_to_events(early_bars), news_to_events(early_news), SETTINGS)
    assert partial == full[:len(partial)]
    frame_full = replay_frame(bars, news, SETTINGS)
    frame_part = replay_frame(early_bars, early_news, SETTINGS)
    # To rounding: the batched Whittle fit's matrix product may round the last bits
    # differently with the number of windows in the batch.
    assert_same_signals(to_signals(frame_part), to_signals(frame_full)[:len(frame_part)])


def test_sentiment_window_is_as_of_and_half_open():
    engine = TickerEngine("AAA", SETTINGS)
    hour = 3_600 * 10**9
    t = 10 * hour
    engine.add_sentiment(t - hour, 1.0, t - hour)          # exactly window old: excluded
    engine.add_sentiment(t - hour + 1, 0.5, t - hour + 1)  # inside
    engine.add_sentiment(t, -0.1, t)                       # at the close: included
    engine.add_sentiment(t + 1, 0.9, t + 1)                # after the close: not yet
    mean, std, count = engine.sentiment_at(t, t)
    assert count == 2
    assert mean == pytest.approx(0.2)
    assert std == pytest.approx(0.3)
    bar = Bar("AAA", t, 10, 11, 9, 10.5, 100)
    signal = engine.on_bar(bar, t)
    assert signal.sentiment_count == 2


MINUTE = 60 * 10**9


def test_a_headline_counts_from_the_first_bar_known_after_it():
    """The worked example: stamped 10:00:30, arrived 10:01:20; one-minute bars known at
    their close. Not in the 10:01 signal, in the 10:02 one and every later one its
    window covers, although it arrived after the bar its stamp precedes."""
    engine = TickerEngine("AAA", SETTINGS)
    ten = 10 * 60 * MINUTE
    engine.on_bar(Bar("AAA", ten, 10, 11, 9, 10, 100), ten)
    late_stamp, arrived = ten + 30 * 10**9, ten + MINUTE + 20 * 10**9
    assert engine.add_sentiment(late_stamp, 0.8, arrived)
    at_1001 = engine.on_bar(Bar("AAA", ten + MINUTE, 10, 11, 9, 10, 100), ten + MINUTE)
    assert at_1001.sentiment_count == 0
    # It arrived after the 10:01 bar was processed: stamped before it, still counted later.
    at_1002 = engine.on_bar(Bar("AAA", ten + 2 * MINUTE, 10, 11, 9, 10, 100), ten + 2 * MINUTE)
    assert (at_1002.sentiment_count, at_1002.sentiment_mean) == (1, pytest.approx(0.8))
    last_in_window = ten + 60 * MINUTE  # window (t - 1h, t] still covers 10:00:30
    for minute in range(3, 61):
        signal = engine.on_bar(Bar("AAA", ten + minute * MINUTE, 10, 11, 9, 10, 100),
                               ten + minute * MINUTE)
    assert signal.ts == last_in_window and signal.sentiment_count == 1
    after = engine.on_bar(Bar("AAA", ten + 61 * MINUTE, 10, 11, 9, 10, 100), ten + 61 * MINUTE)
    assert after.sentiment_count == 0
    # Once no later bar's window can cover a stamp, the headline is not kept at all.
    assert not engine.add_sentiment(ten, 0.5, ten + 61 * MINUTE)
    assert engine.add_sentiment(ten + 2 * MINUTE, 0.5, ten + 61 * MINUTE)


def test_knowledge_ties_count():
    """A headline known at the very instant the bar is known counts for it."""
    engine = TickerEngine("AAA", SETTINGS)
    engine.add_sentiment(5, 0.4, 1_000)
    engine.add_sentiment(6, 0.9, 1_001)
    signal = engine.on_bar(Bar("AAA", 10, 10, 11, 9, 10, 100), 1_000)
    assert (signal.sentiment_count, signal.sentiment_mean) == (1, pytest.approx(0.4))


def test_window_stats_do_not_depend_on_order():
    rng = np.random.default_rng(3)
    scores = rng.uniform(-1, 1, 50).tolist()
    assert window_stats(scores) == window_stats(sorted(scores)) == window_stats(scores[::-1])


def test_duplicate_and_out_of_order_bars_are_rejected_without_changing_state():
    engine = TickerEngine("AAA", SETTINGS)
    engine.on_bar(Bar("AAA", 2_000, 10, 11, 9, 10, 100), 2_000)
    for ts, code in [(2_000, "duplicate_bar"), (1_000, "out_of_order")]:
        with pytest.raises(InvalidEvent) as err:
            engine.on_bar(Bar("AAA", ts, 10, 11, 9, 10, 100), ts)
        assert (err.value.code, err.value.field) == (code, "timestamp")
    assert engine.series["1m"].features.bars == 1 and engine.last_ts == 2_000


def test_state_snapshot_restores_the_engine_exactly(market):
    bars, news = market
    events = bars_to_events(bars[bars["ticker"] == "T000"])
    items = [n for n in news_to_events(news) if "T000" in n.tickers]
    reference = run_events(events, items, SETTINGS)
    engine = SignalEngine(SETTINGS)
    out, i = [], 0
    half = len(events) // 2
    for k, bar in enumerate(events):
        while i < len(items) and items[i].ts <= bar.ts:
            add_news(engine, items[i])
            i += 1
        if k == half:  # crash and recover from the snapshot
            data = engine.engines["T000"].to_state()
            engine.engines["T000"] = TickerEngine.from_state("T000", SETTINGS, data)
        out.append(engine.on_bar(bar, bar.ts))
    assert_same_signals(out, reference)


def add_news(engine: SignalEngine, item: NewsItem) -> None:
    """Score a headline and apply it as :func:`run_events` does (known after the latency)."""
    score = engine.scorer.score_batch([item.headline])[0].score
    engine.add_scored_news(item, score, item.ts + NEWS_LATENCY)


NEWS_LATENCY = 60 * 10**9  # replay.news_latency's default, which run_events applies


def test_news_naming_several_tickers_reaches_each():
    engine = SignalEngine(SETTINGS)
    item = NewsItem("n", 5, ("AAA", "BBB"), "AAA and BBB shares rally on record profit")
    engine.add_scored_news(item, engine.scorer.score_batch([item.headline])[0].score, 5)
    a = engine.on_bar(Bar("AAA", 10, 10, 11, 9, 10, 100), 10)
    b = engine.on_bar(Bar("BBB", 10, 10, 11, 9, 10, 100), 10)
    assert a.sentiment_count == b.sentiment_count == 1
    assert a.sentiment_mean == b.sentiment_mean > 0


@pytest.fixture(scope="module")
def two_intervals():
    """1m and 5m bars of the same tickers (some closes shared), news for both."""
    minute = synthetic_bars(3, 400, seed=21)
    five = synthetic_bars(3, 300, seed=22, interval="5m")
    bars = pd.concat([minute, five], ignore_index=True).sort_values(["ts", "ticker"],
                                                                     kind="stable")
    news = synthetic_news(minute, per_bar=0.2, seed=23)
    return bars, news


def test_each_interval_of_a_ticker_is_its_own_series(two_intervals):
    bars, news = two_intervals
    streamed = both_paths(bars, news)
    by_interval = {iv: [s for s in streamed if s.interval == iv] for iv in ("1m", "5m")}
    assert [len(v) for v in by_interval.values()] == [1_200, 900]
    # Each series warms up on its own bars; news counts for both intervals of a ticker.
    for signals in by_interval.values():
        assert any(not s.reasons[0].startswith("warming_up") for s in signals)
        assert any(s.sentiment_count for s in signals)
    # The 5m signals are those of the 5m bars alone, whatever the 1m bars did.
    alone = run_events(bars_to_events(bars[bars["interval"] == "5m"]), news_to_events(news),
                       SETTINGS)
    assert alone == by_interval["5m"]


def test_snapshot_keeps_every_interval(two_intervals):
    bars, news = two_intervals
    bars = bars[bars["ticker"] == "T001"]
    events = sorted(bars_to_events(bars), key=lambda b: (b.ts, b.interval))
    items = [n for n in news_to_events(news) if "T001" in n.tickers]
    reference = run_events(events, items, SETTINGS)
    engine = SignalEngine(SETTINGS)
    out, i = [], 0
    for k, bar in enumerate(events):
        while i < len(items) and items[i].ts <= bar.ts:
            add_news(engine, items[i])
            i += 1
        if k in (len(events) // 3, 2 * len(events) // 3):
            data = engine.engines["T001"].to_state()
            engine.engines["T001"] = TickerEngine.from_state("T001", SETTINGS, data)
        out.append(engine.on_bar(bar, bar.ts))
    assert_same_signals(out, reference)
    assert set(engine.engines["T001"].series) == {"1m", "5m"}


def test_a_repeated_bar_is_refused_per_interval():
    engine = TickerEngine("AAA", SETTINGS)
    engine.on_bar(Bar("AAA", 2_000, 10, 11, 9, 10, 100, "1m"), 2_000)
    engine.on_bar(Bar("AAA", 2_000, 10, 11, 9, 10, 100, "5m"), 2_000)  # another series: fine
    engine.on_bar(Bar("AAA", 1_500, 10, 11, 9, 10, 100, "1h"), 2_000)  # its first bar: fine
    with pytest.raises(InvalidEvent) as err:
        engine.on_bar(Bar("AAA", 2_000, 10, 11, 9, 10, 100, "5m"), 2_000)
    assert err.value.code == "duplicate_bar"
    assert engine.last_ts == 2_000
    assert {iv: s.features.bars for iv, s in engine.series.items()} == {"1m": 1, "5m": 1,
                                                                        "1h": 1}


@pytest.mark.parametrize("version", [1, 2, 4])
def test_an_old_snapshot_is_refused_with_a_clear_error(version):
    """Versions 1 and 2 kept bar rows that do not reach back over the Hawkes window, 4 no
    knowledge times."""
    series = {"bars": 200, "last_ts": 200, "history": [[1.0] * 6] * 200}
    old = orjson.dumps({"v": version, "news_ts": [], "news_scores": [],
                        **({"series": {"1m": series}} if version == 2 else series)})
    with pytest.raises(StateVersionError,
                       match=f"T002: state version {version} cannot be restored"):
        TickerEngine.from_state("T002", SETTINGS, old)


def test_snapshot_of_a_warm_ticker_is_small():
    """At the default windows: full rows only for the short lookbacks, event bits packed."""
    settings = Settings()
    bars = synthetic_bars(1, 3_000, seed=13)
    engine = TickerEngine("T000", settings)
    for bar in bars_to_events(bars):
        engine.on_bar(bar, bar.ts)
    data = engine.to_state()
    assert len(data) < 32_000
    restored = TickerEngine.from_state("T000", settings, data)
    assert restored.to_state() == data
