"""Gnosis: a streaming trading-signal engine.

The public library API, imported lazily so that ``import gnosis`` stays cheap:

* :class:`Engine`, :func:`generate_signal`, :func:`generate_signals_batch`: signals
  for DataFrames.
* :class:`Bar`, :class:`NewsItem`, :class:`TradingSignal`: the events.
* :class:`Settings`: configuration.
* :class:`BacktestRunner`: the backtester.
* :class:`PerformanceMonitor`: timing and resource statistics.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.3.0"

_EXPORTS = {
    "Engine": "gnosis.facade",
    "generate_signal": "gnosis.facade",
    "generate_signals_batch": "gnosis.facade",
    "Bar": "gnosis.events",
    "NewsItem": "gnosis.events",
    "TradingSignal": "gnosis.events",
    "InvalidEvent": "gnosis.events",
    "Settings": "gnosis.config",
    "BacktestRunner": "gnosis.backtest",
    "BacktestResult": "gnosis.backtest",
    "PerformanceMonitor": "gnosis.monitor",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gnosis' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
