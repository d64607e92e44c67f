"""The live worker: one Faust app, one agent over bars, news and re-keyed news.

Topology (see :mod:`gnosis.streams.topics` for the topics)::

    news ──► validate, score headlines ──► <app>-news-by-ticker (key = ticker, one record
              in micro-batches              per ticker the headline names)
              (deadletter on failure)
    bars ──────────────────────────────┐
    <app>-news-by-ticker ──────────────┴─► per-ticker TickerEngine ──► signals
                                            (snapshots + journal tables)   └─► deadletter

A single agent consumes all three topics, so the partition that holds a ticker's bars
also receives its re-keyed news and its state, and one in-process :class:`Pipeline`
sees both sides.

Event-time rule (why arrival interleaving cannot change a signal)
-----------------------------------------------------------------
The signal for a bar closing at ``t`` must see every headline stamped ``<= t``.
Producers publish news stamped ``<= t`` before the bars stamped ``t`` (the replay
publisher does). So a bar is held until the news pipeline has drained everything that
was in the ``news`` topic when the bar was seen:

1. Each held bar belongs to a *barrier epoch*. A background task asks the broker for the
   news partitions' end offsets (read_committed: the last stable offset) *after* the
   bar was received; one request serves every bar that arrived before it was sent.
2. The bar is released when, for every news partition ``q`` this worker owns, the agent
   has processed news up to that end offset, and the re-keyed records those headlines
   produced for the bar's partition have come back on ``<app>-news-by-ticker``
   (records carry their source partition and offset, so this is exact).
3. Held bars are released in arrival order per partition and only acknowledged then, so a
   crash re-delivers them. A stall guard (``worker.max_news_wait``) releases a bar whose
   news cannot catch up, e.g. when another worker owns some news partitions.

Headlines are scored in micro-batches: raw news is buffered until ``sentiment.batch_size``
items are waiting or ``sentiment.max_wait_ms`` passed since the first, then scored in one
call (in a worker thread for an ONNX model) and handled in arrival order. Until then the
frontier does not count them as processed, so bars behind them keep waiting.

News may run ahead of bars freely: the engine's as-of window only counts headlines in
``(t - window, t]``. A headline older than the ticker's last bar minus
``worker.allowed_lateness`` is counted in ``gnosis_late_events_total`` and ignored.

Processing guarantees
---------------------
``at_least_once``: offsets are committed every ``commit_interval`` after the outputs were
sent; a crash repeats the work since the last commit. Signals are sent before the state
record that covers them, and a re-delivered bar the state already holds is skipped.

``exactly_once``: each source partition has a Kafka transaction (Faust's transaction
manager) holding the signals, deadletters, re-keyed news, changelog writes and the
consumed offsets; ``commit_interval`` commits it. Faust only routes sends to topics it
consumes through a transaction, so this module sends outputs with the source
partition's transactional id itself. Consumers must read with
``isolation.level=read_committed``; latency then includes the commit interval.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
import weakref
from collections import defaultdict, deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import faust
import orjson
from aiokafka.partitioner import murmur2
from faust.streams import _current_event

from gnosis.config import Settings
from gnosis.events import Bar, InvalidEvent, NewsItem
from gnosis.sinks import metrics
from gnosis.streams.frontier import NewsFrontier
from gnosis.streams.state import TickerState, journal_key, restore
from gnosis.streams.topics import JOURNAL_TABLE, SNAPSHOTS_TABLE, Topics, topic_names

log = logging.getLogger(__name__)


def ticker_partition(ticker: str, partitions: int) -> int:
    """The partition of ``ticker``: Java's murmur2 key partitioner (aiokafka, Java clients)."""
    return (murmur2(ticker.encode()) & 0x7FFFFFFF) % partitions


