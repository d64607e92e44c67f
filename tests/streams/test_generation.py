"""aiokafka tells the rebalance listener which group generation an assignment belongs to.

The worker keeps a task's state in memory across a rebalance only if the new generation
follows the one it last got tasks in (see ``Assignment._assigned``). aiokafka has no
public accessor for the generation; :func:`group_generation` reads it from the group
coordinator, and this pins that it is there, and current, when the listener runs.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener

from gnosis.streams.assignor import group_generation
from gnosis.streams.topics import TopicSpec, ensure_topics

pytestmark = pytest.mark.kafka


class Recorder(ConsumerRebalanceListener):
    def __init__(self) -> None:
        self.consumer: AIOKafkaConsumer | None = None
        self.generations: list[int | None] = []

    async def on_partitions_revoked(self, revoked) -> None:  # type: ignore[no-untyped-def]
        pass

    async def on_partitions_assigned(self, assigned) -> None:  # type: ignore[no-untyped-def]
        assert self.consumer is not None
        self.generations.append(group_generation(self.consumer))


async def _member(bootstrap: str, topic: str, group: str) -> tuple[AIOKafkaConsumer, Recorder]:
    recorder = Recorder()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                                session_timeout_ms=6000, heartbeat_interval_ms=500)
    recorder.consumer = consumer
    consumer.subscribe([topic], listener=recorder)
    await consumer.start()
    return consumer, recorder


async def _settle(consumers: list[AIOKafkaConsumer], recorders: list[Recorder],
                  counts: list[int]) -> None:
    """Poll every member until each has seen ``counts`` assignments."""
    for _ in range(300):
        await asyncio.gather(*(c.getmany(timeout_ms=50) for c in consumers))
        if [len(r.generations) for r in recorders] >= counts:
            return
    raise AssertionError(f"assignments seen: {[r.generations for r in recorders]}")


def test_the_listener_sees_each_generation_it_is_part_of(kafka_settings) -> None:
    settings = kafka_settings()
    kafka_bootstrap = settings.kafka.bootstrap_servers
    topic, group = f"gen-{uuid.uuid4().hex[:8]}", f"gen-{uuid.uuid4().hex[:8]}"

    async def run() -> tuple[list[int | None], list[int | None]]:
        await ensure_topics(settings, [TopicSpec(topic, 2)])
        first, seen_first = await _member(kafka_bootstrap, topic, group)
        try:
            await _settle([first], [seen_first], [1])
            second, seen_second = await _member(kafka_bootstrap, topic, group)
            try:
                await _settle([first, second], [seen_first, seen_second], [2, 1])
            finally:
                await second.stop()  # leaves the group: one more generation
            await _settle([first], [seen_first], [3])
        finally:
            await first.stop()
        return seen_first.generations, seen_second.generations

    first, second = asyncio.run(run())
    assert all(isinstance(g, int) and g > 0 for g in first)
    # A member in every generation sees them one after another; the one that joined
    # second was in one of them, the first member's second.
    assert first == [first[0], first[0] + 1, first[0] + 2]
    assert second == [first[1]]
