"""``gnosis demo``: the whole system on sample data, started and stopped in one command.

1. Writes the sample data (real GOOG/EURUSD bars, synthetic news) as CSV.
2. Starts a local Apache Kafka broker (KRaft) and creates the topics.
3. Starts a live worker process and waits for its ``/health``.
4. Publishes the sample through Kafka at a watchable pace while a live table shows the
   signals arriving on the ``signals`` topic.
5. Checks the Kafka path against the in-process replay: every field of every signal
   equal (floats within 1e-9).
6. Backtests the signals and writes the text and HTML reports.

It runs with :data:`DEMO_SETTINGS` (shorter feature windows than the defaults, sized for
the sample's few thousand bars per ticker) unless given other settings.

Everything it started is stopped on the way out, including on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter, deque
from pathlib import Path

import numpy as np
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from gnosis.config import Settings, duration_ns
from gnosis.events import TradingSignal, format_timestamp
from gnosis.replay.run import ReplayError

_STYLE = {"BUY": "bold green", "SELL": "bold red", "HOLD": "dim"}
_TOLERANCE = 1e-9
DEMO_SETTINGS = Path(__file__).with_name("config") / "demo.toml"
"""The demo's configuration file (why its windows are shorter: see its comments)."""


def signal_differences(live: list[TradingSignal], reference: list[TradingSignal],
                       tolerance: float = _TOLERANCE) -> list[str]:
    """Every way two signal lists differ, matched by ``signal_id``: a signal missing from
    either side, and each field of a matched pair that is not equal (floats: within
    ``tolerance``, absolute or relative; NaN equals NaN). Empty when they are the same."""
    by_id = {s.signal_id: s for s in live}
    expected = {s.signal_id for s in reference}
    out = [f"{i}: missing from the live signals" for i in expected - by_id.keys()]
    out += [f"{i}: not in the in-process replay" for i in by_id.keys() - expected]
    if len(by_id) < len(live):
        out.append(f"{len(live) - len(by_id)} live signals repeat an id")
    names = [f.name for f in dataclasses.fields(TradingSignal)]
    for ref in reference:
        got = by_id.get(ref.signal_id)
        if got is None:
            continue
        for name in names:
            a, b = getattr(got, name), getattr(ref, name)
            if isinstance(a, float) and isinstance(b, float):
                same = (math.isnan(a) and math.isnan(b)) or math.isclose(
                    a, b, rel_tol=tolerance, abs_tol=tolerance)
            else:
                same = a == b
            if not same:
                out.append(f"{ref.signal_id}: {name} {a!r} live, {b!r} in-process")
    return out


def _settings(settings: Settings, port: int, web_port: int) -> Settings:
    kafka = dataclasses.replace(settings.kafka, bootstrap_servers=f"127.0.0.1:{port}")
    worker = dataclasses.replace(settings.worker, web_port=web_port, app_id="gnosis-demo")
    return dataclasses.replace(settings, kafka=kafka, worker=worker)


def _env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    for section, key, value in settings.as_rows():
        env[f"GNOSIS_{section.upper()}__{key.upper()}"] = str(value)
    env.pop("GNOSIS_CONFIG", None)
    return env


