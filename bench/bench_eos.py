"""Exactly-once at many partitions: one transactional producer per task, or one per worker.

Gnosis runs exactly-once with one transactional aiokafka producer per task
(``<app>-task-<p>``, :class:`~gnosis.streams.committer.Committer`). The alternative is one
producer per worker, fenced by the consumer group's generation (KIP-447), which in
Python only confluent-kafka (librdkafka) offers: ``send_offsets_to_transaction(offsets,
consumer.consumer_group_metadata())``. For each partition count, on one local broker,
both do the same work in the same run, each in a fresh child process (so the memory figures
are its own):

* **open**: make every task ready for transactions (A: the committer's ``open`` of P
  tasks, P producers, P ``InitProducerId``; B: one producer's ``init_transactions``);
* **commit**: a checkpoint of ``--records`` small records per partition to an output
  topic, the consumed offsets of P input partitions, committed (A: P transactions,
  concurrently; B: one transaction over every partition, with a real group member's
  metadata);
* the broker connections the producers add and the resident memory they hold after the
  checkpoints (B's consumer, which A's worker has too, is not counted).

Kafka 3.6+ verifies that a transaction's produce comes after its partitions were added
(KIP-890); while the coordinator is still completing the previous transaction it answers
``CONCURRENT_TRANSACTIONS``, which the broker reports to Produce as the retriable
``NOT_ENOUGH_REPLICAS``. Both clients then wait their retry backoff (100 ms by default)
and the backoff, not the work, sets the commit time; so each ``--retry-backoff-ms`` value
gets its own table, and A's produce retries per checkpoint are counted.

The broker's transaction state topic is created, and its coordinator warmed, by one
throwaway transaction before the first partition count, so neither side pays for it.

    .venv/bin/python bench/bench_eos.py [--partitions 4,16,64,128] [--records 50]
        [--retry-backoff-ms 100,10]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import psutil
from aiokafka import TopicPartition
from confluent_kafka import Consumer, Producer
from confluent_kafka import TopicPartition as CTopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from gnosis.streams.committer import Committer
from gnosis.streams.kafka.broker import LocalKafka

VALUE = b"x" * 200
WARM_UP = 3
"""Checkpoints before the measured ones."""


class RetryCount(logging.Handler):
    """Counts aiokafka's \"retrying\" produce warnings instead of printing them."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += "retrying" in record.getMessage()


RETRIES = RetryCount()


def isolated(side: Callable[..., dict[str, float]], *args: object) -> dict[str, float]:
    """``side(*args)`` in a fresh interpreter."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(side, *args).result()


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


def per_task(bootstrap: str, port: int, partitions: int, records: int, checkpoints: int,
             backoff: int) -> dict[str, float]:
    """A: gnosis' committer, one transactional producer per task."""
    sender = logging.getLogger("aiokafka.producer.sender")
    sender.addHandler(RETRIES)
    sender.propagate = False
    return asyncio.run(_per_task(bootstrap, port, partitions, records, checkpoints, backoff))


async def _per_task(bootstrap: str, port: int, partitions: int, records: int,
                    checkpoints: int, backoff: int) -> dict[str, float]:
    source, sink = f"in-{partitions}", f"out-{partitions}"

    async def unguarded(work: object) -> None:
        await work  # type: ignore[misc]

    committer = Committer({"bootstrap_servers": bootstrap, "retry_backoff_ms": backoff},
                          f"bench-a-{partitions}-{backoff}", True, None, f"log-{partitions}",
                          "unused-journal", unguarded)  # type: ignore[arg-type]
    before, sockets, started = rss(), connections(port), time.perf_counter()
    await committer.open(range(partitions))
    opened = time.perf_counter() - started
    held = connections(port) - sockets
    times = []
    for n in range(checkpoints + WARM_UP):
        if n == WARM_UP:
            RETRIES.count = 0
        started = time.perf_counter()
        for p in range(partitions):
            committer.stage(p, [(sink, None, VALUE, p)] * records)
        offsets = {TopicPartition(source, p): n + 1 for p in range(partitions)}
        await committer.commit(offsets, {p: {} for p in range(partitions)})
        await committer.settled()
        if n >= WARM_UP:
            times.append(time.perf_counter() - started)
    memory = rss() - before
    await committer.commit({}, {p: {} for p in range(partitions)}, reopen=False)
    await committer.stop()
    return {**summary(opened, times, held, memory), "retries": RETRIES.count / checkpoints}


