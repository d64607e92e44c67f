"""A notebook-friendly façade over the functional core, after the seed's engine.

>>> from gnosis import generate_signal
>>> signal = generate_signal("AAPL", ohlcv, news_df=news, window="1h", min_confidence=0.6)
>>> if signal:
...     print(signal.signal_type, f"{signal.confidence:.0%}", signal.reasons[0])

:class:`Engine` loads configuration and the sentiment model once; the two functions are
one-off shortcuts. Both replay the whole history they are given through the same core the
live worker runs (:mod:`gnosis.replay.inprocess`) and return the signal of the last bar.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

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


class Engine:
    """The seed's engine as a small object: configuration and scorer loaded once.

    Args:
        settings: configuration; when omitted it is loaded from ``config_path`` (or
            ``GNOSIS_CONFIG``) and the environment.
        config_path: TOML configuration file.
        features_config_path: a separate TOML file for the ``[features]`` section.
        scorer: headline scorer; the configured one (ONNX or lexicon) when omitted.
    """

    def __init__(self, settings: Settings | None = None, *,
                 config_path: str | os.PathLike[str] | None = None,
                 features_config_path: str | os.PathLike[str] | None = None,
                 scorer: SentimentScorer | None = None) -> None:
        from gnosis.models.sentiment import load_scorer

        self.settings = settings or Settings.load(config_path,
                                                  features_config_path=features_config_path)
        self.scorer = scorer or load_scorer(self.settings.sentiment)

    def generate_signals_batch(
        self,
        tickers: Iterable[str],
        ohlcv_data: Mapping[str, pd.DataFrame],
        news_df: pd.DataFrame | None = None,
        *,
        window: str | None = None,
        min_confidence: float | None = None,
        interval: str = "1m",
    ) -> dict[str, TradingSignal | None]:
        """The latest signal for each ticker; ``None`` where it falls below ``min_confidence``.

        Args:
            tickers: which entries of ``ohlcv_data`` to evaluate.
            ohlcv_data: per ticker, a DataFrame indexed by bar close time with
                open/high/low/close/volume columns (any capitalisation).
            news_df: optional headlines: ``timestamp`` column (or a time index),
                ``headline``, and ``tickers`` (``;``-separated or lists; when absent every
                headline concerns every ticker).
            window: as-of sentiment window, e.g. ``"1h"`` (the configured one by default).
            min_confidence: signals below it are reported as ``None``.
            interval: bar interval, used in signal ids.
        """
        tickers = list(tickers)
        rules = self.settings.rules
        if window is not None:
            rules = dataclasses.replace(rules, sentiment_window=window)
        if min_confidence is not None:
            rules = dataclasses.replace(rules, min_confidence=min_confidence)
        cfg = dataclasses.replace(self.settings, rules=rules)
        bars = pd.concat([_bars_frame(t, ohlcv_data[t], interval) for t in tickers],
                         ignore_index=True)
        frame = replay_frame(bars, _news_frame(news_df, tickers), cfg, self.scorer)
        out: dict[str, TradingSignal | None] = dict.fromkeys(tickers)
        for signal in to_signals(frame.groupby("ticker", sort=False).tail(1)):
            out[signal.ticker] = signal if signal.confidence >= rules.min_confidence else None
        return out

    def generate_signal(self, ticker: str, ohlcv: pd.DataFrame,
                        news_df: pd.DataFrame | None = None, **options: Any
                        ) -> TradingSignal | None:
        """The signal for the last bar of ``ohlcv`` (options as for
        :meth:`generate_signals_batch`)."""
        return self.generate_signals_batch([ticker], {ticker: ohlcv}, news_df,
                                           **options)[ticker]


def generate_signals_batch(tickers: Iterable[str], ohlcv_data: Mapping[str, pd.DataFrame],
                           news_df: pd.DataFrame | None = None, *,
                           settings: Settings | None = None, **options: Any
                           ) -> dict[str, TradingSignal | None]:
    """:meth:`Engine.generate_signals_batch` with a one-off :class:`Engine`."""
    return Engine(settings).generate_signals_batch(tickers, ohlcv_data, news_df, **options)


def generate_signal(ticker: str, ohlcv: pd.DataFrame, news_df: pd.DataFrame | None = None, *,
                    settings: Settings | None = None, **options: Any) -> TradingSignal | None:
    """:meth:`Engine.generate_signal` with a one-off :class:`Engine`, e.g.
    ``generate_signal("AAPL", ohlcv, news, window="1h", min_confidence=0.6)``."""
    return Engine(settings).generate_signal(ticker, ohlcv, news_df, **options)
