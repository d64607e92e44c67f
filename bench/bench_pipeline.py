"""Live pipeline: one worker, bars in → signals out, through a real Kafka broker.

A single-node broker (:class:`gnosis.streams.kafka.broker.LocalKafka`) is started in a
temporary folder; the worker runs as ``python -m gnosis.streams.service`` (default
configuration: all features, window 512, lexicon scorer). For each processing
guarantee / commit interval:

* **Throughput.** Every bar (and the news) is produced into fresh topics first, then the
  worker starts. A ``read_committed`` consumer in this process counts the signals; the
  rate is signals / (last signal − first signal), arrival times in this process. The
  rate over *warm* bars only (a ticker's bar index ≥ the features' lookback) is reported
  too, from the same arrival times.
* **Hand-over.** After the latency phase a second worker replaces the first on the same
  topics; ``gnosis_handover_seconds`` is the time from its assignment to every task's
  state restored and its partitions consuming again. ``gnosis_group_expulsions_total``
  counts the assignments a worker got after missing a group generation (it must be 0).
* **Latency.** The same worker, now warm, gets a paced producer at ``--rate`` bars/s
  (``linger.ms`` 5, Kafka 4's default; several rates, comma-separated, are offered one
  after the other to the same worker, each with its own warm-up and table row); the
  latency of a bar is the arrival time of its signal (matched by ``signal_id``) minus the
  time it was handed to the producer, both ``perf_counter`` in this process. The first
  ``--latency-warmup`` seconds at that rate are not counted: the broker's JIT compiles the
  paths of small requests then, which the backlog did not exercise (the broker alone,
  taking 2,000 single-bar requests/s, uses over a core for ~20 s, then a quarter). The
  worker's own ``gnosis_bar_to_signal_seconds`` histogram (bar received → signal queued,
  no broker or commit time) is scraped from ``/metrics`` at the end of the warm-up and at
  the end.

Baseline, same run: a bare aiokafka consume → produce pass-through (child process,
``enable_auto_commit``) over the same bars and news messages, same partitions, timed the
same way. Memory: ``process_resident_memory_bytes`` from ``/metrics`` of at-least-once
workers that hold ``--memory-tickers`` tickers of ``--memory-bars`` bars each.

The broker, the worker, the producer and the consumer share the machine's cores.

    .venv/bin/python bench/bench_pipeline.py [--tickers 50] [--bars 2000] [--rate 2000]
    .venv/bin/python bench/bench_pipeline.py --partitions 8 --workers 2   # two workers too
    .venv/bin/python bench/bench_pipeline.py --eos-commit "" --rate 1000,2000  # two loads
    .venv/bin/python bench/bench_pipeline.py --soak 600 --rate 1000 --news-per-bar 0.1
    .venv/bin/python bench/bench_pipeline.py --model-dir models/bert-int8 --news-per-bar 0.1
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import orjson
import psutil

from gnosis.config import Settings
from gnosis.events import signal_id
from gnosis.features.state import lookback_of
from gnosis.replay.synthetic import bars_to_events, news_to_events, synthetic_bars, synthetic_news
from gnosis.streams.kafka.broker import LocalKafka, free_port
from gnosis.streams.topics import TopicSpec, ensure_topics

TARGET_RATE = 12_000.0
"""Bars per second one at-least-once worker should drain from a backlog."""
TARGET_RATIO = 0.35
"""Worker rate over the bare pass-through rate."""
TARGET_P99 = 0.050
"""Seconds of p99 bar-to-signal latency at the offered load, at-least-once."""

_Record = tuple[bytes, bytes]  # key, value


@dataclass
class Workload:
    """Encoded input: throughput bars and news, then the paced latency bars."""

    bars: list[_Record]
    news: list[_Record]
    late_bars: list[tuple[_Record, str]]  # record, signal id
    late_news: list[tuple[int, _Record]]  # index of the late bar it precedes, record
    warm_ids: set[str]
    warm_fraction: float


def make_workload(tickers: int, bars: int, late: int, news_per_bar: float,
                  seed: int = 0) -> Workload:
    """``bars`` per ticker to pre-produce, then ``late`` per ticker for the paced phase."""
    frame = synthetic_bars(tickers, bars + late, seed=seed)
    index = frame.groupby("ticker").cumcount().to_numpy()
    first, second = frame[index < bars], frame[index >= bars]
    lookback = lookback_of(Settings().features)
    events = bars_to_events(first)
    warm_ids = {signal_id(b.ticker, b.ts, b.interval)
                for b, i in zip(events, index[index < bars], strict=True) if i >= lookback}
    news = news_to_events(synthetic_news(first, per_bar=news_per_bar)) if news_per_bar else []
    late_events = bars_to_events(second)
    late_news_events = (news_to_events(synthetic_news(second, per_bar=news_per_bar, seed=2))
                        if news_per_bar and len(second) else [])
    stamps = np.array([b.ts for b in late_events], dtype=np.int64)
    late_news = [(int(np.searchsorted(stamps, n.ts, side="left")),
                  (n.tickers[0].encode(), n.to_json())) for n in late_news_events]
    return Workload(
        bars=[(b.ticker.encode(), b.to_json()) for b in events],
        news=[(n.tickers[0].encode(), n.to_json()) for n in news],
        late_bars=[((b.ticker.encode(), b.to_json()), signal_id(b.ticker, b.ts, b.interval))
                   for b in late_events],
        late_news=sorted(late_news, key=lambda x: x[0]),
        warm_ids=warm_ids, warm_fraction=len(warm_ids) / max(len(events), 1))


Paced = tuple[list[tuple[_Record, str]], list[tuple[int, _Record]]]
"""Bars (record, signal id) and news (index of the bar it precedes, record) of one rate."""


def paced_segments(work: Workload, sizes: list[int]) -> list[Paced]:
    """The late bars cut into consecutive runs of ``sizes`` bars, each with the news that
    precedes its bars (indices relative to the run)."""
    segments, start = [], 0
    for size in sizes:
        end = start + size
        news = [(i - start, record) for i, record in work.late_news if start <= i < end]
        segments.append((work.late_bars[start:end], news))
        start = end
    return segments


def paced_bars(rate: float, warmup: float, seconds: float, tickers: int) -> int:
    """Bars per ticker offered at ``rate`` for ``warmup + seconds``."""
    return int(rate * (warmup + seconds) / tickers)


# ---------------------------------------------------------------------------- kafka


async def produce(bootstrap: str, topic: str, records: list[_Record]) -> None:
    """Send every record (default murmur2 partitioner on the key) and wait for all acks."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                enable_idempotence=True, linger_ms=20,
                                max_batch_size=512 * 1024)
    await producer.start()
    try:
        futures = []
        for key, value in records:
            futures.append(await producer.send(topic, value, key=key))
            if len(futures) >= 20_000:
                await asyncio.gather(*futures)
                futures.clear()
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


