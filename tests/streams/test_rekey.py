"""The re-keyer's progress marks and commit floors, kept incrementally, equal a brute-force
recount over the headlines still pending, after every fetch and every scoring step; and it
scores the partitions' heads oldest knowledge time first.

No broker: a :class:`~gnosis.streams.rekey.Rekeyer` with the lexicon scorer, real
partition tasks and a real (unstarted) committer, fed drawn fetches of headlines naming
tickers of any partition, invalid ones among them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from gnosis.config import Settings
from gnosis.events import NewsItem
from gnosis.models.sentiment import load_scorer
from gnosis.streams.committer import Committer
from gnosis.streams.gate import ReleaseGate
from gnosis.streams.records import ticker_partition
from gnosis.streams.rekey import Rekeyer
from gnosis.streams.task import PartitionTask
from gnosis.streams.topics import topic_names

PARTITIONS = 4
OWNED = (0, 1, 3)
TICKERS = ("AAPL", "MSFT", "GOOG", "TSLA", "NVDA", "AMZN", "META", "IBM")
START_NS = 1_700_000_000_000_000_000


@dataclass(frozen=True)
class Record:
    offset: int
    key: bytes | None
    value: bytes
    timestamp: int


def headline(i: int, tickers: tuple[str, ...] | None) -> bytes:
    """A valid headline naming ``tickers``, or (``None``) one the worker deadletters."""
    if tickers is None:
        return b"{not json"
    return NewsItem(f"n{i}", START_NS + i, tickers, "shares rise").to_json()


fetch = st.tuples(st.sampled_from(OWNED), st.integers(0, 5), st.lists(
    st.one_of(st.none(), st.lists(st.sampled_from(TICKERS), min_size=1, max_size=3,
                                  unique=True).map(tuple)), max_size=6))
step = st.tuples(st.integers(1, 4), st.integers(1, 3))  # batch size, batches per step
steps = st.lists(st.one_of(fetch, step), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(steps)
def test_marks_and_floors_equal_a_recount_of_what_is_pending(script) -> None:
    asyncio.run(run(script))


async def run(script: list) -> None:
    config = Settings()
    assert config.kafka.partitions == PARTITIONS
    topics = topic_names(config)
    committer = Committer({}, "app", False, None, topics.snapshots_changelog,  # type: ignore[arg-type]
                          topics.journal_changelog, guard=lambda work: work)
    lock = asyncio.Lock()
    gate = ReleaseGate()

    async def advance() -> None:  # the lexicon scores inline: never called
        raise AssertionError

    news = Rekeyer(config, topics, load_scorer(config.sentiment), committer, gate, lock,
                   advance, lambda work: work, clock=lambda: 0.0)
    tasks = {p: PartitionTask(p, config, topics, "lexicon", {}, {}) for p in OWNED}
    for q in OWNED:
        news.start(q, 0, tasks)
    end = dict.fromkeys(OWNED, 0)
    # (q, offset, target partitions, record timestamp), in offset order per partition
    pending: list[tuple[int, int, frozenset[int], int]] = []
    for step in script:
        if len(step) == 2:
            news.batch_size, news.batches_per_step = step
            await news.step(0.0, tasks)
            for _ in range(news.batch_size * news.batches_per_step):  # oldest head first
                heads = [min((n for n in pending if n[0] == q), key=lambda n: n[1])
                         for q in {n[0] for n in pending}]
                if heads:
                    pending.remove(min(heads, key=lambda n: (n[3], n[0])))
        else:
            q, stamp, items = step
            records = [Record(end[q] + i, None, headline(end[q] + i, names), stamp + i % 2)
                       for i, names in enumerate(items)]
            pending += [(q, r.offset, frozenset(ticker_partition(t, PARTITIONS)
                                                for t in names or ()), r.timestamp)
                        for r, names in zip(records, items, strict=True)]
            end[q] += len(items) + 1  # a transaction marker after the batch
            news.take(tasks[q], records, 0.0, now_ns=START_NS, max_future_ns=10**18)
            news.positions({q: end[q]}, tasks)
            news.mark(tasks)
        for q in OWNED:
            of_q = [o for q_, o, _, _ in pending if q_ == q]
            assert news.floor(q) == (of_q[0] if of_q else end[q])
            for r in range(PARTITIONS):
                naming = [o for q_, o, targets, _ in pending if q_ == q and r in targets]
                assert news.marked.get((q, r), 0) == (naming[0] if naming else end[q])
