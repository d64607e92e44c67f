"""The tasks a worker owns and their hand-over at a rebalance.

A revocation commits everything and resets what the worker holds (it is re-delivered
from the committed offsets); an assignment keeps the tasks this worker still owns and
restores the state of the tasks it gains from their changelogs. A worker that missed a
generation (too slow to rejoin, or put out of the group) may have lost a task to another
worker meanwhile, so it restores every task, kept ones included.

aiokafka stops heartbeating from the moment a rebalance begins until the listener's
``on_partitions_assigned`` returns, so whatever that callback awaits counts against
``worker.session_timeout``; past it the broker puts the worker out of the group. The
callback therefore only lets lost tasks go and pauses the partitions; fencing the
previous owners (under exactly-once, one producer per task to start) and the restore
run in the background (:meth:`Assignment._take_over`), which resumes the partitions
when done. Its look-ups are made for all partitions at once: one at a time they cost a fetch
round each (~0.5 s), minutes for the 256 partitions of 64 tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from gnosis.sinks import metrics
from gnosis.streams.assignor import CopartitionedAssignor, group_generation
from gnosis.streams.changelog import restore_tables
from gnosis.streams.records import OFFSETS_KEY, decode_offsets
from gnosis.streams.task import PartitionTask

if TYPE_CHECKING:
    from gnosis.streams.runtime import Worker

log = logging.getLogger(__name__)


class Assignment(ConsumerRebalanceListener):
    """The worker's tasks, the consumer's rebalance listener, and the hand-over state."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.assignor = CopartitionedAssignor()
        self.tasks: dict[int, PartitionTask] = {}
        self.generation = 0
        """Hand-overs this worker went through (its own count, not the group's generation):
        a batch fetched across one is fetched again."""
        self.assigned_in: int | None = None
        """Group generation of the last assignment (see :meth:`_assigned`)."""
        self.expulsions = 0
        """Assignments that followed a generation this worker missed."""
        self.restart_at: dict[TopicPartition, int] = {}
        """Where each assigned partition started (see :meth:`refetch`)."""
        self.ready = False
        self.rebalancing = True
        self._handover: asyncio.Task[None] | None = None

    # aiokafka logs and swallows a listener's exception; a half-done hand-over must instead
    # stop the worker, which then starts afresh from what was committed.
    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        """Commit everything and forget what is held: the next owner gets it re-delivered."""
        await self.worker.guard(self._revoked())

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        """Take the tasks of ``assigned`` (see the module docstring)."""
        await self.worker.guard(self._assigned(assigned))

    def refetch(self, consumer: AIOKafkaConsumer, batch: dict[TopicPartition, list[Any]]
                ) -> None:
        """A rebalance came between fetching ``batch`` and handling it: fetch it again if it
        belongs to the new assignment (a batch from the old one is already behind the
        committed offsets the new assignment starts from)."""
        assigned = consumer.assignment()
        for tp, records in batch.items():
            if records and tp in assigned:
                consumer.seek(tp, min(records[0].offset,
                                      self.restart_at.get(tp, records[0].offset)))

    async def stop(self) -> None:
        """Cancel a hand-over in progress: its tasks are restored again when assigned."""
        if self._handover is not None:
            self._handover.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._handover
            self._handover = None

    async def _revoked(self) -> None:
        await self.stop()
        worker = self.worker
        async with worker.lock:
            log.info("rebalance: committing and releasing tasks %s", sorted(self.tasks))
            self.rebalancing = True
            self.generation += 1
            if self.tasks or worker.exactly_once:  # exactly-once: close what open() began
                await worker.commit_all()
            worker.forget()
            self.restart_at.clear()

    async def _assigned(self, assigned: set[TopicPartition]) -> None:
        """Let lost tasks go, pause the partitions and take the tasks over in the
        background (:meth:`_take_over`)."""
        worker, consumer, committer = self.worker, self.worker.consumer, self.worker.committer
        async with worker.lock:
            self.generation += 1
            tasks = {tp.partition for tp in assigned}
            # Kept state is current only if every generation since it was built had this
            # worker in it: in one it missed, another worker may have owned the task.
            generation = group_generation(consumer)
            continuous = (not committer.left_group and generation is not None
                          and self.assigned_in is not None
                          and generation == self.assigned_in + 1)
            if self.assigned_in is not None and generation is not None and not continuous:
                self.expulsions += 1
                metrics.GROUP_EXPULSIONS.inc()
                log.warning("group generation %s after %s, in which this worker owned tasks "
                            "%s: it missed a rebalance (or left the group), so it restores "
                            "every task from its changelog", generation, self.assigned_in,
                            sorted(self.tasks))
            self.assigned_in, committer.left_group = generation, False
            gone = [p for p in self.tasks if p not in tasks or not continuous]
            for p in gone:
                del self.tasks[p]
            await committer.close(gone)
            consumer.pause(*assigned)
            kept, self.tasks = self.tasks, {}
            self.assignor.owned = tasks
            self._handover = asyncio.create_task(worker.guard(
                self._take_over(assigned, kept, self.generation)))

    async def _take_over(self, assigned: set[TopicPartition], kept: dict[int, PartitionTask],
                         generation: int) -> None:
        """Fence the previous owners, restore the tasks of ``assigned`` not in ``kept``,
        seek every partition to its committed offset and resume it. A rebalance meanwhile
        cancels this."""
        worker = self.worker
        started = worker.clock()
        owned = sorted({tp.partition for tp in assigned})
        new = sorted(set(owned) - set(kept))
        # Fence the previous owners first: their open transactions are aborted, so the
        # changelogs read below end at what they committed.
        await worker.committer.open(owned)
        tables = await restore_tables(worker.options, worker.topics, new)
        tasks = {**kept, **{p: PartitionTask(p, worker.settings, worker.topics,
                                             worker.scorer.model_id, tables[p].snapshots,
                                             tables[p].journal, worker.tally) for p in new}}
        where = await _starts(worker.consumer, assigned)
        async with worker.lock:
            if generation != self.generation:
                return
            self.tasks = tasks
            for tp in assigned:
                # The position may already be past records a fetch in flight has taken (and
                # refetch may have moved it since it was read), so the start comes from the
                # committed offsets (the group's, or the task's own in its changelog,
                # whichever is further: see the committer), and every partition is sought to
                # it.
                stored = decode_offsets(tasks[tp.partition].snapshots.get(OFFSETS_KEY))
                start = max(where[tp], stored.get(tp, 0))
                worker.consumer.seek(tp, start)
                worker.committer.committed[tp] = start
                self.restart_at[tp] = worker.next_offset[tp] = start
                if tp.topic == worker.topics.news:
                    worker.news.start(tp.partition, start, tasks)
            self.generation += 1  # a fetch in flight is fetched again from these offsets
            worker.consumer.resume(*assigned)
            elapsed = worker.clock() - started
            metrics.HANDOVER_SECONDS.set(elapsed)
            log.info("tasks %s (new %s) restored in %.2f s; starting at %s", sorted(tasks),
                     new, elapsed, {f"{tp.topic}:{tp.partition}": off for tp, off in
                                    sorted(self.restart_at.items())})
            metrics.TICKERS_IN_STATE.set(sum(len(t.states) for t in tasks.values()))
            self.rebalancing = False
            self.ready = True
            # A full collection walks every tracked object (~75k after the imports alone,
            # ~100 ms here) and would stall bars at random; nothing here builds reference
            # cycles, so what exists after a hand-over is set aside for good.
            gc.collect()
            gc.freeze()
            # Re-announce every owned news partition's progress: a mark may be all that a
            # held bar elsewhere is waiting for.
            worker.news.mark(tasks, every=True)
            await worker.committer.flush()


async def _starts(consumer: AIOKafkaConsumer, partitions: set[TopicPartition]
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
