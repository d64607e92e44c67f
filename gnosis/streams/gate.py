"""The point-in-time release rule: when a held bar may be processed. Pure: no I/O, no clock.

The signal of a bar known at ``B`` (its record's Kafka timestamp) counts every headline
of its window known at or before ``B`` (see :mod:`gnosis.engine`), so before it is
processed every such headline must have reached the bar's ticker. Headlines reach a bar's
partition ``p`` only after being scored and re-keyed, possibly by another worker, so a
bar waits for them, and for no others:

1. **Progress marks.** Whoever re-keys news partition ``q`` writes, after the re-keyed
   records of a batch, a mark ``(q, n)`` to *every* partition ``p`` of ``news-by-ticker``:
   "every headline of ``q`` below offset ``n`` that names a ticker of ``p`` is re-keyed,
   and its records precede this mark". A partition's log keeps order, so once ``p`` has
   consumed the mark it has consumed those records. (A headline's tickers are known before
   it is scored, so ``p``'s mark can pass headlines for other partitions that still wait
   for the model.) The owner of ``q`` re-sends its marks whenever it takes ``q`` over, so
   marks exist after any rebalance or restart. A worker that owns both ``q`` and ``p``
   may apply ``q``'s headlines to ``p`` and mark them itself, once ``p`` has consumed
   the re-keyed records sent before (``Rekeyer._apply_local``).
2. **Barriers.** For bars known up to ``B``, the shell closes their epoch and, once the
   wall clock is past ``B + skew``, asks the broker for each news partition ``q`` (of
   all of them) where its records known by ``B`` end: the first offset known after
   ``B`` (a lookup by timestamp), or the end offset where nothing is known after ``B``
   yet (see :func:`barrier_offsets`). Append times grow with offsets in a partition
   (the broker stamps a record under the partition's log lock), so the first answer is
   exact whatever the timing. The second relies on ``skew`` bounding how long a record
   takes from its append time to being readable (measured up to 8 ms on one broker,
   ``bench/bench_visibility.py``) and how far the brokers' clocks and the worker's
   differ. Both are read uncommitted: a headline in a news producer's transaction counts
   from its append time, as in the replay of the topics, and its bar waits for the
   transaction to end. One request serves every bar that arrived before it was sent:
   bars are grouped in *epochs*, and closing an epoch starts the request whose answer
   becomes that epoch's barrier. Up to :data:`MAX_ASKING` requests are in flight at
   once, so that a bar waits the skew and one lookup, not also the rest of the request
   before its own. Headlines below it that are known after a bar still
   reach its ticker first; the engine leaves them out of that bar's signal by their
   knowledge time.
3. **Release.** A bar on ``p`` is released when its epoch's barrier is known and the marks
   consumed on ``p`` reach it for every news partition. Bars leave in arrival order per
   partition; items that only wait their turn (invalid bars, to be deadlettered in
   offset order) leave as soon as they reach the head of the line.

So what a signal counts is decided by the records in the topics, not by when they were
read: the same topics give the same signals for any number of workers, any assignment of
news partitions and any timing (Flink's minimum-over-input-channels watermark after a
``keyBy`` is the same idea). An optional
stall guard releases a bar that has waited longer than ``stall_after`` seconds, trading
exactness for liveness; it is off unless configured.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class Held:
    """One item waiting in a partition's line."""

    item: Any
    epoch: int
    since: float
    gated: bool
    """``False`` for items that only keep their place in line (e.g. invalid bars)."""
    known: int
    """Knowledge time (epoch ns) of a gated item."""


def barrier_offsets(ends: Mapping[int, int], later: Mapping[int, int | None]
                    ) -> dict[int, int]:
    """Per news partition, the offset below which lie all its records known by a bar:
    ``later``, the first offset known after the bar, where one exists, else ``ends``, the
    end offset read once the clock was past the bar's knowledge time plus the skew."""
    out = dict(ends)
    out.update((q, offset) for q, offset in later.items() if offset is not None)
    return out


MAX_ASKING = 8
"""Barrier requests in flight at once (each answers for its own epoch)."""


