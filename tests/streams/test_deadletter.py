"""Bad input: over a thousand generated malformed events interleaved with a valid market.

Every malformed event lands in ``deadletter`` exactly once, with its original payload, the
reason :mod:`gnosis.events` (or the engine's bar-order rule) gives for it and its source
position; the valid events yield exactly the in-process signals; the worker stays up.
"""

from __future__ import annotations

import asyncio
import base64
import urllib.request
from collections import Counter
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from gnosis.config import Settings
from gnosis.engine import run_events
from gnosis.events import MAX_PAYLOAD_BYTES, Bar, InvalidEvent, NewsItem, parse_timestamp
from gnosis.replay.kafka import collect_signals, event_order
from gnosis.streams.kafka.broker import free_port
from gnosis.streams.records import ticker_partition

from .conftest import (
    MINUTE_NS,
    START_NS,
    active_rules,
    assert_same_signals,
    consume_committed,
    kill_when,
    market_events,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

TICKERS = ("AAPL", "MSFT", "TSLA")
BARS_PER_TICKER = 300
PARTITIONS = 2
N_BAD_BARS = 900
N_BAD_NEWS = 150
PRICE_FIELDS = ("open", "high", "low", "close", "volume")
BAR_FIELDS = ("ticker", "timestamp", *PRICE_FIELDS)
NEWS_FIELDS = ("id", "timestamp", "tickers", "headline")


# --------------------------------------------------------------------------- strategies

INT64 = st.integers(-(2**63), 2**63 - 1)  # what JSON producers can encode


def _bar_dict(ticker: str, i: int, price: float, spread: float) -> dict[str, Any]:
    close = price * 1.001
    return {"ticker": ticker, "timestamp": (START_NS + i * MINUTE_NS) // 1_000_000,
            "open": price, "high": close + spread, "low": price - spread, "close": close,
            "volume": 1_000.0, "interval": "1m"}


valid_bar = st.builds(_bar_dict, st.sampled_from(TICKERS), st.integers(1, BARS_PER_TICKER),
                      st.floats(1.0, 1_000.0), st.floats(0.0, 1.0))
valid_news = st.fixed_dictionaries({
    "id": st.text(min_size=1, max_size=8), "timestamp": st.just("2024-01-02T14:30:00Z"),
    "tickers": st.lists(st.sampled_from(TICKERS), min_size=1, max_size=3),
    "headline": st.text(max_size=60)})
wrong_values = st.one_of(st.booleans(), st.lists(INT64, max_size=2),
                         st.dictionaries(st.text(max_size=3), INT64, max_size=2),
                         st.text(alphabet="abcxyz ", min_size=1, max_size=8))
non_finite = st.sampled_from(["NaN", "nan", "Infinity", "-Infinity", "inf", "-inf"])


def _unparseable(text: str) -> bool:
    try:
        parse_timestamp(text)
    except InvalidEvent:
        return True
    return False


bad_timestamps = st.one_of(st.text(alphabet="0123456789-:TZ ", min_size=1, max_size=12)
                           .filter(_unparseable),
                           st.booleans(), st.lists(INT64, max_size=2))
bad_tickers = st.one_of(st.just(""), st.text(alphabet=" !@#$%&*(){}", min_size=1, max_size=5),
                        st.text(alphabet="ABC", min_size=33, max_size=40),
                        INT64, st.booleans())


def _dump(obj: Any) -> bytes:
    return orjson.dumps(obj)


def _with(obj: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**obj, **changes}


@st.composite
def _missing(draw: st.DrawFn, base: st.SearchStrategy, names: tuple[str, ...]) -> bytes:
    obj = draw(base)
    gone = draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True))
    if draw(st.booleans()):
        return _dump({k: v for k, v in obj.items() if k not in gone})
    return _dump(_with(obj, **dict.fromkeys(gone)))


@st.composite
def _truncated(draw: st.DrawFn, base: st.SearchStrategy) -> bytes:
    text = _dump(draw(base))
    return text[:draw(st.integers(1, len(text) - 1))]


