"""Synthetic market input for the live-pipeline tests."""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, seed
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from gnosis.config import Settings
from gnosis.events import Bar, NewsItem, TradingSignal, format_timestamp
from gnosis.models.sentiment.synthetic import synthetic_headlines
from gnosis.replay.kafka import collect_signals

T = TypeVar("T")
MINUTE_NS = 60 * 1_000_000_000
START_NS = 1_704_204_000 * 1_000_000_000  # 2024-01-02 14:00 UTC


@contextlib.asynccontextmanager
async def worker_in_loop(settings: Any, scorer: Any = None) -> AsyncIterator[tuple[Any, ...]]:
    """A :class:`~gnosis.streams.runtime.Worker` running in this event loop, with a producer
    and a ``read_committed`` reader of the signals topic: ``(worker, producer, signals)``,
    all stopped on exit."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    from gnosis.streams.runtime import Worker

    worker = Worker(settings, scorer=scorer)
    running = asyncio.create_task(worker.run())
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers, acks="all")
    signals = AIOKafkaConsumer(settings.kafka.signals_topic, group_id=None,
                               bootstrap_servers=settings.kafka.bootstrap_servers,
                               auto_offset_reset="earliest", isolation_level="read_committed")
    await producer.start()
    await signals.start()
    try:
        yield worker, producer, signals
    finally:
        worker.stopping.set()
        await running
        await producer.stop()
        await signals.stop()


def market_events(tickers: tuple[str, ...] = ("AAPL", "MSFT", "GOOG", "TSLA", "NVDA"),
                  bars_per_ticker: int = 600, news_per_bar: float = 0.3,
                  seed: int = 3) -> tuple[list[Bar], list[NewsItem]]:
    """One-minute random-walk bars per ticker, and headlines naming one to three tickers.

    Some headlines share a bar's exact close time, so the ``<= t`` boundary is exercised.
    """
    rng = np.random.default_rng(seed)
    bars: list[Bar] = []
    for k, ticker in enumerate(tickers):
        price = 100.0 + 10 * k
        for i in range(bars_per_ticker):
            ts = START_NS + (i + 1) * MINUTE_NS
            step = rng.normal(0, 0.002)
            o, c = price, price * (1 + step)
            hi, lo = max(o, c) * (1 + abs(rng.normal(0, 0.001))), min(o, c) * (
                1 - abs(rng.normal(0, 0.001)))
            volume = float(rng.lognormal(10, 0.6))
            bars.append(Bar(ticker, ts, o, hi, lo, c, volume, "1m"))
            price = c
    n_news = int(bars_per_ticker * len(tickers) * news_per_bar)
    headlines = synthetic_headlines(n_news, seed=seed)
    span = bars_per_ticker * MINUTE_NS
    news: list[NewsItem] = []
    for j, text in enumerate(headlines):
        size = min(int(rng.integers(1, 4)), len(tickers))
        named = tuple(str(t) for t in rng.choice(tickers, size=size, replace=False))
        offset = int(rng.integers(0, span))
        if j % 5 == 0:  # exactly on a bar close
            offset = (offset // MINUTE_NS) * MINUTE_NS
        news.append(NewsItem(f"n{j}", START_NS + offset, named, text))
    return bars, news


def assert_signals_equal(got: dict[str, TradingSignal], expected: list[TradingSignal]) -> None:
    """Each expected signal is in ``got`` (by signal id) with every field equal, floats
    to 1e-9; ``expected`` is not empty."""
    assert expected
    for ref in expected:
        assert ref.signal_id in got, f"{ref.ticker}@{ref.ts}: no signal"
        differ = differing_fields(got[ref.signal_id], ref)
        assert not differ, f"{ref.ticker}@{ref.ts} {differ[0]}"


def differing_fields(live: TradingSignal, ref: TradingSignal) -> list[str]:
    """The fields in which two signals differ (floats compared to 1e-9), as
    ``"name: live != ref"``."""
    out = []
    for f in fields(TradingSignal):
        a, b = getattr(live, f.name), getattr(ref, f.name)
        if not (a == pytest.approx(b, rel=1e-9, abs=1e-9) if isinstance(b, float) else a == b):
            out.append(f"{f.name}: {a!r} != {b!r}")
    return out


def write_files(directory: Path, bars: list[Bar], news: list[NewsItem],
                bars_file: str = "bars.csv") -> tuple[Path, Path]:
    """Bars (CSV, or Parquet for a ``.parquet`` name) and news (CSV) files in
    ``directory``, in the replay readers' formats."""
    bars_path, news_path = directory / bars_file, directory / "news.csv"
    frame = pd.DataFrame([{"ticker": b.ticker, "timestamp": format_timestamp(b.ts),
                           "open": b.open, "high": b.high, "low": b.low, "close": b.close,
                           "volume": b.volume, "interval": b.interval} for b in bars])
    if bars_path.suffix == ".parquet":
        frame.to_parquet(bars_path, index=False)
    else:
        frame.to_csv(bars_path, index=False)
    pd.DataFrame([{"id": n.id, "timestamp": format_timestamp(n.ts),
                   "tickers": ";".join(n.tickers), "headline": n.headline}
                  for n in news]).to_csv(news_path, index=False)
    return bars_path, news_path


def consume_committed(bootstrap: str, topic: str, *, expected: int | None = None,
                      timeout: float = 60.0, idle: float = 3.0) -> list[Any]:
    """Every record of ``topic`` from the start, read with ``read_committed``.

    Returns once ``expected`` records arrived (then waits ``idle`` more seconds to catch
    extras), or when nothing new arrived for ``idle`` seconds, or at ``timeout``.
    """
    from gnosis.replay.kafka import read_committed

    return asyncio.run(read_committed({"bootstrap_servers": bootstrap}, topic,
                                      expected=expected, timeout=timeout, idle=idle,
                                      linger=True))


