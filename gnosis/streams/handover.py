"""Where a worker's newly assigned partitions start: the group's committed offsets.

aiokafka stops heartbeating from the moment a rebalance begins until the listener's
``on_partitions_assigned`` returns, so whatever that callback awaits counts against
``worker.session_timeout``; past it the broker puts the worker out of the group. The
worker therefore only pauses its partitions there and restores its tasks in the
background (see :meth:`gnosis.streams.runtime.Worker.on_assigned`). The look-ups here
are made for all partitions at once: one at a time they cost a fetch round each
(~0.5 s), minutes for the 256 partitions of 64 tasks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition


@dataclass(frozen=True, slots=True)
class Start:
    """Where one partition's consumer is, and where the group left it."""

    position: int
    """The consumer's position, once aiokafka has reset it from the committed offset."""
    committed: int
    """The group's committed offset, or the partition's first offset if none."""


async def starts(consumer: AIOKafkaConsumer, partitions: Iterable[TopicPartition]
                 ) -> dict[TopicPartition, Start]:
    """:class:`Start` of every partition in ``partitions`` (assigned to ``consumer``).

    The positions are awaited first: aiokafka resets them from the committed offsets in a
    task of its own, which must not overwrite a seek made after this returns.
    """
    tps = sorted(partitions)
    positions = await asyncio.gather(*(consumer.position(tp) for tp in tps))
    committed = await asyncio.gather(*(consumer.committed(tp) for tp in tps))
    unset = [tp for tp, off in zip(tps, committed, strict=True) if off is None]
    first = await consumer.beginning_offsets(unset) if unset else {}
    return {tp: Start(pos, first[tp] if off is None else off)
            for tp, pos, off in zip(tps, positions, committed, strict=True)}
