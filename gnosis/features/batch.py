"""Vectorised features over one ticker's whole series (the replay form).

:func:`compute_features` returns a :class:`FeatureFrame` whose row ``i`` equals the
:class:`~gnosis.features.state.FeatureSnapshot` that
:class:`~gnosis.features.state.TickerFeatures` returns after bar ``i`` (to rounding;
the definitions are in :mod:`gnosis.features.state`). Rolling sums use
:func:`~gnosis.features.windows.rolling_sum`, the Hurst exponent is evaluated only at
stride points by :func:`~gnosis.features.hurst.hurst_series` (batched FFTs and one
matrix product per batch), and the Hawkes likelihood at its stride points from the same
rolling sums the stream keeps (:func:`_hawkes`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from gnosis.config import FeatureConfig
from gnosis.events import NO_INFORMATION_SE
from gnosis.features import vsa
from gnosis.features.branching import estimate_rows, event_terms, excitation
from gnosis.features.hurst import NEUTRAL, hurst_series
from gnosis.features.state import FeatureSnapshot, check_config, first_point, last_point
from gnosis.features.volatility import clustering_array, std_from_sums_array
from gnosis.features.windows import rolling_sum


@dataclass(frozen=True, slots=True)
class FeatureFrame:
    """Features of every bar of a series: equal-length arrays named as in FeatureSnapshot.

    ``vsa_class`` holds int8 codes into :data:`gnosis.features.vsa.VSA_CLASSES`.
    """

    ready: np.ndarray
    bars: np.ndarray
    vsa_score: np.ndarray
    vsa_class: np.ndarray
    hawkes_branching: np.ndarray
    hawkes_se: np.ndarray
    hurst_exponent: np.ndarray
    hurst_se: np.ndarray
    volatility_clustering: np.ndarray
    realized_volatility: np.ndarray
    trend: np.ndarray

    def __len__(self) -> int:
        return int(self.bars.size)

    def snapshot(self, i: int) -> FeatureSnapshot:
        """Row ``i`` as a :class:`FeatureSnapshot`."""
        values = {f.name: getattr(self, f.name)[i].item() for f in fields(self)}
        values["vsa_class"] = vsa.VSA_CLASSES[values["vsa_class"]]
        return FeatureSnapshot(**values)


def compute_features(ts: np.ndarray, open: np.ndarray, high: np.ndarray, low: np.ndarray,
                     close: np.ndarray, volume: np.ndarray,
                     config: FeatureConfig, phase: int = 0) -> FeatureFrame:
    """Features after every bar of one ticker's series (arrays of equal length), with
    Hurst and Hawkes re-estimated at the stride points ``phase`` sets (as
    :class:`~gnosis.features.state.TickerFeatures` does).

    ``ts`` and ``open`` are accepted for symmetry with the bar fields; no feature uses
    them.
    """
    check_config(config)
    high, low, close, volume = (np.asarray(a, dtype=np.float64)
                                for a in (high, low, close, volume))
    n = close.size
    if not all(a.shape == (n,) for a in (np.asarray(ts), np.asarray(open), high, low,
                                           volume)):
        raise ValueError("all series must be 1-D and of equal length")
    index = np.arange(n)
    ret = np.zeros(n)
    ret[1:] = np.log(close[1:] / close[:-1])

    # VSA against the vsa_window bars before each bar.
    vw = config.vsa_window
    vsa_ready = index >= vw
    codes = np.zeros(n, dtype=np.int8)
    scores = np.zeros(n)
    if n > vw:
        spread = high - low
        cur = slice(vw, n)
        before = slice(vw - 1, n - 1)
        codes[cur], scores[cur] = vsa.classify_arrays(
            high[cur], low[cur], close[cur], volume[cur], close[before], low[before],
            volume[before], volume[vw - 2:n - 2], rolling_sum(volume, vw)[before] / vw,
            rolling_sum(spread, vw)[before] / vw,
            sliding_window_view(high, vw)[: n - vw].max(axis=1))

    # Realised volatility and clustering.
    vs, vl = config.vol_short, config.vol_long
    vol_ready = index >= vl
    squared = ret * ret
    realized = np.where(vol_ready, std_from_sums_array(rolling_sum(ret, vl),
                                                       rolling_sum(squared, vl), vl), 0.0)
    short = std_from_sums_array(rolling_sum(ret, vs), rolling_sum(squared, vs), vs)
    vol_cluster = np.where(vol_ready, clustering_array(short, realized), 1.0)

    lag = config.trend_lookback
    trend = np.zeros(n)
    trend[lag:] = np.log(close[lag:] / close[:-lag])

    hawkes_ready, hawkes, hawkes_se = _hawkes(volume, config, phase)
    hurst_ready, hurst, hurst_se = _hurst(ret, config, phase)
    return FeatureFrame(
        ready=vsa_ready & vol_ready & (index >= lag) & hawkes_ready & hurst_ready,
        bars=index + 1,
        vsa_score=scores,
        vsa_class=codes,
        hawkes_branching=hawkes,
        hawkes_se=hawkes_se,
        hurst_exponent=hurst,
        hurst_se=hurst_se,
        volatility_clustering=vol_cluster,
        realized_volatility=realized,
        trend=trend,
    )


def _hawkes(volume: np.ndarray, config: FeatureConfig,
            phase: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Readiness, branching ratio and its standard error per bar (held from the last
    stride point)."""
    n = volume.size
    vl, window, stride = config.vol_long, config.hawkes_window, config.hawkes_stride
    first = first_point(vl + config.window, stride, phase)  # first bar count evaluated
    if first > n:
        return np.zeros(n, dtype=bool), np.zeros(n), np.full(n, NO_INFORMATION_SE)
    events = np.zeros(n)
    baseline = rolling_sum(volume, vl)[vl - 1:n - 1] / vl
    events[vl:] = volume[vl:] > config.event_threshold * baseline
    exc = excitation(events)
    ends = np.arange(first, n + 1, stride) - 1          # last bar of each window
    marked = exc * events[:, None]
    sums = [rolling_sum(a, window)[ends] for a in (events, exc, marked, marked * exc)]
    where = np.flatnonzero(events)
    lo = np.searchsorted(where, ends - window + 1)
    hi = np.searchsorted(where, ends, side="right")
    values = np.empty(ends.size)
    errors = np.empty(ends.size)
    # Per chunk of windows, the log terms of their events summed by a local cumulative sum.
    for c in range(0, ends.size, 1024):
        part = slice(c, c + 1024)
        base = lo[part][0]
        terms = event_terms(exc[where[base:hi[part][-1]]])
        cum = np.concatenate([np.zeros((1, *terms.shape[1:])), np.cumsum(terms, axis=0)])
        logs = cum[hi[part] - base] - cum[lo[part] - base]
        values[part], errors[part] = estimate_rows(
            np.minimum(window, ends[part] + 1 - vl), sums[0][part], sums[1][part],
            sums[2][part], sums[3][part], logs)
    held = last_point(np.arange(n) + 1, stride, phase)
    ready = held >= first
    index = np.clip((held - first) // stride, 0, None)
    return (ready, np.where(ready, values[index], 0.0),
            np.where(ready, errors[index], NO_INFORMATION_SE))


def _hurst(ret: np.ndarray, config: FeatureConfig,
           phase: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Readiness, Hurst exponent and its standard error per bar (held from the last
    stride point)."""
    n = ret.size
    window, stride = config.window, config.hurst_stride
    first = first_point(window + 1, stride, phase)
    if first > n:
        return np.zeros(n, dtype=bool), np.full(n, NEUTRAL), np.full(n, NO_INFORMATION_SE)
    values, se = hurst_series(ret, first, stride, window)
    last = last_point(np.arange(n) + 1, stride, phase)
    ready = last >= first
    index = np.clip((last - first) // stride, 0, None)
    return (ready, np.where(ready, values[index], NEUTRAL),
            np.where(ready, se[index], NO_INFORMATION_SE))
