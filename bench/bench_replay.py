"""Whole in-process replay: features + sentiment + signals + backtest on many tickers.

The figure is bars per second through ``replay_frame`` (vectorised functional core,
headlines scored by the lexicon) followed by ``BacktestRunner.run_portfolio`` on the
signals it produced. The baseline, measured in the same run, is the streaming core
(``gnosis.engine.run_events``: one ``TickerEngine.on_bar`` per bar, what the live worker
runs) on a slice of the same data; both produce the same signals.

It also times writing the signal file as ``gnosis replay`` does (Parquet, every signal
with the reasons the live engine gives it), against writing the same frame without
reasons, which is what the replay wrote before.

``--replay-only`` times ``replay_frame`` alone (no backtest, signal file or baseline), e.g.
to compare two code trees selected by PYTHONPATH; ``--news-received-at`` gives every
headline a ``received_at`` column (stamp + 0 to 180 s, drawn at random), so each bar's
knowledge time picks its own subset of the window: the slowest path of the as-of
sentiment.

    .venv/bin/python bench/bench_replay.py [--tickers 100] [--bars 10000]
    .venv/bin/python bench/bench_replay.py --replay-only [--news-received-at]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core, as the target says

import numpy as np

from gnosis.backtest import BacktestRunner
from gnosis.config import Settings
from gnosis.engine import run_events
from gnosis.replay.inprocess import replay_frame, write_frame
from gnosis.replay.synthetic import (
    bars_to_events,
    news_to_events,
    synthetic_bars,
    synthetic_news,
)
from gnosis.sinks.files import write_signals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=100)
    parser.add_argument("--bars", type=int, default=10_000, help="bars per ticker")
    parser.add_argument("--baseline-bars", type=int, default=3_000,
                        help="bars per ticker for the streaming baseline")
    parser.add_argument("--replay-only", action="store_true",
                        help="time replay_frame only")
    parser.add_argument("--news-received-at", action="store_true",
                        help="headlines carry received_at (stamp + 0..180 s)")
    args = parser.parse_args()

    settings = Settings()
    t0 = time.perf_counter()
    bars = synthetic_bars(args.tickers, args.bars, seed=1)
    news = synthetic_news(bars, per_bar=0.01, seed=2)
    if args.news_received_at:
        late = np.random.default_rng(3).integers(0, 180_000_000_000, len(news))
        news = news.assign(received_at=news["ts"].to_numpy(np.int64) + late)
    print(f"data: {len(bars):,} bars, {len(news):,} headlines, {args.tickers} tickers "
          f"(generated in {time.perf_counter() - t0:.1f} s)")

    t0, cpu0 = time.perf_counter(), time.process_time()
    frame = replay_frame(bars, news, settings)
    t_replay, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    if args.replay_only:
        # CPU time too: on a shared machine it varies less than the wall clock.
        print(f"replay_frame:   {t_replay:6.2f} s  ({len(bars) / t_replay:,.0f} bars/s; "
              f"{cpu:.2f} CPU s, {len(bars) / cpu:,.0f} bars per CPU s; "
              f"{int(frame['sentiment_count'].sum()):,} headline counts)")
        return
    prices = {t: g.set_index("ts")[["open", "high", "low", "close", "volume"]]
              .rename(columns=str.capitalize) for t, g in bars.groupby("ticker")}
    for p in prices.values():
        p.index = p.index.astype("datetime64[ns, UTC]")
    t0 = time.perf_counter()
    result = BacktestRunner().run_portfolio(frame, prices, validate=False)
    t_backtest = time.perf_counter() - t0
    total = t_replay + t_backtest
    rate = len(bars) / total
    print(f"replay_frame:   {t_replay:6.2f} s  ({len(bars) / t_replay:,.0f} bars/s)")
    print(f"run_portfolio:  {t_backtest:6.2f} s  ({len(bars) / t_backtest:,.0f} bars/s, "
          f"{result.num_trades} trades)")
    print(f"whole replay:   {total:6.2f} s  ({rate:,.0f} bars/s; target >= 200,000)")

    with tempfile.TemporaryDirectory() as folder:
        t0 = time.perf_counter()
        write_frame(frame, Path(folder) / "signals.parquet")
        t_sink = time.perf_counter() - t0
        bare = frame.assign(reasons=[[] for _ in range(len(frame))])
        t0 = time.perf_counter()
        write_signals(bare, Path(folder) / "bare.parquet")
        t_bare = time.perf_counter() - t0
    print(f"signal file with reasons: {t_sink:6.2f} s ({len(frame) / t_sink:,.0f} signals/s); "
          f"without reasons: {t_bare:.2f} s; ratio {t_sink / t_bare:.2f}x")

    sub = bars[bars.groupby("ticker").cumcount() < args.baseline_bars]
    sub_news = news[news["ts"] <= sub["ts"].max()]
    events, items = bars_to_events(sub), news_to_events(sub_news)
    t0 = time.perf_counter()
    run_events(events, items, settings)
    t_stream = time.perf_counter() - t0
    base = len(sub) / t_stream
    print(f"baseline, streaming core (run_events) on {len(sub):,} bars: {t_stream:.2f} s "
          f"({base:,.0f} bars/s, {1e6 / base:.1f} µs/bar)")
    print(f"ratio whole replay / streaming core: {rate / base:.1f}x")


if __name__ == "__main__":
    main()
