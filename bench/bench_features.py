"""Feature cost: incremental update per bar vs the vectorised form, and state memory.

Run: .venv/bin/python bench/bench_features.py [--bars 1000000] [--before REF]

For windows 256, 512 and 1024 (other settings default) it times
TickerFeatures.update over a synthetic series (mean and p99 per bar), the same bars
through compute_features (cost per bar, the baseline), and their ratio; then
compute_features over the full series; then the memory of one ticker's state at
window 512 (tracemalloc of construction plus warm-up, and the sum of its buffers). A
short compute_features run per window first builds what is built once per process (the
Hurst estimator's spectral table), so that it is not charged to the timed bars. With
``--before REF`` it also times the Hurst estimator of git revision REF against the
current one, alternating calls (the baseline in the same run).

Last, ``--tickers`` tickers whose bars close at the same times (as a market's do): the
cost of one close (every ticker's update) with each ticker at its own stride points
(:func:`~gnosis.features.ticker_phase`, what the engine does) against all of them at
phase 0, where they re-estimate Hurst and Hawkes on the same bars (the baseline, same run).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from dataclasses import replace

import numpy as np

from gnosis.config import FeatureConfig
from gnosis.features import TickerFeatures, compute_features, ticker_phase
from gnosis.features.hurst import hurst_series, whittle_rows


def synthetic(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.standard_normal(n) * 0.002))
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) * (1 + rng.exponential(0.001, n))
    low = np.minimum(open_, close) * (1 - rng.exponential(0.001, n))
    volume = rng.lognormal(10.0, 0.7, n)
    ts = np.arange(n, dtype=np.int64) * 60_000_000_000
    return {"ts": ts, "open": open_, "high": high, "low": low, "close": close,
            "volume": volume}


def incremental(config: FeatureConfig, bars: dict[str, np.ndarray]) -> np.ndarray:
    rows = list(zip(*(bars[k].tolist() for k in ("ts", "open", "high", "low", "close",
                                                   "volume")), strict=True))
    state = TickerFeatures(config)
    clock = time.perf_counter
    costs = np.empty(len(rows))
    for i, row in enumerate(rows):
        start = clock()
        state.update(*row)
        costs[i] = clock() - start
    return costs


def state_memory(config: FeatureConfig, bars: dict[str, np.ndarray]) -> tuple[int, int]:
    rows = list(zip(*(bars[k][:5_000].tolist() for k in ("ts", "open", "high", "low",
                                                          "close", "volume")), strict=True))
    gc.collect()
    tracemalloc.start()
    state = TickerFeatures(config)
    for row in rows:
        state.update(*row)
    gc.collect()
    traced, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    buffers = sum(sys.getsizeof(getattr(state, name)) for name in state.__slots__
                  if hasattr(state, name))
    return traced, buffers + sys.getsizeof(state)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--incremental-bars", type=int, default=30_000)
    parser.add_argument("--tickers", type=int, default=50,
                        help="tickers closing together, for the per-close cost")
    parser.add_argument("--before", metavar="REF",
                        help="also time the Hurst estimator of this git revision")
    args = parser.parse_args()
    bars = synthetic(args.bars)
    part = {k: v[: args.incremental_bars] for k, v in bars.items()}
    print(f"{'window':>6} {'update mean us':>15} {'p99 us':>8} {'batch us/bar':>13} "
          f"{'ratio':>7}")
    for window in (256, 512, 1024):
        config = replace(FeatureConfig(), window=window)
        # Warm-up: per-window tables (the Hurst spectral shapes) are built once per process.
        compute_features(**{k: v[: 2 * window] for k, v in part.items()}, config=config)
        costs = incremental(config, part)
        start = time.perf_counter()
        compute_features(**part, config=config)
        batch = (time.perf_counter() - start) / args.incremental_bars
        print(f"{window:>6} {costs.mean() * 1e6:>15.1f} {np.percentile(costs, 99) * 1e6:>8.1f} "
              f"{batch * 1e6:>13.2f} {costs.mean() / batch:>7.1f}")
    config = FeatureConfig()
    start = time.perf_counter()
    compute_features(**bars, config=config)
    elapsed = time.perf_counter() - start
    print(f"compute_features, {args.bars:,} bars, window 512: {elapsed:.2f} s "
          f"({args.bars / elapsed:,.0f} bars/s)")
    traced, owned = state_memory(config, bars)
    print(f"state at window 512: {traced / 1024:.1f} KB traced (tracemalloc), "
          f"{owned / 1024:.1f} KB in its own buffers and object")
    if args.before:
        hurst_against(args.before, bars)
    closes_together(config, part, args.tickers)


def closes_together(config: FeatureConfig, bars: dict[str, np.ndarray], tickers: int,
                    warm: int = 3_000, closes: int = 3_000) -> None:
    """Per close of ``tickers`` tickers (the same bars for each, which does not matter
    here): milliseconds to update all of them, staggered phases against phase 0."""
    rows = list(zip(*(bars[k][:warm + closes].tolist() for k in
                      ("ts", "open", "high", "low", "close", "volume")), strict=True))
    names = [f"T{i:03d}" for i in range(tickers)]
    clock = time.perf_counter
    for label, phases in (("all at phase 0 (baseline)", [0] * tickers),
                          ("own phase per ticker", [ticker_phase(t) for t in names])):
        states = [TickerFeatures(config, phase) for phase in phases]
        costs = np.empty(len(rows) - warm)
        for i, row in enumerate(rows):
            start = clock()
            for state in states:
                state.update(*row)
            if i >= warm:
                costs[i - warm] = clock() - start
        p50, p99 = np.percentile(costs, [50, 99]) * 1e3
        print(f"{tickers} tickers closing together, {label}: per close p50 {p50:.1f} ms, "
              f"p99 {p99:.1f} ms, max {costs.max() * 1e3:.1f} ms")


def hurst_against(ref: str, bars: dict[str, np.ndarray], reps: int = 3_000) -> None:
    """One Hurst evaluation at window 512 (what the stream does every ``hurst_stride``
    bars) and the replay form over the full series, against revision ``ref``'s estimator,
    alternating calls so that both see the same machine load."""
    from bench_accuracy import old_estimator

    old = old_estimator(ref)
    returns = np.diff(np.log(bars["close"]))
    window = returns[None, -512:].copy()
    whittle_rows(window)
    pairs = np.empty((reps, 2))
    clock = time.perf_counter
    for i in range(reps):
        start = clock()
        whittle_rows(window)
        middle = clock()
        old.hurst_rows(window)
        pairs[i] = middle - start, clock() - middle
    new_us, old_us = np.median(pairs, axis=0) * 1e6
    print(f"one Hurst evaluation, window 512: Whittle {new_us:.1f} us, {ref} (DFA) "
          f"{old_us:.1f} us, ratio {new_us / old_us:.2f}")
    times = []
    for estimate in (lambda: hurst_series(returns, 520, 8, 512),
                     lambda: old.hurst_series(returns, np.arange(520, returns.size + 1, 8),
                                              512)):
        start = clock()
        estimate()
        times.append(clock() - start)
    print(f"replay form, {returns.size:,} returns, stride 8: Whittle {times[0]:.2f} s, "
          f"{ref} (DFA) {times[1]:.2f} s, ratio {times[0] / times[1]:.2f}")


if __name__ == "__main__":
    main()