def per_worker(bootstrap: str, port: int, partitions: int, records: int,
               checkpoints: int, backoff: int) -> dict[str, float]:
    """B: one confluent-kafka producer, fenced by a group member's metadata (KIP-447)."""
    source, sink = f"in-{partitions}", f"out-{partitions}"
    group = f"bench-b-{partitions}-{backoff}"
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "enable.auto.commit": False, "isolation.level": "read_committed"})
    consumer.subscribe([source])
    deadline = time.monotonic() + 60
    while not consumer.assignment():
        consumer.poll(0.2)
        if time.monotonic() > deadline:
            raise RuntimeError("the consumer got no assignment")
    before, sockets, started = rss(), connections(port), time.perf_counter()
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": group,
                         "linger.ms": 1, "acks": "all", "retry.backoff.ms": backoff})
    producer.init_transactions(30)
    producer.begin_transaction()
    opened = time.perf_counter() - started
    held = connections(port) - sockets
    times = []
    for n in range(checkpoints + WARM_UP):
        started = time.perf_counter()
        for p in range(partitions):
            for _ in range(records):
                producer.produce(sink, VALUE, partition=p)
        offsets = [CTopicPartition(source, p, n + 1) for p in range(partitions)]
        producer.send_offsets_to_transaction(offsets, consumer.consumer_group_metadata(), 30)
        producer.commit_transaction(30)
        producer.begin_transaction()
        if n >= WARM_UP:
            times.append(time.perf_counter() - started)
    memory = rss() - before
    producer.abort_transaction(30)
    consumer.close()
    return summary(opened, times, held, memory)


def warm_up(bootstrap: str) -> None:
    """One committed transaction: creates the transaction state topic, loads its coordinator."""
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": "bench-warm-up"})
    producer.init_transactions(60)
    producer.begin_transaction()
    producer.commit_transaction(30)


def summary(opened: float, times: list[float], held: int, memory: int) -> dict[str, float]:
    ordered = sorted(times)
    return {"open": opened, "p50": statistics.median(ordered), "mean": statistics.mean(ordered),
            "p95": ordered[int(0.95 * (len(ordered) - 1))], "connections": held,
            "memory": memory}


def main(args: argparse.Namespace) -> None:
    counts = [int(p) for p in args.partitions.split(",") if p]
    backoffs = [int(b) for b in args.retry_backoff_ms.split(",") if b]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-eos-") as tmp:
        kafka = LocalKafka(port=0, data_dir=Path(tmp) / "kafka", heap="1g")
        kafka.start(timeout=120, log_file=Path(tmp) / "broker.log")
        try:
            warm_up(kafka.bootstrap_servers)
            for partitions in counts:
                make_topics(kafka.bootstrap_servers, partitions)
                for backoff in backoffs:
                    a, b = (isolated(side, kafka.bootstrap_servers, kafka.port, partitions,
                                     args.records, args.checkpoints, backoff)
                            for side in (per_task, per_worker))
                    rows.append((backoff, partitions, a, b))
                    print(f"{partitions} partitions, backoff {backoff} ms: open {a['open']:.2f}"
                          f" / {b['open']:.2f} s, commit p50 {a['p50'] * 1e3:.0f} / "
                          f"{b['p50'] * 1e3:.0f} ms", flush=True)
        finally:
            kafka.stop()
    print(f"\n{args.records} records of {len(VALUE)} B per partition per checkpoint, "
          f"{args.checkpoints} checkpoints after {WARM_UP} warm-up; A = a producer per task "
          "(aiokafka, gnosis' committer), B = one per worker (confluent-kafka, KIP-447)")
    for backoff in backoffs:
        print(f"\nretry backoff {backoff} ms (aiokafka retry_backoff_ms, librdkafka "
              "retry.backoff.ms)\n")
        print("| partitions | open A s | open B s | A/B | commit p50 A ms | commit p50 B ms | "
              "A/B | commit mean A ms | commit mean B ms | commit p95 A ms | commit p95 B ms | "
              "A/B | produce retries A per checkpoint | connections A | connections B | "
              "memory A MB | memory B MB |")
        print("|---:" * 17 + "|")
        for _, partitions, a, b in (r for r in rows if r[0] == backoff):
            print(f"| {partitions} | {a['open']:.2f} | {b['open']:.2f} | "
                  f"{a['open'] / b['open']:.1f} | {a['p50'] * 1e3:.0f} | {b['p50'] * 1e3:.0f} | "
                  f"{a['p50'] / b['p50']:.2f} | {a['mean'] * 1e3:.0f} | {b['mean'] * 1e3:.0f} | "
                  f"{a['p95'] * 1e3:.0f} | {b['p95'] * 1e3:.0f} | "
                  f"{a['p95'] / b['p95']:.2f} | {a['retries']:.1f} | "
                  f"{a['connections']:.0f} | {b['connections']:.0f} | "
                  f"{a['memory'] / 2**20:.1f} | {b['memory'] / 2**20:.1f} |")


if __name__ == "__main__":
    started = time.monotonic()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--partitions", default="4,16,64,128")
    parser.add_argument("--records", type=int, default=50,
                        help="records per partition per checkpoint")
    parser.add_argument("--checkpoints", type=int, default=30)
    parser.add_argument("--retry-backoff-ms", default="100,10",
                        help="both clients' retry backoff; 100 is their default")
    main(parser.parse_args())
    print(f"\nwall time {time.monotonic() - started:.0f} s on {os.cpu_count()} cores")
