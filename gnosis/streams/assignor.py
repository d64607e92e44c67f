"""Co-partitioned, sticky assignment of partition numbers (tasks) to workers.

Partition ``p`` of ``bars``, ``news`` and ``news-by-ticker`` form one *task*: a ticker's
bars, its re-keyed headlines and its state (changelog partition ``p``) must live in one
worker, and under exactly-once one transaction covers them. So the assignor hands out
whole partition numbers. It is sticky: each member reports the tasks it owns in its
subscription's user data, and keeps them where the balance allows, so a worker joining
or leaving moves only the tasks it must (each move costs a changelog restore).

:func:`group_generation` tells the worker which generation an assignment belongs to: a
worker that kept a task may keep its state in memory only if no generation passed
without it (in one it missed, another worker may have owned the task and moved it on).
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Iterable, Mapping

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.coordinator.protocol import (
    ConsumerProtocolMemberAssignment,
    ConsumerProtocolMemberMetadata,
)

log = logging.getLogger(__name__)


def balance(tasks: Iterable[int], members: Mapping[str, Iterable[int]]) -> dict[str, list[int]]:
    """Spread ``tasks`` over ``members`` evenly, keeping each member's previous tasks when the
    balance allows. ``members`` maps member id to the tasks it owned before."""
    tasks = sorted(set(tasks))
    names = sorted(members)
    if not names:
        return {}
    base, extra = divmod(len(tasks), len(names))
    # Members that owned the most keep the larger quotas, so fewer tasks move.
    by_owned = sorted(names, key=lambda m: (-len(set(members[m]) & set(tasks)), m))
    quota = {m: base + (1 if i < extra else 0) for i, m in enumerate(by_owned)}
    out: dict[str, list[int]] = {m: [] for m in names}
    free = set(tasks)
    for m in by_owned:
        for t in sorted(set(members[m]) & free):
            if len(out[m]) < quota[m]:
                out[m].append(t)
                free.discard(t)
    for t in sorted(free):
        m = min(names, key=lambda n: (len(out[n]) - quota[n], n))
        out[m].append(t)
    return {m: sorted(ts) for m, ts in out.items()}


class CopartitionedAssignor(AbstractPartitionAssignor):
    """aiokafka partition assignor giving each member whole partition numbers, stickily."""

    name = "gnosis-copartitioned"
    version = 0

    def __init__(self) -> None:
        self.owned: set[int] = set()
        """Tasks this member owns now; sent as user data when the group rebalances."""

    def metadata(self, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:  # type: ignore[override]
        return ConsumerProtocolMemberMetadata(self.version, list(topics),
                                              orjson.dumps(sorted(self.owned)))

    def assign(self, cluster, members):  # type: ignore[no-untyped-def,override]
        """Assign every partition of the subscribed topics by partition number."""
        topics = sorted({t for meta in members.values() for t in meta.subscription})
        counts = {t: len(cluster.partitions_for_topic(t) or ()) for t in topics}
        if len(set(counts.values())) > 1:
            log.error("co-partitioned topics differ in partition count: %s", counts)
        previous = {m: _owned(meta.user_data) for m, meta in members.items()}
        tasks = balance(range(max(counts.values(), default=0)), previous)
        out = {}
        for member, owned in tasks.items():
            plan = collections.defaultdict(list)
            for t in topics:
                plan[t] = [p for p in owned if p < counts[t]]
            out[member] = ConsumerProtocolMemberAssignment(self.version, sorted(plan.items()),
                                                           b"")
        return out

    def on_assignment(self, assignment: ConsumerProtocolMemberAssignment) -> None:  # type: ignore[override]
        self.owned = {p for _, partitions in assignment.assignment for p in partitions}


def _owned(user_data: bytes | None) -> list[int]:
    try:
        return [int(p) for p in orjson.loads(user_data or b"[]")]
    except (orjson.JSONDecodeError, TypeError, ValueError):
        return []


def group_generation(consumer: AIOKafkaConsumer) -> int | None:
    """The group generation of ``consumer``'s current assignment (``None``: not known).

    aiokafka has no public accessor: 0.12 to 0.14 keep the generation the coordinator
    joined in ``_coordinator.generation``, set before the rebalance listener runs. If a
    later version moves it, this returns ``None`` and the worker restores every task on
    each assignment: correct, only slower (tests/streams/test_generation.py pins it).
    """
    generation = getattr(getattr(consumer, "_coordinator", None), "generation", None)
    return generation if isinstance(generation, int) and generation > 0 else None