def deadletter_record(payload: bytes | None, exc: InvalidEvent, topic: str, partition: int,
                      offset: int) -> bytes:
    """JSON of a deadletter record: the original payload, reason code, field and source."""
    try:
        text, encoding = (payload or b"").decode(), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(payload or b"").decode(), "base64"
    return orjson.dumps({
        "reason": exc.code, "field": exc.field, "detail": exc.detail,
        "topic": topic, "partition": partition, "offset": offset,
        "payload": text, "payload_encoding": encoding,
    })


_Record = tuple[str, bytes | None, bytes, int | None]  # topic, key, value, partition


@dataclass(slots=True)
class _HeldBar:
    event: Any
    bar: Bar | InvalidEvent  # an invalid bar waits in line to be deadlettered
    epoch: int
    received: float


@contextlib.contextmanager
def _event_context(event: Any) -> Iterator[None]:
    # Faust writes a table's changelog to the partition of the *current* event; a bar
    # released while another event is processed must still write to its own partition.
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


class Pipeline:
    """In-process state of one worker: engines, held bars and the news frontier."""

    def __init__(self, app: faust.App, settings: Settings, scorer: Any, topics: Topics,
                 snapshots: Any, journal: Any) -> None:
        self.app = app
        self.settings = settings
        self.scorer = scorer
        self.topics = topics
        self.snapshots = snapshots
        self.journal = journal
        self.exactly_once = settings.worker.processing_guarantee == "exactly_once"
        self.every = settings.worker.snapshot_every
        self.partitions = settings.kafka.partitions
        self.states: dict[str, TickerState] = {}
        self.held: dict[int, deque[_HeldBar]] = defaultdict(deque)
        self.frontier = NewsFrontier()
        self.epoch = 0  # the epoch whose end-offset request has not been sent yet
        self.barriers: dict[int, dict[int, int]] = {}
        self.bars_waiting = asyncio.Event()
        self.lock = asyncio.Lock()
        self.positions: dict[tuple[str, int], int] = {}
        self.news_batch = max(1, settings.sentiment.batch_size)
        self.news_wait = max(0.0, settings.sentiment.max_wait_ms) / 1000.0
        self.pending_news: list[tuple[Any, NewsItem | InvalidEvent]] = []
        self._news_timer: asyncio.Task[None] | None = None
        # The lexicon scores a batch in microseconds, inline; a model runs in a thread so
        # that heartbeats, fetches and /health go on meanwhile.
        lexicon = getattr(scorer, "model_id", "lexicon").startswith("lexicon")
        self.executor = None if lexicon else ThreadPoolExecutor(
            1, thread_name_prefix="sentiment")

    # ------------------------------------------------------------------ events

    async def on_event(self, event: Any) -> None:
        """Handle one event from any of the three source topics."""
        msg = event.message
        self.positions[(msg.topic, msg.partition)] = msg.offset + 1
        async with self.lock:
            if msg.topic == self.topics.bars:
                await self._on_bar(event)
            elif msg.topic == self.topics.news:
                await self._on_news(event)
            else:
                await self._on_rekeyed(event)
            await self.release()

    async def _on_bar(self, event: Any) -> None:
        msg = event.message
        try:
            bar = Bar.from_json(msg.value or b"")  # a tombstone is malformed JSON
            if msg.partition != ticker_partition(bar.ticker, self.partitions):
                raise InvalidEvent("wrong_partition", "bar is not in its ticker's partition "
                                   "(use the murmur2 key partitioner, key = ticker)", "key")
        except InvalidEvent as exc:
            # Behind held bars it waits its turn: a partition's deadletters go out in
            # offset order, which is how a repeat after a crash is told (_deadletter).
            if self.held[msg.partition]:
                self.held[msg.partition].append(_HeldBar(event, exc, self.epoch, 0.0))
            else:
                await self._deadletter(event, exc)
            return
        self.held[msg.partition].append(_HeldBar(event, bar, self.epoch, time.perf_counter()))
        self.bars_waiting.set()

    async def _on_news(self, event: Any) -> None:
        # Invalid news waits in line too: handled out of order, it would mark the news
        # before it as processed (the frontier keeps a high-water mark) and could commit
        # its offset ahead of theirs.
        try:
            item: NewsItem | InvalidEvent = NewsItem.from_json(event.message.value or b"")
        except InvalidEvent as exc:
            item = exc
        self.pending_news.append((event, item))
        if len(self.pending_news) >= self.news_batch:
            await self.flush_news()
        elif self._news_timer is None:
            self._news_timer = asyncio.get_running_loop().create_task(self._flush_news_later())

    async def _flush_news_later(self) -> None:
        await asyncio.sleep(self.news_wait)
        async with self.lock:
            self._news_timer = None
            try:
                await self.flush_news()
                await self.release()
            except Exception:
                log.exception("scoring a batch of headlines failed")

    async def flush_news(self) -> None:
        """Score the buffered headlines in one call, then send their re-keyed records.

        Call with :attr:`lock` held.
        """
        if self._news_timer is not None:  # still asleep or waiting for the lock
            self._news_timer.cancel()
            self._news_timer = None
        batch, self.pending_news = self.pending_news, []
        items = [item for _, item in batch if isinstance(item, NewsItem)]
        scores = iter(await self._score([item.headline for item in items]) if items else [])
        for event, item in batch:
            msg = event.message
            if isinstance(item, InvalidEvent):
                await self._deadletter(event, item)
                self.frontier.processed(msg.partition, msg.offset)
                continue
            score = next(scores)
            records: list[_Record] = []
            for ticker in item.tickers:
                p = ticker_partition(ticker, self.partitions)
                value = orjson.dumps({"ticker": ticker, "ts": item.ts, "score": score,
                                      "id": item.id, "q": msg.partition, "o": msg.offset})
                records.append((self.topics.news_by_ticker, ticker.encode(), value, p))
                self.frontier.generated(p, msg.partition, msg.offset)
            await self._emit(msg.partition, records)
            self.frontier.processed(msg.partition, msg.offset)
            metrics.NEWS_CONSUMED.inc()
            event.ack()

    async def _score(self, headlines: list[str]) -> list[float]:
        started = time.perf_counter()
        if self.executor is None:
            scores = self.scorer.score_batch(headlines)
        else:
            scores = await asyncio.get_running_loop().run_in_executor(
                self.executor, self.scorer.score_batch, headlines)
        metrics.SENTIMENT_BATCH_SECONDS.observe(time.perf_counter() - started)
        metrics.SENTIMENT_BATCH_SIZE.observe(len(headlines))
        return [float(s.score) for s in scores]

    async def _on_rekeyed(self, event: Any) -> None:
        msg = event.message
        rec = orjson.loads(msg.value)
        q, offset = rec["q"], rec["o"]
        self.frontier.seen(msg.partition, q, offset)
        self.frontier.consumed_rekeyed(msg.partition, msg.offset)
        state = self._state(rec["ticker"])
        if not state.is_applied(q, offset):  # else: re-sent after a crash, already counted
            entry = state.add_news(rec["ts"], rec["score"], q, offset)
            if entry is None:
                metrics.LATE_EVENTS.labels(topic=self.topics.news).inc()
            else:
                await self._emit(msg.partition, self._persist(state, entry, msg.partition))
        event.ack()

    # ------------------------------------------------------------------ bars

    async def release(self, *, stalled_after: float | None = None) -> None:
        """Process held bars whose news has caught up (or that waited ``stalled_after`` s)."""
        now = time.perf_counter()
        for p, queue in self.held.items():
            while queue:
                head = queue[0]
                if isinstance(head.bar, InvalidEvent):
                    queue.popleft()
                    await self._deadletter(head.event, head.bar)
                    continue
                barrier = self.barriers.get(head.epoch)
                ready = barrier is not None and self.frontier.caught_up(p, barrier)
                if not ready and (stalled_after is None or now - head.received < stalled_after):
                    break
                queue.popleft()
                await self._process_bar(head)
        self._forget_barriers()

    async def _process_bar(self, held: _HeldBar) -> None:
        event, bar = held.event, held.bar
        assert isinstance(bar, Bar)
        offset = event.message.offset
        with _event_context(event):
            state = self._state(bar.ticker)
            if offset <= state.bar_offset:  # re-delivered after a crash; already applied
                event.ack()
                return
            started = time.perf_counter()
            try:
                signal, entry = state.add_bar(bar, offset)
            except InvalidEvent as exc:
                await self._deadletter(event, exc)
                return
            metrics.FEATURE_UPDATE_SECONDS.observe(time.perf_counter() - started)
            p = event.message.partition
            # Signal and state record go out together, in one transaction when exactly-once.
            await self._emit(p, [(self.topics.signals, bar.ticker.encode(), signal.to_json(), p),
                                 *self._persist(state, entry, p)])
            metrics.BARS_CONSUMED.inc()
            metrics.SIGNALS_EMITTED.labels(signal_type=signal.signal_type).inc()
            metrics.SIGNAL_CONFIDENCE.labels(signal_type=signal.signal_type).observe(
                signal.confidence)
            metrics.BAR_TO_SIGNAL_SECONDS.observe(time.perf_counter() - held.received)
            event.ack()

    def _forget_barriers(self) -> None:
        oldest = min((q[0].epoch for q in self.held.values() if q), default=self.epoch)
        for epoch in [e for e in self.barriers if e < oldest]:
            del self.barriers[epoch]

    async def refresh_barrier(self) -> None:
        """Close the open epoch: fetch the news end offsets every held bar must wait for."""
        epoch = self.epoch
        self.epoch += 1
        news = [tp for tp in self.app.consumer.assignment() if tp.topic == self.topics.news]
        thread = self.app.consumer._thread
        consumer = thread._ensure_consumer()
        ends = await thread.call_thread(consumer.end_offsets, news) if news else {}
        for tp in news:
            if not self.frontier.knows(tp.partition):
                committed = await thread.call_thread(consumer.committed, tp)
                self.frontier.start(tp.partition, committed or 0)
        rekeyed = [tp for tp in self.app.consumer.assignment()
                   if tp.topic == self.topics.news_by_ticker
                   and not self.frontier.knows_rekeyed(tp.partition)]
        for tp in rekeyed:
            committed = await thread.call_thread(consumer.committed, tp)
            last = await last_committed_record(self.settings, tp.topic, tp.partition,
                                               committed or 0)
            self.frontier.start_rekeyed(tp.partition, last)
        async with self.lock:
            self.barriers[epoch] = {tp.partition: off for tp, off in ends.items()}
            await self.release()

    # ------------------------------------------------------------------ state

    def _state(self, ticker: str) -> TickerState:
        state = self.states.get(ticker)
        if state is None:
            state = restore(ticker, self.settings, self.scorer.model_id,
                            self.snapshots.get(ticker.encode()),
                            lambda key: self.journal.get(key.encode()), self.every)
            self.states[ticker] = state
            metrics.TICKERS_IN_STATE.set(len(self.states))
        return state

    def _persist(self, state: TickerState, entry: bytes, p: int) -> list[_Record]:
        """Update the tables in memory; return the changelog records to send with the output.

        The changelog is written here rather than by Faust's table (which buffers and
        sends later) so that a signal and the state that covers it are always in the same
        transaction: a commit can never fall between them.
        """
        ticker = state.engine.ticker
        key = journal_key(ticker, state.seq - 1, self.every).encode()
        self.journal.data[key] = entry
        records = [(self.topics.journal_changelog, key, entry, p)]
        if state.seq % self.every == 0:
            snap = state.snapshot()
            self.snapshots.data[ticker.encode()] = snap
            records.append((self.topics.snapshots_changelog, ticker.encode(), snap, p))
        return records

    def forget(self) -> None:
        """Drop in-memory state after a rebalance; tables rebuild it on first use."""
        self.states.clear()
        self.held.clear()
        self.pending_news.clear()  # not acknowledged: re-delivered to the new owner
        self.barriers.clear()
        self.frontier = NewsFrontier()
        metrics.TICKERS_IN_STATE.set(0)

    # ------------------------------------------------------------------ output

    async def _emit(self, source_partition: int, records: list[_Record]) -> None:
        """Queue records; under exactly-once, atomically in the source partition's transaction.

        Holding Faust's per-transaction lock keeps its commit from splitting the records.
        """
        producer = self.app.producer
        if not self.exactly_once:
            for topic, key, value, partition in records:
                await producer.send(topic, key, value, partition, None, None)
            return
        group = self.app.assignor.group_for_topic(self.topics.bars)
        tid = f"{self.app.conf.id}-{group}-{source_partition}"
        async with producer._trn_locks[tid]:
            transaction = producer._transaction_producers[tid]
            for topic, key, value, partition in records:
                await transaction.send(topic, value, key=key, partition=partition)

    async def _deadletter(self, event: Any, exc: InvalidEvent) -> None:
        """Send the deadletter record, unless this event's was sent before a crash.

        Faust takes the offsets of a commit before it waits for the transaction, so a
        commit can hold a record without its event's offset; a restart then re-delivers the
        event. Per source partition, events are deadlettered in offset order, so the last
        offset deadlettered (stored in the snapshots table with the record) tells repeats.
        """
        msg = event.message
        key = f"\0deadletter:{msg.topic}:{msg.partition}".encode()
        last = self.snapshots.get(key)
        if last is None or msg.offset > int(last):
            record = deadletter_record(msg.value, exc, msg.topic, msg.partition, msg.offset)
            mark = str(msg.offset).encode()
            self.snapshots.data[key] = mark
            await self._emit(msg.partition, [
                (self.topics.deadletter, msg.key, record, None),
                (self.topics.snapshots_changelog, key, mark, msg.partition)])
            metrics.DEADLETTER_EVENTS.labels(reason=exc.code, topic=msg.topic).inc()
        event.ack()

    def update_lag(self) -> None:
        """Set ``gnosis_consumer_lag_messages`` from the consumer's high-water marks."""
        for tp in self.app.consumer.assignment():
            position = self.positions.get((tp.topic, tp.partition))
            high = self.app.consumer.highwater(tp)
            if position is not None and high is not None:
                metrics.CONSUMER_LAG.labels(topic=tp.topic, partition=str(tp.partition)).set(
                    max(high - position, 0))