@st.composite
def _body_violation(draw: st.DrawFn) -> bytes:
    bar = draw(valid_bar)
    gap = draw(st.floats(1e-6, 10.0))
    if draw(st.booleans()):
        return _dump(_with(bar, high=max(bar["open"], bar["close"]) - gap))
    return _dump(_with(bar, low=min(bar["open"], bar["close"]) + gap))


@st.composite
def _oversized(draw: st.DrawFn, base: st.SearchStrategy) -> bytes:
    obj = draw(base)
    pad = draw(st.integers(MAX_PAYLOAD_BYTES + 1, MAX_PAYLOAD_BYTES + 4_096))
    return _dump(_with(obj, pad="x" * pad))


def _field_set(base: st.SearchStrategy, names: tuple[str, ...],
               values: st.SearchStrategy) -> st.SearchStrategy[bytes]:
    return st.builds(lambda obj, name, value: _dump(_with(obj, **{name: value})),
                     base, st.sampled_from(names), values)


json_non_objects = st.recursive(
    st.none() | st.booleans() | INT64 | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3), max_leaves=5).map(_dump)

malformed_bar_payloads = st.one_of(
    st.binary(min_size=1, max_size=120),
    _truncated(valid_bar),
    json_non_objects,
    _missing(valid_bar, BAR_FIELDS),
    _field_set(valid_bar, PRICE_FIELDS, wrong_values),
    _field_set(valid_bar, PRICE_FIELDS, non_finite),
    # The JSON literals NaN/Infinity are not JSON at all.
    st.builds(lambda bar, name, lit: _dump(_with(bar, **{name: 1.5})).replace(b"1.5", lit),
              valid_bar, st.sampled_from(PRICE_FIELDS),
              st.sampled_from([b"NaN", b"Infinity", b"-Infinity"])),
    _field_set(valid_bar, PRICE_FIELDS, st.floats(-1e6, -1e-9)),
    _body_violation(),
    _field_set(valid_bar, ("timestamp",), bad_timestamps),
    _field_set(valid_bar, ("ticker",), bad_tickers),
    _field_set(valid_bar, ("interval",), st.sampled_from(["7x", "0m", "m", 5, "1 m"])),
    _oversized(valid_bar),
)
malformed_news_payloads = st.one_of(
    st.binary(min_size=1, max_size=120),
    _truncated(valid_news),
    json_non_objects,
    _missing(valid_news, NEWS_FIELDS),
    _field_set(valid_news, ("tickers",), st.one_of(st.just([]), st.lists(bad_tickers,
                                                                          min_size=1))),
    _field_set(valid_news, ("headline",), st.one_of(INT64, st.text(min_size=1_001,
                                                                           max_size=1_001))),
    _field_set(valid_news, ("timestamp",), bad_timestamps),
    _oversized(valid_news),
)


@dataclass(frozen=True)
class BadBar:
    """A malformed bars record: where it goes and what follows it in the stream."""

    payload: bytes
    partition: int
    after: int  # inserted after the ``after``-th valid event


@dataclass(frozen=True)
class StaleBar:
    """A schema-valid bar at or before its ticker's previous bar: duplicate or out of order."""

    ticker: str
    index: int  # placed right after this bar of the ticker
    back_ns: int  # 0: a duplicate; else this far before that bar


