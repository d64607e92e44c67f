"""Snapshot + journal recovery, without a broker."""

from __future__ import annotations

import logging

import numpy as np
import orjson

from gnosis.config import Settings
from gnosis.engine import _STATE_VERSION, TickerEngine
from gnosis.streams.journal import TickerState, journal_key, restore

from .conftest import market_events


def test_restore_from_snapshot_and_journal_continues_identically() -> None:
    settings = Settings()
    bars, news = market_events(tickers=("AAPL",), bars_per_ticker=300, news_per_bar=0.5)
    every = 16
    state = TickerState(TickerEngine("AAPL", settings))
    snapshots: dict[str, bytes] = {}
    journal: dict[str, bytes] = {}
    # Headlines arrive 0 to 5 minutes after their stamp, in arrival order: the journal must
    # keep each one's knowledge time for the recovered state to count it as the live one.
    lags = np.random.default_rng(5).integers(0, 300, len(news)) * 10**9
    stream = sorted([(n.ts + int(lag), 0, n) for n, lag in zip(news, lags, strict=True)]
                    + [(b.ts, 1, b) for b in bars], key=lambda k: k[:2])
    crash_at = len(stream) * 2 // 3
    scores = iter(np.random.default_rng(6).uniform(-1, 1, len(stream)).tolist())
    for i, (known, kind, event) in enumerate(stream):
        if i == crash_at:
            break
        if kind == 0:
            entry = state.add_news(event.ts, next(scores), 0, i, known)
        else:
            _, entry = state.add_bar(event, i, known)
        if entry is not None:
            journal[journal_key("AAPL", state.seq - 1, every)] = entry
            if state.snapshot_due(every):
                snapshots["AAPL"] = state.snapshot()
    recovered = restore("AAPL", settings, "lexicon", snapshots.get("AAPL"), journal.get, every)
    assert recovered.seq == state.seq
    assert recovered.bar_offset == state.bar_offset
    counted = 0
    for i, (known, kind, event) in enumerate(stream[crash_at:]):
        if kind == 0:
            score = next(scores)
            assert (recovered.add_news(event.ts, score, 0, i, known)
                    == state.add_news(event.ts, score, 0, i, known))
        else:
            signal = state.add_bar(event, i, known)[0]
            assert recovered.add_bar(event, i, known)[0] == signal
            counted += signal.sentiment_count
    assert counted > 0


def test_snapshots_fall_on_positions_of_each_tickers_own() -> None:
    """Tickers whose bars close together do not all snapshot on one bar, and none ever
    goes more than ``every`` journal entries without one, also when its last snapshot
    was taken on the old schedule (every multiple of ``every``) before an upgrade."""
    every = 16
    taken: dict[str, list[int]] = {}
    for ticker in ("AAPL", "MSFT", "NVDA", "TSLA"):
        state = TickerState(TickerEngine(ticker, Settings()), seq=3 * every,
                            snapshot_seq=3 * every)
        for _ in range(5 * every):
            state.seq += 1  # one journal entry
            if state.snapshot_due(every):
                assert state.seq - state.snapshot_seq <= every
                state.snapshot()
                taken.setdefault(ticker, []).append(state.seq)
        gaps = np.diff(taken[ticker])
        assert taken[ticker][0] - 3 * every <= every and set(gaps) == {every}
    assert len({seqs[0] % every for seqs in taken.values()}) > 1


def test_a_snapshot_from_an_older_version_starts_the_ticker_afresh(caplog) -> None:
    """An upgrade that changed the engine's state format does not stop the worker: the
    ticker warms up again, and its positions still recognise re-delivered records."""
    settings = Settings()
    bars, _ = market_events(tickers=("AAPL",), bars_per_ticker=40, news_per_bar=0.0)
    state = TickerState(TickerEngine("AAPL", settings))
    for i, bar in enumerate(bars[:32]):
        state.add_bar(bar, 100 + i, bar.ts)
    current = state.snapshot()
    engine_start = len(current) - len(state.engine.to_state())
    old = current[:engine_start] + orjson.dumps({"v": 4, "news_ts": [], "news_scores": []})
    with caplog.at_level(logging.WARNING, logger="gnosis.streams.journal"):
        recovered = restore("AAPL", settings, "lexicon", old, {}.get, 16)
    assert f"AAPL: state version 4 -> {_STATE_VERSION}: started afresh" in caplog.text
    assert (recovered.seq, recovered.bar_offset) == (state.seq, state.bar_offset)
    fresh = TickerEngine("AAPL", settings)
    for bar in bars[32:]:
        assert recovered.add_bar(bar, 0, bar.ts)[0] == fresh.on_bar(bar, bar.ts)


def test_journal_entries_written_before_knowledge_times_still_replay() -> None:
    """An entry of the earlier format (no knowledge time) replays as known at its stamp."""
    settings = Settings()
    bars, _ = market_events(tickers=("AAPL",), bars_per_ticker=3, news_per_bar=0.0)
    b = bars[0]
    old = {journal_key("AAPL", 0, 16): orjson.dumps([0, 0, b.ts - 5, 0.7, 0, 9]),
           journal_key("AAPL", 1, 16): orjson.dumps(
               [1, 1, 3, b.ts, b.open, b.high, b.low, b.close, b.volume, b.interval])}
    recovered = restore("AAPL", settings, "lexicon", None, old.get, 16)
    assert (recovered.seq, recovered.bar_offset, recovered.news_offsets) == (2, 3, {0: 9})
    signal, _ = recovered.add_bar(bars[1], 4, bars[1].ts)
    assert (signal.sentiment_count, signal.sentiment_mean) == (1, 0.7)


def test_a_rekeyed_record_keeps_the_original_knowledge_time() -> None:
    """The re-keyed record carries the news record's knowledge time, not its own; one
    written before knowledge times were kept reads as known at its stamp."""
    from gnosis.events import NewsItem
    from gnosis.streams.records import decode_rekeyed, record_known, scored_headlines

    item = NewsItem("n1", 1_000, ("AAPL", "MSFT"), "AAPL and MSFT rally")
    known = record_known(1_704_209_400_123)
    scored = scored_headlines(item, 0.5, 3, 17, known, partitions=4)
    assert {rec.ticker for _, rec in scored} == {"AAPL", "MSFT"}
    for _, rec in scored:
        assert decode_rekeyed(rec.ticker.encode(), rec.to_json()) == rec
        assert rec.known == 1_704_209_400_123_000_000
    old = orjson.dumps({"ticker": "AAPL", "ts": 1_000, "score": 0.5, "id": "n1", "q": 3,
                        "o": 17})
    assert decode_rekeyed(b"AAPL", old).known == 1_000