def _wait_healthy(url: str, process: subprocess.Popen, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ReplayError(f"the worker exited with code {process.returncode}; see {log}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as response:
            if response.status == 200:
                return
        time.sleep(0.5)
    raise ReplayError(f"the worker was not healthy after {timeout:.0f} s; see {log}")


def _stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _table(latest: dict[str, TradingSignal], recent: deque[TradingSignal], counts: Counter,
           received: int, expected: int, rate: float) -> Panel:
    table = Table(expand=True)
    for column in ("ticker", "bar close", "signal", "confidence", "risk", "size", "Hurst",
                   "Hawkes", "sentiment", "reason"):
        table.add_column(column, no_wrap=column != "reason")
    for ticker in sorted(latest):
        s = latest[ticker]
        table.add_row(ticker, format_timestamp(s.ts)[:16], f"[{_STYLE[s.signal_type]}]"
                      f"{s.signal_type}[/]", f"{s.confidence:.2f}", s.risk_level,
                      f"{s.suggested_position_size:.1%}", f"{s.hurst_exponent:.2f}",
                      f"{s.hawkes_branching:.2f}",
                      f"{s.sentiment_mean:+.2f} ({s.sentiment_count})", s.reasons[0][:48])
    trades = Table("bar close", "ticker", "signal", "confidence", "size", "why",
                   title="latest BUY / SELL", expand=True)
    for s in reversed(recent):
        trades.add_row(format_timestamp(s.ts)[:16], s.ticker,
                       f"[{_STYLE[s.signal_type]}]{s.signal_type}[/]", f"{s.confidence:.2f}",
                       f"{s.suggested_position_size:.1%}", s.reasons[0])
    totals = "   ".join(f"[{_STYLE[k]}]{k}[/] {counts[k]:,}" for k in ("BUY", "SELL", "HOLD"))
    title = f"live signals · {received:,}/{expected:,} · {rate:,.0f}/s · {totals}"
    return Panel(Group(table, trades), title=title, border_style="cyan")


async def _watch(settings: Settings, expected: int, console: Console, timeout: float
                 ) -> list[TradingSignal]:
    from aiokafka import AIOKafkaConsumer

    from gnosis.security import client_options

    consumer = AIOKafkaConsumer(settings.kafka.signals_topic, **client_options(settings),
                                group_id=None, auto_offset_reset="earliest",
                                isolation_level="read_committed")
    out: list[TradingSignal] = []
    latest: dict[str, TradingSignal] = {}
    recent: deque[TradingSignal] = deque(maxlen=8)
    counts: Counter = Counter()
    started = time.monotonic()
    try:
        await consumer.start()
        with Live(_table(latest, recent, counts, 0, expected, 0.0), console=console,
                  refresh_per_second=8) as live:
            while len(out) < expected and time.monotonic() - started < timeout:
                batch = await consumer.getmany(timeout_ms=250)
                for records in batch.values():
                    for record in records:
                        s = TradingSignal.from_json(record.value)
                        out.append(s)
                        latest[s.ticker] = s
                        counts[s.signal_type] += 1
                        if s.signal_type != "HOLD":
                            recent.append(s)
                rate = len(out) / max(time.monotonic() - started, 1e-9)
                live.update(_table(latest, recent, counts, len(out), expected, rate))
    finally:
        await consumer.stop()
    return out


def _publish_paced(settings: Settings, bars, news, pace: float) -> None:
    """Publish in knowledge-time order (a bar known at its close, a headline
    ``replay.news_latency`` after its stamp, as the in-process replay takes them), ``pace``
    bars per second, each headline ahead of the bars known after it."""
    from gnosis.replay.kafka import publish_async

    delay = duration_ns(settings.replay.news_latency)

    async def run() -> None:
        chunk = max(1, int(pace / 4))
        news_i = 0
        for start in range(0, len(bars), chunk):
            part = bars[start:start + chunk]
            last = part[-1].ts
            j = news_i
            while j < len(news) and news[j].ts + delay <= last:
                j += 1
            began = time.monotonic()
            await publish_async(part, news[news_i:j], settings)
            news_i = j
            await asyncio.sleep(max(0.0, chunk / pace - (time.monotonic() - began)))
        if news_i < len(news):
            await publish_async([], news[news_i:], settings)

    asyncio.run(run())


def run_demo(workdir: Path, *, port: int = 19092, settings: Settings | None = None,
             console: Console | None = None, pace: float = 600.0) -> None:
    """Run the demo end to end (see the module docstring)."""
    import threading

    from gnosis.replay.inprocess import replay_frame, to_signals
    from gnosis.replay.readers import read_bars, read_news
    from gnosis.replay.run import backtest_files
    from gnosis.replay.sample import write_sample
    from gnosis.replay.synthetic import bars_to_events, news_to_events
    from gnosis.security import explained
    from gnosis.sinks.files import write_signals
    from gnosis.streams.kafka.broker import LocalKafka, free_port
    from gnosis.streams.topics import create_topics

    console = console or Console(stderr=True)
    workdir = workdir.resolve()
    settings = _settings(settings or Settings.load(), port, free_port())
    for stale in ("kafka", "worker"):
        shutil.rmtree(workdir / stale, ignore_errors=True)
    bars_csv, news_csv = write_sample(workdir / "data")
    bars = read_bars(bars_csv).frame
    news = read_news(news_csv).frame
    console.print(f"[bold]sample data[/]: {len(bars):,} real bars (GOOG 1d, EURUSD 1h) and "
                  f"{len(news):,} synthetic headlines → {bars_csv.parent}")

    kafka = LocalKafka(port=port, data_dir=workdir / "kafka")
    worker: subprocess.Popen | None = None
    # Ctrl-C, kill and a closed terminal all unwind through the finally below.
    previous = {sig: signal.signal(sig, signal.default_int_handler)
                for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        with console.status(f"starting Apache Kafka (KRaft) on 127.0.0.1:{port}…"):
            kafka.start()
            create_topics(settings)
        console.print(f"[bold]kafka[/]: up on {kafka.bootstrap_servers}, topics created")
        log = workdir / "worker.log"
        with console.status("starting the worker…"), log.open("wb") as fh:
            worker = subprocess.Popen([sys.executable, "-m", "gnosis.cli", "worker"],
                                      env=_env(settings), stdout=fh, stderr=subprocess.STDOUT,
                                      start_new_session=True)
            _wait_healthy(f"http://127.0.0.1:{settings.worker.web_port}/health", worker,
                          120.0, log)
        console.print(f"[bold]worker[/]: healthy; metrics on "
                      f"http://127.0.0.1:{settings.worker.web_port}/metrics, log {log}")

        bar_events, news_events = bars_to_events(bars), news_to_events(news)
        publisher = threading.Thread(target=_publish_paced,
                                     args=(settings, bar_events, news_events, pace), daemon=True)
        publisher.start()
        with explained(settings):
            live = asyncio.run(_watch(settings, len(bars), console,
                                      timeout=60.0 + 4 * len(bars) / pace))
        publisher.join(timeout=30)

        reference = to_signals(replay_frame(bars, news, settings))
        differences = signal_differences(live, reference)
        fields = len(dataclasses.fields(TradingSignal))
        if differences:
            console.print(f"[bold red]Kafka path vs in-process replay[/]: "
                          f"{len(differences):,} differences ({len(live):,} received, "
                          f"{len(reference):,} expected); the first:")
            for line in differences[:10]:
                console.print(f"  {line}", highlight=False)
        else:
            console.print(f"[bold green]Kafka path vs in-process replay[/]: all "
                          f"{len(reference):,} signals identical in all {fields} fields "
                          f"(floats within {_TOLERANCE:g})")

        signals_path = workdir / "signals.jsonl"
        write_signals(sorted(live, key=lambda s: (s.ts, s.ticker)), signals_path)
        text, html = backtest_files(signals_path, bars_csv, workdir / "report",
                                    settings=settings, console=console)
        console.print(Group(text.read_text()))
        for ticker in sorted({s.ticker for s in live}):
            kinds = Counter(s.signal_type for s in live if s.ticker == ticker)
            mix = ", ".join(f"{kinds[k]:,} {k}" for k in ("BUY", "SELL", "HOLD"))
            console.print(f"[bold]signals[/] {ticker}: {mix}")
        console.print(f"[bold]signals[/]: {signals_path} (mean confidence "
                      f"{np.mean([s.confidence for s in live]) if live else 0:.2f})")
        console.print(f"[bold green]report[/]: {html} (open it in a browser: one page per "
                      f"instrument with price and signals, equity, drawdown) and {text}")
        if differences:
            raise ReplayError("the Kafka path and the in-process replay differ (see above)")
    finally:
        with console.status("stopping the worker and the broker…"):
            _stop(worker)
            kafka.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
