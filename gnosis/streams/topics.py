"""The worker's Kafka topics, created explicitly before it starts.

Topics a broker creates on its own get its defaults, so every topic is created here with
its partition count and configuration:

============================  ==========================  =============================
topic                         key                         purpose
============================  ==========================  =============================
``bars``                      ticker                      OHLCV bars in (producers)
``news``                      any                         headlines in (producers)
``<app>-news-by-ticker``      ticker                      one scored record per ticker
                                                          a headline names (internal)
``signals``                   ticker                      TradingSignal JSON out
``deadletter``                source key                  invalid input + reason
``<app>-snapshots-changelog``  ticker                     per-ticker engine snapshots
``<app>-journal-changelog``   ``ticker:slot``             events since the snapshot
``<app>-control``             ticker                      operator commands (``gnosis
                                                          state reset``)
============================  ==========================  =============================

``bars``, ``news``, ``news-by-ticker``, the changelogs and the control topic must have the
same number of partitions (``kafka.partitions``): a ticker's bars, its re-keyed headlines, its
state and commands about it then live in the same partition number, which one worker owns.

``bars`` and ``news`` are created with ``message.timestamp.type=LogAppendTime``: a record's
timestamp, its knowledge time (:mod:`gnosis.engine`), is then the broker's clock when the
record arrived, whatever the producer put in it. On a topic created elsewhere with
Kafka's default ``CreateTime`` the producer's timestamp is trusted instead: right only
for an ingest producer that stamps each record as it receives it, with a clock the
brokers' agree with (``worker.broker_clock_skew``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from gnosis.config import Settings
from gnosis.security import client_options

_DAY_MS = 24 * 3600 * 1000
_CHANGELOG_SEGMENT = 64 * 2**20  # bytes; see topic_specs


@dataclass(frozen=True)
class TopicSpec:
    """One topic: name, partitions and topic-level configuration."""

    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Topics:
    """Topic names for one configuration."""

    bars: str
    news: str
    news_by_ticker: str
    signals: str
    deadletter: str
    snapshots_changelog: str
    journal_changelog: str
    control: str


SNAPSHOTS_TABLE = "snapshots"
JOURNAL_TABLE = "journal"


def topic_names(settings: Settings) -> Topics:
    """All topic names: the configured ones plus the app's internal topics."""
    k, app_id = settings.kafka, settings.worker.app_id
    return Topics(
        bars=k.bars_topic, news=k.news_topic, news_by_ticker=f"{app_id}-news-by-ticker",
        signals=k.signals_topic, deadletter=k.deadletter_topic,
        snapshots_changelog=f"{app_id}-{SNAPSHOTS_TABLE}-changelog",
        journal_changelog=f"{app_id}-{JOURNAL_TABLE}-changelog",
        control=f"{app_id}-control",
    )


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Every topic the worker reads or writes, with partitions and configuration."""
    names, k = topic_names(settings), settings.kafka
    events = {"cleanup.policy": "delete", "retention.ms": str(k.retention_days * _DAY_MS)}
    # The cleaner never compacts the active segment, and a worker taking a task over reads
    # all of it: 64 MiB (not Kafka's 1 GiB) bounds that read to a few seconds.
    compact = {"cleanup.policy": "compact", "min.compaction.lag.ms": "60000",
               "segment.bytes": str(_CHANGELOG_SEGMENT)}
    # Knowledge time is the broker's arrival time, not what a producer claims.
    inputs = {**events, "message.timestamp.type": "LogAppendTime"}
    n = k.partitions
    return [
        TopicSpec(names.bars, n, inputs),
        TopicSpec(names.news, n, inputs),
        TopicSpec(names.news_by_ticker, n, events),
        TopicSpec(names.signals, n, events),
        TopicSpec(names.deadletter, k.deadletter_partitions, events),
        TopicSpec(names.snapshots_changelog, n, compact),
        TopicSpec(names.journal_changelog, n, compact),
        TopicSpec(names.control, n, events),
    ]


async def ensure_topics(settings: Settings, specs: list[TopicSpec] | None = None) -> list[str]:
    """Create the topics that do not exist yet; returns the names created."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    specs = topic_specs(settings) if specs is None else specs
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        todo = [s for s in specs if s.name not in existing]
        if todo:
            response = await admin.create_topics([
                NewTopic(s.name, s.partitions, settings.kafka.replication_factor,
                         topic_configs=s.config) for s in todo])
            raced = _created_or_raise(response)
            todo = [s for s in todo if s.name not in raced]
            await _wait_visible(admin, {s.name for s in todo})
        return [s.name for s in todo]
    finally:
        await admin.close()


def _created_or_raise(response: object) -> set[str]:
    """Raise the error a topic creation answered (e.g. TOPIC_AUTHORIZATION_FAILED, for all
    the topics it concerns); returns the topics another client created meanwhile."""
    from aiokafka.errors import TopicAlreadyExistsError, for_code

    failed: dict[type[Exception], set[str]] = {}
    for topic, code, *_ in response.topic_errors:  # type: ignore[attr-defined]
        if code:
            failed.setdefault(for_code(code), set()).add(topic)
    raced = failed.pop(TopicAlreadyExistsError, set())
    for error, names in failed.items():
        raise error(names)
    return raced


async def _wait_visible(admin: object, names: set[str], timeout: float = 15.0) -> None:
    # Creation returns before every broker's metadata cache knows the topic.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if names <= set(await admin.list_topics()):  # type: ignore[attr-defined]
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"topics not visible after {timeout}s: {sorted(names)}")


def create_topics(settings: Settings) -> list[str]:
    """Blocking :func:`ensure_topics`, for the CLI and tests."""
    return asyncio.run(ensure_topics(settings))
