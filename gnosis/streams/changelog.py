"""Changelog-backed tables: in memory while a worker owns a partition, rebuilt from Kafka.

Each task keeps two tables (see :mod:`gnosis.streams.journal` for what they hold), and every
write to them is also sent to partition ``p`` of a compacted changelog topic, in the same
transaction as the output it covers. A worker that takes a partition over reads the two
changelog partitions from the start to the last stable offset (``read_committed``) and
carries on from there.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from gnosis.streams.topics import Topics


@dataclass
class Tables:
    """The two tables of one task."""

    snapshots: dict[bytes, bytes] = field(default_factory=dict)
    journal: dict[bytes, bytes] = field(default_factory=dict)


async def restore_tables(options: dict[str, Any], topics: Topics,
                         partitions: Iterable[int]) -> dict[int, Tables]:
    """Read the changelog partitions of ``partitions``; a tombstone deletes its key."""
    parts = sorted(set(partitions))
    out = {p: Tables() for p in parts}
    if not parts:
        return out
    where = {topics.snapshots_changelog: "snapshots", topics.journal_changelog: "journal"}
    tps = [TopicPartition(t, p) for t in where for p in parts]
    consumer = AIOKafkaConsumer(**options, group_id=None, enable_auto_commit=False,
                                isolation_level="read_committed")
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        todo = {tp for tp in tps if ends[tp] > 0}
        while todo:
            batch = await consumer.getmany(*todo, timeout_ms=500)
            for tp, records in batch.items():
                table = getattr(out[tp.partition], where[tp.topic])
                for record in records:
                    if record.value is None:
                        table.pop(record.key, None)
                    else:
                        table[record.key] = record.value
            # Trailing transaction markers are skipped by the fetcher, so the position,
            # not the last record's offset, tells when the end is reached.
            todo = {tp for tp in todo if await consumer.position(tp) < ends[tp]}
        return out
    finally:
        await consumer.stop()
