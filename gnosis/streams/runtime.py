"""The live worker's loop: fetch, process, checkpoint, as one consumer of the group.

One consumer in the group ``worker.app_id`` reads ``bars``, ``news``, ``news-by-ticker``
and the control topic; the co-partitioned assignor gives it whole partition numbers
(tasks). Per fetched batch, under one lock:

1. **take**: bars are validated and queued in the :class:`~gnosis.streams.gate.ReleaseGate`
   (invalid ones too, to be deadlettered in offset order); news goes to the
   :class:`~gnosis.streams.rekey.Rekeyer`; re-keyed headlines update their tickers at
   once, progress marks advance the gate; control commands apply to their tickers;
2. **process**: due news is scored and re-keyed, marks go out, and the bars the gate
   releases go through their task's engines;
3. **checkpoint**: what that produced is staged in the
   :class:`~gnosis.streams.committer.Committer`, which commits it with the consumed
   offsets every ``worker.commit_interval``.

Beside the loop, one task answers the gate's barrier requests (where each news partition's
records known by the bars end), and one does the time-driven work (news waiting for batch
mates, commits, lag). What a rebalance does is the :class:`~gnosis.streams.assignment.Assignment`'s.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from gnosis.config import Settings, duration_ns
from gnosis.events import Bar, InvalidEvent
from gnosis.security import client_options
from gnosis.sinks import metrics
from gnosis.streams.assignment import Assignment
from gnosis.streams.committer import Committer
from gnosis.streams.gate import ReleaseGate, barrier_offsets
from gnosis.streams.records import (
    MARK_KEY,
    WarmCommand,
    decode_command,
    decode_rekeyed,
    record_known,
)
from gnosis.streams.rekey import Rekeyer
from gnosis.streams.task import PartitionTask, parse_bar
from gnosis.streams.topics import topic_names

log = logging.getLogger(__name__)

_MAX_HELD = 50_000  # held bars per partition before its fetching pauses
_MAX_AHEAD_NS = 1_000_000_000  # a knowledge time further ahead of the clock is not waited for
_YIELD_EVERY = 1_000  # bars between turns of the event loop (~0.1 s of work)
_RELEASE_PER_STEP = 4 * _YIELD_EVERY  # bars per step: a backlog goes out in bounded steps


@dataclass(slots=True)
class _Bar:
    offset: int
    key: bytes | None
    value: bytes | None
    bar: Bar | InvalidEvent
    known: int
    """Knowledge time (epoch ns): the record's Kafka timestamp."""
    received: float


