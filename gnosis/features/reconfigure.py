"""A ticker's feature state carried over to other feature settings, when what it keeps
suffices.

A saved :class:`~gnosis.features.state.SavedFeatures` keeps the last bars' high, low,
close and volume (:func:`~gnosis.features.state.rows_of`), the last ``window`` returns
and the Hawkes event bits of the last ``hawkes_window + MEMORY + 1`` bars. Under new
settings, :func:`reconfigure` rebuilds the state that a replay of the whole history under
them would have reached (floats to rounding), from those buffers alone:

* buffers are cut to the new lengths, and the rolling sums summed afresh from them;
* the Hurst exponent is re-estimated, at the last stride point of the new
  ``hurst_stride``, over the new ``window``, when ``window`` or ``hurst_stride`` changed;
* the Hawkes estimate is re-estimated likewise from the event bits, at the last point of
  the new ``hawkes_stride``, when ``hawkes_window`` or ``hawkes_stride`` changed, or when
  ``window`` (which says when it is first evaluated) changed that.

When that stride point lies before the returns or bits kept (a new stride's last point is
up to ``stride - 1`` bars back), the estimate last made is held instead, up to the next
point of the new stride; from there on every value is the replay's again. :class:`Carried`
says so in ``held``.

It cannot when a buffer the new settings read is longer than the one kept (a longer
``window``, ``vsa_window``, ``hawkes_window``...), or when ``event_threshold`` or
``vol_long`` changed (they decide which bars are events, from volumes that are not kept):
it then says why, in one line.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gnosis.config import FeatureConfig
from gnosis.events import NO_INFORMATION_SE
from gnosis.features.branching import MEMORY, estimate_rows, event_terms, excitation
from gnosis.features.hurst import whittle_one
from gnosis.features.state import SavedFeatures, TickerFeatures, last_point, rows_of

_HURST = ("window", "hurst_stride")
_HAWKES = ("hawkes_window", "hawkes_stride")
_EVENTS = ("event_threshold", "vol_long")


class CannotCarry(ValueError):
    """The saved state does not keep what the new settings read; the message says what."""


@dataclass(frozen=True, slots=True)
class Carried:
    """A state carried over, and where it holds an estimate made under the old settings."""

    features: TickerFeatures
    held: tuple[str, ...] = ()
    """One line per estimate held until the next point of its new stride."""


def _differ(old: FeatureConfig, new: FeatureConfig, names: tuple[str, ...]) -> bool:
    return any(getattr(old, n) != getattr(new, n) for n in names)


def _tail(values: np.ndarray, count: int, bars: int, what: str) -> np.ndarray:
    """The last ``min(bars, count)`` entries of a buffer that keeps ``len(values)``."""
    need = min(bars, count)
    if len(values) < need:
        raise CannotCarry(f"the state keeps {len(values)} {what}, {need} are needed")
    return values[len(values) - need:]


def _hurst_at(saved: SavedFeatures, new: FeatureConfig,
              phase: int) -> tuple[float, float] | None:
    """The Hurst estimate the stream holds after ``saved.bars`` bars under ``new``
    (``None``: its returns are not kept)."""
    bars, window = saved.bars, new.window
    c = last_point(bars, new.hurst_stride, phase)
    if c - 1 < window:  # not evaluated yet (see TickerFeatures.update)
        return 0.5, NO_INFORMATION_SE
    first = bars - len(saved.returns)  # bar index of the first return kept
    if c - window < first:
        return None
    return whittle_one(saved.returns[c - window - first:c - first])


def _evaluated(j: int, config: FeatureConfig) -> bool:
    """Whether the Hawkes estimate is evaluated at bar index ``j`` under ``config``."""
    return j >= config.vol_long + config.window - 1


def _hawkes_at(saved: SavedFeatures, new: FeatureConfig,
               phase: int) -> tuple[float, float] | None:
    """The Hawkes estimate the stream holds after ``saved.bars`` bars under ``new``
    (``None``: its event bits are not kept)."""
    bars, window = saved.bars, new.hawkes_window
    j = last_point(bars, new.hawkes_stride, phase) - 1
    if not _evaluated(j, new):
        return 0.0, NO_INFORMATION_SE
    span = window + MEMORY + 1
    first = bars - len(saved.events)  # bar index of the first event bit kept
    if max(0, j - span + 1) < first:
        return None
    seq = np.zeros(span)
    kept = saved.events[max(0, j - span + 1) - first:j + 1 - first]
    seq[span - len(kept):] = kept
    exc = excitation(seq)
    inside, flags = exc[-window:], seq[-window:] > 0.0
    events = inside[flags]
    n, se = estimate_rows(np.array([min(window, j + 1 - new.vol_long)]),
                          np.array([int(flags.sum())]), inside.sum(axis=0)[None],
                          events.sum(axis=0)[None], (events ** 2).sum(axis=0)[None],
                          event_terms(events).sum(axis=0)[None])
    return float(n[0]), float(se[0])


def _hawkes_changed(saved: SavedFeatures, old: FeatureConfig, new: FeatureConfig,
                    phase: int) -> bool:
    """Whether the Hawkes estimate held under ``new`` may differ from the one under ``old``:
    its window or stride changed, or ``window`` moved its first evaluation past the last
    stride point."""
    if _differ(old, new, _HAWKES):
        return True
    j = last_point(saved.bars, new.hawkes_stride, phase) - 1
    return _evaluated(j, old) != _evaluated(j, new)


def _next_point(bars: int, stride: int, phase: int) -> int:
    return int(last_point(bars, stride, phase)) + stride


def reconfigure(saved: SavedFeatures, old: FeatureConfig, new: FeatureConfig,
                phase: int) -> Carried:
    """The state under ``new`` of a ticker whose state under ``old`` is ``saved``.

    Raises :class:`CannotCarry` when ``saved`` does not keep enough (see the module).
    """
    bars = saved.bars
    if _differ(old, new, _EVENTS) and bars > min(old.vol_long, new.vol_long):
        raise CannotCarry("which bars are Hawkes events depends on event_threshold and "
                          "vol_long, and the volumes they were drawn from are not kept")
    held = []
    hurst = _hurst_at(saved, new, phase) if _differ(old, new, _HURST) else saved.held[:2]
    if hurst is None:
        hurst = saved.held[:2]
        held.append(f"Hurst exponent held until bar "
                    f"{_next_point(bars, new.hurst_stride, phase)} (its returns are not kept)")
    hawkes = (_hawkes_at(saved, new, phase) if _hawkes_changed(saved, old, new, phase)
              else saved.held[2:])
    if hawkes is None:
        hawkes = saved.held[2:]
        held.append(f"Hawkes estimate held until bar "
                    f"{_next_point(bars, new.hawkes_stride, phase)} (its event bits are not "
                    "kept)")
    fresh = TickerFeatures(new, phase)
    state = TickerFeatures.restore(new, SavedFeatures(
        bars=bars,
        rows=_tail(saved.rows, rows_of(new), bars, "bars of high, low, close and volume"),
        returns=_tail(saved.returns, new.window, bars, "returns"),
        events=_tail(saved.events, new.hawkes_window + MEMORY + 1, bars, "event bits"),
        held=(*hurst, *hawkes), sums=fresh.history().sums), phase)
    state._resum()  # the rolling sums, over the new windows, from the buffers just set
    return Carried(state, tuple(held))
