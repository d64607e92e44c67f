"""A late news feed, live and replayed: what point-in-time news changes.

A market of 8 tickers x 900 one-minute bars and 1,200 headlines (a third name two
tickers) reaches Kafka as a real feed delivers it: each bar 0.2-1.5 s after its close,
each headline 0-180 s after its stamp (60 % within 3 s, 25 % 10-50 s, 15 % 60-180 s
late). Both are published in arrival order, paced at ``--speed`` times real time, by two
ordinary aiokafka producers (bars keyed by ticker, news by its first ticker) to one
``gnosis worker`` at its defaults on a local broker (topics from ``gnosis kafka topics``).
The signals are read back with kcat (``read_committed``). Then, as CLI subprocesses:
``gnosis record`` of the topics and ``gnosis replay`` of the recording, and ``gnosis
replay`` of the plain files a quant would have (bars and news CSV without
``received_at``), once with the default ``replay.news_latency`` (1m) and once with 0
(every headline known at its stamp, as before knowledge times).

Per source it prints the sum of ``sentiment_count``, the signals that differ from the live
ones (any field; floats to 1e-9) and the BUY/SELL decisions that do, and, by brute force
against the designed arrival times, the signals that count a headline which had not yet
arrived when the bar arrived (look-ahead) and the signals that leave out a headline of
their window which had. "Own rule" checks each source's counts against a brute-force
count under the knowledge times it used (broker times live and in the recording, the
modelled ones for the files); it must be 0.

Pacing squeezes a second of feed into 1 / ``--speed`` s, so two events of the feed less
than a few ms of wall time apart may reach the broker in the other order; live signals
follow the broker's order, which is what look-ahead against the designed times shows.

    .venv/bin/python bench/bench_late_news.py [--speed 300] [--seed 7] [--active-rules]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from gnosis.config import Settings, duration_ns
from gnosis.demo import _wait_healthy
from gnosis.events import Bar, NewsItem, TradingSignal, format_timestamp
from gnosis.models.sentiment import LexiconScorer
from gnosis.replay.readers import read_bars, read_news
from gnosis.replay.synthetic import bars_to_events, news_to_events, synthetic_bars, synthetic_news
from gnosis.streams.kafka.broker import LocalKafka, free_port

TICKERS = ["AAPL", "AMZN", "GOOG", "META", "MSFT", "NFLX", "NVDA", "TSLA"]
ACTIVE_RULES = {
    "GNOSIS_FEATURES__WINDOW": "160", "GNOSIS_FEATURES__VOL_LONG": "48",
    "GNOSIS_FEATURES__VOL_SHORT": "8", "GNOSIS_FEATURES__VSA_WINDOW": "10",
    "GNOSIS_FEATURES__TREND_LOOKBACK": "10", "GNOSIS_RULES__HURST_SIGNIFICANCE": "0.0",
    "GNOSIS_RULES__TRENDING_HURST": "0.5", "GNOSIS_RULES__MEAN_REVERTING_HURST": "0.5",
    "GNOSIS_RULES__POSITIVE_SENTIMENT": "0.02", "GNOSIS_RULES__NEGATIVE_SENTIMENT": "-0.02",
    "GNOSIS_RULES__LOW_CLUSTERING": "1.5", "GNOSIS_RULES__NO_SUPPLY_VSA": "0.0",
}
"""``--active-rules``: small windows and thresholds a random walk meets, so that the
signals decide BUY and SELL (at the defaults this market gives HOLDs only)."""
SECOND_NS = 1_000_000_000


@dataclass(frozen=True)
class Arrival:
    """One event of the feed and when it reaches Kafka (feed clock, epoch ns)."""

    at: int
    event: Bar | NewsItem


def feed(bars: list[Bar], news: list[NewsItem], seed: int) -> list[Arrival]:
    """The events in arrival order: bars 0.2-1.5 s after their close; headlines within
    3 s (60 %), 10-50 s (25 %) or 60-180 s (15 %) after their stamp."""
    rng = np.random.default_rng(seed)
    out = [Arrival(b.ts + int(rng.uniform(0.2, 1.5) * SECOND_NS), b) for b in bars]
    for item in news:
        u = rng.uniform()
        low, high = (0, 3) if u < 0.60 else (10, 50) if u < 0.85 else (60, 180)
        out.append(Arrival(item.ts + int(rng.uniform(low, high) * SECOND_NS), item))
    return sorted(out, key=lambda a: a.at)


async def publish(bootstrap: str, arrivals: list[Arrival], speed: float) -> float:
    """Send every event at its arrival time scaled by ``speed``, one default producer per
    topic; returns the wall seconds it took."""
    from aiokafka import AIOKafkaProducer

    k = Settings().kafka
    bars_out = AIOKafkaProducer(bootstrap_servers=bootstrap)
    news_out = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await bars_out.start()
    await news_out.start()
    try:
        started, first = time.monotonic(), arrivals[0].at
        for a in arrivals:
            if (wait := started + (a.at - first) / SECOND_NS / speed - time.monotonic()) > 0:
                await asyncio.sleep(wait)
            if isinstance(a.event, Bar):
                await bars_out.send(k.bars_topic, a.event.to_json(),
                                    key=a.event.ticker.encode())
            else:
                await news_out.send(k.news_topic, a.event.to_json(),
                                    key=a.event.tickers[0].encode())
        await bars_out.flush()
        await news_out.flush()
        return time.monotonic() - started
    finally:
        await bars_out.stop()
        await news_out.stop()


# ---------------------------------------------------------------------------- processes


def gnosis(env: dict[str, str], cwd: Path, *args: object) -> str:
    """Run ``gnosis ARGS`` (this interpreter); its stderr, or an error naming the command."""
    done = subprocess.run([sys.executable, "-m", "gnosis.cli", *map(str, args)], cwd=cwd,
                          env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=600, check=False)
    if done.returncode:
        raise RuntimeError(f"gnosis {' '.join(map(str, args))}: exit {done.returncode}\n"
                           f"{done.stdout}{done.stderr}")
    return done.stdout + done.stderr


def kcat_signals(bootstrap: str, topic: str) -> list[TradingSignal]:
    """The committed records of ``topic``, read from the beginning with kcat."""
    done = subprocess.run(["kcat", "-C", "-b", bootstrap, "-t", topic, "-o", "beginning",
                           "-e", "-q", "-X", "isolation.level=read_committed"],
                          capture_output=True, timeout=120, check=True)
    return [TradingSignal.from_json(line) for line in done.stdout.splitlines() if line]


def read_live(bootstrap: str, expected: int, timeout: float) -> list[TradingSignal]:
    """kcat the signals topic until ``expected`` distinct signals are there (or timeout);
    one per signal id (at-least-once may repeat one)."""
    deadline = time.monotonic() + timeout
    while True:
        got = {s.signal_id: s for s in kcat_signals(bootstrap, Settings().kafka.signals_topic)}
        if len(got) >= expected or time.monotonic() > deadline:
            return list(got.values())
        time.sleep(1.0)


def read_jsonl(path: Path) -> dict[str, TradingSignal]:
    signals = (TradingSignal.from_json(line) for line in path.read_bytes().splitlines() if line)
    return {s.signal_id: s for s in signals}


def write_csv(bars: list[Bar], news: list[NewsItem], folder: Path) -> tuple[Path, Path]:
    """Bars and news as a vendor delivers them: CSV, no ``received_at``."""
    bars_csv, news_csv = folder / "bars.csv", folder / "news.csv"
    with bars_csv.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["ticker", "timestamp", "open", "high", "low", "close", "volume",
                      "interval"])
        out.writerows([b.ticker, format_timestamp(b.ts), repr(b.open), repr(b.high),
                       repr(b.low), repr(b.close), repr(b.volume), b.interval] for b in bars)
    with news_csv.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["id", "timestamp", "tickers", "headline"])
        out.writerows([n.id, format_timestamp(n.ts), ";".join(n.tickers), n.headline]
                      for n in news)
    return bars_csv, news_csv


# ---------------------------------------------------------------------------- comparison


def same(a: TradingSignal, b: TradingSignal) -> bool:
    """Every field equal, floats to 1e-9."""
    for f in fields(TradingSignal):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, float) and isinstance(y, float):
            if not math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9):
                return False
        elif x != y:
            return False
    return True


def decided(s: TradingSignal) -> bool:
    return s.signal_type in {"BUY", "SELL"}


@dataclass
class Audit:
    """A source's signals against the designed arrival times."""

    look_ahead: int = 0
    """Signals counting a headline that arrived after their bar."""
    look_ahead_pairs: int = 0
    """(signal, headline) pairs of those."""
    missed: int = 0
    """Signals leaving out a headline of their window that arrived before their bar."""
    own_rule: int = 0
    """Signals whose count differs from the brute-force count under the source's rule."""


