"""The committer keeps order and loses nothing while it holds records back for busy producers.

A flush sends only to producers with room and keeps the rest staged; a commit sends what
is staged first. Here flushes come back to back, faster than the broker answers, with a
commit in the middle and one at the end, on a real broker under both guarantees: every
output arrives once, in order per partition, with every state record, and the offsets
committed cover every output staged before them.
"""

from __future__ import annotations

import asyncio

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from gnosis.security import client_options
from gnosis.streams import committer as committer_module
from gnosis.streams.committer import Committer
from gnosis.streams.records import OFFSETS_KEY, decode_offsets
from gnosis.streams.topics import create_topics, topic_names

from .conftest import consume_committed

pytestmark = pytest.mark.kafka

TASKS, FLUSHES, PER_FLUSH = 4, 300, 40


async def _drive(settings, exactly_once: bool) -> dict[TopicPartition, int | None]:  # type: ignore[no-untyped-def]
    topics = topic_names(settings)
    options = client_options(settings)
    inputs = [TopicPartition(topics.bars, p) for p in range(TASKS)]
    outputs = [TopicPartition(topics.signals, p) for p in range(TASKS)]
    consumer = AIOKafkaConsumer(**options, group_id=settings.worker.app_id,
                                enable_auto_commit=False)
    await consumer.start()
    consumer.assign(inputs)

    async def guard(work) -> None:  # type: ignore[no-untyped-def]
        await work  # a failure fails the test

    committer = Committer(options, settings.worker.app_id, exactly_once, consumer,
                          topics.snapshots_changelog, topics.journal_changelog, guard)
    tables: dict[int, dict[bytes, bytes]] = {p: {} for p in range(TASKS)}
    await committer.start()
    await committer.open(range(TASKS))
    try:
        for f in range(FLUSHES):
            for p in range(TASKS):
                committer.stage(p, [(topics.signals, None, orjson.dumps([p, f, i]), p)
                                    for i in range(PER_FLUSH)])
                committer.stage(p, [(topics.journal_changelog, f"{p}-{f}".encode(), b"j", p)])
            await committer.flush()
            if f % 7 == 0:  # now and then the sends get to move
                await asyncio.sleep(0.001)
            if f == FLUSHES // 2:
                await committer.commit(dict.fromkeys(inputs, f), tables)
                await committer.settled()
                # The commit covers every output staged before it, sent or held back.
                ends = await consumer.end_offsets(outputs)
                assert min(ends.values()) >= (f + 1) * PER_FLUSH, ends
        await committer.commit(dict.fromkeys(inputs, FLUSHES), tables, reopen=False)
        return {tp: await consumer.committed(tp) for tp in inputs}
    finally:
        await committer.stop()
        await consumer.stop()


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_back_to_back_flushes_keep_order_and_lose_nothing(kafka_settings, guarantee) -> None:
    assert FLUSHES * PER_FLUSH * TASKS > 2 * committer_module._MAX_STAGED  # the bound is hit
    settings = kafka_settings(partitions=TASKS, processing_guarantee=guarantee)
    create_topics(settings)
    topics, bootstrap = topic_names(settings), settings.kafka.bootstrap_servers
    committed = asyncio.run(_drive(settings, guarantee == "exactly_once"))

    signals = consume_committed(bootstrap, topics.signals, expected=FLUSHES * PER_FLUSH * TASKS)
    by_partition: dict[int, list[list[int]]] = {p: [] for p in range(TASKS)}
    for record in signals:
        by_partition[record.partition].append(orjson.loads(record.value))
    for p, values in by_partition.items():
        assert values == [[p, f, i] for f in range(FLUSHES) for i in range(PER_FLUSH)], p

    journal = consume_committed(bootstrap, topics.journal_changelog,
                                expected=FLUSHES * TASKS)
    assert sorted(r.key for r in journal) == sorted(
        f"{p}-{f}".encode() for p in range(TASKS) for f in range(FLUSHES))

    inputs = [TopicPartition(topics.bars, p) for p in range(TASKS)]
    if guarantee == "at_least_once":
        assert committed == dict.fromkeys(inputs, FLUSHES)
    else:
        last: dict[int, bytes] = {}
        for record in consume_committed(bootstrap, topics.snapshots_changelog):
            if record.key == OFFSETS_KEY:
                last[record.partition] = record.value
        assert {p: decode_offsets(v) for p, v in last.items()} == {
            p: {inputs[p]: FLUSHES} for p in range(TASKS)}
