"""Point-in-time news on a real broker: a late feed, its recording, and the replay of it.

Headlines reach Kafka seconds to minutes after their stamp, bars shortly after their
close, each on a producer of its own, in arrival order, as a real feed delivers them.
Drawn per run (hypothesis, seeded): how late each headline is (many later than several
bars), headlines naming several tickers, and stamps and arrivals that tie with a bar's.
Each run checks that

* every signal arrives;
* the live signals equal, field for field, ``gnosis replay`` of what ``gnosis record``
  wrote of the topics (its ``received_at`` are the records' Kafka timestamps);
* every signal counts exactly the headlines that name its ticker, are stamped in its
  window and arrived no later than its bar, by a brute-force count over the recording
  (none that arrived after, none lost for arriving late);
* a second application started mid-feed, reading the same topics from the beginning, on
  two workers one of which is killed with SIGKILL mid-stream, emits the same signals;
* ``gnosis record`` run mid-feed and again after it resumes where it stopped;

and that a headline a news producer's transaction holds open past its bar counts from its
append time: the bar waits for the transaction, as the replay of the recording says.

The signals compared are warm (small windows, thresholds a random walk meets): BUY and
SELL decisions, Hurst and Hawkes values, not only warm-up HOLDs.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import strategies as st

from gnosis.config import Settings, duration_ns
from gnosis.events import Bar, NewsItem, TradingSignal
from gnosis.streams.kafka.broker import free_port

from .conftest import (
    MINUTE_NS,
    START_NS,
    active_rules,
    assert_same_signals,
    assert_signals_equal,
    collect_all,
    drawn,
    kill_when,
    market_events,
    wait_for_records,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

PARTITIONS = 4
SECOND_NS = 1_000_000_000


@dataclass(frozen=True)
class Feed:
    """How late a feed delivers: per headline, the delay after its stamp."""

    seed: int
    late_share: float
    """Share of headlines later than one bar (up to six)."""
    tie_share: float
    """Share of headlines that arrive at the very instant of a bar's arrival."""


feeds = st.builds(Feed, st.integers(0, 2**16), st.floats(0.2, 0.5), st.floats(0.05, 0.2))


def drawn_feed(key: int) -> Feed:
    """One feed from :data:`feeds`, the same on every run for a given ``key``."""
    return drawn(feeds, key)


def arrivals(bars: list[Bar], news: list[NewsItem], feed: Feed
             ) -> list[tuple[int, Bar | NewsItem]]:
    """(arrival time, event) in arrival order: bars 0.2-1.5 s after their close; headlines
    within 3 s, or (``late_share``) 10 s to 6 minutes late, or (``tie_share``) exactly
    when the first bar closing after their stamp arrives."""
    rng = np.random.default_rng(feed.seed)
    bar_at = {id(b): b.ts + int(rng.uniform(0.2, 1.5) * SECOND_NS) for b in bars}
    closes = sorted({b.ts for b in bars})
    first_arrival = {}
    for b in bars:
        first_arrival[b.ts] = min(first_arrival.get(b.ts, bar_at[id(b)]), bar_at[id(b)])
    out: list[tuple[int, Bar | NewsItem]] = [(bar_at[id(b)], b) for b in bars]
    for item in news:
        u = rng.uniform()
        if u < feed.tie_share:
            i = int(np.searchsorted(closes, item.ts, side="left"))
            at = first_arrival[closes[min(i, len(closes) - 1)]]
        elif u < feed.tie_share + feed.late_share:
            at = item.ts + int(rng.uniform(10, 360) * SECOND_NS)
        else:
            at = item.ts + int(rng.uniform(0, 3) * SECOND_NS)
        out.append((max(at, item.ts), item))
    # Ties in arrival keep no particular order: shuffle them, then sort stably.
    order = rng.permutation(len(out))
    return sorted((out[i] for i in order), key=lambda pair: pair[0])


async def feed_async(settings: Settings, events: list[tuple[int, Bar | NewsItem]],
                     speed: float) -> None:
    """Publish in arrival order, paced at ``speed`` times real time, with one ordinary
    producer per topic (bars keyed by ticker, news by its first ticker)."""
    from aiokafka import AIOKafkaProducer

    k = settings.kafka
    bars_out = AIOKafkaProducer(bootstrap_servers=k.bootstrap_servers, linger_ms=5)
    news_out = AIOKafkaProducer(bootstrap_servers=k.bootstrap_servers, linger_ms=5)
    await bars_out.start()
    await news_out.start()
    try:
        started, first = time.monotonic(), events[0][0]
        for at, event in events:
            if (wait := started + (at - first) / SECOND_NS / speed - time.monotonic()) > 0:
                await asyncio.sleep(wait)
            if isinstance(event, Bar):
                await bars_out.send(k.bars_topic, event.to_json(), key=event.ticker.encode())
            else:
                await news_out.send(k.news_topic, event.to_json(),
                                    key=event.tickers[0].encode())
        await bars_out.flush()
        await news_out.flush()
    finally:
        await bars_out.stop()
        await news_out.stop()