def _sample(strategy: st.SearchStrategy, n: int, key: int) -> list[Any]:
    """``n`` examples of ``strategy``, the same on every run."""
    out: list[Any] = []

    @seed(key)
    @settings(max_examples=n, database=None, phases=[Phase.generate], derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(example: Any) -> None:
        out.append(example)

    collect()
    return out


# --------------------------------------------------------------------------- oracle

def expected_reason(topic: str, payload: bytes | None, key: bytes | None, partition: int,
                    settings: Settings, last_ts: dict[str, int]) -> str | None:
    """The deadletter reason of a record, or ``None`` if valid (then ``last_ts`` advances)."""
    payload = payload or b""  # a tombstone
    try:
        if topic == "news":
            NewsItem.from_json(payload)
            return None
        bar = Bar.from_json(payload)
    except InvalidEvent as exc:
        return exc.code
    if key != bar.ticker.encode():
        return "key_mismatch"
    if partition != ticker_partition(bar.ticker, settings.kafka.partitions):
        return "wrong_partition"
    previous = last_ts.get(bar.ticker)
    if previous is not None and bar.ts <= previous:
        return "duplicate_bar" if bar.ts == previous else "out_of_order"
    last_ts[bar.ticker] = bar.ts
    return None


@dataclass
class Record:
    topic: str  # "bars" or "news"
    payload: bytes | None
    key: bytes | None
    partition: int
    reason: str | None
    offset: int = -1
    known: int = -1
    """Knowledge time (epoch ns): the broker's timestamp of the record once sent."""


def build_stream(settings: Settings) -> tuple[list[Record], list[Bar], list[NewsItem]]:
    """The valid market with the generated malformed records interleaved, in send order."""
    bars, news = market_events(tickers=TICKERS, bars_per_ticker=BARS_PER_TICKER,
                               news_per_bar=0.2, seed=11)
    # The valid events go out in the order a feed would know them (each headline a minute
    # after its stamp); the expected signals use the times the broker actually gave them.
    valid = [event for _, event in event_order(bars, news, [b.ts for b in bars],
                                               [n.ts + MINUTE_NS for n in news])]
    bad_bars = _sample(st.builds(BadBar, malformed_bar_payloads, st.integers(0, PARTITIONS - 1),
                                 st.integers(0, len(valid))), N_BAD_BARS, 1)
    stale = _sample(st.builds(StaleBar, st.sampled_from(TICKERS),
                              st.integers(0, BARS_PER_TICKER - 1),
                              st.one_of(st.just(0), st.integers(1, 10 * MINUTE_NS))), 60, 2)
    # Valid bars on the other partition than their ticker's, and keyed by another ticker.
    misplaced = _sample(st.tuples(valid_bar, st.integers(0, len(valid))), 30, 4)
    mislabelled = _sample(st.tuples(valid_bar, st.sampled_from(TICKERS),
                                    st.integers(0, len(valid))), 30, 5)
    bad_news = _sample(st.tuples(malformed_news_payloads, st.integers(0, PARTITIONS - 1),
                                 st.integers(0, len(valid))), N_BAD_NEWS, 3)
    inserts: dict[int, list[tuple[str, bytes | None, int, bytes | None]]] = {}
    for b in bad_bars:
        inserts.setdefault(b.after, []).append(("bars", b.payload, b.partition, None))
    for bar, after in misplaced:
        wrong = 1 - ticker_partition(bar["ticker"], PARTITIONS)
        inserts.setdefault(after, []).append(("bars", _dump(bar), wrong, bar["ticker"].encode()))
    for bar, other, after in mislabelled:
        key = (other if other != bar["ticker"] else other.lower()).encode()
        inserts.setdefault(after, []).append(("bars", _dump(bar), ticker_partition(
            key.decode(), PARTITIONS), key))
    for payload, partition, after in bad_news:
        inserts.setdefault(after, []).append(("news", payload, partition, None))
    by_ticker = {t: [b for b in bars if b.ticker == t] for t in TICKERS}
    position = {id(event): i for i, event in enumerate(valid)}
    for s in stale:
        ref = by_ticker[s.ticker][s.index]
        copy = Bar(ref.ticker, ref.ts - s.back_ns, ref.open, ref.high, ref.low, ref.close,
                   ref.volume, ref.interval)
        p = ticker_partition(ref.ticker, PARTITIONS)
        inserts.setdefault(position[id(ref)] + 1, []).insert(0, ("bars", copy.to_json(), p,
                                                                  ref.ticker.encode()))

    records: list[Record] = []
    last_ts: dict[str, int] = {}

    def add(topic: str, payload: bytes | None, key: bytes | None, partition: int) -> str | None:
        reason = expected_reason(topic, payload, key, partition, settings, last_ts)
        records.append(Record(topic, payload, key, partition, reason))
        return reason

    # Input that parses but lies about its time (issue: a bar from 2100 once silenced its
    # ticker for good; epoch numbers in the wrong unit vanished).
    for n, stamp in enumerate(("2100-01-01T00:00:00Z", 1e15, 9.9e300)):
        ticker = TICKERS[n % len(TICKERS)]
        bar = _with(_bar_dict(ticker, 1, 10.0, 0.1), timestamp=stamp)
        inserts.setdefault(len(valid) // 3, []).append(
            ("bars", _dump(bar), ticker_partition(ticker, PARTITIONS), ticker.encode()))
    inserts.setdefault(len(valid) // 3, []).append(
        ("news", _dump({"id": "n-2100", "timestamp": "2100-01-01T00:00:00Z",
                        "tickers": [TICKERS[0]], "headline": "from the future"}), 0, None))
    for i in range(0, len(valid), len(valid) // 4):  # tombstones (Kafka wants their key)
        inserts.setdefault(i, []).extend([("bars", None, 0, b"AAPL"), ("news", None, 1, b"x")])
    for i in range(len(valid) + 1):
        for topic, payload, partition, key in inserts.get(i, []):
            assert add(topic, payload, key, partition) is not None, payload
        if i < len(valid):
            event = valid[i]
            if isinstance(event, Bar):
                p = ticker_partition(event.ticker, PARTITIONS)
                assert add("bars", event.to_json(), event.ticker.encode(), p) is None
            else:
                assert add("news", event.to_json(), None, 0) is None
    return records, bars, news


async def _send_all(settings: Settings, records: list[Record]) -> None:
    """Send in order; like the replay publisher, news is acknowledged before the next bar."""
    from aiokafka import AIOKafkaProducer

    topics = {"bars": settings.kafka.bars_topic, "news": settings.kafka.news_topic}
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers, acks="all",
                                enable_idempotence=True, linger_ms=5,
                                max_request_size=1024 * 1024)
    await producer.start()
    try:
        news_in_flight: list[asyncio.Future] = []
        sent: list[tuple[Record, asyncio.Future]] = []
        for rec in records:
            if rec.topic == "bars" and news_in_flight:
                await asyncio.gather(*news_in_flight)
                news_in_flight.clear()
            future = await producer.send(topics[rec.topic], rec.payload, key=rec.key,
                                         partition=rec.partition)
            sent.append((rec, future))
            if rec.topic == "news":
                news_in_flight.append(future)
        await producer.flush()
        for rec, future in sent:
            meta = await future
            rec.offset, rec.known = meta.offset, meta.timestamp * 1_000_000
    finally:
        await producer.stop()


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode()


def _payload(record: dict[str, Any]) -> bytes:
    text = record["payload"]
    return base64.b64decode(text) if record["payload_encoding"] == "base64" else text.encode()


def test_malformed_events_go_to_deadletter_and_valid_ones_are_unaffected(
        kafka_settings, kafka_topics, worker_process) -> None:
    # Warm signals (small windows, thresholds a random walk meets): the valid events' BUY
    # and SELL decisions are compared, not only warm-up HOLDs.
    cfg = active_rules(kafka_settings(partitions=PARTITIONS, processing_guarantee="exactly_once",
                                      web_port=free_port()))
    kafka_topics(cfg)
    records, bars, news = build_stream(cfg)
    bad = [r for r in records if r.reason is not None]
    assert len(bad) >= 1_000
    reasons = Counter(r.reason for r in bad)
    # The generators reach every kind of defect the issue lists.
    assert {"malformed_json", "missing_field", "wrong_type", "non_finite", "negative_value",
            "high_below_body", "low_above_body", "bad_timestamp", "bad_ticker", "oversized",
            "duplicate_bar", "out_of_order", "bad_interval", "wrong_partition", "key_mismatch",
            } <= set(reasons), reasons
    asyncio.run(_send_all(cfg, records))
    valid = {topic: [r for r in records if r.topic == topic and not r.reason]
             for topic in ("bars", "news")}
    valid_bars = [Bar.from_json(r.payload) for r in valid["bars"]]
    valid_news = [NewsItem.from_json(r.payload) for r in valid["news"]]
    assert len(valid_bars) == len(bars) and len(valid_news) == len(news)
    expected = run_events(valid_bars, valid_news, cfg,
                          bars_known=[r.known for r in valid["bars"]],
                          news_known=[r.known for r in valid["news"]])
    worker = worker_process(cfg)
    got = collect_signals(cfg, expected=len(expected), timeout=120)
    dead = consume_committed(cfg.kafka.bootstrap_servers, cfg.kafka.deadletter_topic,
                             expected=len(bad), timeout=60, idle=1.0)

    # Valid events yield exactly the in-process signals, every field.
    assert_same_signals(got, expected, exactly_once=True)

    # One deadletter per malformed event, with its payload, reason and source position.
    topic_name = {"bars": cfg.kafka.bars_topic, "news": cfg.kafka.news_topic}
    want = {(topic_name[r.topic], r.partition, r.offset): r for r in bad}
    seen: dict[tuple[str, int, int], dict[str, Any]] = {}
    for message in dead:
        record = orjson.loads(message.value)
        source = (record["topic"], record["partition"], record["offset"])
        assert source not in seen, f"deadlettered twice: {source}"
        seen[source] = record
    assert set(seen) == set(want)
    for source, record in seen.items():
        ref = want[source]
        assert record["reason"] == ref.reason, (ref.payload[:200], record)
        assert _payload(record) == (ref.payload or b"")
        assert record["detail"]

    # The worker is healthy and /metrics counts deadletters by reason and topic.
    assert worker.alive()
    port = cfg.worker.web_port
    status, _ = _get(f"http://127.0.0.1:{port}/health")
    assert status == 200
    _, text = _get(f"http://127.0.0.1:{port}/metrics")
    counted: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        if line.startswith("gnosis_deadletter_events_total{"):
            labels, value = line[len("gnosis_deadletter_events_total{"):].rsplit("} ", 1)
            parts = dict(item.split("=", 1) for item in labels.split(","))
            counted[(parts["reason"].strip('"'), parts["topic"].strip('"'))] = float(value)
    assert counted == dict(Counter((r.reason, topic_name[r.topic]) for r in bad))


def test_deadletters_are_exactly_once_across_a_crash(kafka_settings, kafka_topics,
                                                     worker_process) -> None:
    cfg = kafka_settings(partitions=PARTITIONS, processing_guarantee="exactly_once",
                         web_port=free_port())
    kafka_topics(cfg)
    records, _, _ = build_stream(cfg)
    bad = [r for r in records if r.reason is not None]
    asyncio.run(_send_all(cfg, records))

    first = worker_process(cfg)
    sent = kill_when(first, cfg.kafka.bootstrap_servers, cfg.kafka.deadletter_topic,
                     len(bad) // 3, timeout=60)
    assert 0 < sent < len(bad), "the kill did not land mid-stream"

    worker_process(cfg)
    dead = consume_committed(cfg.kafka.bootstrap_servers, cfg.kafka.deadletter_topic,
                             expected=len(bad), timeout=90, idle=3.0)
    sources = Counter(tuple(orjson.loads(m.value)[k] for k in ("topic", "partition", "offset",
                                                               "reason")) for m in dead)
    topic_name = {"bars": cfg.kafka.bars_topic, "news": cfg.kafka.news_topic}
    assert set(sources) == {(topic_name[r.topic], r.partition, r.offset, r.reason) for r in bad}
    twice = [source for source, n in sources.items() if n > 1]
    assert not twice, f"deadlettered twice: {twice[:10]}"
