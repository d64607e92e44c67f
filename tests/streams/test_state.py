"""Snapshot + journal recovery, without a broker."""

from __future__ import annotations

import logging

import numpy as np
import orjson

from gnosis.config import Settings
from gnosis.engine import TickerEngine
from gnosis.streams.state import TickerState, journal_key, restore

from .conftest import market_events


def test_restore_from_snapshot_and_journal_continues_identically() -> None:
    settings = Settings()
    bars, news = market_events(tickers=("AAPL",), bars_per_ticker=300, news_per_bar=0.5)
    every = 16
    state = TickerState(TickerEngine("AAPL", settings))
    snapshots: dict[str, bytes] = {}
    journal: dict[str, bytes] = {}
    stream = sorted([(n.ts, 0, n) for n in news] + [(b.ts, 1, b) for b in bars],
                    key=lambda k: k[:2])
    crash_at = len(stream) * 2 // 3
    for i, (_, kind, event) in enumerate(stream):
        if i == crash_at:
            break
        if kind == 0:
            entry = state.add_news(event.ts, 0.5)
        else:
            _, entry = state.add_bar(event, offset=i)
        if entry is not None:
            journal[journal_key("AAPL", state.seq - 1, every)] = entry
            if state.snapshot_due(every):
                snapshots["AAPL"] = state.snapshot()
    recovered = restore("AAPL", settings, "lexicon", snapshots.get("AAPL"), journal.get, every)
    assert recovered.seq == state.seq
    assert recovered.bar_offset == state.bar_offset
    for _, kind, event in stream[crash_at:]:
        if kind == 0:
            assert recovered.add_news(event.ts, 0.5) == state.add_news(event.ts, 0.5)
        else:
            assert recovered.add_bar(event, 0)[0] == state.add_bar(event, 0)[0]


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
        state.add_bar(bar, offset=100 + i)
    current = state.snapshot()
    engine_start = len(current) - len(state.engine.to_state())
    old = current[:engine_start] + orjson.dumps({"v": 2, "news_ts": [], "news_scores": []})
    with caplog.at_level(logging.WARNING, logger="gnosis.streams.state"):
        recovered = restore("AAPL", settings, "lexicon", old, {}.get, 16)
    assert "AAPL: state version 2 cannot be restored" in caplog.text
    assert (recovered.seq, recovered.bar_offset) == (state.seq, state.bar_offset)
    fresh = TickerEngine("AAPL", settings)
    for bar in bars[32:]:
        assert recovered.add_bar(bar, 0)[0] == fresh.on_bar(bar)