class Worker:
    """A live worker: call :meth:`run` and set :attr:`stopping` to stop it gracefully."""

    def __init__(self, settings: Settings, scorer: Any = None,
                 clock: Callable[[], float] = time.perf_counter,
                 wall_clock: Callable[[], int] = time.time_ns) -> None:
        """``clock`` times waits and latencies; ``wall_clock`` (epoch ns) is what input
        timestamps are checked against (``worker.max_future``)."""
        if scorer is None:
            from gnosis.models.sentiment import load_scorer

            scorer = load_scorer(settings.sentiment)
        w = settings.worker
        self.settings = settings
        self.scorer = scorer
        self.clock = clock
        self.wall_clock = wall_clock
        self.max_future_ns = duration_ns(w.max_future)
        self.topics = topic_names(settings)
        self.options = client_options(settings)
        self.exactly_once = w.processing_guarantee == "exactly_once"
        self.stall_after = w.max_news_wait if w.max_news_wait > 0 else None
        self.lock = asyncio.Lock()
        self.stopping = asyncio.Event()
        self.failure: BaseException | None = None
        self.skew_ns = int(w.broker_clock_skew * 1e9)
        self.gate = ReleaseGate(self.skew_ns)
        self.assignment = Assignment(self)
        self.consumer = AIOKafkaConsumer(
            **self.options, group_id=w.app_id, client_id=f"{w.app_id}-worker",
            enable_auto_commit=False, auto_offset_reset="earliest",
            isolation_level="read_committed",
            partition_assignment_strategy=(self.assignment.assignor,),
            session_timeout_ms=int(w.session_timeout * 1000),
            rebalance_timeout_ms=int(w.rebalance_timeout * 1000),
            heartbeat_interval_ms=max(100, int(w.session_timeout * 1000) // 4),
            max_partition_fetch_bytes=4 * 1024 * 1024)
        # Barriers are read uncommitted: a headline in a news producer's open transaction
        # is known from its append time, as in the recorded topics (see the gate).
        self.offsets = AIOKafkaConsumer(**self.options, client_id=f"{w.app_id}-barriers",
                                        enable_auto_commit=False,
                                        isolation_level="read_uncommitted")
        self.committer = Committer(self.options, w.app_id, self.exactly_once, self.consumer,
                                   self.topics.snapshots_changelog,
                                   self.topics.journal_changelog, self.guard, clock)
        self.news = Rekeyer(settings, self.topics, scorer, self.committer, self.gate,
                            self.lock, self._advance, self.guard, clock)
        self.next_offset: dict[TopicPartition, int] = {}
        """Next offset to take per consumed partition."""
        self.paused: set[TopicPartition] = set()
        """Bars partitions paused because too many of their bars are held."""
        self.barrier_wanted = asyncio.Event()
        self.warned_ahead_at = -math.inf
        self.tally = metrics.BarTally()

    @property
    def tasks(self) -> dict[int, PartitionTask]:
        """The tasks this worker owns (see :class:`~gnosis.streams.assignment.Assignment`)."""
        return self.assignment.tasks

    # ------------------------------------------------------------------ the loop

    async def run(self) -> None:
        """Consume until :attr:`stopping` is set, then commit and leave the group."""
        await self.committer.start()
        await self.offsets.start()
        self.consumer.subscribe([self.topics.bars, self.topics.news, self.topics.news_by_ticker,
                                 self.topics.control], listener=self.assignment)
        await self.consumer.start()
        helpers = [asyncio.create_task(self.guard(self._barriers())),
                   asyncio.create_task(self.guard(self._ticker()))]
        fetch: asyncio.Task[Any] | None = None
        stop = asyncio.create_task(self.stopping.wait())
        try:
            while not self.stopping.is_set():
                if fetch is None:
                    generation = self.assignment.generation
                    fetch = asyncio.create_task(self._fetch())
                await asyncio.wait({fetch, stop}, return_when=asyncio.FIRST_COMPLETED)
                if not fetch.done():
                    break
                (batch, positions), fetch = fetch.result(), None
                async with self.lock:
                    if self.failure is not None:  # a background part failed meanwhile
                        break
                    if generation != self.assignment.generation:
                        self.assignment.refetch(self.consumer, batch)
                    else:
                        await self._take(batch, positions)
                        await self._advance()
        except Exception as exc:  # nothing of the failed batch may be committed
            self.failure = exc
        finally:
            if fetch is not None:
                fetch.cancel()
            stop.cancel()
            for helper in helpers:
                helper.cancel()
            await self._shutdown()
        if self.failure is not None:
            raise self.failure

    async def guard(self, work: Awaitable[None]) -> None:
        """Run a background part of the worker; if it fails, the worker stops (and is
        restarted by its supervisor) rather than going on without it."""
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("worker stopping: a background task failed")
            self.failure = exc
            self.stopping.set()

    async def _fetch(self) -> tuple[dict[TopicPartition, list[Any]], dict[int, int]]:
        """A batch of records, and the news partitions' positions right after it.

        The position also steps over transaction markers that follow the last record,
        which the broker's end offsets count. It is read in this task, right after the
        fetch, so that it covers exactly the records handed over here.
        """
        batch = await self.consumer.getmany(timeout_ms=200, max_records=20_000)
        positions = {}
        for tp in self.consumer.assignment():
            if tp.topic == self.topics.news:
                positions[tp.partition] = await self.consumer.position(tp)
        return batch, positions

    async def _shutdown(self) -> None:
        await self.assignment.stop()
        async with self.lock:
            if self.failure is None:  # after a failure, what is open is left to be aborted
                try:
                    await self.commit_all()
                except Exception:
                    log.exception("final commit failed; the next owner resumes from the "
                                  "last one")
            else:
                self.committer.cancel()
            self.tasks.clear()
        await self.close()
        self.news.close()

    async def close(self) -> None:
        """Close the Kafka clients; those closed already, or never started (a start
        refused half-way), are closed at no cost."""
        for close in (self.consumer.stop, self.committer.stop, self.offsets.stop):
            try:
                await close()
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():  # this worker is cancelled
                    raise
                # aiokafka 0.14 re-raises the cancellation of its own fetch task when it is
                # closed after a lost connection; the worker is closing anyway.
                log.debug("closing a Kafka client after a failure", exc_info=True)

    # ------------------------------------------------------------------ 1. take

    async def _take(self, batch: dict[TopicPartition, list[Any]],
                    positions: dict[int, int]) -> None:
        now = self.clock()
        edge = {"now_ns": self.wall_clock(), "max_future_ns": self.max_future_ns}
        self.news.positions(positions, self.tasks)
        for tp, records in batch.items():
            task = self.tasks.get(tp.partition)
            expected = self.next_offset.get(tp, 0)
            if records and records[0].offset < expected:
                # Delivered again (the fetcher can hand out a batch twice around a seek):
                # what was taken once is never taken twice.
                records = [r for r in records if r.offset >= expected]
            if task is None or not records:
                continue
            metrics.child(metrics.RECORDS_IN, tp.topic).inc(len(records))
            self.next_offset[tp] = records[-1].offset + 1
            if tp.topic == self.topics.bars:
                await self._take_bars(tp, task, records, now, edge)
            elif tp.topic == self.topics.news:
                self.news.take(task, records, now, **edge)
            elif tp.topic == self.topics.news_by_ticker:
                self._take_rekeyed(task, records)
            else:
                self._take_control(task, records)

    async def _take_bars(self, tp: TopicPartition, task: PartitionTask, records: list[Any],
                         now: float, edge: dict[str, int]) -> None:
        for i, r in enumerate(records, 1):
            if i % (4 * _YIELD_EVERY) == 0:  # validation is cheaper than processing
                await asyncio.sleep(0)
            try:
                bar: Bar | InvalidEvent = parse_bar(r.key, r.value, tp.partition,
                                                    task.partitions, **edge)
            except InvalidEvent as exc:
                bar = exc
            known = record_known(r.timestamp)
            self.gate.hold(tp.partition, _Bar(r.offset, r.key, r.value, bar, known, now),
                           now, known=known, gated=isinstance(bar, Bar))
        if self.gate.held(tp.partition) > _MAX_HELD:
            self.consumer.pause(tp)
            self.paused.add(tp)
        self.barrier_wanted.set()

    def _take_rekeyed(self, task: PartitionTask, records: list[Any]) -> None:
        marks = metrics.child(metrics.RECORD_OUTCOMES, self.topics.news_by_ticker, "mark")
        for r in records:
            rec = decode_rekeyed(r.key, r.value)
            if r.key == MARK_KEY:
                q, n = rec  # type: ignore[misc]
                self.gate.mark(task.p, q, n)
                marks.inc()
            else:
                self.committer.stage(task.p, task.on_scored_headline(rec))  # type: ignore[arg-type]

    def _take_control(self, task: PartitionTask, records: list[Any]) -> None:
        for r in records:
            try:
                command = decode_command(r.value)
            except InvalidEvent as exc:
                self.committer.stage(task.p, [task.deadletter(self.topics.control, r.key,
                                                              r.value, r.offset, exc)])
                continue
            if isinstance(command, WarmCommand):
                self.committer.stage(task.p, task.warm(command))
                continue
            self.committer.stage(task.p, task.reset(command.ticker, command.to_ts))
            metrics.RECORD_OUTCOMES.labels(topic=self.topics.control, outcome="applied").inc()

    # ------------------------------------------------------------------ 2. process

    async def _advance(self) -> None:
        """Score due news, send marks, release bars, send outputs, commit when due."""
        now = self.clock()
        await self.news.step(now, self.tasks)
        released = self.gate.release(now, self.stall_after, limit=_RELEASE_PER_STEP)
        for i, (p, held) in enumerate(released, 1):
            if i % _YIELD_EVERY == 0:  # let aiokafka heartbeat during a long release
                await asyncio.sleep(0)
            task = self.tasks[p]
            if isinstance(held.bar, Bar):
                out = task.on_bar(held.bar, held.offset, held.known, held.received)
            else:
                out = [task.deadletter(self.topics.bars, held.key, held.value, held.offset,
                                       held.bar)]
            self.committer.stage(p, out)
        self.tally.flush(self.topics.bars)
        self._resume_paused()
        metrics.child(metrics.RECORDS_WAITING, self.topics.bars).set(self.gate.held())
        metrics.child(metrics.RECORDS_WAITING, self.topics.news).set(self.news.waiting)
        await self.committer.flush()
        if self.committer.due(self.settings.worker.commit_interval):
            await self._commit()

    def _resume_paused(self) -> None:
        for tp in list(self.paused):
            if self.gate.held(tp.partition) < _MAX_HELD // 2:
                self.consumer.resume(tp)
                self.paused.discard(tp)

    # ------------------------------------------------------------------ 3. checkpoint

    def _offsets(self) -> dict[TopicPartition, int]:
        """Next offset to read per consumed partition: nothing held or pending is passed."""
        out: dict[TopicPartition, int] = {}
        for p in self.tasks:
            bars = TopicPartition(self.topics.bars, p)
            head = self.gate.first_held(p)
            off = head.offset if head is not None else self.next_offset.get(bars)
            if off is not None:
                out[bars] = off
            news = self.news.floor(p)
            if news is not None:
                out[TopicPartition(self.topics.news, p)] = news
            for topic in (self.topics.news_by_ticker, self.topics.control):
                applied = self.next_offset.get(TopicPartition(topic, p))
                if applied is not None:
                    out[TopicPartition(topic, p)] = applied
        return out

    async def _commit(self, *, reopen: bool = True) -> None:
        await self.committer.commit(self._offsets(),
                                    {p: task.snapshots for p, task in self.tasks.items()},
                                    reopen=reopen)

    async def commit_all(self) -> None:
        """Finish a model call in flight and commit everything, leaving no transaction
        open (before a hand-over or a stop; the caller holds :attr:`lock`)."""
        await self.news.drain()
        self.news.apply_scored(self.tasks)
        await self._commit(reopen=False)

    def forget(self) -> None:
        """Drop what is held, pending and counted (a revocation: it is fetched again)."""
        self.gate = ReleaseGate(self.skew_ns)
        self.news.reset(self.gate)
        self.next_offset.clear()
        self.committer.committed.clear()
        self.paused.clear()

    # ------------------------------------------------------------------ beside the loop

    async def _barriers(self) -> None:
        """Answer the gate's barrier requests with where each news partition's records
        known by the bars end (:func:`~gnosis.streams.gate.barrier_offsets`), each once
        the wall clock is past its bars' knowledge time plus the skew (see the gate), in
        a task of its own. Several wait for their time at once, so that a live bar waits
        the skew and one lookup; one that is due already waits until none is in flight, so
        that a backlog drains in epochs as large as one request at a time made them."""
        requests: set[asyncio.Task[None]] = set()
        try:
            while True:
                await self.barrier_wanted.wait()
                self.barrier_wanted.clear()
                async with self.lock:
                    due = self.gate.barrier_due()
                    if due is None or (self.gate.asking() and due <= self.wall_clock()):
                        continue  # the request in flight sets barrier_wanted as it ends
                    # Closed now: bars arriving while this waits belong to the next epoch.
                    gate = self.gate
                    epoch = gate.ask_barrier()
                request = asyncio.create_task(self.guard(self._barrier(gate, epoch, due)))
                requests.add(request)
                request.add_done_callback(requests.discard)
        finally:
            for request in requests:
                request.cancel()

    async def _barrier(self, gate: ReleaseGate, epoch: int, due: int) -> None:
        """Ask the broker for ``epoch``'s barrier once ``due``, until it answers, and give
        it to ``gate`` unless a revocation has replaced that gate meanwhile."""
        early = due - self.wall_clock()
        if early > _MAX_AHEAD_NS:
            # Only a producer's clock can put a knowledge time this far ahead (a
            # CreateTime topic): waiting for it would stall every partition.
            self._warn_ahead(early)
        elif early > 0:
            await asyncio.sleep(early / 1e9)
        after_ms = (due - self.skew_ns) // 1_000_000 + 1  # first stamp after the bars
        news = [TopicPartition(self.topics.news, q)
                for q in range(self.settings.kafka.partitions)]
        while gate is self.gate:
            try:
                ends, later = await asyncio.gather(
                    self.offsets.end_offsets(news),
                    self.offsets.offsets_for_times(dict.fromkeys(news, after_ms)))
                break
            except Exception:  # e.g. during a rebalance; ask again shortly (later answers
                # are as exact: lookups by time are, and end offsets only grow)
                log.debug("barrier offsets request failed", exc_info=True)
                await asyncio.sleep(0.05)
        else:
            return
        barrier = barrier_offsets(
            {tp.partition: end for tp, end in ends.items()},
            {tp.partition: None if found is None else found.offset
             for tp, found in later.items()})
        async with self.lock:
            if gate is self.gate:
                gate.barrier(epoch, barrier)
                await self._advance()
        self.barrier_wanted.set()  # a slot is free, and the epoch open now may be due

    def _warn_ahead(self, early_ns: int) -> None:
        now = self.clock()
        if now - self.warned_ahead_at >= 60.0:
            self.warned_ahead_at = now
            log.warning("a bar's knowledge time is %.1f s ahead of this worker's clock: its "
                        "topic uses CreateTime and a producer's clock is ahead (use "
                        "LogAppendTime, see docs/operations.md); asking for its barrier now",
                        early_ns / 1e9)

    async def _ticker(self) -> None:
        """Time-driven work: news waiting for its batch, the stall guard, commits, lag."""
        tick = min(0.05, self.settings.worker.commit_interval / 2)
        while True:
            # What a step left (it scores and releases a bounded share) goes on at once.
            busy = bool(self.tasks) and (self.news.due(self.clock()) or self.gate.unchecked())
            await asyncio.sleep(0 if busy else tick)
            async with self.lock:
                if self.tasks:
                    await self._advance()
                self._update_lag()
                self.rejecting()
                metrics.TICKERS_IN_STATE.set(sum(len(t.states) for t in self.tasks.values()))

    def _update_lag(self) -> None:
        for tp in self.consumer.assignment():
            position = self.next_offset.get(tp)
            high = self.consumer.highwater(tp)
            if position is not None and high is not None:
                metrics.child(metrics.CONSUMER_LAG, tp.topic, str(tp.partition)).set(
                    max(high - position, 0))

    def rejecting(self) -> list[str]:
        """Tickers whose recent bars are all rejected (see :data:`task.REJECTED_RUN`)."""
        tickers = sorted(t for task in self.tasks.values() for t in task.rejecting())
        metrics.TICKERS_REJECTING.set(len(tickers))
        return tickers

    def health(self) -> tuple[dict[str, Any], bool]:
        """(JSON body, ready) for ``/health``: ``degraded`` (still 200) names tickers whose
        bars are all being rejected."""
        assigned = sorted(f"{tp.topic}:{tp.partition}" for tp in self.consumer.assignment())
        model_id = getattr(self.scorer, "model_id", "lexicon")
        hand = self.assignment
        ready = hand.ready and not hand.rebalancing and bool(assigned)
        oldest = self.gate.oldest_since()
        rejecting = self.rejecting()
        status = "starting" if not ready else "degraded" if rejecting else "ok"
        return {
            "status": status,
            "rejecting_tickers": rejecting[:50],
            "rejecting_tickers_count": len(rejecting),
            "assigned_partitions": assigned,
            "rebalancing": hand.rebalancing,
            "group_expulsions": hand.expulsions,
            "held_bars": self.gate.held(),
            "oldest_held_seconds": 0.0 if oldest is None else round(self.clock() - oldest, 3),
            "processing_guarantee": self.settings.worker.processing_guarantee,
            "sentiment_model": model_id,
            "sentiment_provider": getattr(self.scorer, "provider", "cpu"),
            "sentiment_note": "lexicon fallback" if model_id.startswith("lexicon") else "onnx",
        }, ready
