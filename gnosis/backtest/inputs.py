"""Turn the backtester's flexible inputs into plain arrays.

Prices: an OHLCV DataFrame indexed by time, columns matched case-insensitively (``Open``
and ``Close`` are required). The index is each bar's close time; a ``ts`` column of epoch
nanoseconds (as :func:`gnosis.replay.readers.read_bars` returns) may stand in for it.

Signals become *target weights in force from each bar's open* (see
:mod:`gnosis.backtest.execution`): a signal stamped ``t`` takes effect at the open of the
first bar whose close is after ``t``, i.e. the bar after the one it was computed on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from gnosis.events import TradingSignal

_DIRECTIONS = {"BUY": 1.0, "SELL": -1.0}
_SIGNAL_COLUMNS = ("ticker", "ts", "signal_type", "suggested_position_size")


class BacktestInputError(ValueError):
    """Signals or prices that cannot be backtested; the message says which and why."""


def price_arrays(prices: pd.DataFrame) -> tuple[pd.Index, np.ndarray, np.ndarray]:
    """``(index, open, close)`` of an OHLCV frame; index is a UTC DatetimeIndex if datable."""
    if not isinstance(prices, pd.DataFrame):
        raise BacktestInputError(f"prices must be a DataFrame, got {type(prices).__name__}")
    columns = {str(c).lower(): c for c in prices.columns}
    missing = [name for name in ("open", "close") if name not in columns]
    if missing:
        raise BacktestInputError(f"prices lack column(s) {', '.join(missing)} "
                                 f"(have {list(prices.columns)})")
    index = prices.index
    if "ts" in columns and not isinstance(index, pd.DatetimeIndex):
        index = pd.DatetimeIndex(pd.to_datetime(prices[columns["ts"]].to_numpy(), unit="ns",
                                                utc=True))
    if isinstance(index, pd.DatetimeIndex):
        index = _utc(index)
        if not index.is_monotonic_increasing:
            raise BacktestInputError("prices must be sorted by time")
    open_ = prices[columns["open"]].to_numpy(dtype=np.float64)
    close = prices[columns["close"]].to_numpy(dtype=np.float64)
    if not (np.isfinite(open_).all() and np.isfinite(close).all()):
        raise BacktestInputError("prices contain NaN or infinite open/close values")
    return index, open_, close


def _utc(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """Naive times are taken as UTC, aware ones converted to it."""
    return index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")


def index_ns(index: pd.Index) -> np.ndarray:
    """Epoch nanoseconds of a (UTC) DatetimeIndex."""
    if not isinstance(index, pd.DatetimeIndex):
        raise BacktestInputError("timestamped signals need prices indexed by time "
                                 "(a DatetimeIndex or a 'ts' column)")
    return index.as_unit("ns").asi8


def signals_frame(signals: Sequence[TradingSignal] | pd.DataFrame) -> pd.DataFrame:
    """Signals as a DataFrame with at least ``ts`` (int ns) and ``signal_type``."""
    if isinstance(signals, pd.DataFrame):
        frame = signals
        if "ts" not in frame.columns:
            if "timestamp" not in frame.columns:
                raise BacktestInputError("signals need a 'ts' or 'timestamp' column")
            stamps = pd.DatetimeIndex(pd.to_datetime(frame["timestamp"], utc=True,
                                                     format="ISO8601"))
            frame = frame.assign(ts=stamps.as_unit("ns").asi8)
        if "signal_type" not in frame.columns:
            raise BacktestInputError("signals need a 'signal_type' column")
        return frame
    rows = list(signals)
    if rows and not all(isinstance(s, TradingSignal) for s in rows):
        raise BacktestInputError("signals must be TradingSignal objects, a DataFrame or a Series")
    return pd.DataFrame({
        "ticker": [s.ticker for s in rows],
        "ts": np.array([s.ts for s in rows], dtype=np.int64),
        "signal_type": [s.signal_type for s in rows],
        "suggested_position_size": np.array([s.suggested_position_size for s in rows],
                                            dtype=np.float64),
    }, columns=list(_SIGNAL_COLUMNS))


def target_weights(
    signals: Any,
    index: pd.Index,
    position_sizes: Any = None,
    *,
    hold: str = "keep",
) -> np.ndarray:
    """Target weight in force from the open of each bar.

    ``signals`` is one of:

    * a Series (or array) aligned to the prices, value ``i`` known at the close of bar ``i``:
      ``BUY``/``SELL``/``HOLD`` strings, or numeric target positions (+1/0/-1 or any weight;
      NaN means no decision);
    * a signals DataFrame (``ts`` or ``timestamp``, ``signal_type``, optionally
      ``suggested_position_size``) or a list of :class:`TradingSignal`, for one ticker.

    ``BUY`` targets ``+size``, ``SELL`` ``-size``. ``HOLD`` keeps the current target when
    ``hold="keep"`` (the default: a HOLD is "no new information") and goes flat when
    ``hold="flat"``. ``size`` is ``position_sizes`` when given (a scalar, or values aligned
    with ``signals``), else the signal's ``suggested_position_size``, else 1.0.
    Numeric targets are multiplied by ``position_sizes`` when it is given.
    """
    if hold not in ("keep", "flat"):
        raise BacktestInputError(f"hold must be 'keep' or 'flat', not {hold!r}")
    n = len(index)
    if isinstance(signals, pd.Series | np.ndarray | list) and not _is_signal_list(signals):
        values = _aligned(signals, index)
        slots = np.arange(1, n + 1)
        sizes = _sizes(position_sizes, values, None)
    else:
        frame = signals_frame(signals)
        if "ticker" in frame.columns and frame["ticker"].nunique() > 1:
            raise BacktestInputError("signals hold several tickers; use run_portfolio")
        values = frame["signal_type"].to_numpy()
        slots = np.searchsorted(index_ns(index), frame["ts"].to_numpy(dtype=np.int64),
                                side="right")
        suggested = (frame["suggested_position_size"].to_numpy(dtype=np.float64)
                     if "suggested_position_size" in frame.columns else None)
        sizes = _sizes(position_sizes, values, suggested)
    decided = _decisions(values, hold) * sizes

    # One decision per slot, the last one given wins; slot n lies after the last bar.
    keep = (slots <= n - 1) & ~np.isnan(decided) if n else np.zeros(len(slots), dtype=bool)
    table = np.full(n, np.nan)
    order = np.argsort(slots[keep], kind="stable")
    slot, value = slots[keep][order], decided[keep][order]
    last = np.concatenate((slot[1:] != slot[:-1], [True])) if len(slot) else slot.astype(bool)
    table[slot[last]] = value[last]
    if n and np.isnan(table[0]):
        table[0] = 0.0
    filled = np.where(~np.isnan(table), np.arange(n), 0)
    return table[np.maximum.accumulate(filled)] if n else table


def _is_signal_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and isinstance(value[0], TradingSignal)


def _aligned(signals: Any, index: pd.Index) -> np.ndarray:
    if isinstance(signals, pd.Series):
        if isinstance(signals.index, pd.DatetimeIndex):
            signals = signals.set_axis(_utc(signals.index))
        if not signals.index.equals(index):
            if len(signals) == len(index) and not isinstance(signals.index, pd.DatetimeIndex):
                return signals.to_numpy()
            signals = signals.reindex(index)
        return signals.to_numpy()
    values = np.asarray(signals)
    if len(values) != len(index):
        raise BacktestInputError(f"{len(values)} signals for {len(index)} bars")
    return values


def _decisions(values: np.ndarray, hold: str) -> np.ndarray:
    """Direction per signal: +1/-1 for BUY/SELL, NaN for no decision, 0 for flat."""
    if values.dtype.kind in "fiub":
        return values.astype(np.float64)
    labels = pd.Series(values, dtype=object)
    out = labels.map({**_DIRECTIONS, "HOLD": 0.0 if hold == "flat" else np.nan})
    unknown = labels.notna() & out.isna() & (labels != "HOLD")
    if unknown.any():
        bad = labels[unknown].iloc[0]
        raise BacktestInputError(f"unknown signal {bad!r}; expected BUY, SELL or HOLD")
    return out.to_numpy(dtype=np.float64)


def _sizes(position_sizes: Any, values: np.ndarray, suggested: np.ndarray | None) -> np.ndarray:
    if position_sizes is None:
        sizes = suggested if suggested is not None else np.ones(len(values))
    elif np.isscalar(position_sizes):
        sizes = np.full(len(values), float(position_sizes))
    else:
        sizes = np.asarray(position_sizes, dtype=np.float64)
        if len(sizes) != len(values):
            raise BacktestInputError(f"{len(sizes)} position sizes for {len(values)} signals")
    if not np.isfinite(sizes).all() or (sizes < 0).any():
        raise BacktestInputError("position sizes must be finite and non-negative")
    return sizes