def audit(signals: dict[str, TradingSignal], bars: list[Bar], news: list[NewsItem],
          arrived: dict[int, int], known: Callable[[Bar | NewsItem], int],
          window_ns: int) -> Audit:
    """Brute force per bar: the headlines naming its ticker and stamped in its window that
    the source knew by the bar (``known``), against those that had truly arrived by then
    (``arrived``, by ``id()``)."""
    from gnosis.events import signal_id

    named: dict[str, list[NewsItem]] = {}
    for n in news:
        for ticker in n.tickers:
            named.setdefault(ticker, []).append(n)
    out = Audit()
    for bar in bars:
        s = signals.get(signal_id(bar.ticker, bar.ts, bar.interval))
        if s is None:
            continue
        window = [n for n in named.get(bar.ticker, []) if bar.ts - window_ns < n.ts <= bar.ts]
        counted = [known(n) <= known(bar) for n in window]
        truly = [arrived[id(n)] <= arrived[id(bar)] for n in window]
        early = sum(c and not t for c, t in zip(counted, truly, strict=True))
        out.look_ahead += early > 0
        out.look_ahead_pairs += early
        out.missed += any(t and not c for c, t in zip(counted, truly, strict=True))
        out.own_rule += s.sentiment_count != sum(counted)
    return out


