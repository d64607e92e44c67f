"""Taking a task over: read its changelog partitions, rebuild its tickers' state.

A worker that gains a task (a rebalance, a crash elsewhere, a generation it missed)
reads the task's two changelog partitions from the start (``restore_tables``), then
rebuilds each ticker's state from its snapshot and the journal after it on first use. How
long that takes is how long the task's bars wait during a hand-over, and it must stay well
inside ``worker.rebalance_timeout``.

The changelog is the one a worker writes: ``--tickers`` tickers of ``--bars`` bars each go
through a :class:`~gnosis.streams.task.PartitionTask` in this process, and its state
records are produced to a single-node broker. The log cleaner compacts only closed
segments, so a restore reads every record written since the active segment began
(``segment.bytes`` of the changelog topics bounds that); ``--bars`` stands for that history.

Figures, each against a baseline measured in the same run:

* **read**: ``restore_tables`` over the task's two partitions, against a bare aiokafka
  consumer reading the same partitions to their end;
* **rebuild**: every ticker's state from the tables (snapshot, then the journal after it),
  against recomputing each ticker from its whole bar history (a fresh engine per ticker).

    .venv/bin/python bench/bench_restore.py [--tickers 400] [--bars 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from gnosis.config import Settings
from gnosis.engine import TickerEngine
from gnosis.events import Bar
from gnosis.replay.synthetic import bars_to_events, synthetic_bars
from gnosis.streams.changelog import restore_tables
from gnosis.streams.kafka.broker import LocalKafka
from gnosis.streams.task import Out, PartitionTask
from gnosis.streams.topics import Topics, ensure_topics, topic_names


def changelog(settings: Settings, topics: Topics, bars: list[Bar]) -> list[Out]:
    """The state records a worker writes for ``bars`` (one task: partition 0)."""
    task = PartitionTask(0, settings, topics, "lexicon", {}, {})
    state_topics = {topics.snapshots_changelog, topics.journal_changelog}
    return [r for offset, bar in enumerate(bars)
            for r in task.on_bar(bar, offset, bar.ts, time.perf_counter()) if r[0] in state_topics]


async def produce(bootstrap: str, records: list[Out]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                                max_batch_size=512 * 1024)
    await producer.start()
    try:
        for topic, key, value, partition in records:
            await producer.send(topic, value, key=key, partition=partition)
        await producer.flush()
    finally:
        await producer.stop()


async def bare_read(bootstrap: str, topics: Topics) -> tuple[float, int, int]:
    """Seconds, records and bytes of a plain consumer reading both partitions to the end."""
    tps = [TopicPartition(t, 0) for t in (topics.snapshots_changelog, topics.journal_changelog)]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        started = time.perf_counter()
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        records = size = 0
        todo = {tp for tp in tps if ends[tp] > 0}
        while todo:
            for batch in (await consumer.getmany(*todo, timeout_ms=500)).values():
                records += len(batch)
                size += sum(len(r.value or b"") + len(r.key or b"") for r in batch)
            todo = {tp for tp in todo if await consumer.position(tp) < ends[tp]}
        return time.perf_counter() - started, records, size
    finally:
        await consumer.stop()


def recompute(settings: Settings, bars: list[Bar]) -> float:
    """Seconds to rebuild every ticker from its whole history, one fresh engine each."""
    engines: dict[str, TickerEngine] = {}
    started = time.perf_counter()
    for bar in bars:
        engine = engines.get(bar.ticker)
        if engine is None:
            engine = engines[bar.ticker] = TickerEngine(bar.ticker, settings, "lexicon")
        engine.on_bar(bar, bar.ts)
    return time.perf_counter() - started


async def measure(args: argparse.Namespace, bootstrap: str) -> None:
    base = Settings()
    settings = replace(base, kafka=replace(base.kafka, bootstrap_servers=bootstrap,
                                           partitions=1))
    topics = topic_names(settings)
    await ensure_topics(settings)
    bars = bars_to_events(synthetic_bars(args.tickers, args.bars, seed=1))
    print(f"{args.tickers} tickers x {args.bars} bars: writing the changelog ...", flush=True)
    records = changelog(settings, topics, bars)
    await produce(bootstrap, records)

    bare_s, bare_n, size = await bare_read(bootstrap, topics)
    started = time.perf_counter()
    tables = (await restore_tables({"bootstrap_servers": bootstrap}, topics, [0]))[0]
    read_s = time.perf_counter() - started
    assert bare_n == len(records), (bare_n, len(records))

    task = PartitionTask(0, settings, topics, "lexicon", tables.snapshots, tables.journal)
    last = {bar.ticker: bar.ts for bar in bars}
    started = time.perf_counter()
    for ticker in last:
        task.state(ticker)
    rebuild_s = time.perf_counter() - started
    assert all(task.states[t].engine.last_ts == ts for t, ts in last.items()), "state differs"
    full_s = recompute(settings, bars)

    mb = size / 2**20
    print(f"changelog: {len(records):,} records, {mb:,.1f} MB "
          f"({len(tables.snapshots):,} snapshot keys, {len(tables.journal):,} journal slots "
          "after compaction)")
    print(f"read     : {read_s:6.2f} s = {len(records) / read_s:,.0f} records/s, "
          f"{mb / read_s:,.1f} MB/s: {bare_s / read_s:.2f}x the rate of a bare aiokafka "
          f"read ({bare_s:.2f} s)")
    print(f"rebuild  : {rebuild_s:6.2f} s = {1000 * rebuild_s / args.tickers:.2f} ms per ticker; "
          f"recomputing {args.bars:,} bars each {full_s:.2f} s: {full_s / rebuild_s:.1f}x slower")
    print(f"take-over: {read_s + rebuild_s:6.2f} s for this task "
          f"({args.tickers} tickers, {mb:,.1f} MB to read)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickers", type=int, default=400)
    parser.add_argument("--bars", type=int, default=1000,
                        help="bars per ticker written since the active segment began")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-restore-") as tmp:
        kafka = LocalKafka(port=0, data_dir=Path(tmp) / "kafka", heap="1g")
        try:
            kafka.start(timeout=120, log_file=Path(tmp) / "broker.log")
            asyncio.run(measure(args, kafka.bootstrap_servers))
        finally:
            kafka.stop()


if __name__ == "__main__":
    main()
