"""The one route out: outputs, state records and consumed offsets, under both guarantees.

Everything the worker writes is staged here with :meth:`Committer.stage`, tagged with the
task (partition number) whose input caused it; :meth:`Committer.commit` sends what is
staged and makes it durable together with the consumed offsets. Nothing else in the
worker produces or commits. Sends go through an :class:`Outbox` per producer, off the
processing loop: aiokafka keeps one produce request in flight per broker connection, and
a batch for a partition whose previous batch has not left yet waits for it, which would
otherwise hold every bar behind the broker's round trip.

``at_least_once``: a few idempotent producers shared by all tasks (task ``p`` sends
through the same one always, so a partition's records keep their order; several
connections keep several produce requests in flight). A commit waits until every
output sent so far is acknowledged, then writes the state (changelog) records that cover
them, waits for those, and commits the offsets through the consumer; that wait runs in
the background while the loop goes on, one commit in flight at a time. A crash repeats
the work since the last commit; since state never gets ahead of acknowledged outputs, a
repeated bar that the restored state already holds had its signal delivered.

``exactly_once``: one transactional producer per task, ``transactional.id =
<app_id>-task-<p>`` (Kafka Streams' per-task model; docs/operations.md says why it is not
one producer per worker). A worker taking task ``p`` over starts its producer, which
fences any previous owner (a crashed or paused worker) and aborts its open transaction,
before reading offsets or state. A commit sends the task's offsets to its transaction and
commits it, so outputs, state records and offsets become visible together or not at all.
The offsets also go into the task's changelog in the same transaction: the group's
committed offsets may lag a committed transaction (KIP-447's ``require_stable`` is not in
aiokafka 0.14), the changelog read ``read_committed`` does not. This replaces
faust-streaming's transaction manager, whose rebalance handling begins transactions for
every assigned partition and stops revoked producers without commit or abort
(faust-streaming issues #323, #502, #517).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import CommitFailedError

from gnosis.streams.records import OFFSETS_KEY, encode_offsets
from gnosis.streams.task import Out

log = logging.getLogger(__name__)

_PRODUCER_OPTIONS = {"acks": "all", "enable_idempotence": True, "linger_ms": 1,
                     "max_batch_size": 512 * 1024, "max_request_size": 4 * 1024 * 1024}
_SHARED_PRODUCERS = 4  # at-least-once
_OUTBOX_DEPTH = 2  # sends in flight per producer before the loop waits (back-pressure)
# Exactly-once: records staged for the next transactions while a commit is in flight, past
# which a flush waits for that commit (back-pressure: memory stays bounded).
_MAX_STAGED = 20_000

Guard = Callable[[Awaitable[None]], Awaitable[None]]
"""Runs background work so that its failure stops the worker (``Worker.guard``)."""


class Committer:
    """Producers, transactions and offset commits of one worker."""

    def __init__(self, options: dict[str, Any], group_id: str, exactly_once: bool,
                 consumer: AIOKafkaConsumer, snapshots_topic: str, journal_topic: str,
                 guard: Guard, clock: Callable[[], float] = time.perf_counter) -> None:
        self.options = options
        self.group_id = group_id
        self.exactly_once = exactly_once
        self.consumer = consumer
        self.snapshots_topic = snapshots_topic
        self.state_topics = frozenset((snapshots_topic, journal_topic))
        self.guard = guard
        self.clock = clock
        self.committed: dict[TopicPartition, int] = {}
        """The offsets last committed (or started from), per consumed partition."""
        self.left_group = False
        """Whether a commit was refused because the group went on without this worker."""
        self.last_commit = clock()
        self._staged: dict[int, list[Out]] = {}
        # At-least-once: state records wait until the outputs they cover are acknowledged
        # (records to different partitions may land in any order, and a state record that
        # lands without its signal would make a restart skip the bar, losing the signal).
        self._state: list[Out] = []
        self._shared: list[Outbox] = []
        self._producers: dict[int, Outbox] = {}
        self._begun: set[int] = set()  # tasks whose producer has a transaction open
        self._pending: list[asyncio.Task[list[asyncio.Future]]] = []
        """At-least-once: sends whose acknowledgements the next commit waits for."""
        self._dirty: set[int] = set()  # exactly-once: tasks with records in their transaction
        self._background: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ producers

    async def start(self) -> None:
        """Start the shared producer (at-least-once); task producers start in :meth:`open`."""
        if not self.exactly_once:
            producers = [AIOKafkaProducer(**self.options, **_PRODUCER_OPTIONS)
                         for _ in range(_SHARED_PRODUCERS)]
            self._shared = [Outbox(producer) for producer in producers]
            await asyncio.gather(*(producer.start() for producer in producers))

    async def open(self, tasks: Iterable[int]) -> None:
        """Own ``tasks`` from now on: under exactly-once, fence their previous owners and
        begin a transaction for each task (new or kept). Cancelled (by a rebalance), it
        closes the producers it was starting."""
        if not self.exactly_once:
            return
        tasks = list(tasks)
        new = [p for p in tasks if p not in self._producers]
        self._producers.update({p: Outbox(AIOKafkaProducer(
            **self.options, **_PRODUCER_OPTIONS, transactional_id=f"{self.group_id}-task-{p}"))
            for p in new})
        try:
            await asyncio.gather(*(self._producers[p].producer.start() for p in new))
        except BaseException:  # cancelled by a rebalance, or refused: start afresh next time
            await asyncio.shield(self.close(new))
            raise
        await asyncio.gather(*(self._begin(p) for p in tasks if p not in self._begun))

    async def _begin(self, p: int) -> None:
        await self._producers[p].producer.begin_transaction()
        self._begun.add(p)

    async def close(self, tasks: Iterable[int]) -> None:
        """Let ``tasks`` go (after :meth:`commit`): stop their producers."""
        tasks = list(tasks)
        gone = [self._producers.pop(p) for p in tasks if p in self._producers]
        self._begun.difference_update(tasks)
        await asyncio.gather(*(outbox.stop() for outbox in gone))

    async def stop(self) -> None:
        """Stop every producer (call :meth:`commit` with ``reopen=False`` first)."""
        await self.close(list(self._producers))
        shared, self._shared = self._shared, []
        await asyncio.gather(*(outbox.stop() for outbox in shared))
        self._pending.clear()

    # ------------------------------------------------------------------ outputs

    def stage(self, task: int, records: Iterable[Out]) -> None:
        """Queue ``records`` caused by input of ``task``; :meth:`flush` sends them."""
        self._staged.setdefault(task, []).extend(records)

    async def flush(self, *, whole: bool = False) -> None:
        """Send what is staged (it becomes durable on :meth:`commit`).

        A task whose producer has :data:`_OUTBOX_DEPTH` sends in flight keeps its records
        staged for the next flush, and under exactly-once everything stays staged while a
        commit is in flight (it belongs to the next transactions): the loop goes on
        instead of waiting for the broker. Past :data:`_MAX_STAGED` records, or ``whole``,
        everything is sent, waiting for room (back-pressure: memory stays bounded).
        """
        force = whole or sum(map(len, self._staged.values())) >= _MAX_STAGED
        if self.exactly_once:
            if self._in_flight():
                if not force:
                    return
                await self.settled()
            staged, self._staged = self._staged, {}
            for task, records in staged.items():
                if records:
                    await self._send(task, records)
            return
        # At-least-once: one send per shared producer for the tasks it serves; state
        # records wait for the commit (see _settle).
        staged, self._staged = self._staged, {}
        outputs: list[list[Out]] = [[] for _ in self._shared]
        for task, records in staged.items():
            n = task % len(self._shared)
            if not force and self._shared[n].busy():
                self._staged[task] = records
                continue
            mine = outputs[n]
            for record in records:
                (self._state if record[0] in self.state_topics else mine).append(record)
        for outbox, records in zip(self._shared, outputs, strict=True):
            if records:
                await outbox.room()
                self._pending.append(outbox.put(records))

    async def _send(self, task: int, records: list[Out]) -> None:
        """Exactly-once: send into ``task``'s transaction (its commit waits for them)."""
        outbox = self._producers[task]
        await outbox.room()
        outbox.put(records)
        self._dirty.add(task)

    # ------------------------------------------------------------------ commits

    def due(self, interval: float) -> bool:
        """Whether ``interval`` seconds passed since the last commit and none is in flight."""
        return self.clock() - self.last_commit >= interval and not self._in_flight()

    def _in_flight(self) -> bool:
        return self._background is not None and not self._background.done()

    async def commit(self, offsets: Mapping[TopicPartition, int],
                     tables: Mapping[int, MutableMapping[bytes, bytes]], *,
                     reopen: bool = True) -> None:
        """Send what is staged and make it durable with ``offsets`` (next offset to read
        per consumed partition). ``tables``: each task's snapshot table, where exactly-once
        keeps its offsets too.

        The commit completes in the background, while processing goes on: at-least-once
        sends on meanwhile, exactly-once stages what comes meanwhile for its next
        transactions. Without ``reopen`` it is whole when this returns, a commit in flight
        before it included, and no transaction is left open.
        """
        if not reopen:
            await self.settled()
        await self.flush(whole=True)  # no offset may pass an output still staged
        changed = {tp: off for tp, off in offsets.items() if self.committed.get(tp) != off}
        if log.isEnabledFor(logging.DEBUG):  # off the commit path unless asked for
            log.debug("commit %s", {f"{tp.topic}:{tp.partition}": o
                                    for tp, o in changed.items()})
        if self.exactly_once:
            for p, per_task in offsets_by_task(offsets).items():
                if any(tp in changed for tp in per_task):
                    value = encode_offsets(per_task)
                    tables[p][OFFSETS_KEY] = value
                    await self._send(p, [(self.snapshots_topic, OFFSETS_KEY, value, p)])
            commit = self._commit_transactions(offsets_by_task(changed), reopen)
        else:
            commit = self._cut(changed)
        if reopen:
            self._background = asyncio.create_task(self.guard(commit))
        else:
            await commit
        self.committed.update(changed)
        self.last_commit = self.clock()

    async def settled(self) -> None:
        """Wait for a background commit in flight (before one that must be whole)."""
        if self._background is not None:
            task, self._background = self._background, None
            await task

    def cancel(self) -> None:
        """Give up a background commit (after a failure, what is open is left to abort)."""
        if self._background is not None:
            self._background.cancel()

    async def _commit_transactions(self, offsets: Mapping[int, Mapping[TopicPartition, int]],
                                   reopen: bool) -> None:
        """Commit each task's transaction and, with ``reopen``, begin a new one; a task
        with nothing to commit keeps its open transaction."""
        await asyncio.gather(*(self._commit_task(p, offsets.get(p, {}), reopen)
                               for p in list(self._begun)))

    async def _commit_task(self, p: int, offsets: Mapping[TopicPartition, int],
                           reopen: bool) -> None:
        outbox = self._producers[p]
        await outbox.sent()  # everything put into this transaction has reached the producer
        producer = outbox.producer
        if offsets:
            await producer.send_offsets_to_transaction(dict(offsets), self.group_id)
        elif p not in self._dirty:
            if not reopen:
                await producer.abort_transaction()  # empty: nothing to lose
                self._begun.discard(p)
            return
        await producer.commit_transaction()
        self._dirty.discard(p)
        self._begun.discard(p)
        if reopen:
            await self._begin(p)

    def _cut(self, offsets: dict[TopicPartition, int]) -> Awaitable[None]:
        """At-least-once: the commit of everything sent so far with ``offsets``; later
        sends belong to the next commit, even while this one is awaited."""
        pending, self._pending = self._pending, []
        state, self._state = self._state, []
        return self._settle(pending, state, offsets)

    async def _settle(self, pending: list[asyncio.Future], state: list[Out],
                      offsets: dict[TopicPartition, int]) -> None:
        """Acknowledge ``pending``, then write ``state``, then commit ``offsets``. The
        group refuses the commit if it went on without this worker (paused for longer
        than ``worker.session_timeout``): then the tasks' state may be ahead of what is
        committed, and the next assignment restores them all."""
        acks = [ack for sent in await asyncio.gather(*pending) for ack in sent]
        await asyncio.gather(*acks)
        by_producer: list[list[Out]] = [[] for _ in self._shared]
        for record in state:  # a state record's partition is its task's
            by_producer[(record[3] or 0) % len(self._shared)].append(record)
        state_acks: list[asyncio.Future] = []
        for outbox, records in zip(self._shared, by_producer, strict=True):
            state_acks += await _send_batches(outbox.producer, records)
        await asyncio.gather(*state_acks)
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
        except CommitFailedError:
            log.warning("offset commit refused: the group went on without this worker; it "
                        "rejoins and restores its tasks from their changelogs")
            self.left_group = True


