"""Per-ticker feature state, updated one bar at a time (the streaming form).

:class:`TickerFeatures` keeps fixed-size ring buffers and rolling sums, and does O(1)
scalar work per bar plus one O(window) numpy Hurst evaluation every ``hurst_stride`` bars,
and one evaluation of the Hawkes likelihood from its rolling sums every ``hawkes_stride``
bars. Each feature keeps only what it reads: high, low, close and volume of the last
:func:`rows_of` bars (VSA, volume baseline, trend), the last ``window`` log returns (Hurst,
volatility) and the event bits of the Hawkes window (one byte per bar), so a ticker at the
defaults holds about 20 KB. :meth:`TickerFeatures.history` saves exactly those buffers and
the last Hurst and Hawkes estimates (:class:`SavedFeatures`), from which
:meth:`TickerFeatures.restore` rebuilds the state after a crash.

Definitions, for bar ``i`` (counting from 0) with ``r_i = log(close_i / close_{i-1})``:

* VSA (:mod:`gnosis.features.vsa`): against the ``vsa_window`` bars before ``i``;
  ready from bar ``vsa_window``.
* Realised volatility and clustering (:mod:`gnosis.features.volatility`): over the
  returns of the last ``vol_short`` / ``vol_long`` bars; ready from bar ``vol_long``.
* Trend: ``log(close_i / close_{i - trend_lookback})``.
* Hawkes branching ratio and its standard error (:mod:`gnosis.features.branching`):
  bar ``i`` is an event when ``volume_i > event_threshold *
  mean(volume_{i-vol_long} .. volume_{i-1})`` (bars before ``vol_long`` are not); the
  likelihood covers the last ``min(hawkes_window, i + 1 - vol_long)`` bars, with the
  excitation of each from the event bits of the :data:`~gnosis.features.branching.MEMORY`
  bars before it; computed when the bar count is a multiple of ``hawkes_stride`` and
  ``i >= vol_long + window - 1``, held in between.
* Hurst exponent and its standard error (:mod:`gnosis.features.hurst`): of the last
  ``window`` returns, computed when the bar count is a multiple of ``hurst_stride`` and
  held in between.

Each field keeps its neutral value until its own feature is warm; ``ready`` says all
are.
"""

from __future__ import annotations

import math
import zlib
from array import array
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from gnosis.config import FeatureConfig
from gnosis.events import NO_INFORMATION_SE
from gnosis.features import vsa
from gnosis.features.branching import (
    DECAYS,
    MEMORY,
    TAUS,
    THETA,
    estimate_rows,
    event_terms,
    excitation,
)
from gnosis.features.hurst import MIN_RETURNS, whittle_one
from gnosis.features.volatility import clustering, std_from_sums

_TAIL = DECAYS ** MEMORY
_RESUM = 4096
"""Rolling float sums are recomputed from the buffers every this many bars (absolute
count), so rounding drift stays bounded however long a ticker runs."""


@dataclass(slots=True)
class FeatureSnapshot:
    """All technical features of one ticker after one bar; immutable by convention, not
    frozen (see :class:`~gnosis.events.Bar`)."""

    ready: bool
    """All features are warmed up."""
    bars: int
    """Bars seen so far (absolute count)."""
    vsa_score: float
    """VSA score in [-1, 1]; positive is bullish. 0.0 while warming up."""
    vsa_class: str
    """One of :data:`gnosis.features.vsa.VSA_CLASSES`; "neutral" while warming up."""
    hawkes_branching: float
    """Branching ratio of volume events in [0, 0.99] (the mean number of events one event
    triggers); 0.0 while warming up."""
    hawkes_se: float
    """Standard error of ``hawkes_branching``; 1.0 (no information) while warming up."""
    hurst_exponent: float
    """Hurst exponent of log returns in [0, 1]; 0.5 while warming up."""
    hurst_se: float
    """Standard error of ``hurst_exponent``; 1.0 (no information) while warming up."""
    volatility_clustering: float
    """Short over long realised volatility (>= 0); 1.0 while warming up."""
    realized_volatility: float
    """Per-bar standard deviation of log returns over ``vol_long``; 0.0 while warming up."""
    trend: float
    """Log return over ``trend_lookback`` bars; 0.0 while warming up."""


