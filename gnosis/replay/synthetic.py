"""Synthetic markets for tests and benchmarks, deterministic for a seed.

Prices follow a random walk whose volatility clusters (a GARCH(1,1)-like recursion)
and whose volume bursts in self-exciting clumps, so every feature has something to
measure. Headlines come from a small template set whose tone is drawn at random.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gnosis.events import Bar, NewsItem

_HEADLINES = (
    "{t} shares rally after strong earnings beat",
    "{t} raises full-year guidance on record demand",
    "Analysts upgrade {t} citing robust growth",
    "{t} falls after weak outlook and margin pressure",
    "{t} misses estimates as sales decline",
    "Regulators probe {t} over accounting concerns",
    "{t} to hold annual shareholder meeting",
    "{t} announces quarterly dividend",
)


def synthetic_bars(tickers: int | list[str] = 4, bars: int = 1_000, *, seed: int = 0,
                   start: str = "2024-01-02T14:30:00Z", interval: str = "1m") -> pd.DataFrame:
    """Bars for several tickers: columns ticker, ts (ns), open, high, low, close, volume,
    interval; sorted by ts then ticker."""
    names = tickers if isinstance(tickers, list) else [f"T{i:03d}" for i in range(tickers)]
    rng = np.random.default_rng(seed)
    step = pd.Timedelta(interval).value
    ts = pd.Timestamp(start).value + step * np.arange(1, bars + 1, dtype=np.int64)
    frames = []
    for name in names:
        shocks = rng.standard_normal(bars)
        var = np.empty(bars)
        ret = np.empty(bars)
        v = 1e-6
        for i in range(bars):
            var[i] = v
            ret[i] = np.sqrt(v) * shocks[i]
            v = 2e-8 + 0.08 * ret[i] ** 2 + 0.9 * v
        close = 100.0 * np.exp(np.cumsum(ret))
        open_ = np.concatenate([[100.0], close[:-1]])
        wiggle = np.abs(rng.standard_normal((2, bars))) * np.sqrt(var) * close
        high = np.maximum(open_, close) + wiggle[0]
        low = np.maximum(np.minimum(open_, close) - wiggle[1], 0.01)
        burst = np.convolve(rng.random(bars) < 0.03, np.ones(6), mode="full")[:bars]
        volume = np.round(1_000 * (1 + 2 * burst) * rng.lognormal(0, 0.3, bars))
        frames.append(pd.DataFrame({"ticker": name, "ts": ts, "open": open_, "high": high,
                                    "low": low, "close": close, "volume": volume,
                                    "interval": interval}))
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(["ts", "ticker"], kind="stable", ignore_index=True)


def synthetic_news(bars: pd.DataFrame, *, per_bar: float = 0.05, seed: int = 1,
                   multi_ticker: float = 0.1) -> pd.DataFrame:
    """Headlines stamped between bar closes; some name two tickers. Columns id, ts,
    tickers (tuples), headline."""
    rng = np.random.default_rng(seed)
    names = sorted(bars["ticker"].unique())
    ts = np.unique(bars["ts"].to_numpy(np.int64))
    if len(ts) < 2:
        return pd.DataFrame(columns=["id", "ts", "tickers", "headline"])
    step = int(np.median(np.diff(ts)))
    n = int(len(ts) * len(names) * per_bar)
    stamps = np.sort(rng.integers(ts[0] - step, ts[-1], n)) // 1000 * 1000
    rows = []
    for i, stamp in enumerate(stamps):
        first = names[int(rng.integers(len(names)))]
        group = (first,)
        if len(names) > 1 and rng.random() < multi_ticker:
            group = (first, names[(names.index(first) + 1) % len(names)])
        text = _HEADLINES[int(rng.integers(len(_HEADLINES)))].format(t=first)
        rows.append({"id": f"n{seed}-{i}", "ts": int(stamp), "tickers": group, "headline": text})
    return pd.DataFrame(rows, columns=["id", "ts", "tickers", "headline"])


def bars_to_events(frame: pd.DataFrame) -> list[Bar]:
    """Bar events for the rows of a bars frame."""
    return [Bar(r.ticker, int(r.ts), float(r.open), float(r.high), float(r.low),
                float(r.close), float(r.volume), r.interval)
            for r in frame.itertuples(index=False)]


def news_to_events(frame: pd.DataFrame) -> list[NewsItem]:
    """NewsItem events for the rows of a news frame."""
    return [NewsItem(str(r.id), int(r.ts), tuple(r.tickers), str(r.headline))
            for r in frame.itertuples(index=False)]
