"""Research loop: a sweep on one process vs a 2-worker Dask LocalCluster, a sweep's cost
per configuration vs replaying from scratch, and the max-statistic permutation test.

Three figures, each against a baseline measured in the same run:

1. ``sweep`` of a 100-configuration grid over rule thresholds (100 tickers × 10,000 bars)
   in one process, then on a ``LocalCluster`` of two worker processes: the speed-up.
2. The same sweep's cost per configuration vs ``replay_frame`` + ``run_portfolio`` from
   scratch for one configuration (the mean of a few): how much cheaper a configuration
   is when features and scores are shared.
3. ``permuted_statistics`` + ``max_statistic_p_values``: 1,000 permutations × 100
   configurations × 100,000 bars (one instrument), against one single-configuration
   permutation test (``gnosis.backtest.permutation_test``) of the same size.

    .venv/bin/python bench/bench_sweep.py [--tickers 100] [--bars 10000] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core per process, workers included

import numpy as np

from gnosis.backtest import BacktestRunner, permutation_test
from gnosis.config import Settings
from gnosis.models.sentiment.lexicon import LexiconScorer
from gnosis.replay.inprocess import replay_frame
from gnosis.replay.synthetic import synthetic_bars, synthetic_news
from gnosis.research import (
    Grid,
    max_statistic_p_values,
    permuted_statistics,
    prepare_market,
    sweep,
)
from gnosis.research.cluster import open_client

GRID = Grid.from_dict({"rules": {
    "trending_hurst": [0.5, 0.525, 0.55, 0.575, 0.6],
    "positive_sentiment": [0.0, 0.05, 0.1, 0.15, 0.2],
    "min_confidence": [0.0, 0.2, 0.3, 0.4],
}})


def _cpu_seconds() -> float:
    """User + system CPU seconds of the calling process."""
    times = os.times()
    return times.user + times.system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=100)
    parser.add_argument("--bars", type=int, default=10_000, help="bars per ticker")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scratch-runs", type=int, default=3,
                        help="from-scratch replays to average for the baseline")
    parser.add_argument("--perm-bars", type=int, default=100_000)
    parser.add_argument("--perm-configs", type=int, default=100)
    parser.add_argument("--permutations", type=int, default=1_000)
    args = parser.parse_args()

    settings = Settings()
    scorer = LexiconScorer()
    bars = synthetic_bars(args.tickers, args.bars, seed=1)
    news = synthetic_news(bars, per_bar=0.01, seed=2)
    configs = GRID.configurations()
    print(f"data: {len(bars):,} bars, {len(news):,} headlines, {args.tickers} tickers; "
          f"grid: {len(configs)} configurations")

    t0 = time.perf_counter()
    market = prepare_market(bars, news, settings, scorer)
    t_prepare = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    local = sweep(market, grid=GRID, settings=settings)
    t_local, cpu_local = time.perf_counter() - t0, time.process_time() - c0
    with open_client(workers=args.workers) as client:
        before = client.run(_cpu_seconds)  # also: workers are up before the clock starts
        t0, c0 = time.perf_counter(), time.process_time()
        remote = sweep(market, grid=GRID, settings=settings, client=client)
        t_cluster, cpu_driver = time.perf_counter() - t0, time.process_time() - c0
        worker_cpu = [after - before[w] for w, after in client.run(_cpu_seconds).items()]
    same = local.table.equals(remote.table)
    print(f"prepare (score headlines, split tickers): {t_prepare:6.2f} s")
    print(f"sweep, one process:                       {t_local:6.2f} s "
          f"({t_local / len(configs) * 1000:.0f} ms per configuration)")
    print(f"sweep, LocalCluster of {args.workers} processes:        {t_cluster:6.2f} s "
          f"(identical table: {same})")
    print(f"  speed-up cluster / one process:         {t_local / t_cluster:6.2f}x "
          "(target >= 1.6x)")
    # On a machine shared with other work the wall clock says little about the split;
    # CPU seconds per process say how evenly the work was cut and what it cost in all.
    print(f"  CPU seconds: one process {cpu_local:.1f}; cluster workers "
          f"{', '.join(f'{c:.1f}' for c in worker_cpu)} + driver {cpu_driver:.1f}")
    print(f"  CPU-bound speed-up on free cores (one process CPU / (busiest worker + "
          f"driver)): {cpu_local / (max(worker_cpu) + cpu_driver):.2f}x")

    prices = {}
    for ticker, group in bars.groupby("ticker"):
        frame = group.set_index("ts")[["open", "high", "low", "close", "volume"]]
        frame.index = frame.index.astype("datetime64[ns, UTC]")
        prices[ticker] = frame.rename(columns=str.capitalize)
    times = []
    for overrides in configs[:args.scratch_runs]:
        applied = GRID.apply(settings, overrides)
        t0 = time.perf_counter()
        frame = replay_frame(bars, news, applied, scorer)
        BacktestRunner.from_config(applied.backtest).run_portfolio(frame, prices,
                                                                   validate=False)
        times.append(time.perf_counter() - t0)
    scratch = float(np.mean(times))
    per_config = t_local / len(configs)
    print(f"from scratch (replay_frame + run_portfolio), per configuration: {scratch:6.2f} s")
    print(f"  sweep per configuration (one process):  {per_config:6.3f} s → "
          f"{scratch / per_config:5.1f}x cheaper (target >= 5x)")

    rng = np.random.default_rng(3)
    returns = rng.standard_normal(args.perm_bars) * 0.001
    drift = np.cumsum(rng.standard_normal((args.perm_configs, args.perm_bars)), axis=1)
    positions = np.sign(drift - drift.mean(axis=1, keepdims=True))
    t0 = time.perf_counter()
    permutation_test(positions[0], returns, n_permutations=args.permutations, seed=1)
    t_single = time.perf_counter() - t0
    t0 = time.perf_counter()
    observed, null = permuted_statistics(positions, returns, args.permutations, seed=1)
    max_statistic_p_values(observed, null)
    t_max = time.perf_counter() - t0
    print(f"max-statistic test: {args.permutations:,} permutations × {args.perm_configs} "
          f"configurations × {args.perm_bars:,} bars: {t_max:6.2f} s (target <= 60 s)")
    print(f"  baseline, one configuration's permutation test: {t_single:6.2f} s → "
          f"{args.perm_configs} configurations cost {t_max / t_single:5.2f}x one")


if __name__ == "__main__":
    main()