def wait_for_records(bootstrap: str, topic: str, records: int, timeout: float) -> int:
    """Wait until ``topic`` holds ``records`` records (uncommitted included) or ``timeout``
    seconds passed; returns how many it held then.

    One client polls the end offsets every 20 ms, so that a worker draining a backlog
    quickly is still caught mid-way.
    """
    from aiokafka import AIOKafkaConsumer

    async def run() -> int:
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None)
        await consumer.start()
        try:
            deadline = time.monotonic() + timeout
            held = 0
            while held < records and time.monotonic() <= deadline:
                if consumer.assignment():  # the first metadata response brings it
                    ends = await consumer.end_offsets(list(consumer.assignment()))
                    held = sum(ends.values())
                if held < records:
                    await asyncio.sleep(0.02)
            return held
        finally:
            await consumer.stop()

    return asyncio.run(run())


def wait_until(what: str, ready: Callable[[], bool], timeout: float = 120.0) -> None:
    """Poll ``ready`` every 0.2 s; fail, naming ``what``, after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, f"{what}: not after {timeout:.0f} s"
        time.sleep(0.2)


def kill_when(worker: Any, bootstrap: str, topic: str, records: int, timeout: float) -> int:
    """``kill -9`` the worker once :func:`wait_for_records` returns; returns its count."""
    held = wait_for_records(bootstrap, topic, records, timeout)
    worker.kill()
    return held


def http_get(url: str) -> tuple[int, bytes]:
    """(status, body) of a GET; status 0 while nothing listens on the port yet."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except urllib.error.URLError:
        return 0, b"{}"


def drawn(strategy: st.SearchStrategy[T], key: int) -> T:
    """One example of ``strategy``, the same on every run for a given ``key`` (an input
    drawn by hypothesis for a test too slow to run many examples of). The last of a few
    is taken: hypothesis starts from the simplest example, the same for every seed."""
    out: list[T] = []

    @seed(key)
    @hsettings(max_examples=5, database=None, phases=[Phase.generate],
               suppress_health_check=list(HealthCheck))
    @given(strategy)
    def draw(example: T) -> None:
        out.append(example)

    draw()
    return out[-1]


def small_windows(settings: Settings, window: int = 160) -> Settings:
    """Windows short enough that a few hundred bars reach every rule, not only warm-up
    (``window`` bars warm the Hurst exponent up; 64 is the least it takes)."""
    features = replace(settings.features, window=window, vol_long=48, vol_short=8,
                       vsa_window=10, trend_lookback=10)
    return replace(settings, features=features)


def active_rules(settings: Settings, window: int = 160) -> Settings:
    """:func:`small_windows`, and thresholds a random-walk market meets now and then, so that
    a few hundred bars per ticker (about twice ``window``) give BUY and SELL signals, not
    only HOLDs."""
    settings = small_windows(settings, window)
    rules = replace(settings.rules, hurst_significance=0.0, trending_hurst=0.5,
                    mean_reverting_hurst=0.5, positive_sentiment=0.02,
                    negative_sentiment=-0.02, low_clustering=1.5, no_supply_vsa=0.0)
    return replace(settings, rules=rules)


def assert_same_signals(got: list[TradingSignal], expected: list[TradingSignal], *,
                        exactly_once: bool) -> None:
    """Every expected signal arrived with every field equal (floats to 1e-9); the expected
    ones hold BUY or SELL decisions, so that warm signals are compared, not only warm-up
    HOLDs."""
    assert any(s.signal_type != "HOLD" for s in expected), "only HOLD signals to compare"
    counts = Counter(s.signal_id for s in got)
    missing = {s.signal_id for s in expected} - set(counts)
    assert not missing, f"{len(missing)} of {len(expected)} signals never arrived: " + ", ".join(
        sorted(f"{s.ticker}@{s.ts}" for s in expected if s.signal_id in missing)[:10])
    assert set(counts) == {s.signal_id for s in expected}, "unexpected signals"
    if exactly_once:
        assert max(counts.values()) == 1, "a signal arrived twice under exactly-once"
    want = {s.signal_id: s for s in expected}
    differ: Counter[str] = Counter()
    first: dict[str, str] = {}
    for live in got:
        for text in differing_fields(live, want[live.signal_id]):
            name = text.split(":", 1)[0]
            differ[name] += 1
            first.setdefault(name, f"{live.ticker}@{live.ts}: {text}")
    assert not differ, (f"{sum(differ.values())} fields differ from the replay: "
                        + "; ".join(f"{name} x{n} (first {first[name]})"
                                    for name, n in differ.most_common(5)))


def collect_all(settings: Settings, expected: int, *, exactly_once: bool
                ) -> list[TradingSignal]:
    """The signals topic once ``expected`` distinct signals are in it (or after 180 s)."""
    deadline = time.monotonic() + 180
    got = collect_signals(settings, expected=expected, timeout=180)
    # Repeats, which at-least-once allows, count as records: read on until every
    # distinct signal is there, one more record at a time.
    while len({s.signal_id for s in got}) < expected and time.monotonic() < deadline:
        got = collect_signals(settings, expected=len(got) + 1,
                              timeout=max(1.0, deadline - time.monotonic()))
    if exactly_once and len(got) >= expected:
        # Anything that would arrive twice has had time to.
        got = collect_signals(settings, expected=None, timeout=30)
    return got