class Outbox:
    """One producer's sends, handed to it in order by tasks of their own, so that the
    processing loop goes on while a send waits for the producer; callers keep at most
    :data:`_OUTBOX_DEPTH` in flight (:meth:`busy`, :meth:`room`)."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer
        self._sends: deque[asyncio.Task[list[asyncio.Future]]] = deque()

    def busy(self) -> bool:
        """Whether :data:`_OUTBOX_DEPTH` sends are in flight (a put would have to wait)."""
        while self._sends and self._sends[0].done():
            self._sends.popleft().result()  # a failure surfaces here at the latest
        return len(self._sends) >= _OUTBOX_DEPTH

    async def room(self) -> None:
        """Wait until a put need not wait (back-pressure)."""
        while self.busy():
            await asyncio.wait((self._sends[0],))

    def put(self, records: list[Out]) -> asyncio.Task[list[asyncio.Future]]:
        """Send ``records`` after everything put before; the task returns their
        acknowledgements once they are with the producer (it fails if an earlier send
        failed: a failed send fails the worker, and nothing after it may go)."""
        previous = self._sends[-1] if self._sends else None
        task = asyncio.create_task(self._send(previous, records))
        self._sends.append(task)
        return task

    async def _send(self, previous: asyncio.Task[Any] | None, records: list[Out]
                    ) -> list[asyncio.Future]:
        if previous is not None:
            await previous
        return await _send_batches(self.producer, records)

    async def sent(self) -> None:
        """Wait until everything put so far is with the producer."""
        if self._sends:
            await self._sends[-1]

    async def stop(self) -> None:
        """Stop the producer; sends not yet with it are dropped (after a failure)."""
        for task in self._sends:
            task.cancel()
        await asyncio.gather(*self._sends, return_exceptions=True)
        self._sends.clear()
        await self.producer.stop()


async def _send_batches(producer: AIOKafkaProducer, records: Iterable[Out]
                        ) -> list[asyncio.Future]:
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
            acks.append(await _submit(producer, batch, topic, partition))
            batch = batches[(topic, partition)] = producer.create_batch()
            batch.append(key=key, value=value, timestamp=None)
    for (topic, partition), batch in batches.items():
        acks.append(await _submit(producer, batch, topic, partition))
    return acks


async def _submit(producer: AIOKafkaProducer, batch: Any, topic: str,
                  partition: int) -> asyncio.Future:
    batch.close()
    return await producer.send_batch(batch, topic, partition=partition)


def offsets_by_task(offsets: Mapping[TopicPartition, int]) -> dict[int, dict[TopicPartition, int]]:
    """Group ``{tp: offset}`` by partition number (the task)."""
    out: dict[int, dict[TopicPartition, int]] = defaultdict(dict)
    for tp, off in offsets.items():
        out[tp.partition][tp] = off
    return dict(out)
