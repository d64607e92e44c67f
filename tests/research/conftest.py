"""A small synthetic market and grid shared by the research tests."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gnosis.backtest import BacktestRunner
from gnosis.config import FeatureConfig, Settings
from gnosis.models.sentiment.lexicon import LexiconScorer
from gnosis.replay.inprocess import replay_frame
from gnosis.replay.synthetic import synthetic_bars, synthetic_news
from gnosis.research import Grid, prepare_market

# Short windows so a few thousand bars are enough.
# The significance test on H is off, so that the grid's raw H thresholds decide the trades.
SETTINGS = dataclasses.replace(Settings(), features=FeatureConfig(window=160, vol_long=64),
                               rules=dataclasses.replace(Settings().rules,
                                                         hurst_significance=0.0))
GRID = Grid.from_dict({
    "rules": {"trending_hurst": [0.5, 0.6], "min_confidence": [0.0, 0.4]},
    "features": {"vol_short": [8, 16]},
    "backtest": {"hold": ["keep", "flat"]},
})


@pytest.fixture(scope="session")
def scorer():
    return LexiconScorer()


@pytest.fixture(scope="session")
def bars():
    return synthetic_bars(4, 1500, seed=3)


@pytest.fixture(scope="session")
def news(bars):
    """Headlines with when they arrived: most within seconds, a third up to ten bars late,
    so the sweep's point-in-time rule is exercised against replay_frame's."""
    news = synthetic_news(bars, per_bar=0.05, seed=4)
    rng = np.random.default_rng(5)
    lag = np.where(rng.uniform(size=len(news)) < 0.3, rng.integers(60, 600, len(news)),
                   rng.integers(0, 5, len(news))) * 10**9
    return news.assign(received_at=news["ts"].to_numpy() + lag)


@pytest.fixture(scope="session")
def market(bars, news, scorer):
    return prepare_market(bars, news, SETTINGS, scorer)


def prices_of(bars: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """What run_portfolio takes: OHLCV per ticker indexed by UTC close time."""
    out = {}
    for ticker, group in bars.groupby("ticker"):
        frame = group.set_index("ts")[["open", "high", "low", "close", "volume"]]
        frame.index = pd.to_datetime(frame.index, unit="ns", utc=True)
        out[ticker] = frame.rename(columns=str.capitalize)
    return out


def from_scratch(bars, news, settings, scorer, prices=None):
    """The reference: replay_frame, then run_portfolio, as a user would without sweeps."""
    frame = replay_frame(bars, news, settings, scorer)
    runner = BacktestRunner.from_config(settings.backtest)
    return runner.run_portfolio(frame, prices or prices_of(bars), validate=False)


def write_files(bars: pd.DataFrame, news: pd.DataFrame, folder: Path) -> tuple[Path, Path, Path]:
    """Bars and news as the CSV files the CLI reads, and a 2 × 2 grid file."""
    bars_path, news_path = folder / "bars.csv", folder / "news.csv"
    stamp = pd.to_datetime(bars["ts"], utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    bars.assign(timestamp=stamp).drop(columns="ts").to_csv(bars_path, index=False)
    iso = "%Y-%m-%dT%H:%M:%S.%fZ"
    news.assign(timestamp=pd.to_datetime(news["ts"], utc=True).dt.strftime(iso),
                received_at=pd.to_datetime(news["received_at"], utc=True).dt.strftime(iso),
                tickers=news["tickers"].map(";".join)).drop(
        columns="ts").to_csv(news_path, index=False)
    grid = folder / "grid.toml"
    grid.write_text("[rules]\ntrending_hurst = [0.5, 0.6]\nmin_confidence = [0.0, 0.4]\n"
                    "hurst_significance = [0.0]\n"
                    "[features]\nwindow = [160]\nvol_long = [64]\n")
    return bars_path, news_path, grid
