"""The live worker's event loop: Kafka in, the partition tasks, Kafka out.

One consumer in the group ``worker.app_id`` reads ``bars``, ``news`` and the re-keyed
topic; the co-partitioned assignor gives it whole partition numbers (tasks). Per fetched
batch, under one lock:

* **bars** are validated and queued in the :class:`~gnosis.streams.gate.ReleaseGate`;
  invalid ones queue too, to be deadlettered in offset order;
* **news** waits in line per partition to be scored in micro-batches (a model runs in a
  thread while the loop goes on); each scored headline is re-keyed to the partitions of
  the tickers it names, followed by a progress mark to every partition;
* **re-keyed records** update the tickers' state at once, and marks advance the gate; a
  headline whose news partition and ticker partition this worker both owns is applied
  and marked directly, without waiting for its re-keyed record to come back;
* bars the gate releases go through their task's engines; signals, deadletters and state
  records go to the :class:`~gnosis.streams.checkpoint.Checkpoint`, which commits them
  with the consumed offsets every ``worker.commit_interval``.

A background task asks the broker for the news end offsets whenever bars wait for a
barrier. A rebalance commits everything, forgets what is held (it is re-delivered from
the committed offsets), keeps the tasks this worker still owns, and restores the state
of the tasks it gains from their changelogs. A worker that missed a generation (too slow
to rejoin, or put out of the group) may have lost a task to another worker meanwhile, so
it restores every task, kept ones included.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError

from gnosis.config import Settings, duration_ns
from gnosis.events import Bar, InvalidEvent, NewsItem
from gnosis.sinks import metrics
from gnosis.streams.assignor import CopartitionedAssignor, group_generation
from gnosis.streams.checkpoint import Checkpoint, offsets_by_task
from gnosis.streams.gate import ReleaseGate
from gnosis.streams.handover import starts
from gnosis.streams.records import (
    MARK_KEY,
    OFFSETS_KEY,
    ScoredHeadline,
    WarmCommand,
    decode_command,
    decode_offsets,
    decode_rekeyed,
    encode_offsets,
    record_known,
    scored_headlines,
    ticker_partition,
)
from gnosis.streams.store import restore_tables
from gnosis.streams.task import Out, PartitionTask, decode_news, parse_bar
from gnosis.streams.topics import client_options, topic_names

log = logging.getLogger(__name__)

_MAX_HELD = 50_000  # held bars per partition before its fetching pauses
_MAX_AHEAD_NS = 1_000_000_000  # a knowledge time further ahead of the clock is not waited for
_YIELD_EVERY = 1_000  # released bars between turns of the event loop (~0.1 s of work)


@dataclass(slots=True)
class _Bar:
    offset: int
    key: bytes | None
    value: bytes | None
    bar: Bar | InvalidEvent
    known: int
    """Knowledge time (epoch ns): the record's Kafka timestamp."""
    received: float