def check_config(config: FeatureConfig) -> None:
    """Raise ``ValueError`` for window settings the features cannot work with."""
    problems = []
    if config.window < MIN_RETURNS:
        problems.append(f"window must be at least {MIN_RETURNS}")
    if config.vsa_window < 2:
        problems.append("vsa_window must be at least 2")
    if not 2 <= config.vol_short < config.vol_long <= config.window:
        problems.append("need 2 <= vol_short < vol_long <= window")
    if config.hurst_stride < 1:
        problems.append("hurst_stride must be at least 1")
    if config.hawkes_window < config.window:
        problems.append("hawkes_window must be at least window")
    if config.hawkes_stride < 1:
        problems.append("hawkes_stride must be at least 1")
    if not config.event_threshold > 0.0:
        problems.append("event_threshold must be positive")
    if config.trend_lookback < 1:
        problems.append("trend_lookback must be at least 1")
    if problems:
        raise ValueError("invalid feature configuration: " + "; ".join(problems))


def lookback_of(config: FeatureConfig) -> int:
    """How many most recent bars determine the features (see :class:`TickerFeatures`)."""
    # Hawkes: the window's bits, MEMORY bits before its first and its leaving bar, and
    # the volume baseline of the oldest of those.
    return max(config.window + config.hurst_stride,
               config.hawkes_window + MEMORY + 1 + config.vol_long,
               config.vol_long + 1, config.trend_lookback + 1, config.vsa_window + 1)


def ticker_phase(ticker: str) -> int:
    """Where a ticker's stride points fall (see :class:`TickerFeatures`): stable across
    processes, and different per ticker, so that tickers whose bars close together do not
    all re-estimate Hurst and Hawkes on the same bar."""
    return zlib.crc32(ticker.encode())


def last_point(bars: int | np.ndarray, stride: int, phase: int) -> int | np.ndarray:
    """The last stride point at or before bar count ``bars``: counts ``c`` with
    ``(c - phase) % stride == 0``."""
    return bars - (bars - phase) % stride


def first_point(least: int, stride: int, phase: int) -> int:
    """The first stride point at or after bar count ``least``."""
    return least + (phase - least) % stride


def rows_of(config: FeatureConfig) -> int:
    """How many most recent bars' high, low, close and volume the state keeps: the VSA
    baseline, the volume baseline of the event test, and the trend's base close."""
    return max(config.vol_long + 1, config.trend_lookback + 1, config.vsa_window + 1)


def _span(config: FeatureConfig) -> int:
    """Event bits the next bar's Hawkes update reads: the window, the MEMORY bits before
    its first bar and the bar leaving it."""
    return config.hawkes_window + MEMORY + 1


_FLOAT_SUMS = ("_vsa_volume", "_vsa_spread", "_vol_base", "_r1s", "_r2s", "_r1l", "_r2l")
_ARRAY_SUMS = ("_exc", "_exc_old", "_total", "_first", "_second", "_logs")


@dataclass(frozen=True, slots=True)
class SavedFeatures:
    """What :meth:`TickerFeatures.restore` rebuilds a state from (the last bars first to
    last; fewer while fewer were seen)."""

    bars: int
    """Bars seen (absolute count)."""
    rows: np.ndarray
    """``(min(bars, rows_of(config)), 4)`` float64: high, low, close, volume."""
    returns: np.ndarray
    """``(min(bars, window),)`` float64: log returns (0.0 for the first bar)."""
    events: np.ndarray
    """``(min(bars, hawkes_window + MEMORY + 1),)`` bool: the Hawkes event bits."""
    held: tuple[float, float, float, float]
    """Hurst exponent, its standard error, Hawkes branching ratio, its standard error, as
    last evaluated (the stream holds them between stride points)."""
    sums: dict[str, Any]
    """The rolling sums as they stand (floats, lists of floats, the event count): summed
    afresh they could differ in the last bits, and a restored ticker must go on exactly
    as if it had never stopped."""


def _zeros(code: str, size: int) -> array:
    return array(code, bytes(8 * size))


