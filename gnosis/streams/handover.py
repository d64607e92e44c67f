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

from aiokafka import AIOKafkaConsumer, TopicPartition


async def starts(consumer: AIOKafkaConsumer, partitions: Iterable[TopicPartition]
                 ) -> dict[TopicPartition, int]:
    """The group's committed offset of every partition in ``partitions`` (assigned to
    ``consumer``), or the partition's first offset if none.

    The positions are awaited first: aiokafka resets them from the committed offsets in a
    task of its own, which must not overwrite a seek made after this returns.
    """
    tps = sorted(partitions)
    await asyncio.gather(*(consumer.position(tp) for tp in tps))
    committed = await asyncio.gather(*(consumer.committed(tp) for tp in tps))
    unset = [tp for tp, off in zip(tps, committed, strict=True) if off is None]
    first = await consumer.beginning_offsets(unset) if unset else {}
    return {tp: first[tp] if off is None else off
            for tp, off in zip(tps, committed, strict=True)}