async def last_committed_record(settings: Settings, topic: str, partition: int,
                                start: int) -> int:
    """Offset of the last committed record at or after ``start`` (``-1`` if none).

    Read once per partition at start-up: re-keyed news written before a restart must be
    applied before any bar is, and trailing transaction markers make the end offset
    unusable for that test.
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from gnosis.streams.topics import client_options

    tp = TopicPartition(topic, partition)
    consumer = AIOKafkaConsumer(**client_options(settings), group_id=None,
                                isolation_level="read_committed", enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        last = -1
        if end > start:
            consumer.seek(tp, start)
            while await consumer.position(tp) < end:
                batch = await consumer.getmany(tp, timeout_ms=500)
                for record in batch.get(tp, []):
                    if record.offset < end:
                        last = record.offset
        return last
    finally:
        await consumer.stop()


def _credentials(settings: Settings) -> Any:
    k = settings.kafka
    ssl_context = None
    if k.security_protocol in {"SSL", "SASL_SSL"}:
        from aiokafka.helpers import create_ssl_context

        ssl_context = create_ssl_context(cafile=k.ssl_cafile or None)
    if k.sasl_mechanism:
        return faust.SASLCredentials(username=k.sasl_username, password=k.sasl_password,
                                     mechanism=k.sasl_mechanism, ssl_context=ssl_context)
    if ssl_context is not None:
        return faust.SSLCredentials(ssl_context)
    return None


def make_app(settings: Settings, scorer: Any = None) -> faust.App:
    """The Faust app of a Gnosis worker; ``scorer`` defaults to ``load_scorer(...)``.

    The topics must exist (:func:`gnosis.streams.topics.ensure_topics`).
    """
    if scorer is None:
        from gnosis.models.sentiment import load_scorer

        scorer = load_scorer(settings.sentiment)
    w, names = settings.worker, topic_names(settings)
    guarantee = w.processing_guarantee
    if guarantee not in {"at_least_once", "exactly_once"}:
        raise ValueError(f"worker.processing_guarantee {guarantee!r}: use at_least_once or "
                         "exactly_once")
    servers = [f"kafka://{s.strip()}" for s in settings.kafka.bootstrap_servers.split(",")]
    app = faust.App(
        w.app_id, broker=servers, broker_credentials=_credentials(settings),
        processing_guarantee=guarantee, broker_commit_interval=w.commit_interval,
        store="memory://", topic_partitions=settings.kafka.partitions,
        topic_replication_factor=settings.kafka.replication_factor,
        topic_allow_declare=False, topic_disable_leader=True, datadir=w.data_dir,
        web_port=w.web_port, web_bind="0.0.0.0", web_in_thread=False,
        producer_linger=0.002, consumer_auto_offset_reset="earliest",
        stream_wait_empty=False, key_serializer="raw", value_serializer="raw",
        broker_session_timeout=w.session_timeout, broker_heartbeat_interval=1.0,
    )
    raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw",
           "value_serializer": "raw"}
    source = app.topic(names.bars, names.news, names.news_by_ticker, **raw)
    table_opts = {"partitions": settings.kafka.partitions, "key_type": bytes,
                  "value_type": bytes}
    snapshots = app.Table(SNAPSHOTS_TABLE, **table_opts)
    journal = app.Table(JOURNAL_TABLE, **table_opts)
    pipeline = Pipeline(app, settings, scorer, names, snapshots, journal)
    app.gnosis = pipeline  # type: ignore[attr-defined]
    metrics.MODEL_INFO.info({"model_id": scorer.model_id})

    @app.agent(source, name="gnosis.process")
    async def process(stream: faust.StreamT) -> None:
        async for event in stream.noack().events():
            await pipeline.on_event(event)

    @app.task
    async def barriers() -> None:
        while True:
            await pipeline.bars_waiting.wait()
            pipeline.bars_waiting.clear()
            try:
                await pipeline.refresh_barrier()
            except Exception:  # during a rebalance the consumer may be unavailable
                log.debug("barrier refresh failed; retrying", exc_info=True)
                await asyncio.sleep(0.1)
                pipeline.bars_waiting.set()

    @app.timer(1.0)
    async def housekeeping() -> None:
        pipeline.update_lag()
        async with pipeline.lock:
            await pipeline.release(stalled_after=w.max_news_wait)

    @app.on_partitions_revoked.connect
    async def on_revoked(app: faust.App, revoked: Any, **kwargs: Any) -> None:
        pipeline.forget()

    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        body, ready = health_report(app, scorer)
        return web.json(body, status=200 if ready else 503)

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        body, content_type = metrics.render()
        return web.bytes(body, content_type=content_type.split(";")[0])

    return app


def health_report(app: faust.App, scorer: Any) -> tuple[dict[str, Any], bool]:
    """(JSON body, ready): ready once partitions are assigned and table recovery is done."""
    assigned = sorted(f"{tp.topic}:{tp.partition}" for tp in app.consumer.assignment())
    recovered = app.tables.recovery.completed.is_set()
    model_id = getattr(scorer, "model_id", "lexicon")
    ready = bool(assigned) and recovered and not app.rebalancing
    return {
        "status": "ok" if ready else "starting",
        "assigned_partitions": assigned,
        "recovery_completed": recovered,
        "rebalancing": bool(app.rebalancing),
        "sentiment_model": model_id,
        "sentiment_note": "lexicon fallback" if model_id.startswith("lexicon") else "onnx",
    }, ready