class TickerFeatures:
    """Incremental features of one ticker; feed bars in event-time order.

    ``lookback`` is how many most recent bars determine the features (2,433 with the
    default configuration, set by the Hawkes window); the state keeps only the part of
    them each feature reads. Hurst and Hawkes are re-estimated at the bar counts ``c``
    with ``(c - phase) % stride == 0`` (:func:`ticker_phase` gives each ticker its own).
    """

    __slots__ = ("_bits", "_close", "_config", "_events", "_exc", "_exc_old", "_first",
                 "_hawkes", "_hawkes_ready", "_hawkes_se", "_high", "_highs", "_hurst",
                 "_hurst_ready", "_hurst_se", "_logs", "_low", "_phase", "_r1l", "_r1s",
                 "_r2l", "_r2s", "_ret", "_ret_view", "_second", "_seen", "_total",
                 "_vol_base", "_volume", "_vsa_spread", "_vsa_volume", "lookback")

    def __init__(self, config: FeatureConfig, phase: int = 0) -> None:
        check_config(config)
        self._config = config
        self._phase = phase
        self.lookback = lookback_of(config)
        size = rows_of(config)
        self._high = _zeros("d", size)
        self._low = _zeros("d", size)
        self._close = _zeros("d", size)
        self._volume = _zeros("d", size)
        # Returns are written twice (at p and p + window) so that the last `window`
        # are always one contiguous slice for the Hurst evaluation.
        self._ret = _zeros("d", 2 * config.window)
        self._ret_view = np.frombuffer(self._ret, dtype=np.float64)
        self._highs: deque[float] = deque(maxlen=config.vsa_window)
        # Event bits of the last hawkes_window + MEMORY + 2 bars; the excitation of this
        # bar and of the one leaving the window; the window's likelihood sums.
        self._bits = bytearray(_span(config) + 1)
        self._exc = np.zeros(TAUS.size)
        self._exc_old = np.zeros(TAUS.size)
        self._total = np.zeros(TAUS.size)
        self._first = np.zeros(TAUS.size)
        self._second = np.zeros(TAUS.size)
        self._logs = np.zeros((TAUS.size, THETA.size))
        self._events = 0
        self._seen = 0
        self._vsa_volume = self._vsa_spread = self._vol_base = 0.0
        self._r1s = self._r2s = self._r1l = self._r2l = 0.0
        self._hurst = 0.5
        self._hurst_se = NO_INFORMATION_SE
        self._hurst_ready = False
        self._hawkes = 0.0
        self._hawkes_se = NO_INFORMATION_SE
        self._hawkes_ready = False

    @property
    def bars(self) -> int:
        """Absolute count of bars seen."""
        return self._seen

    def update(self, ts: int, open: float, high: float, low: float, close: float,
               volume: float) -> FeatureSnapshot:
        """Add one bar and return the features after it.

        ``ts`` and ``open`` are accepted for symmetry with the bar fields; no feature uses
        them.
        """
        cfg = self._config
        size = len(self._close)
        j = self._seen
        pos = j % size
        bars = j + 1

        vsa_ready = j >= cfg.vsa_window
        vsa_code = vsa.NEUTRAL
        vsa_score = 0.0
        ret = 0.0
        spread = high - low
        if j >= 1:
            prev = (j - 1) % size
            prev_close = self._close[prev]
            ret = math.log(close / prev_close)
            if vsa_ready:
                vsa_code, vsa_score = vsa.classify(
                    high, low, close, volume, prev_close, self._low[prev], self._volume[prev],
                    self._volume[(j - 2) % size], self._vsa_volume / cfg.vsa_window,
                    self._vsa_spread / cfg.vsa_window, max(self._highs))

        # Hawkes: is this bar an event against the volume baseline before it?
        vol_long = cfg.vol_long
        self._hawkes_bar(j, j >= vol_long
                         and volume > cfg.event_threshold * (self._vol_base / vol_long))

        # Rolling sums over the bars before the next one.
        self._vsa_volume += volume
        self._vsa_spread += spread
        if j >= cfg.vsa_window:
            old = (j - cfg.vsa_window) % size
            self._vsa_volume -= self._volume[old]
            self._vsa_spread -= self._high[old] - self._low[old]
        self._vol_base += volume
        if j >= vol_long:
            self._vol_base -= self._volume[(j - vol_long) % size]
        self._highs.append(high)

        self._high[pos] = high
        self._low[pos] = low
        self._close[pos] = close
        self._volume[pos] = volume

        window = cfg.window
        if j >= 1:
            # Read the returns leaving the windows before this one may overwrite them.
            p = j % window
            old_short = self._ret[(j - cfg.vol_short) % window] if j > cfg.vol_short else 0.0
            old_long = self._ret[(j - vol_long) % window] if j > vol_long else 0.0
            self._ret[p] = ret
            self._ret[p + window] = ret
            squared = ret * ret
            self._r1s += ret - old_short
            self._r2s += squared - old_short * old_short
            self._r1l += ret - old_long
            self._r2l += squared - old_long * old_long
        self._seen = j + 1

        if (bars - self._phase) % cfg.hawkes_stride == 0 and j >= vol_long + window - 1:
            length = min(cfg.hawkes_window, j + 1 - vol_long)
            n, se = estimate_rows(np.array([length]), np.array([self._events]),
                                  self._total[None], self._first[None], self._second[None],
                                  self._logs[None])
            self._hawkes, self._hawkes_se = float(n[0]), float(se[0])
            self._hawkes_ready = True
        if (bars - self._phase) % cfg.hurst_stride == 0 and j >= window:
            p = j % window + 1
            self._hurst, self._hurst_se = whittle_one(self._ret_view[p:p + window])
            self._hurst_ready = True
        if bars % _RESUM == 0:
            self._resum()

        vol_ready = j >= vol_long
        realized = short = 0.0
        if vol_ready:
            realized = std_from_sums(self._r1l, self._r2l, vol_long)
            short = std_from_sums(self._r1s, self._r2s, cfg.vol_short)
        trend_ready = j >= cfg.trend_lookback
        hawkes_ready = self._hawkes_ready
        return FeatureSnapshot(
            ready=vsa_ready and vol_ready and trend_ready and hawkes_ready
            and self._hurst_ready,
            bars=bars,
            vsa_score=vsa_score,
            vsa_class=vsa.VSA_CLASSES[vsa_code],
            hawkes_branching=self._hawkes if hawkes_ready else 0.0,
            hawkes_se=self._hawkes_se,
            hurst_exponent=self._hurst,
            hurst_se=self._hurst_se,
            volatility_clustering=clustering(short, realized) if vol_ready else 1.0,
            realized_volatility=realized,
            trend=(math.log(close / self._close[(j - cfg.trend_lookback) % size])
                   if trend_ready else 0.0),
        )

    def _hawkes_bar(self, j: int, event: bool) -> None:
        """Add bar ``j``'s event bit; roll the excitations and the window's sums."""
        bits = self._bits
        size = len(bits)
        window = self._config.hawkes_window
        exc, old = self._exc, self._exc_old
        # S(j) = b S(j-1) + x(j-1) - b**MEMORY x(j-1-MEMORY); the same for S(j - window).
        # Positions before 0 fall on slots not yet written (zeros).
        exc *= DECAYS
        if bits[(j - 1) % size]:
            exc += 1.0
        if bits[(j - 1 - MEMORY) % size]:
            exc -= _TAIL
        old *= DECAYS
        if bits[(j - 1 - window) % size]:
            old += 1.0
        if bits[(j - 1 - window - MEMORY) % size]:
            old -= _TAIL
        bits[j % size] = event
        self._total += exc
        self._total -= old
        if event:
            self._events += 1
            self._first += exc
            self._second += exc * exc
            self._logs += event_terms(exc)
        if j >= window and bits[(j - window) % size]:
            self._events -= 1
            self._first -= old
            self._second -= old * old
            self._logs -= event_terms(old)

    def _last(self, ring: array, count: int) -> list[float]:
        """The last ``count`` values written to a bar ring (fewer if fewer were seen)."""
        size = len(ring)
        return [ring[k % size] for k in range(max(0, self._seen - count), self._seen)]

    def _resum(self) -> None:
        """Recompute the rolling float sums exactly from the buffers."""
        cfg = self._config
        vw = cfg.vsa_window
        self._vsa_volume = math.fsum(self._last(self._volume, vw))
        self._vsa_spread = math.fsum(h - lo for h, lo in zip(self._last(self._high, vw),
                                                               self._last(self._low, vw),
                                                               strict=True))
        self._vol_base = math.fsum(self._last(self._volume, cfg.vol_long))
        returns = self._ret_view[: cfg.window]
        start = self._seen - 1
        for count, attr in ((cfg.vol_short, "s"), (cfg.vol_long, "l")):
            recent = [returns[k % cfg.window] for k in range(max(1, start - count + 1),
                                                             start + 1)]
            setattr(self, "_r1" + attr, math.fsum(recent))
            setattr(self, "_r2" + attr, math.fsum(x * x for x in recent))
        # Hawkes sums from the bits of the window and the MEMORY bars before it.
        window = cfg.hawkes_window
        bits = self._bits
        span = window + MEMORY + 1
        seq = np.array([bits[k % len(bits)] if k >= 0 else 0
                        for k in range(start - span + 1, start + 1)], dtype=np.float64)
        exc = excitation(seq)
        inside, flags = exc[-window:], seq[-window:] > 0.0
        self._exc[:] = exc[-1]
        self._exc_old[:] = exc[MEMORY]
        self._total[:] = inside.sum(axis=0)
        self._first[:] = inside[flags].sum(axis=0)
        self._second[:] = (inside[flags] ** 2).sum(axis=0)
        self._logs[:] = event_terms(inside[flags]).sum(axis=0)
        self._events = int(flags.sum())

    def history(self) -> SavedFeatures:
        """The buffers that determine the state, for :meth:`restore`."""
        cfg = self._config
        bars = self._seen

        def last(values: np.ndarray, count: int) -> np.ndarray:
            return values[np.arange(bars - min(bars, count), bars) % values.size]

        size = len(self._close)
        rows = np.stack([last(np.frombuffer(ring, dtype=np.float64), size)
                         for ring in (self._high, self._low, self._close, self._volume)],
                        axis=1)
        return SavedFeatures(
            bars=bars, rows=rows, returns=last(self._ret_view[:cfg.window], cfg.window),
            events=last(np.frombuffer(self._bits, dtype=np.uint8), _span(cfg)).astype(bool),
            held=(self._hurst, self._hurst_se, self._hawkes, self._hawkes_se),
            sums={**{name: getattr(self, name) for name in _FLOAT_SUMS},
                  **{name: getattr(self, name).tolist() for name in _ARRAY_SUMS},
                  "_events": self._events})

    @classmethod
    def restore(cls, config: FeatureConfig, saved: SavedFeatures,
                phase: int = 0) -> TickerFeatures:
        """Rebuild the state that ``history()`` saved (under the same configuration and
        phase)."""
        state = cls(config, phase)
        bars = saved.bars
        expected = {"rows": (min(bars, len(state._close)), 4),
                    "returns": (min(bars, config.window),),
                    "events": (min(bars, _span(config)),)}
        for name, shape in expected.items():
            got = np.shape(getattr(saved, name))
            if got != shape:
                raise ValueError(f"saved {name} must have shape {shape} for {bars} bars "
                                 f"under this configuration, got {got}")
        state._seen = bars

        def put(values: np.ndarray, ring: np.ndarray) -> None:
            ring[np.arange(bars - len(values), bars) % ring.size] = values

        rows = np.asarray(saved.rows, dtype=np.float64)
        for column, ring in zip(rows.T, (state._high, state._low, state._close,
                                         state._volume), strict=True):
            put(column, np.frombuffer(ring, dtype=np.float64))
        window = config.window
        put(np.asarray(saved.returns, dtype=np.float64), state._ret_view[:window])
        state._ret_view[window:] = state._ret_view[:window]
        put(np.asarray(saved.events, dtype=np.uint8), np.frombuffer(state._bits, np.uint8))
        state._highs.extend(rows[-config.vsa_window:, 0].tolist())
        state._hurst, state._hurst_se, state._hawkes, state._hawkes_se = saved.held
        # Ready once a stride point has passed where update() first evaluates.
        state._hurst_ready = last_point(bars, config.hurst_stride, phase) > window
        state._hawkes_ready = (last_point(bars, config.hawkes_stride, phase)
                               >= config.vol_long + window)
        expected_sums = {*_FLOAT_SUMS, *_ARRAY_SUMS, "_events"}
        if set(saved.sums) != expected_sums:
            raise ValueError(f"saved sums must be {sorted(expected_sums)}, got "
                             f"{sorted(saved.sums)}")
        for name in _FLOAT_SUMS:
            setattr(state, name, float(saved.sums[name]))
        for name in _ARRAY_SUMS:
            target = getattr(state, name)
            target[...] = np.asarray(saved.sums[name], dtype=np.float64).reshape(target.shape)
        state._events = int(saved.sums["_events"])
        return state