def counted_headlines(bars: pd.DataFrame, news: pd.DataFrame, window_ns: int
                      ) -> dict[tuple[str, int], tuple[int, float]]:
    """Brute force over a recording: per (ticker, bar close), how many headlines name the
    ticker, are stamped in ``(close - window, close]`` and arrived no later than the bar,
    and their mean score."""
    from gnosis.models.sentiment import LexiconScorer

    scorer = LexiconScorer()
    scores = [s.score for s in scorer.score_batch(news["headline"].tolist())]
    rows = list(zip(news["ts"], news["received_at"], news["tickers"], scores, strict=True))
    out = {}
    for ticker, close, known in zip(bars["ticker"], bars["ts"], bars["received_at"],
                                    strict=True):
        picked = [score for ts, arrived, tickers, score in rows
                  if ticker in tickers and close - window_ns < ts <= close and arrived <= known]
        out[(ticker, int(close))] = (len(picked),
                                     math.fsum(picked) / len(picked) if picked else 0.0)
    return out


def read_signal_lines(path) -> list[TradingSignal]:
    return [TradingSignal.from_json(line) for line in path.read_bytes().splitlines() if line]


@pytest.mark.parametrize("key", [1, 2])
def test_a_late_feed_live_equals_the_replay_of_its_recording(
        key, tmp_path, kafka_settings, kafka_topics, worker_process, gnosis_cli) -> None:
    from gnosis.replay.readers import read_bars, read_news

    feed = drawn_feed(key)
    settings = active_rules(kafka_settings(partitions=PARTITIONS))
    kafka_topics(settings)
    bars, news = market_events(("AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "META"),
                               bars_per_ticker=400, news_per_bar=0.3, seed=key)
    events = arrivals(bars, news, feed)
    late = sum(1 for at, e in events if isinstance(e, NewsItem) and at - e.ts > MINUTE_NS)
    assert late > len(news) // 10, "the feed should deliver many headlines after their bar"

    # Same topics, another application: it starts mid-feed, reads from the beginning, on
    # two workers of which one is killed mid-stream.
    other = replace(settings, worker=replace(settings.worker,
                                             app_id=settings.worker.app_id + "-again",
                                             processing_guarantee="exactly_once"),
                    kafka=replace(settings.kafka,
                                  signals_topic=settings.kafka.signals_topic + "-again"))
    kafka_topics(other)
    bootstrap = settings.kafka.bootstrap_servers
    worker_process(replace(settings, worker=replace(settings.worker, web_port=free_port())))
    publisher = threading.Thread(target=lambda: asyncio.run(feed_async(settings, events, 600.0)),
                                 daemon=True)
    publisher.start()
    wait_for_records(bootstrap, settings.kafka.signals_topic, len(bars) // 4, timeout=120)
    first = worker_process(replace(other, worker=replace(other.worker, web_port=free_port())))
    worker_process(replace(other, worker=replace(other.worker, web_port=free_port())))
    recording = tmp_path / "recording"
    early = gnosis_cli(settings, "record", recording)  # mid-feed: what has arrived so far
    assert early.returncode == 0, early.stderr
    held = kill_when(first, bootstrap, other.kafka.signals_topic, len(bars) // 2, timeout=180)
    assert held < len(bars), "the kill did not land mid-stream"
    live = collect_all(settings, len(bars), exactly_once=False)
    publisher.join(120)
    assert not publisher.is_alive()

    done = gnosis_cli(settings, "record", recording)  # resumes where the first run stopped
    assert done.returncode == 0, done.stderr
    assert "recorded before" in done.stderr, done.stderr
    from gnosis.streams.recorder import BARS_FILE, NEWS_FILE

    assert len(pd.read_parquet(recording / BARS_FILE)) == len(bars)
    assert len(pd.read_parquet(recording / NEWS_FILE)) == len(news)
    again = gnosis_cli(settings, "record", recording)  # nothing new to add
    assert "recorded 0 bars and 0 headlines (0 rejected)" in again.stderr, again.stderr
    replayed_path = tmp_path / "replayed.jsonl"
    replayed = gnosis_cli(settings, "replay", recording / "bars.parquet",
                          recording / "news.parquet", "--out", replayed_path)
    assert replayed.returncode == 0, replayed.stderr
    expected = read_signal_lines(replayed_path)
    assert len(expected) == len(bars)
    assert_same_signals(live, expected, exactly_once=False)

    # The rule itself, counted independently over the recording.
    recorded_bars = read_bars(recording / "bars.parquet").frame
    recorded_news = read_news(recording / "news.parquet").frame
    truth = counted_headlines(recorded_bars, recorded_news,
                              duration_ns(settings.rules.sentiment_window))
    distinct = {s.signal_id: s for s in live}.values()
    for s in distinct:
        count, mean = truth[(s.ticker, s.ts)]
        assert s.sentiment_count == count, f"{s.ticker}@{s.ts}: {s.sentiment_count} != {count}"
        assert s.sentiment_mean == pytest.approx(mean, abs=1e-12)
    # The recording is what arrived: late headlines were known after bars their stamp
    # precedes, and some signals left out headlines of their window for that reason.
    stamped_in = {(t, c): n for (t, c), (n, _) in counted_headlines(
        recorded_bars, recorded_news.assign(received_at=recorded_news["ts"]),
        duration_ns(settings.rules.sentiment_window)).items()}
    assert sum(stamped_in[(s.ticker, s.ts)] > s.sentiment_count for s in distinct) > 10
    kinds = {s.signal_type for s in distinct}
    assert kinds & {"BUY", "SELL"}, f"warm signals expected, got only {kinds}"
    assert any(s.hawkes_branching > 0 and s.hurst_exponent > 0 for s in distinct)

    assert_same_signals(collect_all(other, len(bars), exactly_once=True), expected,
                        exactly_once=True)


def test_a_headline_in_an_open_transaction_counts_from_its_append_time(
        tmp_path, kafka_settings, kafka_topics, worker_process, gnosis_cli) -> None:
    """A transactional news producer appends a headline, then the bar after it arrives, and
    the transaction commits a second later: the headline is known before the bar (its
    append time), so the bar waits and its signal counts it; the replay of the recording
    agrees. Read committed, the news end offset stops before the open transaction, and a
    barrier taken from it would release the bar without the headline."""
    from aiokafka import AIOKafkaProducer

    from gnosis.replay.kafka import collect_signals

    settings = kafka_settings(partitions=PARTITIONS)
    kafka_topics(settings)
    k = settings.kafka
    worker_process(replace(settings, worker=replace(settings.worker, web_port=free_port())))
    bars = [Bar("AAPL", START_NS + i * MINUTE_NS, 100.0, 103.0, 99.0, 100.0 + i, 1e4)
            for i in range(3)]
    headline = NewsItem("txn-1", START_NS + 30 * SECOND_NS, ("AAPL",),
                        "Apple beats estimates and raises guidance")

    async def feed() -> tuple[list[TradingSignal], list[TradingSignal]]:
        plain = AIOKafkaProducer(bootstrap_servers=k.bootstrap_servers)
        txn = AIOKafkaProducer(bootstrap_servers=k.bootstrap_servers,
                               transactional_id=f"{settings.worker.app_id}-ingest")
        await plain.start()
        await txn.start()
        try:
            await plain.send_and_wait(k.bars_topic, bars[0].to_json(), key=b"AAPL")
            await asyncio.to_thread(collect_signals, settings, 1, 120)
            await txn.begin_transaction()
            await txn.send_and_wait(k.news_topic, headline.to_json(), key=b"AAPL")
            for bar in bars[1:]:
                await plain.send_and_wait(k.bars_topic, bar.to_json(), key=b"AAPL")
            await asyncio.sleep(1.0)  # twenty times worker.broker_clock_skew
            while_open = await asyncio.to_thread(collect_signals, settings, None, 2)
            await txn.commit_transaction()
            return while_open, await asyncio.to_thread(collect_signals, settings, 3, 120)
        finally:
            await txn.stop()
            await plain.stop()

    while_open, live = asyncio.run(feed())
    assert [s.ts for s in while_open] == [bars[0].ts], "a bar went ahead of the transaction"
    assert [(s.ts, s.sentiment_count) for s in live] == [
        (bars[0].ts, 0), (bars[1].ts, 1), (bars[2].ts, 1)]

    recording = tmp_path / "recording"
    assert gnosis_cli(settings, "record", recording).returncode == 0
    replayed_path = tmp_path / "replayed.jsonl"
    replayed = gnosis_cli(settings, "replay", recording / "bars.parquet",
                          recording / "news.parquet", "--out", replayed_path)
    assert replayed.returncode == 0, replayed.stderr
    expected = read_signal_lines(replayed_path)
    assert [s.signal_id for s in expected] == [s.signal_id for s in live]
    assert_signals_equal({s.signal_id: s for s in live}, expected)


def test_record_names_a_missing_topic_and_writes_nothing(tmp_path, kafka_settings,
                                                         gnosis_cli) -> None:
    settings = kafka_settings()  # topics not created
    out = tmp_path / "recording"
    done = gnosis_cli(settings, "record", out)
    assert done.returncode == 2, done.stderr
    said = f"error: topic '{settings.kafka.bars_topic}' does not exist on " \
           f"{settings.kafka.bootstrap_servers}"
    assert any(line.startswith(said) for line in done.stderr.splitlines()), done.stderr
    assert not any(out.glob("*.parquet"))
