"""How long a record takes from its append time to being readable: what the skew must cover.

A bar's barrier (``gnosis.streams.gate``) is, per news partition, the first offset known
after the bar (a lookup by timestamp), or, where there is none yet, the end offset read
once the worker's clock is ``worker.broker_clock_skew`` past the bar. The second is right
only if every record the broker stamped before that moment is readable by then. This bench
measures how far that holds on a broker: producers send to a ``LogAppendTime`` topic while
a client asks for its end offset again and again; afterwards, for every answer, the oldest
record it left out tells how long before the request that record had been stamped (a lower
bound on its append-to-readable delay). It also checks the lookup by timestamp against the
log: the first offset at or after each timestamp, and append times that never go down.

The baseline, measured in the same run, is the end-offsets request's own round trip: the
delays are reported as multiples of its median, and against the configured skew.

    .venv/bin/python bench/bench_visibility.py [--seconds 30] [--producers 3]
        [--bootstrap HOST:PORT]   # a broker of yours instead of a local one
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import random
import statistics
import tempfile
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from gnosis.config import Settings
from gnosis.streams.kafka.broker import LocalKafka

BOUNDS_MS = (1, 2, 5, 10, 20, 50)


async def measure(bootstrap: str, seconds: float, producers: int) -> dict[str, object]:
    topic = f"bench-visibility-{time.time_ns()}"
    tp = TopicPartition(topic, 0)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1, topic_configs={
            "message.timestamp.type": "LogAppendTime"})])
    finally:
        await admin.close()
    senders = [AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
               for _ in range(producers)]
    asker = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_uncommitted")
    for client in (*senders, asker):
        await client.start()
    await asker.end_offsets([tp])  # metadata and connection before the clock starts
    asks: list[tuple[int, int, int, int | None, float]] = []
    stop = time.monotonic() + seconds

    async def send(producer: AIOKafkaProducer) -> None:
        while time.monotonic() < stop:
            await producer.send(topic, b"x")
            await asyncio.sleep(random.uniform(0, 0.01))

    async def ask() -> None:
        while time.monotonic() < stop:
            wall, started = time.time_ns(), time.perf_counter()
            target = wall // 1_000_000 - random.randint(0, 20)
            ends, found = await asyncio.gather(asker.end_offsets([tp]),
                                               asker.offsets_for_times({tp: target}))
            hit = found[tp]
            asks.append((wall, ends[tp], target, None if hit is None else hit.offset,
                         time.perf_counter() - started))

    try:
        await asyncio.gather(*(send(p) for p in senders), ask())
        for producer in senders:
            await producer.flush()
    finally:
        for producer in senders:
            await producer.stop()
    stamps = await read_stamps(bootstrap, tp)
    await asker.stop()
    late = sorted(wall / 1e6 - stamps[end] for wall, end, _, _, _ in asks if end < len(stamps))
    return {
        "records": len(stamps), "asks": len(asks), "late": late,
        "round_trip": statistics.median(a[4] for a in asks),
        "lookups": sum(a[3] is not None for a in asks),
        "lookup_wrong": sum(1 for _, _, target, found, _ in asks
                            if found is not None and found != bisect.bisect_left(stamps, target)),
        "monotonic": all(a <= b for a, b in itertools.pairwise(stamps)),
    }


async def read_stamps(bootstrap: str, tp: TopicPartition) -> list[int]:
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await reader.start()
    try:
        reader.assign([tp])
        end = (await reader.end_offsets([tp]))[tp]
        stamps: list[int] = []
        while len(stamps) < end:
            for records in (await reader.getmany(timeout_ms=1000)).values():
                stamps.extend(r.timestamp for r in records)
        return stamps
    finally:
        await reader.stop()


def report(figures: dict[str, object], skew_s: float) -> None:
    late: list[float] = figures["late"]  # type: ignore[assignment]
    round_trip: float = figures["round_trip"]  # type: ignore[assignment]
    worst = late[-1] if late else 0.0
    print(f"{figures['records']:,} records, {figures['asks']:,} end-offset requests "
          f"(round trip p50 {round_trip * 1e3:.2f} ms)")
    print(f"a record stamped before a request yet missing from its answer, by at most "
          f"{worst:.1f} ms ({worst / 1e3 / round_trip:.1f}x the round trip, "
          f"{worst / 1e3 / skew_s:.2f}x worker.broker_clock_skew = {skew_s * 1e3:.0f} ms)")
    print("requests whose answer left out a record stamped more than ... before it:")
    print("| ms | " + " | ".join(str(b) for b in BOUNDS_MS) + " |")
    print("|---|" + "---:|" * len(BOUNDS_MS))
    print("| requests | " + " | ".join(str(sum(x > b for x in late)) for b in BOUNDS_MS) + " |")
    print(f"lookups by timestamp: {figures['lookups']:,} found, {figures['lookup_wrong']} not "
          f"the first offset at or after their timestamp; append times never go down: "
          f"{figures['monotonic']}")


def main(args: argparse.Namespace) -> None:
    skew = Settings().worker.broker_clock_skew
    if args.bootstrap:
        report(asyncio.run(measure(args.bootstrap, args.seconds, args.producers)), skew)
        return
    with tempfile.TemporaryDirectory(prefix="bench-visibility-") as tmp:
        kafka = LocalKafka(port=0, data_dir=Path(tmp) / "kafka", heap="1g")
        kafka.start(timeout=120, log_file=Path(tmp) / "broker.log")
        try:
            report(asyncio.run(measure(kafka.bootstrap_servers, args.seconds,
                                       args.producers)), skew)
        finally:
            kafka.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--producers", type=int, default=3)
    parser.add_argument("--bootstrap", default="", help="measure this broker instead")
    main(parser.parse_args())
