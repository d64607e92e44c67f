"""How far the news pipeline has got, so that a bar can wait for the news before it.

Pure bookkeeping, no I/O: the agent reports what it processed and saw, and asks whether
a partition has caught up with a *barrier* (the news topic's end offsets fetched after
a bar arrived). See :mod:`gnosis.streams.app` for the rule it implements.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping


class NewsFrontier:
    """Progress of raw news (per news partition ``q``) and of re-keyed news (per ``p``)."""

    def __init__(self) -> None:
        self._done: dict[int, int] = {}
        self._generated: dict[int, dict[int, int]] = defaultdict(dict)
        self._seen: dict[int, dict[int, int]] = defaultdict(dict)
        self._floor: dict[int, int] = {}
        self._rekeyed_next: dict[int, int] = {}

    def knows_rekeyed(self, p: int) -> bool:
        """Whether the re-keyed backlog of partition ``p`` at start-up is known."""
        return p in self._floor

    def start_rekeyed(self, p: int, last_offset: int) -> None:
        """At start-up, partition ``p`` holds re-keyed records up to ``last_offset``
        (written before a restart); bars on ``p`` wait until they are consumed."""
        self._floor.setdefault(p, last_offset)

    def consumed_rekeyed(self, p: int, offset: int) -> None:
        """The re-keyed record at offset ``offset`` of partition ``p`` was applied."""
        self._rekeyed_next[p] = offset + 1

    def knows(self, q: int) -> bool:
        """Whether news partition ``q``'s position is known."""
        return q in self._done

    def start(self, q: int, offset: int) -> None:
        """News partition ``q`` resumes at ``offset`` (its committed offset)."""
        self._done.setdefault(q, offset)

    def processed(self, q: int, offset: int) -> None:
        """The news record at ``(q, offset)`` was handled; its re-keyed records are sent."""
        self._done[q] = max(self._done.get(q, 0), offset + 1)

    def generated(self, p: int, q: int, offset: int) -> None:
        """The news record at ``(q, offset)`` sent a re-keyed record to partition ``p``."""
        self._generated[p][q] = offset

    def seen(self, p: int, q: int, offset: int) -> None:
        """A re-keyed record from ``(q, offset)`` came back on partition ``p``."""
        if offset > self._seen[p].get(q, -1):
            self._seen[p][q] = offset

    def caught_up(self, p: int, barrier: Mapping[int, int]) -> bool:
        """All news before ``barrier`` is processed and its records for ``p`` are back."""
        if any(self._done.get(q, -1) < end for q, end in barrier.items() if end > 0):
            return False
        if self._rekeyed_next.get(p, 0) <= self._floor.get(p, -1):
            return False
        seen = self._seen[p]
        return all(seen.get(q, -1) >= o for q, o in self._generated[p].items())
