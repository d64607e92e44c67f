"""A notebook-friendly façade over the functional core, after the seed's engine.

>>> from gnosis import generate_signal
>>> signal = generate_signal("AAPL", ohlcv, news_df=news, window="1h", min_confidence=0.6)
>>> if signal:
...     print(signal.signal_type, f"{signal.confidence:.0%}", signal.reasons[0])

Both functions replay the whole history they are given through the same core the live
worker runs (:mod:`gnosis.replay.inprocess`) and return the signal of the last bar.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import pandas as pd

from gnosis.config import Settings
from gnosis.events import parse_timestamp
from gnosis.replay.inprocess import replay_frame, to_signals

if TYPE_CHECKING:
    from gnosis.events import TradingSignal
    from gnosis.models.sentiment import SentimentScorer


def _bars_frame(ticker: str, ohlcv: pd.DataFrame, interval: str) -> pd.DataFrame:
    cols = {c.lower(): c for c in ohlcv.columns}
    missing = [c for c in ("open", "high", "low", "close", "volume") if c not in cols]
    if missing:
        raise ValueError(f"ohlcv for {ticker} lacks column(s) {', '.join(missing)}")
    index = pd.DatetimeIndex(ohlcv.index)
    if index.tz is None:
        index = index.tz_localize("UTC")
    return pd.DataFrame({
        "ticker": ticker,
        "ts": index.tz_convert("UTC").as_unit("ns").asi8,
        **{c: ohlcv[cols[c]].to_numpy(float) for c in ("open", "high", "low", "close", "volume")},
        "interval": interval,
    })


def _news_frame(news_df: pd.DataFrame | None, tickers: Iterable[str]) -> pd.DataFrame | None:
    if news_df is None or news_df.empty:
        return None
    if "headline" not in news_df:
        raise ValueError("news_df needs a 'headline' column")
    stamps = news_df["timestamp"] if "timestamp" in news_df else news_df.index.to_series()
    ts = [parse_timestamp(v.isoformat() if hasattr(v, "isoformat") else v) for v in stamps]
    if "tickers" in news_df:
        names = [tuple(t.split(";")) if isinstance(t, str) else tuple(t)
                 for t in news_df["tickers"]]
    else:
        names = [tuple(tickers)] * len(news_df)
    return pd.DataFrame({"ts": ts, "tickers": names,
                         "headline": news_df["headline"].astype(str).tolist()})


def _settings(settings: Settings | None, window: str, min_confidence: float | None) -> Settings:
    settings = settings or Settings.load()
    rules = dataclasses.replace(settings.rules, sentiment_window=window)
    if min_confidence is not None:
        rules = dataclasses.replace(rules, min_confidence=min_confidence)
    return dataclasses.replace(settings, rules=rules)


def generate_signals_batch(
    tickers: Iterable[str],
    ohlcv_data: Mapping[str, pd.DataFrame],
    news_df: pd.DataFrame | None = None,
    *,
    window: str = "1h",
    min_confidence: float | None = None,
    interval: str = "1m",
    settings: Settings | None = None,
    scorer: SentimentScorer | None = None,
) -> dict[str, TradingSignal | None]:
    """The latest signal for each ticker; ``None`` where it falls below ``min_confidence``.

    Args:
        tickers: which entries of ``ohlcv_data`` to evaluate.
        ohlcv_data: per ticker, a DataFrame indexed by bar close time with
            open/high/low/close/volume columns (any capitalisation).
        news_df: optional headlines: ``timestamp`` column (or a time index),
            ``headline``, and ``tickers`` (``;``-separated or lists; when absent every
            headline concerns every ticker).
        window: as-of sentiment window, e.g. ``"1h"``.
        min_confidence: signals below it are reported as ``None``.
        interval: bar interval, used in signal ids.
        settings: configuration (file + environment when omitted).
        scorer: headline scorer (the configured one when omitted).
    """
    tickers = list(tickers)
    cfg = _settings(settings, window, min_confidence)
    bars = pd.concat([_bars_frame(t, ohlcv_data[t], interval) for t in tickers],
                     ignore_index=True)
    frame = replay_frame(bars, _news_frame(news_df, tickers), cfg, scorer)
    last = frame.groupby("ticker", sort=False).tail(1)
    out: dict[str, TradingSignal | None] = dict.fromkeys(tickers)
    for signal in to_signals(last):
        floor = cfg.rules.min_confidence
        out[signal.ticker] = signal if signal.confidence >= floor else None
    return out


def generate_signal(
    ticker: str,
    ohlcv: pd.DataFrame,
    news_df: pd.DataFrame | None = None,
    *,
    window: str = "1h",
    min_confidence: float | None = None,
    interval: str = "1m",
    settings: Settings | None = None,
    scorer: SentimentScorer | None = None,
) -> TradingSignal | None:
    """The signal for the last bar of ``ohlcv`` (see :func:`generate_signals_batch`)."""
    return generate_signals_batch([ticker], {ticker: ohlcv}, news_df, window=window,
                                  min_confidence=min_confidence, interval=interval,
                                  settings=settings, scorer=scorer)[ticker]