@dataclass(slots=True)
class _News:
    q: int
    offset: int
    key: bytes | None
    value: bytes | None
    item: NewsItem | InvalidEvent
    known: int
    targets: frozenset[int]
    """Partitions its re-keyed records go to (none for an invalid headline)."""


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
        self.settings = settings
        self.scorer = scorer
        self.clock = clock
        self.wall_clock = wall_clock
        self.max_future_ns = duration_ns(settings.worker.max_future)
        self.topics = topic_names(settings)
        self.options = client_options(settings)
        w = settings.worker
        self.exactly_once = w.processing_guarantee == "exactly_once"
        self.stall_after = w.max_news_wait if w.max_news_wait > 0 else None
        self.news_batch = max(1, settings.sentiment.batch_size)
        self.news_wait = max(0.0, settings.sentiment.max_wait_ms) / 1000.0
        self.lock = asyncio.Lock()
        self.stopping = asyncio.Event()
        self.failure: BaseException | None = None
        self.skew_ns = int(w.broker_clock_skew * 1e9)
        self.gate = ReleaseGate(self.skew_ns)
        self.tasks: dict[int, PartitionTask] = {}
        self.generation = 0
        """Hand-overs this worker went through (its own count, not the group's generation):
        a batch fetched across one is fetched again."""
        self.assigned_in: int | None = None
        """Group generation of the last assignment (see :meth:`on_assigned`)."""
        self.left_group = False
        """Whether a commit was refused because the group went on without this worker."""
        self.expulsions = 0
        """Assignments that followed a generation this worker missed (see on_assigned)."""
        self.handover: asyncio.Task[None] | None = None
        """The restore of the last assignment's tasks, while it runs (see _take_over)."""
        self.ready = False
        self.rebalancing = True
        self.assignor = CopartitionedAssignor()
        self.consumer = AIOKafkaConsumer(
            **self.options, group_id=w.app_id, client_id=f"{w.app_id}-worker",
            enable_auto_commit=False, auto_offset_reset="earliest",
            isolation_level="read_committed",
            partition_assignment_strategy=(self.assignor,),
            session_timeout_ms=int(w.session_timeout * 1000),
            rebalance_timeout_ms=int(w.rebalance_timeout * 1000),
            heartbeat_interval_ms=max(100, int(w.session_timeout * 1000) // 4),
            max_partition_fetch_bytes=4 * 1024 * 1024)
        self.checkpoint = Checkpoint(self.options, w.app_id, self.exactly_once, self.consumer,
                                     (self.topics.snapshots_changelog,
                                      self.topics.journal_changelog))
        # Offsets: next offset per consumed partition, and the last committed.
        self.next_offset: dict[TopicPartition, int] = {}
        self.committed: dict[TopicPartition, int] = {}
        self.pending_news: list[_News] = []
        self.marked: dict[tuple[int, int], int] = {}  # (news partition, to partition)
        self.direct_from: dict[tuple[int, int], int] = {}
        """(news partition, task): the mark the task must consume before _apply_local."""
        self.scoring: asyncio.Task[None] | None = None
        self.committing: asyncio.Task[None] | None = None
        self.scored: list[tuple[list[_News], list[float]]] = []
        self.first_pending_at: float | None = None
        self.last_commit = clock()
        self.paused: set[TopicPartition] = set()
        self.barrier_wanted = asyncio.Event()
        self.warned_ahead_at = -math.inf
        self.restart_at: dict[TopicPartition, int] = {}
        self.news_seen: dict[int, int] = {}  # per news partition: position after taken records
        self._outbox: dict[int, list[Out]] = {}
        self.tally = metrics.BarTally()
        lexicon = getattr(scorer, "model_id", "lexicon").startswith("lexicon")
        # The lexicon scores a batch in microseconds, inline; a model runs in a thread so
        # that fetches, bars and /health go on meanwhile.
        self.executor = None if lexicon else ThreadPoolExecutor(1, thread_name_prefix="score")
        if lexicon:  # batching buys nothing inline; waiting for batch mates only adds latency
            self.news_wait = 0.0

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        """Consume until :attr:`stopping` is set, then commit and leave the group."""
        await self.checkpoint.start()
        self.consumer.subscribe([self.topics.bars, self.topics.news, self.topics.news_by_ticker,
                                 self.topics.control], listener=_Listener(self))
        await self.consumer.start()
        helpers = [asyncio.create_task(self._guard(self._barriers())),
                   asyncio.create_task(self._guard(self._ticker()))]
        fetch: asyncio.Task[Any] | None = None
        stop = asyncio.create_task(self.stopping.wait())
        try:
            while not self.stopping.is_set():
                if fetch is None:
                    generation = self.generation
                    fetch = asyncio.create_task(self._fetch())
                await asyncio.wait({fetch, stop}, return_when=asyncio.FIRST_COMPLETED)
                if not fetch.done():
                    break
                (batch, positions), fetch = fetch.result(), None
                async with self.lock:
                    if self.failure is not None:  # a background part failed meanwhile
                        break
                    if generation != self.generation:
                        self._refetch(batch)
                    else:
                        self._take(batch, positions)
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

    async def _guard(self, work: Any) -> None:
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

    def _refetch(self, batch: dict[TopicPartition, list[Any]]) -> None:
        """A rebalance came between fetching ``batch`` and handling it: fetch it again if it
        belongs to the new assignment (a batch from the old one is already behind the
        committed offsets the new assignment starts from)."""
        assigned = self.consumer.assignment()
        for tp, records in batch.items():
            if records and tp in assigned:
                self.consumer.seek(tp, min(records[0].offset,
                                           self.restart_at.get(tp, records[0].offset)))

    async def _shutdown(self) -> None:
        await self._stop_handover()
        async with self.lock:
            if self.failure is None:  # after a failure, what is open is left to be aborted
                try:
                    await self._drain()
                    await self._commit(reopen=False)
                except Exception:
                    log.exception("final commit failed; the next owner resumes from the "
                                  "last one")
            elif self.committing is not None:
                self.committing.cancel()
            self.tasks.clear()
        for close in (self.consumer.stop, self.checkpoint.stop):
            try:
                await close()
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():  # this worker is cancelled
                    raise
                # aiokafka 0.14 re-raises the cancellation of its own fetch task when it is
                # closed after a lost connection; the worker is closing anyway.
                log.debug("closing a Kafka client after a failure", exc_info=True)
        if self.executor is not None:
            self.executor.shutdown(wait=False)

    # ------------------------------------------------------------------ input

    def _take(self, batch: dict[TopicPartition, list[Any]], positions: dict[int, int]) -> None:
        now = self.clock()
        edge = {"now_ns": self.wall_clock(), "max_future_ns": self.max_future_ns}
        for q, position in positions.items():
            if q in self.tasks:
                self.news_seen[q] = max(position, self.news_seen.get(q, 0))
        for tp, records in batch.items():
            task = self.tasks.get(tp.partition)
            expected = self.next_offset.get(tp, 0)
            if records and records[0].offset < expected:
                # Delivered again (the fetcher can hand out a batch twice around a seek):
                # what was taken once is never taken twice.
                records = [r for r in records if r.offset >= expected]
            if task is None or not records:
                continue
            metrics.RECORDS_IN.labels(topic=tp.topic).inc(len(records))
            self.next_offset[tp] = records[-1].offset + 1
            if tp.topic == self.topics.bars:
                for r in records:
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
            elif tp.topic == self.topics.news:
                if not self.pending_news:
                    self.first_pending_at = now
                for r in records:
                    item = decode_news(r.value, **edge)
                    targets = frozenset() if isinstance(item, InvalidEvent) else frozenset(
                        ticker_partition(t, task.partitions) for t in item.tickers)
                    self.pending_news.append(_News(tp.partition, r.offset, r.key, r.value, item,
                                                   record_known(r.timestamp), targets))
            elif tp.topic == self.topics.news_by_ticker:
                self._take_rekeyed(task, records)
            else:
                self._take_control(task, records)

    def _take_rekeyed(self, task: PartitionTask, records: list[Any]) -> None:
        out: list[Out] = []
        for r in records:
            rec = decode_rekeyed(r.key, r.value)
            if r.key == MARK_KEY:
                q, n = rec  # type: ignore[misc]
                self.gate.mark(task.p, q, n)
                metrics.child(metrics.RECORD_OUTCOMES, self.topics.news_by_ticker,
                              "mark").inc()
            else:
                out.extend(task.on_scored_headline(rec))  # type: ignore[arg-type]
        if out:
            self._outbox.setdefault(task.p, []).extend(out)

    def _take_control(self, task: PartitionTask, records: list[Any]) -> None:
        out = self._outbox.setdefault(task.p, [])
        for r in records:
            try:
                command = decode_command(r.value)
            except InvalidEvent as exc:
                out.append(task.deadletter(self.topics.control, r.key, r.value, r.offset, exc))
                continue
            if isinstance(command, WarmCommand):
                out.extend(task.warm(command))
                continue
            out.extend(task.reset(command.ticker, command.to_ts))
            metrics.RECORD_OUTCOMES.labels(topic=self.topics.control, outcome="applied").inc()

    # ------------------------------------------------------------------ progress

    async def _advance(self) -> None:
        """Score due news, send marks, release bars, send outputs, commit when due."""
        now = self.clock()
        self._apply_scored()
        if self.pending_news and self.scoring is None and (
                len(self.pending_news) >= self.news_batch or self.first_pending_at is None
                or now - self.first_pending_at >= self.news_wait):
            await self._score_pending()
        self._mark_news()
        for i, (p, held) in enumerate(self.gate.release(now, self.stall_after), 1):
            if i % _YIELD_EVERY == 0:  # let aiokafka heartbeat during a long release
                await asyncio.sleep(0)
            task = self.tasks[p]
            if isinstance(held.bar, Bar):
                out = task.on_bar(held.bar, held.offset, held.known, held.received)
            else:
                out = [task.deadletter(self.topics.bars, held.key, held.value, held.offset,
                                       held.bar)]
            self._outbox.setdefault(p, []).extend(out)
        self.tally.flush(self.topics.bars)
        self._resume_paused()
        metrics.child(metrics.RECORDS_WAITING, self.topics.bars).set(self.gate.held())
        metrics.child(metrics.RECORDS_WAITING, self.topics.news).set(len(self.pending_news))
        outbox, self._outbox = self._outbox, {}
        for p, records in outbox.items():
            if records:
                await self.checkpoint.send(p, records)
        if (now - self.last_commit >= self.settings.worker.commit_interval
                and not self._committing()):
            await self._commit()

    async def _score_pending(self) -> None:
        batch = self.pending_news[:self.news_batch]
        valid = [n.item.headline for n in batch if isinstance(n.item, NewsItem)]
        if self.executor is None or not valid:
            self._finish_scoring(batch, self._score(valid) if valid else [])
            return
        loop = asyncio.get_running_loop()

        async def score() -> None:
            scores = await loop.run_in_executor(self.executor, self._score, valid)
            async with self.lock:
                self.scoring = None
                self.scored.append((batch, scores))
                await self._advance()

        self.scoring = asyncio.create_task(self._guard(score()))

    def _score(self, headlines: list[str]) -> list[float]:
        started = time.perf_counter()
        scores = [float(s.score) for s in self.scorer.score_batch(headlines)]
        metrics.SENTIMENT_BATCH_SECONDS.observe(time.perf_counter() - started)
        metrics.SENTIMENT_BATCH_SIZE.observe(len(headlines))
        return scores

    def _finish_scoring(self, batch: list[_News], scores: list[float]) -> None:
        self.scored.append((batch, scores))
        self._apply_scored()

    def _apply_scored(self) -> None:
        """Re-key scored batches (they are at the head of the pending line, in order)."""
        while self.scored:
            batch, scores = self.scored.pop(0)
            it = iter(scores)
            for news in batch:
                task = self.tasks.get(news.q)
                if task is None:
                    continue
                if isinstance(news.item, InvalidEvent):
                    out = [task.deadletter(self.topics.news, news.key, news.value, news.offset,
                                           news.item)]
                else:
                    scored = scored_headlines(news.item, next(it), news.q, news.offset,
                                              news.known, task.partitions)
                    out = task.rekey(scored)
                    self._apply_local(scored)
                self._outbox.setdefault(news.q, []).extend(out)
            del self.pending_news[:len(batch)]
            self.first_pending_at = self.clock() if self.pending_news else None

    def _apply_local(self, scored: list[tuple[int, ScoredHeadline]]) -> None:
        """Apply a scored headline at once to the tickers it names that this worker owns.

        Their bars then wait for no Kafka round trip; the re-keyed record, sent all the
        same, is skipped as already applied when it comes back. A task applies headlines
        in offset order per news partition (see ``TickerState.is_applied``), so this
        starts only once the re-keyed records sent before it have come back.
        """
        for r, rec in scored:
            if r not in self.tasks:
                continue
            if self._direct(rec.q, r):
                self._outbox.setdefault(r, []).extend(self.tasks[r].on_scored_headline(rec))
            elif (rec.q, r) in self.direct_from:  # through Kafka; so, all before a later one
                self.direct_from[(rec.q, r)] = max(rec.o + 1, self.direct_from[(rec.q, r)])

    def _direct(self, q: int, r: int) -> bool:
        """Whether headlines of news partition ``q`` apply to task ``r`` here directly:
        both are owned, and ``r`` has consumed every re-keyed record of ``q`` sent
        before (the progress marks it consumed passed them)."""
        start = self.direct_from.get((q, r))
        return start is not None and self.gate.marked(r, q) >= start

    def _news_floor(self, q: int) -> int | None:
        """First offset of news partition ``q`` not yet re-keyed (``None``: unknown)."""
        for news in self.pending_news:
            if news.q == q:
                return news.offset
        return self.news_seen.get(q)

    def _mark_news(self) -> None:
        """Send each partition the progress of every owned news partition.

        The mark for partition ``r`` stops at the first headline still waiting to be scored
        that names a ticker of ``r``: the tickers are known before the score, so bars of
        other partitions need not wait for the model.
        """
        first: dict[tuple[int, int], int] = {}
        for news in self.pending_news:
            for r in news.targets:
                first.setdefault((news.q, r), news.offset)
        for q, task in self.tasks.items():
            seen = self.news_seen.get(q)
            if seen is None:
                continue
            for r in range(task.partitions):
                floor = first.get((q, r), seen)
                if floor > self.marked.get((q, r), -1):
                    self.marked[(q, r)] = floor
                    if self._direct(q, r):  # applied here already (see _apply_local)
                        # Only r's owner reads r's marks, and whoever owns q next re-sends
                        # them; the re-keyed records still go out, for r's next owner.
                        self.gate.mark(r, q, floor)
                    else:
                        self._outbox.setdefault(q, []).append(task.mark(r, floor))

    def _resume_paused(self) -> None:
        for tp in list(self.paused):
            if self.gate.held(tp.partition) < _MAX_HELD // 2:
                self.consumer.resume(tp)
                self.paused.discard(tp)

    async def _drain(self) -> None:
        """Wait for a model call in flight and apply it (before a commit that must be whole)."""
        if self.scoring is not None:
            task, self.scoring = self.scoring, None
            self.lock.release()
            try:
                await task
            finally:
                await self.lock.acquire()

    # ------------------------------------------------------------------ commits

    def _offsets(self) -> dict[TopicPartition, int]:
        """Next offset to read per consumed partition: nothing held or pending is passed."""
        out: dict[TopicPartition, int] = {}
        for p in self.tasks:
            bars = TopicPartition(self.topics.bars, p)
            head = self.gate.first_held(p)
            off = head.offset if head is not None else self.next_offset.get(bars)
            if off is not None:
                out[bars] = off
            news = self._news_floor(p)
            if news is not None:
                out[TopicPartition(self.topics.news, p)] = news
            for topic in (self.topics.news_by_ticker, self.topics.control):
                applied = self.next_offset.get(TopicPartition(topic, p))
                if applied is not None:
                    out[TopicPartition(topic, p)] = applied
        return out

    async def _commit(self, *, reopen: bool = True) -> None:
        offsets = self._offsets()
        changed = {tp: off for tp, off in offsets.items() if self.committed.get(tp) != off}
        if self.exactly_once:
            # The task's offsets also go into its changelog, in the same transaction: the
            # group's committed offsets may lag a committed transaction (KIP-447's
            # require_stable is not in aiokafka), the changelog read_committed does not.
            for p, per_task in offsets_by_task(offsets).items():
                if any(tp in changed for tp in per_task):
                    value = encode_offsets(per_task)
                    self.tasks[p].snapshots[OFFSETS_KEY] = value
                    await self.checkpoint.send(p, [(self.topics.snapshots_changelog,
                                                    OFFSETS_KEY, value, p)])
        if log.isEnabledFor(logging.DEBUG):  # off the commit path unless asked for
            log.debug("commit %s", {f"{tp.topic}:{tp.partition}": o
                                    for tp, o in changed.items()})
        if self.exactly_once:
            await self._settled()
            await self.checkpoint.commit(offsets_by_task(changed), reopen=reopen)
        elif reopen:
            # At-least-once: waiting for acknowledgements happens off the loop's path, so
            # bars keep flowing meanwhile; one commit is in flight at a time.
            self.committing = asyncio.create_task(self._guard(self._unless_left(
                self.checkpoint.cut(offsets_by_task(changed)))))
        else:
            await self._settled()  # its state records go first
            await self._unless_left(self.checkpoint.cut(offsets_by_task(changed)))
        self.committed.update(changed)
        self.last_commit = self.clock()

    async def _unless_left(self, commit: Awaitable[None]) -> None:
        """Await an at-least-once commit. The group refuses it if it went on without this
        worker (paused for longer than ``worker.session_timeout``): then the tasks' state
        may be ahead of what is committed, and the next assignment restores them all."""
        try:
            await commit
        except CommitFailedError:
            log.warning("offset commit refused: the group went on without this worker; it "
                        "rejoins and restores its tasks from their changelogs")
            self.left_group = True

    def _committing(self) -> bool:
        return self.committing is not None and not self.committing.done()

    async def _settled(self) -> None:
        """Wait for a background commit in flight (before one that must be whole)."""
        if self.committing is not None:
            task, self.committing = self.committing, None
            await task

    # ------------------------------------------------------------------ helpers

    async def _barriers(self) -> None:
        """Answer the gate's barrier requests with the news end offsets (read_committed),
        each once the wall clock is past its bars' knowledge time (see the gate)."""
        partitions = self.settings.kafka.partitions
        news = [TopicPartition(self.topics.news, q) for q in range(partitions)]
        while True:
            await self.barrier_wanted.wait()
            self.barrier_wanted.clear()
            async with self.lock:
                due = self.gate.barrier_due()
                if due is None:
                    continue
                # Closed now: bars arriving while this waits belong to the next epoch.
                epoch, generation = self.gate.ask_barrier(), self.generation
            early = due - self.wall_clock()
            if early > _MAX_AHEAD_NS:
                # Only a producer's clock can put a knowledge time this far ahead (a
                # CreateTime topic): waiting for it would stall every partition.
                self._warn_ahead(early)
            elif early > 0:
                await asyncio.sleep(early / 1e9)
            try:
                ends = await self.consumer.end_offsets(news)
            except Exception:  # e.g. during a rebalance; ask again shortly
                log.debug("end offsets request failed", exc_info=True)
                async with self.lock:
                    if generation == self.generation:
                        self.gate.barrier_failed(epoch)
                await asyncio.sleep(0.05)
                self.barrier_wanted.set()
                continue
            async with self.lock:
                if generation == self.generation:
                    self.gate.barrier(epoch, {tp.partition: off for tp, off in ends.items()})
                    await self._advance()
                if self.gate.barrier_due() is not None:
                    self.barrier_wanted.set()

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
            await asyncio.sleep(tick)
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
                metrics.CONSUMER_LAG.labels(topic=tp.topic, partition=str(tp.partition)).set(
                    max(high - position, 0))

    # ------------------------------------------------------------------ rebalance

    async def on_revoked(self) -> None:
        """Commit everything and forget what is held: the next owner gets it re-delivered."""
        await self._stop_handover()
        async with self.lock:
            log.info("rebalance: committing and releasing tasks %s", sorted(self.tasks))
            self.rebalancing = True
            self.generation += 1
            if self.tasks or self.exactly_once:  # exactly-once: close what open() began
                await self._drain()
                self._apply_scored()
                await self._flush_outbox()
                await self._commit(reopen=False)
            self.gate = ReleaseGate(self.skew_ns)
            self.pending_news.clear()
            self.scored.clear()
            self.first_pending_at = None
            self.marked.clear()
            self.direct_from.clear()
            self.next_offset.clear()
            self.committed.clear()
            self.restart_at.clear()
            self.news_seen.clear()
            self.paused.clear()

    async def _stop_handover(self) -> None:
        """Cancel a hand-over in progress: its tasks are restored again when assigned."""
        if self.handover is not None:
            self.handover.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.handover
            self.handover = None

    async def _flush_outbox(self) -> None:
        outbox, self._outbox = self._outbox, {}
        for p, records in outbox.items():
            if records:
                await self.checkpoint.send(p, records)

    async def on_assigned(self, assigned: set[TopicPartition]) -> None:
        """Take the tasks of ``assigned``: fence previous owners, pause the partitions and
        restore the tasks in the background (:meth:`_take_over`).

        aiokafka sends no heartbeat until this returns, so it awaits nothing that grows
        with the tasks' state (see :mod:`gnosis.streams.handover`).
        """
        async with self.lock:
            self.generation += 1
            tasks = {tp.partition for tp in assigned}
            # Kept state is current only if every generation since it was built had this
            # worker in it: in one it missed, another worker may have owned the task.
            generation = group_generation(self.consumer)
            continuous = (not self.left_group and generation is not None
                          and self.assigned_in is not None
                          and generation == self.assigned_in + 1)
            if self.assigned_in is not None and generation is not None and not continuous:
                self.expulsions += 1
                metrics.GROUP_EXPULSIONS.inc()
                log.warning("group generation %s after %s, in which this worker owned tasks "
                            "%s: it missed a rebalance (or left the group), so it restores "
                            "every task from its changelog", generation, self.assigned_in,
                            sorted(self.tasks))
            self.assigned_in, self.left_group = generation, False
            gone = [p for p in self.tasks if p not in tasks or not continuous]
            for p in gone:
                del self.tasks[p]
            await self.checkpoint.close(gone)
            await self.checkpoint.open(sorted(tasks))  # fences previous owners first
            self.consumer.pause(*assigned)
            kept, self.tasks = self.tasks, {}
            self.assignor.owned = tasks
            self.handover = asyncio.create_task(self._guard(
                self._take_over(assigned, kept, self.generation)))

    async def _take_over(self, assigned: set[TopicPartition], kept: dict[int, PartitionTask],
                         generation: int) -> None:
        """Restore the tasks of ``assigned`` not in ``kept``, seek every partition to its
        committed offset and resume it. A rebalance meanwhile cancels this (on_revoked)."""
        started = self.clock()
        new = sorted({tp.partition for tp in assigned} - set(kept))
        tables = await restore_tables(self.options, self.topics, new)
        tasks = {**kept, **{p: PartitionTask(p, self.settings, self.topics,
                                             self.scorer.model_id, tables[p].snapshots,
                                             tables[p].journal, self.tally) for p in new}}
        where = await starts(self.consumer, assigned)
        async with self.lock:
            if generation != self.generation:
                return
            self.tasks = tasks
            for tp in assigned:
                # The position may already be past records a fetch in flight has taken (and
                # _refetch may have moved it since it was read), so the start comes from the
                # committed offsets (the group's, or the task's own in its changelog,
                # whichever is further: see _commit), and every partition is sought to it.
                stored = decode_offsets(self.tasks[tp.partition].snapshots.get(OFFSETS_KEY))
                start = max(where[tp], stored.get(tp, 0))
                self.consumer.seek(tp, start)
                self.committed[tp] = start
                self.restart_at[tp] = self.next_offset[tp] = start
                if tp.topic == self.topics.news:
                    self.news_seen[tp.partition] = start
                    # What earlier owners re-keyed from here reaches each task through Kafka.
                    self.direct_from.update({(tp.partition, r): start for r in tasks})
            self.generation += 1  # a fetch in flight is fetched again from these offsets
            self.consumer.resume(*assigned)
            elapsed = self.clock() - started
            metrics.HANDOVER_SECONDS.set(elapsed)
            log.info("tasks %s (new %s) restored in %.2f s; starting at %s", sorted(tasks),
                     new, elapsed, {f"{tp.topic}:{tp.partition}": off for tp, off in
                                    sorted(self.restart_at.items())})
            metrics.TICKERS_IN_STATE.set(sum(len(t.states) for t in self.tasks.values()))
            self.rebalancing = False
            self.ready = True
            # A full collection walks every tracked object (~75k after the imports alone,
            # ~100 ms here) and would stall bars at random; nothing here builds reference
            # cycles, so what exists after a hand-over is set aside for good.
            gc.collect()
            gc.freeze()
            # Re-announce every owned news partition's progress: a mark may be all that a
            # held bar elsewhere is waiting for.
            self._mark_news()
            await self._flush_outbox()

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
        ready = self.ready and not self.rebalancing and bool(assigned)
        oldest = self.gate.oldest_since()
        rejecting = self.rejecting()
        status = "starting" if not ready else "degraded" if rejecting else "ok"
        return {
            "status": status,
            "rejecting_tickers": rejecting[:50],
            "rejecting_tickers_count": len(rejecting),
            "assigned_partitions": assigned,
            "rebalancing": self.rebalancing,
            "group_expulsions": self.expulsions,
            "held_bars": self.gate.held(),
            "oldest_held_seconds": 0.0 if oldest is None else round(self.clock() - oldest, 3),
            "processing_guarantee": self.settings.worker.processing_guarantee,
            "sentiment_model": model_id,
            "sentiment_provider": getattr(self.scorer, "provider", "cpu"),
            "sentiment_note": "lexicon fallback" if model_id.startswith("lexicon") else "onnx",
        }, ready


class _Listener(ConsumerRebalanceListener):
    # aiokafka logs and swallows a listener's exception; a half-done hand-over must instead
    # stop the worker, which then starts afresh from what was committed.
    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.worker._guard(self.worker.on_revoked())

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.worker._guard(self.worker.on_assigned(assigned))
