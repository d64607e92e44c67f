"""Exactly-once at many partitions: one transactional producer per task, or one per worker.

Gnosis runs exactly-once with one transactional aiokafka producer per task
(``<app>-task-<p>``, :class:`~gnosis.streams.committer.Committer`). The alternative is one
producer per worker, fenced by the consumer group's generation (KIP-447), which in
Python only confluent-kafka (librdkafka) offers: ``send_offsets_to_transaction(offsets,
consumer.consumer_group_metadata())``. For each partition count, on one local broker,
both do the same work in the same run:

* **open**: make every task ready for transactions (A: the committer's ``open`` of P
  tasks, P producers, P ``InitProducerId``; B: one producer's ``init_transactions``);
* **commit**: a checkpoint of ``--records`` small records per partition to an output
  topic, the consumed offsets of P input partitions, committed (A: P transactions,
  concurrently; B: one transaction over every partition, with a real group member's
  metadata);
* the broker connections and resident memory the producers hold.

    .venv/bin/python bench/bench_eos.py [--partitions 4,16,64,128] [--records 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import psutil
from aiokafka import TopicPartition
from confluent_kafka import Consumer, Producer
from confluent_kafka import TopicPartition as CTopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from gnosis.streams.committer import Committer
from gnosis.streams.kafka.broker import LocalKafka

VALUE = b"x" * 200


def connections(port: int) -> int:
    """This process's TCP connections to the broker."""
    return sum(1 for c in psutil.Process().net_connections("tcp")
               if c.raddr and c.raddr.port == port)


def rss() -> int:
    return psutil.Process().memory_info().rss


def make_topics(bootstrap: str, partitions: int) -> tuple[str, str]:
    """Input, output and (for A's offsets, see the committer) a changelog topic."""
    source, sink, changelog = f"in-{partitions}", f"out-{partitions}", f"log-{partitions}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(t, partitions, 1)
                                       for t in (source, sink, changelog)]).values():
        future.result()
    deadline = time.monotonic() + 60
    while True:  # a new topic's partitions take a moment to get their leader
        meta = admin.list_topics(timeout=10).topics
        if all(t in meta and len(meta[t].partitions) == partitions
               and all(m.leader >= 0 for m in meta[t].partitions.values())
               for t in (source, sink, changelog)):
            return source, sink
        if time.monotonic() > deadline:
            raise RuntimeError(f"topics {source}, {sink} got no leaders")
        time.sleep(0.2)


async def per_task(bootstrap: str, port: int, partitions: int, records: int,
                   checkpoints: int) -> dict[str, float]:
    """A: gnosis' committer, one transactional producer per task."""
    source, sink = f"in-{partitions}", f"out-{partitions}"

    async def unguarded(work: object) -> None:
        await work  # type: ignore[misc]

    committer = Committer({"bootstrap_servers": bootstrap}, f"bench-a-{partitions}", True,
                          None, f"log-{partitions}", "unused-journal", unguarded)  # type: ignore[arg-type]
    before, started = rss(), time.perf_counter()
    await committer.open(range(partitions))
    opened = time.perf_counter() - started
    held, memory = connections(port), rss() - before
    times = []
    for n in range(checkpoints + 3):
        started = time.perf_counter()
        for p in range(partitions):
            committer.stage(p, [(sink, None, VALUE, p)] * records)
        offsets = {TopicPartition(source, p): n + 1 for p in range(partitions)}
        await committer.commit(offsets, {p: {} for p in range(partitions)})
        await committer.settled()
        if n >= 3:
            times.append(time.perf_counter() - started)
    await committer.commit({}, {p: {} for p in range(partitions)}, reopen=False)
    await committer.stop()
    return summary(opened, times, held, memory)


