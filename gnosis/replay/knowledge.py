"""Knowledge times of recorded bars and headlines: when Gnosis knew each one.

A signal counts a headline only if the headline was known no later than the bar
(:mod:`gnosis.engine`). Live, an input record is known at its Kafka timestamp (the
broker's append time on topics that ``gnosis kafka topics`` creates). In files it is the
``received_at`` column (ISO-8601 or epoch ms, like ``timestamp``; ``gnosis record``
writes it) when the file has one. Without it the time is modelled: a bar is known at its
close and a headline ``replay.news_latency`` after its stamp, so that a backtest of a
vendor archive does not use headlines before they could have arrived.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gnosis.config import Settings, duration_ns

RECEIVED_AT = "received_at"
"""Column of a bars or news frame holding knowledge times (int64 epoch ns)."""


def bar_known(bars: pd.DataFrame) -> np.ndarray:
    """Knowledge time of each bar: ``received_at``, else its close."""
    column = RECEIVED_AT if RECEIVED_AT in bars else "ts"
    return bars[column].to_numpy(dtype=np.int64)


def news_known(news: pd.DataFrame, settings: Settings) -> np.ndarray:
    """Knowledge time of each headline: ``received_at``, else its stamp plus
    ``replay.news_latency``."""
    if RECEIVED_AT in news:
        return news[RECEIVED_AT].to_numpy(dtype=np.int64)
    return news["ts"].to_numpy(dtype=np.int64) + duration_ns(settings.replay.news_latency)