@dataclass
class Collector:
    """Reads a topic from the start (read_committed) in the background; keeps arrivals."""

    bootstrap: str
    topic: str
    arrivals: list[tuple[float, bytes]] = field(default_factory=list)  # perf_counter, value
    task: asyncio.Task | None = None
    grew: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        from aiokafka import AIOKafkaConsumer

        self.consumer = AIOKafkaConsumer(self.topic, bootstrap_servers=self.bootstrap,
                                         group_id=None, auto_offset_reset="earliest",
                                         isolation_level="read_committed",
                                         enable_auto_commit=False, fetch_max_wait_ms=100)
        await self.consumer.start()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=100, max_records=5_000)
            now = time.perf_counter()
            for records in batch.values():
                self.arrivals.extend((now, r.value) for r in records)
            if batch:
                self.grew.set()

    async def wait_for(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` records arrived; False on ``timeout``."""
        deadline = time.monotonic() + timeout
        while len(self.arrivals) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.grew.clear()
            with _suppress_timeout():
                await asyncio.wait_for(self.grew.wait(), min(left, 1.0))
        return True

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with _suppress_cancel():
                await self.task
        await self.consumer.stop()


class _suppress_timeout:  # noqa: N801 - used like contextlib.suppress
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, *_: object) -> bool:
        return kind is asyncio.TimeoutError or kind is TimeoutError


class _suppress_cancel:  # noqa: N801
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, *_: object) -> bool:
        return kind is asyncio.CancelledError


# ---------------------------------------------------------------------------- processes


def settings_for(bootstrap: str, workdir: Path, guarantee: str, commit_interval: float,
                 partitions: int) -> Settings:
    """The configuration (defaults, or ``GNOSIS_*`` variables, e.g. to try a worker
    setting) with fresh topic names, app id and web port."""
    tag = uuid.uuid4().hex[:8]
    base = Settings.load()
    kafka = replace(base.kafka, bootstrap_servers=bootstrap, partitions=partitions,
                    bars_topic=f"bars-{tag}", news_topic=f"news-{tag}",
                    signals_topic=f"signals-{tag}", deadletter_topic=f"deadletter-{tag}")
    worker = replace(base.worker, app_id=f"gnosis-{tag}",
                     web_port=free_port(), processing_guarantee=guarantee,
                     commit_interval=commit_interval, log_level="warning")
    return replace(base, kafka=kafka, worker=worker)


class Process:
    """A running process whose CPU time is read with psutil."""

    def __init__(self, ps: psutil.Process) -> None:
        self.ps = ps

    def cpu_seconds(self) -> float:
        t = self.ps.cpu_times()
        return t.user + t.system


class Child(Process):
    """A child process, stopped (SIGTERM, then SIGKILL) on :meth:`stop`."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        with log.open("ab") as out:
            self.process = subprocess.Popen(args, env={**os.environ, **env}, stdout=out,
                                            stderr=subprocess.STDOUT)
        super().__init__(psutil.Process(self.process.pid))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def start_worker(settings: Settings, log: Path) -> Child:
    env = {f"GNOSIS_{section.upper()}__{key.upper()}": str(value)
           for section, key, value in settings.as_rows()
           if section in {"kafka", "worker", "sentiment"}}
    env["OMP_NUM_THREADS"] = "1"
    return Child([sys.executable, "-m", "gnosis.streams.service"], env, log)


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return response.read().decode()


async def wait_ready(port: int, child: Child, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            raise RuntimeError(f"worker exited with {child.process.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        await asyncio.sleep(0.2)
    raise TimeoutError("worker not ready")


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else float("nan")


def histogram(text: str, name: str) -> list[tuple[float, float]]:
    """Cumulative (upper bound, count) buckets of a Prometheus histogram."""
    rows = re.findall(rf'^{name}_bucket{{le="([^"]+)"}} (\S+)$', text, re.MULTILINE)
    return [(float(le), float(count)) for le, count in rows]


def bucket_quantile(before: list[tuple[float, float]], after: list[tuple[float, float]],
                    q: float) -> float:
    """Quantile of the observations between two scrapes (linear within a bucket)."""
    old = dict(before)
    buckets = [(le, count - old.get(le, 0.0)) for le, count in after]
    total = buckets[-1][1] if buckets else 0.0
    if total <= 0:
        return float("nan")
    rank, low, below = q * total, 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if le == float("inf"):
                return low
            return low + (le - low) * (rank - below) / max(count - below, 1e-12)
        low, below = le, count
    return low


# ---------------------------------------------------------------------------- phases


@dataclass
class Result:
    name: str
    rate: float = float("nan")  # bars/s, first to last signal
    warm_rate: float = float("nan")
    from_ready: float = float("nan")  # bars/s, worker ready to last signal
    cpu: float = float("nan")  # worker CPU seconds per wall second in the window
    broker_cpu: float = float("nan")
    p50: float = float("nan")
    p99: float = float("nan")
    hist_p50: float = float("nan")
    hist_p99: float = float("nan")
    offered: float = float("nan")
    rss: float = float("nan")
    expulsions: float = float("nan")  # gnosis_group_expulsions_total, summed over workers
    handover: float = float("nan")  # s: a fresh worker restoring every task's state


def rates(arrivals: list[tuple[float, bytes]], warm_ids: set[str]) -> tuple[float, float]:
    first, last = arrivals[0][0], arrivals[-1][0]
    rate = (len(arrivals) - 1) / max(last - first, 1e-9)
    warm = [t for t, v in arrivals if orjson.loads(v)["signal_id"] in warm_ids]
    warm_rate = (len(warm) - 1) / max(warm[-1] - warm[0], 1e-9) if len(warm) > 1 else float(
        "nan")
    return rate, warm_rate


async def run_worker_phase(name: str, settings: Settings, work: Workload, broker: Process,
                           workdir: Path, paced: list[tuple[float, Paced]], timeout: float,
                           workers: int = 1, warmup: float = 0.0) -> list[Result]:
    """Pre-produce, start the workers, time throughput; then (one worker) the paced
    latency phase at each (rate, segment) of ``paced`` in turn: one result per rate, the
    throughput figures on the first."""
    several = len(paced) > 1
    result = Result(f"{name}, at {paced[0][0]:,.0f} bars/s" if several else name)
    bootstrap, k = settings.kafka.bootstrap_servers, settings.kafka
    await ensure_topics(settings)
    await produce(bootstrap, k.news_topic, work.news)
    await produce(bootstrap, k.bars_topic, work.bars)
    collector = Collector(bootstrap, k.signals_topic)
    await collector.start()
    ports = [free_port() for _ in range(workers)]
    children = [start_worker(replace(settings, worker=replace(settings.worker, web_port=port)),
                             workdir / f"{settings.worker.app_id}-{port}.log") for port in ports]
    try:
        for port, child in zip(ports, children, strict=True):
            await wait_ready(port, child)
        ready = time.perf_counter()
        cpu0, broker0 = sum(c.cpu_seconds() for c in children), broker.cpu_seconds()
        n = len(work.bars)
        if not await collector.wait_for(n, timeout):
            raise TimeoutError(f"{name}: {len(collector.arrivals):,} of {n:,} signals")
        end = time.perf_counter()
        cpu1, broker1 = sum(c.cpu_seconds() for c in children), broker.cpu_seconds()
        arrivals = collector.arrivals[:n]
        result.rate, result.warm_rate = rates(arrivals, work.warm_ids)
        result.from_ready = n / (arrivals[-1][0] - ready)
        result.cpu = (cpu1 - cpu0) / (end - ready)
        result.broker_cpu = (broker1 - broker0) / (end - ready)
        result.rss = sum(metric(scrape(port), "process_resident_memory_bytes")
                         for port in ports)
        result.expulsions = sum(metric(scrape(port), "gnosis_group_expulsions_total")
                                for port in ports)
        results = [result]
        if work.late_bars and workers == 1:
            for i, (rate, (bars, news)) in enumerate(paced):
                if i:
                    results.append(Result(f"{name}, at {rate:,.0f} bars/s"))
                await latency_phase(settings, bars, news, collector, n, rate, ports[0],
                                    results[-1], timeout, warmup)
                n += len(bars)
        if workers == 1:
            result.handover = await restart(settings, children, workdir)
        return results
    finally:
        for child in children:
            child.stop()
        await collector.stop()


async def restart(settings: Settings, children: list[Child], workdir: Path) -> float:
    """Stop the worker and start another one on the same topics: seconds its hand-over of
    every task (changelog restore, offsets, resume) took, from its own gauge."""
    children[0].stop()
    port = free_port()
    child = start_worker(replace(settings, worker=replace(settings.worker, web_port=port)),
                         workdir / f"{settings.worker.app_id}-{port}.log")
    children.append(child)
    await wait_ready(port, child)
    return metric(scrape(port), "gnosis_handover_seconds")


async def latency_phase(settings: Settings, late_bars: list[tuple[_Record, str]],
                        late_news: list[tuple[int, _Record]], collector: Collector, done: int,
                        rate: float, port: int, result: Result, timeout: float,
                        warmup: float = 0.0) -> list[tuple[float, float]]:
    """Offer ``late_bars`` (and the news before each) at ``rate``; (seconds since start,
    latency) per bar.
    The quantiles in ``result`` leave out bars sent in the first ``warmup`` seconds."""
    from aiokafka import AIOKafkaProducer

    k = settings.kafka
    warm_at = int(warmup * rate)
    before = histogram(scrape(port), "gnosis_bar_to_signal_seconds")
    producer = AIOKafkaProducer(bootstrap_servers=k.bootstrap_servers, acks="all",
                                enable_idempotence=True, linger_ms=5)
    await producer.start()
    sent: dict[str, float] = {}
    news = iter(late_news)
    pending = next(news, None)
    try:
        started = time.perf_counter()
        for i, ((key, value), sid) in enumerate(late_bars):
            while pending is not None and pending[0] <= i:
                await producer.send(k.news_topic, pending[1][1], key=pending[1][0])
                pending = next(news, None)
            due = started + i / rate
            if (delay := due - time.perf_counter()) > 0:
                await asyncio.sleep(delay)
            if i == warm_at and i:
                before = histogram(scrape(port), "gnosis_bar_to_signal_seconds")
            sent[sid] = time.perf_counter()
            await producer.send(k.bars_topic, value, key=key)
        result.offered = len(late_bars) / (time.perf_counter() - started)
        await producer.flush()
    finally:
        await producer.stop()
    if not await collector.wait_for(done + len(late_bars), timeout):
        raise TimeoutError(f"{result.name}: latency phase incomplete")
    after = histogram(scrape(port), "gnosis_bar_to_signal_seconds")
    series = sorted((sent[sid] - started, t - sent[sid]) for t, v in collector.arrivals[done:]
                    if (sid := orjson.loads(v)["signal_id"]) in sent)
    result.p50, result.p99 = np.quantile([lat for t, lat in series if t >= warmup],
                                         [0.5, 0.99]).tolist()
    result.hist_p50 = bucket_quantile(before, after, 0.5)
    result.hist_p99 = bucket_quantile(before, after, 0.99)
    return series


async def run_passthrough(bootstrap: str, workdir: Path, work: Workload, partitions: int,
                          timeout: float) -> Result:
    """The bare consume → produce baseline over the same messages and topic layout."""
    tag = uuid.uuid4().hex[:8]
    bars, news, out = f"pt-bars-{tag}", f"pt-news-{tag}", f"pt-out-{tag}"
    settings = replace(Settings(), kafka=replace(Settings().kafka, bootstrap_servers=bootstrap))
    await ensure_topics(settings, [TopicSpec(t, partitions) for t in (bars, news, out)])
    await produce(bootstrap, news, work.news)
    await produce(bootstrap, bars, work.bars)
    collector = Collector(bootstrap, out)
    await collector.start()
    child = Child([sys.executable, __file__, "--passthrough-child", bootstrap, f"{bars},{news}",
                   out], {}, workdir / "passthrough.log")
    try:
        n = len(work.bars) + len(work.news)
        if not await collector.wait_for(n, timeout):
            raise TimeoutError(f"pass-through: {len(collector.arrivals):,} of {n:,}")
        first, last = collector.arrivals[0][0], collector.arrivals[n - 1][0]
        result = Result("bare aiokafka pass-through")
        result.rate = len(work.bars) * (n - 1) / n / max(last - first, 1e-9)
        return result
    finally:
        child.stop()
        await collector.stop()


async def passthrough_child(bootstrap: str, sources: str, out: str) -> None:
    """Consume ``sources``, send every record to the same partition of ``out``."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    consumer = AIOKafkaConsumer(*sources.split(","), bootstrap_servers=bootstrap,
                                group_id=f"pt-{uuid.uuid4().hex[:8]}",
                                auto_offset_reset="earliest", auto_commit_interval_ms=200)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=2)
    await consumer.start()
    await producer.start()
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=200)
            for tp, records in batch.items():
                for r in records:
                    await producer.send(out, r.value, key=r.key, partition=tp.partition)
    finally:
        await consumer.stop()
        await producer.stop()


async def memory_phase(bootstrap: str, workdir: Path, tickers: int, bars: int,
                       partitions: int, timeout: float) -> tuple[float, float]:
    """(RSS right after start, RSS with ``tickers`` in state) of an at-least-once worker."""
    settings = settings_for(bootstrap, workdir, "at_least_once", 0.2, partitions)
    frame = synthetic_bars(tickers, bars, seed=5)
    records = [(b.ticker.encode(), b.to_json()) for b in bars_to_events(frame)]
    await ensure_topics(settings)
    collector = Collector(bootstrap, settings.kafka.signals_topic)
    await collector.start()
    worker = start_worker(settings, workdir / f"{settings.worker.app_id}.log")
    try:
        port = settings.worker.web_port
        await wait_ready(port, worker)
        idle = metric(scrape(port), "process_resident_memory_bytes")
        await produce(bootstrap, settings.kafka.bars_topic, records)
        if not await collector.wait_for(len(records), timeout):
            raise TimeoutError(f"memory phase, {tickers} tickers: incomplete")
        await asyncio.sleep(1.0)
        return idle, metric(scrape(port), "process_resident_memory_bytes")
    finally:
        worker.stop()
        await collector.stop()


async def soak_phase(args: argparse.Namespace, bootstrap: str, workdir: Path) -> None:
    """``--soak`` seconds of paced input with news; memory, p99 per minute, lag."""
    partitions = int(args.partitions.split(",")[0])
    settings = settings_for(bootstrap, workdir, "at_least_once", 0.2, partitions)
    rate = args.rates[0]
    per_ticker = int(rate * args.soak / args.soak_tickers) + 1
    work = make_workload(args.soak_tickers, 0, per_ticker, args.news_per_bar, seed=9)
    await ensure_topics(settings)
    collector = Collector(bootstrap, settings.kafka.signals_topic)
    await collector.start()
    worker = start_worker(settings, workdir / "soak.log")
    samples: list[tuple[float, float, float]] = []  # seconds, RSS bytes, lag messages

    async def sample(start: float) -> None:
        while True:
            text = scrape(settings.worker.web_port)
            lag = sum(float(v) for v in re.findall(
                r"^gnosis_consumer_lag_messages\{[^}]*\} (\S+)$", text, re.MULTILINE))
            samples.append((time.perf_counter() - start,
                            metric(text, "process_resident_memory_bytes"), lag))
            await asyncio.sleep(10)

    try:
        await wait_ready(settings.worker.web_port, worker)
        sampler = asyncio.create_task(sample(time.perf_counter()))
        result = Result("soak")
        series = await latency_phase(settings, work.late_bars, work.late_news, collector, 0,
                                     rate,
                                     settings.worker.web_port, result, args.timeout)
        sampler.cancel()
    finally:
        worker.stop()
        await collector.stop()
    print(f"\nsoak: {args.soak_tickers} tickers, {len(work.late_bars):,} bars offered at "
          f"{result.offered:,.0f} bars/s with {len(work.late_news):,} headlines, "
          f"{args.soak:.0f} s\n")
    print("| minute | bars | p50 ms | p99 ms | RSS MB (end of minute) | lag (end of minute) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for minute in range(int(series[-1][0] // 60) + 1):
        lat = [x for t, x in series if minute * 60 <= t < (minute + 1) * 60]
        mem = [m for t, m, _ in samples if t < (minute + 1) * 60] or [float("nan")]
        lag = [g for t, _, g in samples if t < (minute + 1) * 60] or [float("nan")]
        if lat:
            p50, p99 = np.quantile(lat, [0.5, 0.99]).tolist()
            print(f"| {minute + 1} | {len(lat):,} | {_ms(p50)} | {_ms(p99)} | "
                  f"{mem[-1] / 2**20:.0f} | {lag[-1]:,.0f} |")
    warm = next((m for t, m, _ in samples if t >= 60), samples[0][1])
    print(f"\nRSS after the first minute {warm / 2**20:.0f} MB, at the end "
          f"{samples[-1][1] / 2**20:.0f} MB ({samples[-1][1] / warm - 1:+.1%}; target < +10 %)")


# ---------------------------------------------------------------------------- main


def _ms(seconds: float) -> str:
    return "-" if seconds != seconds else f"{seconds * 1e3:.1f}"


def _n(value: float) -> str:
    return "-" if value != value else f"{value:,.0f}"


def report(results: list[Result], baseline: Result, memory: list[tuple[int, float, float]],
           work: Workload, args: argparse.Namespace) -> None:
    per_ticker = [paced_bars(rate, args.latency_warmup, args.latency_seconds, args.tickers)
                  if args.latency_seconds else 0 for rate in args.rates]
    offered = ", ".join(f"{n * args.tickers:,} bars offered at {rate:,.0f} bars/s"
                        for n, rate in zip(per_ticker, args.rates, strict=True))
    print(f"\n{args.tickers} tickers × {args.bars} bars = {len(work.bars):,} bars "
          f"({work.warm_fraction:.0%} past warm-up), {len(work.news):,} headlines; latency: "
          f"{offered}, the first "
          f"{args.latency_warmup:g} s not counted; "
          f"{args.partitions} partitions\n")
    print("| config | bars/s (first→last signal) | warm bars/s | bars/s from ready | "
          "× pass-through | worker CPU | broker CPU | offered bars/s | p50 ms | p99 ms | "
          "worker hist p50 / p99 ms | RSS MB | expulsions | hand-over s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in [baseline, *results]:
        ratio = "-" if r.rate != r.rate else f"{r.rate / baseline.rate:.3f}"
        cpu = "- | -" if r.cpu != r.cpu else f"{r.cpu:.2f} | {r.broker_cpu:.2f}"
        print(f"| {r.name} | {_n(r.rate)} | {_n(r.warm_rate)} | {_n(r.from_ready)} | "
              f"{ratio} | {cpu} | {_n(r.offered)} | "
              f"{_ms(r.p50)} | {_ms(r.p99)} | {_ms(r.hist_p50)} / {_ms(r.hist_p99)} | "
              f"{'-' if r.rss != r.rss else f'{r.rss / 2**20:.0f}'} | {_n(r.expulsions)} | "
              f"{'-' if r.handover != r.handover else f'{r.handover:.2f}'} |")
    if memory:
        print("\n| tickers in state | bars per ticker | RSS idle MB | RSS MB | per ticker KB |")
        print("|---:|---:|---:|---:|---:|")
        for tickers, idle, rss in memory:
            print(f"| {tickers:,} | {args.memory_bars} | {idle / 2**20:.0f} | "
                  f"{rss / 2**20:.0f} | {(rss - idle) / tickers / 1024:.0f} |")
    alo = next((r for r in results if r.name.startswith("at_least_once")), None)
    if alo is not None:
        print(f"\nat-least-once targets: {_n(alo.rate)} bars/s (≥ {TARGET_RATE:,.0f}: "
              f"{'met' if alo.rate >= TARGET_RATE else 'MISSED'}); ratio "
              f"{alo.rate / baseline.rate:.3f} (≥ {TARGET_RATIO}: "
              f"{'met' if alo.rate / baseline.rate >= TARGET_RATIO else 'MISSED'}); p99 "
              f"{_ms(alo.p99)} ms at {_n(alo.offered)} bars/s (≤ {TARGET_P99 * 1e3:.0f} ms: "
              f"{'met' if alo.p99 <= TARGET_P99 else 'MISSED'})")


async def phases(args: argparse.Namespace, work: Workload, bootstrap: str, workdir: Path,
                 broker: Child) -> tuple[list[Result], Result, list[tuple[int, float, float]]]:
    """Baseline, then each worker configuration, then the memory runs."""
    print(f"broker {bootstrap}; {len(work.bars):,} bars", flush=True)
    baseline = await run_passthrough(bootstrap, workdir, work, args.partitions, args.timeout)
    print(f"pass-through: {baseline.rate:,.0f} bars/s", flush=True)
    configs = [("at_least_once", 0.2, 1)] + [("exactly_once", float(c), 1)
                                             for c in args.eos_commit.split(",") if c]
    configs += [("at_least_once", 0.2, int(n)) for n in args.workers.split(",") if n]
    sizes = [paced_bars(rate, args.latency_warmup, args.latency_seconds, args.tickers)
             * args.tickers for rate in args.rates]
    paced = list(zip(args.rates, paced_segments(work, sizes), strict=True))
    results = []
    for guarantee, interval, workers in configs:
        name = f"{guarantee}, commit {interval:g} s" + (
            f", {workers} workers" if workers > 1 else "")
        settings = settings_for(bootstrap, workdir, guarantee, interval, args.partitions)
        if args.model_dir:
            settings = replace(settings, sentiment=replace(settings.sentiment,
                                                           model_dir=args.model_dir))
        rows = await run_worker_phase(name, settings, work, broker, workdir, paced,
                                      args.timeout, workers, args.latency_warmup)
        results += rows
        for r in rows:
            print(f"{r.name}: {_n(r.rate)} bars/s, p50 {_ms(r.p50)} ms, p99 {_ms(r.p99)} ms",
                  flush=True)
    memory = []
    for tickers in [int(t) for t in args.memory_tickers.split(",") if t]:
        idle, rss = await memory_phase(bootstrap, workdir, tickers, args.memory_bars,
                                       args.partitions, args.timeout)
        memory.append((tickers, idle, rss))
        print(f"memory, {tickers} tickers: {rss / 2**20:.0f} MB", flush=True)
    return results, baseline, memory


def main(args: argparse.Namespace) -> None:
    if args.soak:
        with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp:
            kafka = LocalKafka(port=0, data_dir=Path(tmp) / "kafka", heap="1g")
            try:
                kafka.start(timeout=120, log_file=Path(tmp) / "broker.log")
                asyncio.run(soak_phase(args, kafka.bootstrap_servers, Path(tmp)))
            finally:
                kafka.stop()
        return
    late = (sum(paced_bars(rate, args.latency_warmup, args.latency_seconds, args.tickers)
                for rate in args.rates) if args.latency_seconds else 0)
    work = make_workload(args.tickers, args.bars, late, args.news_per_bar)
    summary = []
    for partitions in [int(p) for p in args.partitions.split(",") if p]:
        args = argparse.Namespace(**{**vars(args), "partitions": partitions})
        with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
            workdir = Path(tmp)
            kafka = LocalKafka(port=0, data_dir=workdir / "kafka", heap="1g")
            try:
                kafka.start(timeout=120, log_file=workdir / "broker.log")
                broker = Process(psutil.Process(kafka.process.pid))
                results, baseline, memory = asyncio.run(
                    phases(args, work, kafka.bootstrap_servers, workdir, broker))
            finally:
                kafka.stop()
        report(results, baseline, memory, work, args)
        summary += [(partitions, baseline, r) for r in results]
    print("\n| partitions | config | pass-through bars/s | worker bars/s | × pass-through | "
          "expulsions | hand-over of all tasks, s |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for partitions, baseline, r in summary:
        print(f"| {partitions} | {r.name} | {_n(baseline.rate)} | {_n(r.rate)} | "
              f"{r.rate / baseline.rate:.3f} | {_n(r.expulsions)} | "
              f"{'-' if r.handover != r.handover else f'{r.handover:.2f}'} |")


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # run the finally blocks that stop the children


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--passthrough-child":
        signal.signal(signal.SIGTERM, _terminate)
        asyncio.run(passthrough_child(*sys.argv[2:]))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickers", type=int, default=50)
    parser.add_argument("--bars", type=int, default=2000, help="bars per ticker, pre-produced")
    parser.add_argument("--news-per-bar", type=float, default=0.05)
    parser.add_argument("--partitions", default=str(Settings().kafka.partitions),
                        help="partition counts, comma-separated (e.g. 4,16,64,128): each "
                        "gets a fresh broker, its own pass-through and a summary row")
    parser.add_argument("--rate", default="2000",
                        help="offered load of the latency phase, bars/s; several, "
                        "comma-separated, are offered in turn to the same worker")
    parser.add_argument("--latency-seconds", type=float, default=15.0,
                        help="seconds of paced input whose latency is counted")
    parser.add_argument("--latency-warmup", type=float, default=20.0,
                        help="seconds of paced input before those (not counted)")
    parser.add_argument("--eos-commit", default="0.05,0.2,1.0",
                        help="exactly-once commit intervals to measure, comma-separated")
    parser.add_argument("--memory-tickers", default="100,1000")
    parser.add_argument("--memory-bars", type=int, default=300,
                        help="bars per ticker in the memory runs (≥ snapshot_every)")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds any one phase may take")
    parser.add_argument("--workers", default="",
                        help="also drain the backlog with this many workers (e.g. 2), "
                        "comma-separated; use with --partitions 8")
    parser.add_argument("--model-dir", default="",
                        help="an exported sentiment model for the workers (default lexicon)")
    parser.add_argument("--soak", type=float, default=0.0,
                        help="instead: this many seconds of paced input at --rate with news "
                        "over --soak-tickers tickers (memory, p99 per minute, lag)")
    parser.add_argument("--soak-tickers", type=int, default=500)
    signal.signal(signal.SIGTERM, _terminate)
    started = time.monotonic()
    arguments = parser.parse_args()
    arguments.rates = [float(r) for r in arguments.rate.split(",") if r]
    main(arguments)
    print(f"\nwall time {time.monotonic() - started:.0f} s on {os.cpu_count()} cores")