class ReleaseGate:
    """Held bars, progress marks and barriers of the partitions one worker owns.

    ``skew_ns`` is how far past a bar's knowledge time the wall clock must be before its
    barrier is asked for (``worker.broker_clock_skew``).
    """

    def __init__(self, skew_ns: int = 0) -> None:
        self._lines: dict[int, deque[Held]] = {}
        self._marks: dict[int, dict[int, int]] = {}
        self._barriers: dict[int, Mapping[int, int]] = {}
        self._epoch = 0  # epoch of bars arriving now; its barrier has not been asked for
        self._epoch_known: int | None = None  # latest knowledge time of its gated bars
        self._asking: set[int] = set()  # epochs whose barrier requests are in flight
        self._dirty: set[int] = set()  # partitions whose lines may move
        self._cut = -1  # partition where the last release stopped at its limit
        self._skew_ns = skew_ns

    # ------------------------------------------------------------------ input

    def hold(self, p: int, item: Any, now: float, *, known: int = 0,
             gated: bool = True) -> None:
        """Queue ``item``: a bar known at ``known`` (epoch ns), or with ``gated=False``
        anything that only keeps its place in line."""
        self._lines.setdefault(p, deque()).append(Held(item, self._epoch, now, gated, known))
        if gated:
            self._note(known)
        self._dirty.add(p)

    def _note(self, known: int) -> None:
        if self._epoch_known is None or known > self._epoch_known:
            self._epoch_known = known

    def mark(self, p: int, q: int, offset: int) -> None:
        """Partition ``p`` consumed a progress mark: news ``q`` is re-keyed below ``offset``."""
        marks = self._marks.setdefault(p, {})
        if offset > marks.get(q, -1):
            marks[q] = offset
            self._dirty.add(p)

    def marked(self, p: int, q: int) -> int:
        """The progress of news partition ``q`` that partition ``p`` knows of (-1: none)."""
        return self._marks.get(p, {}).get(q, -1)

    def barrier_due(self) -> int | None:
        """Wall-clock time (epoch ns) from which the current epoch's barrier may be asked
        for, or ``None`` while none is wanted (no bar waits for one) or :data:`MAX_ASKING`
        requests are in flight."""
        if len(self._asking) >= MAX_ASKING or self._epoch_known is None:
            return None
        return self._epoch_known + self._skew_ns

    def asking(self) -> int:
        """Barrier requests in flight."""
        return len(self._asking)

    def ask_barrier(self) -> int:
        """Close the current epoch (bars arriving from now on join the next one); request
        the end offsets for it once the wall clock reaches the :meth:`barrier_due` read
        just before, and until they come (a failed request is sent again). Closing first
        keeps a steady stream of bars from moving that time on for ever."""
        epoch = self._epoch
        self._asking.add(epoch)
        self._epoch += 1
        self._epoch_known = None
        return epoch

    def barrier(self, epoch: int, end_offsets: Mapping[int, int]) -> None:
        """The news end offsets requested for ``epoch`` (news partition -> end offset)."""
        self._barriers[epoch] = dict(end_offsets)
        self._asking.discard(epoch)
        self._dirty.update(p for p, line in self._lines.items() if line)

    # ------------------------------------------------------------------ output

    def release(self, now: float, stall_after: float | None = None,
                limit: int | None = None) -> list[tuple[int, Any]]:
        """Items that may go now, as ``(partition, item)`` in line order per partition; at
        most ``limit`` of them, the rest in later calls (which start where this one
        stopped, so that every partition moves)."""
        out: list[tuple[int, Any]] = []
        check = set(self._lines) if stall_after is not None else self._dirty
        self._dirty = set()
        order = sorted(check, key=lambda p: (p <= self._cut, p))
        self._cut = -1
        for i, p in enumerate(order):
            line = self._lines.get(p)
            marks = self._marks.get(p, {})
            covered = None  # an epoch found covered: its bars follow one another in line
            while line:
                if limit is not None and len(out) >= limit:
                    self._cut = p
                    self._dirty.update(order[i:])
                    break
                head = line[0]
                if head.gated and head.epoch != covered:
                    if self._covered(head.epoch, marks):
                        covered = head.epoch
                    elif not (stall_after is not None and now - head.since >= stall_after):
                        break
                out.append((p, line.popleft().item))
            if self._cut >= 0:
                break
        self._forget_barriers()
        return out

    def unchecked(self) -> bool:
        """Whether some line may move that :meth:`release` has not looked at since (a
        release stopped at its limit, or marks, barriers or bars came)."""
        return bool(self._dirty)

    def _covered(self, epoch: int, marks: Mapping[int, int]) -> bool:
        barrier = self._barriers.get(epoch)
        if barrier is None:
            return False
        return all(end <= 0 or marks.get(q, -1) >= end for q, end in barrier.items())

    def _forget_barriers(self) -> None:
        oldest = min((line[0].epoch for line in self._lines.values() if line),
                     default=self._epoch)
        for epoch in [e for e in self._barriers if e < oldest]:
            del self._barriers[epoch]

    # ------------------------------------------------------------------ queries

    def first_held(self, p: int) -> Any | None:
        """The item at the head of ``p``'s line (its offset is the one to commit)."""
        line = self._lines.get(p)
        return line[0].item if line else None

    def held(self, p: int | None = None) -> int:
        """Items waiting on ``p`` (or on all partitions)."""
        if p is not None:
            return len(self._lines.get(p, ()))
        return sum(len(line) for line in self._lines.values())

    def oldest_since(self) -> float | None:
        """When the longest-waiting item was queued, or ``None`` when nothing waits."""
        return min((line[0].since for line in self._lines.values() if line), default=None)
