"""The one owner of producers, transactions and committed offsets.

Everything the worker writes goes through :meth:`Checkpoint.send`, tagged with the task
(partition number) whose input caused it; :meth:`Checkpoint.commit` makes the outputs
and the consumed offsets durable together.

``at_least_once``: one idempotent producer for all tasks; a commit waits until every
output sent so far is acknowledged, then writes the state (changelog) records that cover
them, waits for those, and commits the offsets through the consumer. A crash repeats the
work since the last commit; since state never gets ahead of acknowledged outputs, a
repeated bar that the restored state already holds had its signal delivered.

``exactly_once``: one transactional producer per task, ``transactional.id =
<app_id>-task-<p>`` (Kafka Streams' per-task model). A worker taking task ``p`` over
starts its producer, which fences any previous owner (a crashed or paused worker) and
aborts its open transaction, before reading offsets or state. A commit sends the task's
offsets to its transaction and commits it, so outputs, state records and offsets become
visible together or not at all. This replaces faust-streaming's transaction manager,
whose rebalance handling begins transactions for every assigned partition and stops
revoked producers without commit or abort (faust-streaming issues #323, #502, #517).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from gnosis.streams.task import Out

log = logging.getLogger(__name__)

_PRODUCER_OPTIONS = {"acks": "all", "enable_idempotence": True, "linger_ms": 1,
                     "max_batch_size": 512 * 1024, "max_request_size": 4 * 1024 * 1024}


class Checkpoint:
    """Producers, transactions and offset commits of one worker."""

    def __init__(self, options: dict[str, Any], group_id: str, exactly_once: bool,
                 consumer: AIOKafkaConsumer, state_topics: Iterable[str] = ()) -> None:
        self.options = options
        self.group_id = group_id
        self.exactly_once = exactly_once
        self.consumer = consumer
        self.state_topics = frozenset(state_topics)
        # At-least-once: state records wait until the outputs they cover are acknowledged
        # (records to different partitions may land in any order, and a state record that
        # lands without its signal would make a restart skip the bar, losing the signal).
        self._state: list[Out] = []
        self._shared: AIOKafkaProducer | None = None
        self._producers: dict[int, AIOKafkaProducer] = {}
        self._pending: list[asyncio.Future] = []
        self._dirty: set[int] = set()

    async def start(self) -> None:
        """Start the shared producer (at-least-once); task producers start in :meth:`open`."""
        if not self.exactly_once:
            self._shared = AIOKafkaProducer(**self.options, **_PRODUCER_OPTIONS)
            await self._shared.start()

    async def open(self, tasks: Iterable[int]) -> None:
        """Own ``tasks`` from now on: under exactly-once, fence their previous owners and
        begin a transaction for each task (new or kept)."""
        if not self.exactly_once:
            return
        new = [p for p in tasks if p not in self._producers]
        producers = {p: AIOKafkaProducer(**self.options, **_PRODUCER_OPTIONS,
                                         transactional_id=f"{self.group_id}-task-{p}")
                     for p in new}
        await asyncio.gather(*(producer.start() for producer in producers.values()))
        self._producers.update(producers)
        for p in tasks:
            await self._producers[p].begin_transaction()

    async def close(self, tasks: Iterable[int]) -> None:
        """Let ``tasks`` go (after :meth:`commit`): stop their producers."""
        gone = [self._producers.pop(p) for p in tasks if p in self._producers]
        await asyncio.gather(*(producer.stop() for producer in gone))

    async def send(self, task: int, records: Iterable[Out]) -> None:
        """Queue ``records`` caused by input of ``task``; they become durable on commit."""
        if not self.exactly_once and self.state_topics:
            records = list(records)
            self._state.extend(r for r in records if r[0] in self.state_topics)
            records = [r for r in records if r[0] not in self.state_topics]
        await self._send_now(task, records)

    async def _send_now(self, task: int, records: Iterable[Out]) -> None:
        producer = self._producers[task] if self.exactly_once else self._shared
        assert producer is not None
        self._pending.extend(await self._send_batches(producer, records))
        self._dirty.add(task)

    async def _send_batches(self, producer: AIOKafkaProducer,
                            records: Iterable[Out]) -> list[asyncio.Future]:
        """Send ``records`` as one record batch per destination; their acknowledgements."""
        acks: list[asyncio.Future] = []
        batches: dict[tuple[str, int], Any] = {}
        for topic, key, value, partition in records:
            if partition is None:
                acks.append(await producer.send(topic, value, key=key))
                continue
            batch = batches.get((topic, partition))
            if batch is None:
                batch = batches[(topic, partition)] = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:
                # Full: send it and start another for the same partition.
                acks.append(await self._submit(producer, batch, topic, partition))
                batch = batches[(topic, partition)] = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)
        for (topic, partition), batch in batches.items():
            acks.append(await self._submit(producer, batch, topic, partition))
        return acks

    async def _submit(self, producer: AIOKafkaProducer, batch: Any, topic: str,
                      partition: int) -> asyncio.Future:
        batch.close()
        return await producer.send_batch(batch, topic, partition=partition)

    async def commit(self, offsets: Mapping[int, Mapping[TopicPartition, int]],
                     *, reopen: bool = True) -> None:
        """Make outputs and ``offsets`` (per task: next offset to read) durable together.

        Under exactly-once each task's transaction is committed and, with ``reopen``, a new
        one begun; a task with nothing to commit keeps its open transaction.
        """
        if not self.exactly_once:
            await self.cut(offsets)
            return
        self._pending = []  # each transaction's commit waits for its own records
        await asyncio.gather(*(self._commit_task(p, offsets.get(p, {}), reopen)
                               for p in list(self._producers)))

    def cut(self, offsets: Mapping[int, Mapping[TopicPartition, int]]) -> Awaitable[None]:
        """At-least-once: the commit of everything sent so far with ``offsets``, to be
        awaited now or in the background while sending goes on (later sends belong to the
        next commit). Not for exactly-once, whose transactions cannot take sends meanwhile.
        """
        assert not self.exactly_once
        pending, self._pending = self._pending, []
        state, self._state = self._state, []
        merged = {tp: off for per_task in offsets.values() for tp, off in per_task.items()}
        self._dirty.clear()
        return self._settle(pending, state, merged)

    async def _settle(self, pending: list[asyncio.Future], state: list[Out],
                      offsets: dict[TopicPartition, int]) -> None:
        await asyncio.gather(*pending)
        assert self._shared is not None
        await asyncio.gather(*await self._send_batches(self._shared, state))
        if offsets:
            await self.consumer.commit(offsets)

    async def _commit_task(self, p: int, offsets: Mapping[TopicPartition, int],
                           reopen: bool) -> None:
        producer = self._producers[p]
        if offsets:
            await producer.send_offsets_to_transaction(dict(offsets), self.group_id)
        elif p not in self._dirty:
            if not reopen:
                await producer.abort_transaction()  # empty: nothing to lose
            return
        await producer.commit_transaction()
        self._dirty.discard(p)
        if reopen:
            await producer.begin_transaction()

    async def stop(self) -> None:
        """Stop every producer (call :meth:`commit` with ``reopen=False`` first)."""
        await self.close(list(self._producers))
        if self._shared is not None:
            await self._shared.stop()
            self._shared = None


def offsets_by_task(offsets: Mapping[TopicPartition, int]) -> dict[int, dict[TopicPartition, int]]:
    """Group ``{tp: offset}`` by partition number (the task)."""
    out: dict[int, dict[TopicPartition, int]] = defaultdict(dict)
    for tp, off in offsets.items():
        out[tp.partition][tp] = off
    return dict(out)
