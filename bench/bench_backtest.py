"""Backtester speed against backtesting.py, measured in the same run.

1. SMA(10/50) cross, always in the market (long/short), on N synthetic 1-minute bars with
   precomputed signals: our ``BacktestRunner.run`` (validate=False) over all N bars, and
   backtesting.py (``exclusive_orders=True``, same commission) over the first M bars,
   extrapolated per bar (its cost is linear in bars). Ratio = their s/bar over ours.
2. Monte Carlo permutation test: 1,000 permutations over 100k bars.
3. Reading a 1M-row bars CSV with validation.

    .venv/bin/python bench/bench_backtest.py [--bars 1000000] [--baseline-bars 100000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from backtesting import Backtest, Strategy

from gnosis.backtest import BacktestRunner, permutation_test
from gnosis.backtest.runner import bar_returns
from gnosis.replay.readers import read_bars


def market(n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
    open_ = np.concatenate(([100.0], close[:-1])) * np.exp(rng.normal(0, 0.0002, n))
    high = np.maximum(open_, close) * 1.0005
    low = np.minimum(open_, close) * 0.9995
    index = pd.date_range("2020-01-01", periods=n, freq="min")
    return pd.DataFrame({"Open": open_, "High": high, "Low": low, "Close": close,
                         "Volume": rng.integers(100, 10_000, n).astype(float)}, index=index)


def sma_targets(close: pd.Series, fast: int = 10, slow: int = 50) -> pd.Series:
    a, b = close.rolling(fast).mean(), close.rolling(slow).mean()
    return pd.Series(np.where(a > b, 1.0, -1.0), index=close.index).where(b.notna())


class PrecomputedCross(Strategy):
    """Reads the same precomputed target as ours; trades only when it flips."""

    target = None

    def init(self):
        self.t = self.I(lambda: self.target, name="target")

    def next(self):
        t = self.t[-1]
        if t > 0 and not self.position.is_long:
            self.buy()
        elif t < 0 and not self.position.is_short:
            self.sell()


def best_of(repeats: int, fn):
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--baseline-bars", type=int, default=100_000)
    parser.add_argument("--mcpt-bars", type=int, default=100_000)
    parser.add_argument("--permutations", type=int, default=1_000)
    args = parser.parse_args()

    prices = market(args.bars)
    targets = sma_targets(prices.Close)
    runner = BacktestRunner(1e9, 0.001, 0.0)
    ours_s, result = best_of(3, lambda: runner.run(targets, prices, validate=False))
    print(f"ours: {args.bars:,} bars in {ours_s:.3f} s = {args.bars / ours_s:,.0f} bars/s, "
          f"{result.num_trades:,} trades")

    m = args.baseline_bars
    subset = prices.iloc[:m]
    PrecomputedCross.target = targets.iloc[:m].fillna(0).to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = Backtest(subset, PrecomputedCross, cash=1e9, commission=0.001,
                      exclusive_orders=True, trade_on_close=False)
        theirs_s, stats = best_of(1, bt.run)
    print(f"backtesting.py: {m:,} bars in {theirs_s:.3f} s = {m / theirs_s:,.0f} bars/s, "
          f"{stats['# Trades']:,} trades (extrapolated to {args.bars:,} bars: "
          f"{theirs_s * args.bars / m:.1f} s)")
    ours_sub = runner.run(targets.iloc[:m], subset, validate=False)
    same = (ours_sub.trades.closed.sum() == stats["# Trades"])
    print(f"same closed trades on the subset: {same}")
    ratio = (theirs_s / m) / (ours_s / args.bars)
    print(f"speed ratio (per bar): {ratio:.1f}x  (target >= 20x)")

    n = args.mcpt_bars
    sub = prices.iloc[:n]
    pos = targets.iloc[:n].shift(1).fillna(0).to_numpy()
    rets = bar_returns(sub.Open.to_numpy(), sub.Close.to_numpy())
    mcpt_s, test = best_of(1, lambda: permutation_test(pos, rets,
                                                       n_permutations=args.permutations))
    print(f"MCPT: {args.permutations:,} permutations x {n:,} bars in {mcpt_s:.2f} s "
          f"(target <= 10 s), p = {test.p_value:.3f}")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bars.csv"
        frame = prices.iloc[:1_000_000]
        pd.DataFrame({
            "ticker": "SYN", "timestamp": frame.index.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "open": frame.Open, "high": frame.High, "low": frame.Low, "close": frame.Close,
            "volume": frame.Volume, "interval": "1m",
        }).to_csv(path, index=False)
        read_s, load = best_of(1, lambda: read_bars(path))
        print(f"read_bars: {len(load.frame):,} rows from CSV in {read_s:.2f} s "
              f"({len(load.errors)} errors)")


if __name__ == "__main__":
    main()