def main(args: argparse.Namespace) -> None:
    settings = Settings()
    frame = synthetic_bars(TICKERS, args.bars, seed=args.seed)
    # synthetic_news draws int(bars * per_bar) headlines: the half keeps float error out.
    news_frame = synthetic_news(frame, per_bar=(args.headlines + 0.5) / len(frame),
                                seed=args.seed + 1, multi_ticker=1 / 3)
    bars, news = bars_to_events(frame), news_to_events(news_frame)
    arrivals = feed(bars, news, args.seed + 2)
    arrived = {id(a.event): a.at for a in arrivals}
    late = [(a.at - a.event.ts) / SECOND_NS for a in arrivals if isinstance(a.event, NewsItem)]
    print(f"{len(bars):,} bars ({len(TICKERS)} tickers), {len(news):,} headlines "
          f"({sum(len(n.tickers) > 1 for n in news):,} name two tickers); headline delay "
          f"p50 {np.median(late):.1f} s, {np.mean(np.array(late) > 60):.0%} over a minute; "
          f"feed {(arrivals[-1].at - arrivals[0].at) / SECOND_NS / 3600:.1f} h at "
          f"{args.speed:g}x", flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-late-news-") as tmp:
        folder = Path(tmp)
        kafka = LocalKafka(port=0, data_dir=folder / "kafka", heap="1g")
        kafka.start(timeout=120, log_file=folder / "broker.log")
        worker = None
        try:
            bootstrap, port = kafka.bootstrap_servers, free_port()
            env = {"GNOSIS_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
                   "GNOSIS_WORKER__WEB_PORT": str(port), "OMP_NUM_THREADS": "1",
                   **(ACTIVE_RULES if args.active_rules else {})}
            gnosis(env, folder, "kafka", "topics")
            with (folder / "worker.log").open("ab") as log:
                worker = subprocess.Popen([sys.executable, "-m", "gnosis.cli", "worker"],
                                          cwd=folder, env={**os.environ, **env}, stdout=log,
                                          stderr=subprocess.STDOUT)
            _wait_healthy(f"http://127.0.0.1:{port}/health", worker, 120,
                          folder / "worker.log")
            took = asyncio.run(publish(bootstrap, arrivals, args.speed))
            print(f"published in {took:.0f} s", flush=True)
            live = {s.signal_id: s for s in read_live(bootstrap, len(bars), 180)}
            worker.terminate()
            worker.wait(30)
            print(gnosis(env, folder, "record", folder / "rec").strip(), flush=True)
            gnosis(env, folder, "replay", folder / "rec" / "bars.parquet",
                   folder / "rec" / "news.parquet", "--out", folder / "recording.jsonl")
            bars_csv, news_csv = write_csv(bars, news, folder)
            gnosis(env, folder, "replay", bars_csv, news_csv, "--out", folder / "file-1m.jsonl")
            gnosis({**env, "GNOSIS_REPLAY__NEWS_LATENCY": "0s"}, folder, "replay", bars_csv,
                   news_csv, "--out", folder / "file-0.jsonl")
            recorded_bars = read_bars(folder / "rec" / "bars.parquet").frame
            recorded_news = read_news(folder / "rec" / "news.parquet").frame
            sources = {"live": live,
                       "replay of the recording": read_jsonl(folder / "recording.jsonl"),
                       "file replay, news_latency 1m": read_jsonl(folder / "file-1m.jsonl"),
                       "file replay, news_latency 0": read_jsonl(folder / "file-0.jsonl")}
        finally:
            if worker is not None and worker.poll() is None:
                worker.kill()
                worker.wait(10)
            kafka.stop()

    broker_bar = {(t, int(ts)): int(k) for t, ts, k in zip(
        recorded_bars["ticker"], recorded_bars["ts"], recorded_bars["received_at"],
        strict=True)}
    broker_news = dict(zip(recorded_news["id"], recorded_news["received_at"].astype(int),
                           strict=True))
    latency = duration_ns(settings.replay.news_latency)

    def broker(e: Bar | NewsItem) -> int:
        return broker_bar[(e.ticker, e.ts)] if isinstance(e, Bar) else broker_news[e.id]

    def modelled(delay: int) -> Callable[[Bar | NewsItem], int]:
        return lambda e: e.ts if isinstance(e, Bar) else e.ts + delay

    rules = {"live": broker, "replay of the recording": broker,
             "file replay, news_latency 1m": modelled(latency),
             "file replay, news_latency 0": modelled(0)}
    window = duration_ns(settings.rules.sentiment_window)
    scores = LexiconScorer().score_batch([n.headline for n in news])
    print(f"\nsignals arrived: {len(live):,} of {len(bars):,}; "
          f"{sum(decided(s) for s in live.values()):,} live BUY/SELL; lexicon scores "
          f"non-zero for {sum(s.score != 0 for s in scores):,} headlines\n")
    print("| source | Σ sentiment_count | signals ≠ live | BUY/SELL ≠ live | look-ahead "
          "signals (pairs) | signals missing an arrived headline | counts ≠ own rule |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, signals in sources.items():
        common = [sid for sid in signals if sid in live]
        differ = sum(not same(signals[sid], live[sid]) for sid in common)
        decisions = sum(signals[sid].signal_type != live[sid].signal_type
                        and (decided(signals[sid]) or decided(live[sid])) for sid in common)
        found = audit(signals, bars, news, arrived, rules[name], window)
        total = sum(s.sentiment_count for s in signals.values())
        missing = len(bars) - len(common)
        extra = f" (+{missing} not live)" if missing else ""
        vs_live = "-" if name == "live" else f"{differ:,}{extra}"
        print(f"| {name} | {total:,} | {vs_live} | "
              f"{'-' if name == 'live' else f'{decisions:,}'} | "
              f"{found.look_ahead:,} ({found.look_ahead_pairs:,}) | {found.missed:,} | "
              f"{found.own_rule:,} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=900, help="one-minute bars per ticker")
    parser.add_argument("--headlines", type=int, default=1200)
    parser.add_argument("--speed", type=float, default=300.0,
                        help="times real time the feed is published at")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--active-rules", action="store_true",
                        help="worker and replays with small windows and loose thresholds")
    started = time.monotonic()
    main(parser.parse_args())
    print(f"\nwall time {time.monotonic() - started:.0f} s on {os.cpu_count()} cores")