def per_worker(bootstrap: str, port: int, partitions: int, records: int,
               checkpoints: int) -> dict[str, float]:
    """B: one confluent-kafka producer, fenced by a group member's metadata (KIP-447)."""
    source, sink = f"in-{partitions}", f"out-{partitions}"
    group = f"bench-b-{partitions}"
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "enable.auto.commit": False, "isolation.level": "read_committed"})
    consumer.subscribe([source])
    deadline = time.monotonic() + 60
    while not consumer.assignment():
        consumer.poll(0.2)
        if time.monotonic() > deadline:
            raise RuntimeError("the consumer got no assignment")
    before, started = rss(), time.perf_counter()
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": group,
                         "linger.ms": 1, "acks": "all"})
    producer.init_transactions(30)
    producer.begin_transaction()
    opened = time.perf_counter() - started
    held, memory = connections(port), rss() - before
    times = []
    for n in range(checkpoints + 3):
        started = time.perf_counter()
        for p in range(partitions):
            for _ in range(records):
                producer.produce(sink, VALUE, partition=p)
        offsets = [CTopicPartition(source, p, n + 1) for p in range(partitions)]
        producer.send_offsets_to_transaction(offsets, consumer.consumer_group_metadata(), 30)
        producer.commit_transaction(30)
        producer.begin_transaction()
        if n >= 3:
            times.append(time.perf_counter() - started)
    producer.abort_transaction(30)
    consumer.close()
    return summary(opened, times, held, memory)


def summary(opened: float, times: list[float], held: int, memory: int) -> dict[str, float]:
    ordered = sorted(times)
    return {"open": opened, "p50": statistics.median(ordered),
            "p95": ordered[int(0.95 * (len(ordered) - 1))], "connections": held,
            "memory": memory}


def main(args: argparse.Namespace) -> None:
    counts = [int(p) for p in args.partitions.split(",") if p]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-eos-") as tmp:
        kafka = LocalKafka(port=0, data_dir=Path(tmp) / "kafka", heap="1g")
        kafka.start(timeout=120, log_file=Path(tmp) / "broker.log")
        bootstrap, port = kafka.bootstrap_servers, int(kafka.bootstrap_servers.rsplit(":")[-1])
        try:
            for partitions in counts:
                make_topics(bootstrap, partitions)
                a = asyncio.run(per_task(bootstrap, port, partitions, args.records,
                                         args.checkpoints))
                b = per_worker(bootstrap, port, partitions, args.records, args.checkpoints)
                rows.append((partitions, a, b))
                print(f"{partitions} partitions: open {a['open']:.2f} / {b['open']:.2f} s, "
                      f"commit p50 {a['p50'] * 1e3:.0f} / {b['p50'] * 1e3:.0f} ms", flush=True)
        finally:
            kafka.stop()
    print(f"\n{args.records} records of {len(VALUE)} B per partition per checkpoint, "
          f"{args.checkpoints} checkpoints after 3 warm-up; A = a producer per task "
          "(aiokafka, gnosis' committer), B = one per worker (confluent-kafka, KIP-447)\n")
    print("| partitions | open A s | open B s | A/B | commit p50 A ms | commit p50 B ms | A/B | "
          "commit p95 A ms | commit p95 B ms | connections A | connections B | "
          "memory A MB | memory B MB |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for partitions, a, b in rows:
        print(f"| {partitions} | {a['open']:.2f} | {b['open']:.2f} | "
              f"{a['open'] / b['open']:.1f} | {a['p50'] * 1e3:.0f} | {b['p50'] * 1e3:.0f} | "
              f"{a['p50'] / b['p50']:.2f} | {a['p95'] * 1e3:.0f} | {b['p95'] * 1e3:.0f} | "
              f"{a['connections']:.0f} | {b['connections']:.0f} | "
              f"{a['memory'] / 2**20:.0f} | {b['memory'] / 2**20:.0f} |")


if __name__ == "__main__":
    started = time.monotonic()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--partitions", default="4,16,64,128")
    parser.add_argument("--records", type=int, default=50,
                        help="records per partition per checkpoint")
    parser.add_argument("--checkpoints", type=int, default=30)
    main(parser.parse_args())
    print(f"\nwall time {time.monotonic() - started:.0f} s on {os.cpu_count()} cores")
