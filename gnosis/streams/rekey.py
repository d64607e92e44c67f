"""News on its way to the tickers: validate, score, re-key by ticker, mark progress.

Headlines arrive on any partition of ``news``; a ticker's state lives on its own
partition. Each headline owned here waits in line per news partition to be scored in
micro-batches (a model runs in a thread while the loop goes on), taken across partitions
oldest knowledge time first: a bar waits for every news partition's headlines known
before it, so scoring one partition's backlog ahead of the others would release no bar
until the last partition caught up. Scored, it is re-keyed:
one record per ticker it names, to the ticker's partition of ``news-by-ticker``. Behind
the headlines, every partition gets a **progress mark** of every owned news partition:
"news ``q`` is re-keyed below offset ``n``", which is what the
:class:`~gnosis.streams.gate.ReleaseGate` waits for before it releases a bar.

A headline whose news partition and ticker partition this worker both owns is applied
and marked at once, without waiting for its re-keyed record to come back through Kafka
(the record still goes out, for the partition's next owner).
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from gnosis.config import Settings
from gnosis.events import InvalidEvent, NewsItem
from gnosis.sinks import metrics
from gnosis.streams.committer import Committer, Guard
from gnosis.streams.gate import ReleaseGate
from gnosis.streams.records import ScoredHeadline, record_known, scored_headlines, ticker_partition
from gnosis.streams.task import PartitionTask, decode_news
from gnosis.streams.topics import Topics

_INLINE_BATCHES = 16  # per step, for an inline scorer (see Rekeyer.batches_per_step)


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


class Rekeyer:
    """The headlines of the news partitions one worker owns, from fetched to re-keyed.

    ``advance`` is the worker's processing step, run (under ``lock``) when a model call
    in a thread returns; ``guard`` runs that call so that its failure stops the worker.
    """

    def __init__(self, settings: Settings, topics: Topics, scorer: Any, committer: Committer,
                 gate: ReleaseGate, lock: asyncio.Lock, advance: Callable[[], Awaitable[None]],
                 guard: Guard, clock: Callable[[], float] = time.perf_counter) -> None:
        self.topics = topics
        self.scorer = scorer
        self.committer = committer
        self.gate = gate
        self.lock = lock
        self.advance = advance
        self.guard = guard
        self.clock = clock
        self.batch_size = max(1, settings.sentiment.batch_size)
        self.max_wait = max(0.0, settings.sentiment.max_wait_ms) / 1000.0
        self.batches_per_step = 1
        """Batches scored per step: an inline scorer (the lexicon) takes several, enough to
        keep up with any feed, few enough that the bars they release go out in steps of
        bounded size."""
        lexicon = getattr(scorer, "model_id", "lexicon").startswith("lexicon")
        # The lexicon scores a batch in microseconds, inline; a model runs in a thread so
        # that fetches, bars and /health go on meanwhile.
        self.executor = None if lexicon else ThreadPoolExecutor(1, thread_name_prefix="score")
        if lexicon:  # batching buys nothing inline; waiting for batch mates only adds latency
            self.max_wait = 0.0
            self.batches_per_step = _INLINE_BATCHES
        self.queued: dict[int, deque[_News]] = {}
        """Per news partition, headlines waiting to be scored, in offset order."""
        self.waiting = 0
        """Headlines queued or being scored, not yet re-keyed."""
        self._heads: list[tuple[int, int]] = []  # (knowledge time, q) of each queue's head
        self.first_pending_at: float | None = None
        self.scoring: asyncio.Task[None] | None = None
        self.scored: list[tuple[list[_News], list[float]]] = []
        """Scored batches, in the order they were taken, waiting to be re-keyed."""
        self.seen: dict[int, int] = {}
        """Per owned news partition: the position after the records taken."""
        self.marked: dict[tuple[int, int], int] = {}
        """(news partition, to partition): the last progress mark sent."""
        self.direct_from: dict[tuple[int, int], int] = {}
        """(news partition, task): the mark the task must consume before a headline is
        applied to it directly (see :meth:`_apply_local`)."""
        # Offsets of pending headlines per news partition, and per (news partition, target
        # partition): their heads are the commit offset and the marks, read on every step.
        self._pending_of: dict[int, deque[int]] = {}
        self._waiting: dict[tuple[int, int], deque[int]] = {}
        self._moved: set[int] = set()  # news partitions whose marks may advance

    def reset(self, gate: ReleaseGate) -> None:
        """Forget everything (a revocation): what was pending is fetched again."""
        self.gate = gate
        self.queued.clear()
        self._heads.clear()
        self.waiting = 0
        self.scored.clear()
        self.first_pending_at = None
        self.seen.clear()
        self.marked.clear()
        self.direct_from.clear()
        self._pending_of.clear()
        self._waiting.clear()
        self._moved.clear()

    def start(self, q: int, offset: int, tasks: Iterable[int]) -> None:
        """News partition ``q`` (owned from now on) is read from ``offset``; what earlier
        owners re-keyed from there reaches each of ``tasks`` through Kafka."""
        self.seen[q] = offset
        self.direct_from.update({(q, r): offset for r in tasks})
        self._moved.add(q)

    def close(self) -> None:
        """Stop the model's thread."""
        if self.executor is not None:
            self.executor.shutdown(wait=False)

    # ------------------------------------------------------------------ input

    def take(self, task: PartitionTask, records: list[Any], now: float, *, now_ns: int,
             max_future_ns: int) -> None:
        """Queue fetched records of news partition ``task.p``."""
        q = task.p
        if not self._heads:
            self.first_pending_at = now
        queue = self.queued.setdefault(q, deque())
        if not queue and records:
            heapq.heappush(self._heads, (record_known(records[0].timestamp), q))
        of = self._pending_of.setdefault(q, deque())
        self.waiting += len(records)
        for r in records:
            item = decode_news(r.value, now_ns=now_ns, max_future_ns=max_future_ns)
            targets = frozenset() if isinstance(item, InvalidEvent) else frozenset(
                ticker_partition(t, task.partitions) for t in item.tickers)
            queue.append(_News(q, r.offset, r.key, r.value, item, record_known(r.timestamp),
                               targets))
            of.append(r.offset)
            for t in targets:
                self._waiting.setdefault((q, t), deque()).append(r.offset)

    def positions(self, positions: Mapping[int, int], tasks: Mapping[int, PartitionTask]) -> None:
        """The owned news partitions' positions after a fetch (they count transaction
        markers, which the broker's end offsets do too)."""
        for q, position in positions.items():
            if q in tasks and position > self.seen.get(q, 0):
                self.seen[q] = position
                self._moved.add(q)

    def floor(self, q: int) -> int | None:
        """First offset of news partition ``q`` not yet re-keyed (``None``: unknown)."""
        of = self._pending_of.get(q)
        return of[0] if of else self.seen.get(q)

    # ------------------------------------------------------------------ progress

    async def step(self, now: float, tasks: Mapping[int, PartitionTask]) -> None:
        """Re-key what was scored, start scoring when a batch is due (up to
        :attr:`batches_per_step` batches), send marks."""
        self.apply_scored(tasks)
        for _ in range(self.batches_per_step):
            if not self.due(now):
                break
            self._score_next(tasks)
        self.mark(tasks)

    def due(self, now: float) -> bool:
        """Whether a batch is ready to be scored: full, or waited ``max_wait`` for mates,
        and no model call in flight."""
        return bool(self._heads) and self.scoring is None and (
            self.waiting >= self.batch_size or self.first_pending_at is None
            or now - self.first_pending_at >= self.max_wait)

    def _take_batch(self) -> list[_News]:
        """The next headlines to score: the queues' heads, oldest knowledge time first."""
        batch: list[_News] = []
        while self._heads and len(batch) < self.batch_size:
            _, q = heapq.heappop(self._heads)
            queue = self.queued[q]
            batch.append(queue.popleft())
            if queue:
                heapq.heappush(self._heads, (queue[0].known, q))
        self.first_pending_at = self.clock() if self._heads else None
        return batch

    def _score_next(self, tasks: Mapping[int, PartitionTask]) -> None:
        batch = self._take_batch()
        valid = [n.item.headline for n in batch if isinstance(n.item, NewsItem)]
        if self.executor is None or not valid:
            self.scored.append((batch, self._score(valid) if valid else []))
            self.apply_scored(tasks)
            return
        loop = asyncio.get_running_loop()

        async def score() -> None:
            scores = await loop.run_in_executor(self.executor, self._score, valid)
            async with self.lock:
                self.scoring = None
                self.scored.append((batch, scores))
                await self.advance()

        self.scoring = asyncio.create_task(self.guard(score()))

    def _score(self, headlines: list[str]) -> list[float]:
        started = time.perf_counter()
        scores = [float(s.score) for s in self.scorer.score_batch(headlines)]
        metrics.SENTIMENT_BATCH_SECONDS.observe(time.perf_counter() - started)
        metrics.SENTIMENT_BATCH_SIZE.observe(len(headlines))
        return scores

    async def drain(self) -> None:
        """Wait for a model call in flight (the caller holds ``lock``; it is let go
        meanwhile) and re-key its batch with :meth:`apply_scored`."""
        if self.scoring is not None:
            task, self.scoring = self.scoring, None
            self.lock.release()
            try:
                await task
            finally:
                await self.lock.acquire()

    def apply_scored(self, tasks: Mapping[int, PartitionTask]) -> None:
        """Re-key scored batches, in the order they were taken."""
        while self.scored:
            batch, scores = self.scored.pop(0)
            it = iter(scores)
            for news in batch:
                self._done(news)
                score = next(it) if isinstance(news.item, NewsItem) else 0.0
                task = tasks.get(news.q)
                if task is None:
                    continue
                if isinstance(news.item, InvalidEvent):
                    out = [task.deadletter(self.topics.news, news.key, news.value, news.offset,
                                           news.item)]
                else:
                    scored = scored_headlines(news.item, score, news.q, news.offset,
                                              news.known, task.partitions)
                    out = task.rekey(scored)
                    self._apply_local(scored, tasks)
                self.committer.stage(news.q, out)

    def _done(self, news: _News) -> None:
        self.waiting -= 1
        self._pending_of[news.q].popleft()
        for t in news.targets:
            self._waiting[(news.q, t)].popleft()
        self._moved.add(news.q)

    def _apply_local(self, scored: list[tuple[int, ScoredHeadline]],
                     tasks: Mapping[int, PartitionTask]) -> None:
        """Apply a scored headline at once to the tickers it names that this worker owns.

        Their bars then wait for no Kafka round trip; the re-keyed record, sent all the
        same, is skipped as already applied when it comes back. A task applies headlines
        in offset order per news partition (see ``TickerState.is_applied``), so this
        starts only once the re-keyed records sent before it have come back.
        """
        for r, rec in scored:
            if r not in tasks:
                continue
            if self._direct(rec.q, r):
                self.committer.stage(r, tasks[r].on_scored_headline(rec))
            elif (rec.q, r) in self.direct_from:  # through Kafka; so, all before a later one
                self.direct_from[(rec.q, r)] = max(rec.o + 1, self.direct_from[(rec.q, r)])

    def _direct(self, q: int, r: int) -> bool:
        """Whether headlines of news partition ``q`` apply to task ``r`` here directly:
        both are owned, and ``r`` has consumed every re-keyed record of ``q`` sent
        before (the progress marks it consumed passed them)."""
        start = self.direct_from.get((q, r))
        return start is not None and self.gate.marked(r, q) >= start

    def mark(self, tasks: Mapping[int, PartitionTask], *, every: bool = False) -> None:
        """Send each partition the progress of the owned news partitions that moved (with
        ``every``: of all of them, e.g. after a hand-over).

        The mark for partition ``r`` stops at the first headline still waiting to be scored
        that names a ticker of ``r``: the tickers are known before the score, so bars of
        other partitions need not wait for the model.
        """
        moved = set(tasks) if every else self._moved
        self._moved = set()
        for q in moved:
            task, seen = tasks.get(q), self.seen.get(q)
            if task is None or seen is None:
                continue
            for r in range(task.partitions):
                waiting = self._waiting.get((q, r))
                floor = waiting[0] if waiting else seen
                if floor > self.marked.get((q, r), -1):
                    self.marked[(q, r)] = floor
                    if self._direct(q, r):  # applied here already (see _apply_local)
                        # Only r's owner reads r's marks, and whoever owns q next re-sends
                        # them; the re-keyed records still go out, for r's next owner.
                        self.gate.mark(r, q, floor)
                    else:
                        self.committer.stage(q, [task.mark(r, floor)])
