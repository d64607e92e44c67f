"""Sample data for the demo and the tests.

Bars are **real market data** shipped by the ``backtesting`` package: Alphabet (GOOG)
daily bars 2004–2013 and EUR/USD hourly bars 2017–2018. News is **synthetic**: a
deterministic generator writes template headlines whose tone follows the *past*
return of the instrument (news reacting to price, as wire news mostly does) plus noise.
It never looks at future prices, so it gives the backtest no hidden edge.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

_POSITIVE = (
    "{name} shares rally as analysts upgrade outlook",
    "{name} beats earnings estimates, raises guidance",
    "Strong demand lifts {name} revenue growth",
    "{name} gains after record quarterly profit",
    "Investors cheer {name} expansion plans",
)
_NEGATIVE = (
    "{name} shares fall after weak guidance",
    "{name} misses revenue estimates amid slowing demand",
    "Analysts downgrade {name} on margin pressure",
    "{name} slumps as regulators open investigation",
    "{name} warns of losses and cuts forecast",
)
_NEUTRAL = (
    "{name} to present at industry conference",
    "{name} schedules quarterly results call",
    "{name} announces board meeting date",
)
_NAMES = {"GOOG": "Alphabet", "EURUSD": "Euro"}


def sample_bars() -> pd.DataFrame:
    """Real OHLCV bars for GOOG (1d) and EURUSD (1h), in the reader's column layout."""
    try:
        from backtesting.test import EURUSD, GOOG
    except ImportError as exc:  # kept out of the worker image
        from gnosis.replay.run import ReplayError

        raise ReplayError("the sample bars come with the research extra: "
                          "pip install 'gnosis-sentiment-engine[research]'") from exc

    frames = []
    for ticker, data, interval, close_hour in (("GOOG", GOOG, "1d", 20),
                                               ("EURUSD", EURUSD, "1h", 0)):
        index = pd.DatetimeIndex(data.index)
        # Daily bars are stamped at the US close (20:00 UTC); hourly bars at their close.
        stamps = (index + pd.Timedelta(hours=close_hour) if interval == "1d"
                  else index + pd.Timedelta(hours=1))
        frames.append(pd.DataFrame({
            "ticker": ticker,
            "ts": stamps.tz_localize("UTC").as_unit("ns").asi8,
            "open": data["Open"].to_numpy(float), "high": data["High"].to_numpy(float),
            "low": data["Low"].to_numpy(float), "close": data["Close"].to_numpy(float),
            "volume": data["Volume"].to_numpy(float), "interval": interval,
        }))
    bars = pd.concat(frames, ignore_index=True)
    return bars.sort_values(["ts", "ticker"], kind="stable", ignore_index=True)


def sample_news(bars: pd.DataFrame, *, per_bar: float = 0.35, seed: int = 7) -> pd.DataFrame:
    """Synthetic headlines reacting to past returns; deterministic for a seed."""
    rng = np.random.default_rng(seed)
    rows = []
    for ticker, group in bars.groupby("ticker", sort=True):
        close = group["close"].to_numpy(float)
        ts = group["ts"].to_numpy(np.int64)
        past = np.zeros(len(close))
        past[5:] = np.log(close[5:] / close[:-5])
        scale = np.std(past[5:]) or 1.0
        name = _NAMES.get(str(ticker), str(ticker))
        spacing = np.diff(ts, prepend=ts[0] - (ts[1] - ts[0] if len(ts) > 1 else 60_000_000_000))
        for i in np.flatnonzero(rng.random(len(ts)) < per_bar):
            tone = past[i] / scale + rng.normal(0.0, 1.0)
            pool = _POSITIVE if tone > 0.5 else _NEGATIVE if tone < -0.5 else _NEUTRAL
            # Published within the hour before the next close (inside the default 1h
            # sentiment window), never before the return it reacts to.
            gap = int(ts[i + 1] - ts[i]) if i + 1 < len(ts) else spacing[i]
            lead = min(gap, 3_600_000_000_000) * rng.uniform(0.05, 0.95)
            stamp = int(ts[i] + gap - lead) // 1000 * 1000
            rows.append({
                "id": f"synthetic-{ticker}-{i}",
                "ts": stamp,
                "tickers": (str(ticker),),
                "headline": pool[int(rng.integers(len(pool)))].format(name=name),
                "source": "synthetic",
            })
    news = pd.DataFrame(rows, columns=["id", "ts", "tickers", "headline", "source"])
    return news.sort_values("ts", kind="stable", ignore_index=True)


def write_sample(directory: str | Path) -> tuple[Path, Path]:
    """Write ``bars.csv`` and ``news.csv`` (the documented CSV layout) into a folder."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    bars = sample_bars()
    news = sample_news(bars)
    stamp = pd.to_datetime(bars["ts"], utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    bars_path, news_path = directory / "bars.csv", directory / "news.csv"
    bars.assign(timestamp=stamp)[["ticker", "timestamp", "open", "high", "low", "close",
                                  "volume", "interval"]].to_csv(bars_path, index=False)
    news_out = news.assign(
        timestamp=pd.to_datetime(news["ts"], utc=True).dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        tickers=news["tickers"].map(";".join),
    )
    news_out[["id", "timestamp", "tickers", "headline", "source"]].to_csv(news_path, index=False)
    return bars_path, news_path
