"""Realised volatility and volatility clustering of log returns.

``realized_volatility`` is the (population) standard deviation of the last
``vol_long`` one-bar log returns: a per-bar figure, for sizing positions.
``volatility_clustering`` is the standard deviation over the last ``vol_short``
returns divided by that over the last ``vol_long``: 1.0 in a calm, homogeneous market,
above 1 in a burst of clustered volatility, below 1 when it has just gone quiet; 1.0
when the long-window volatility is zero. Both come from rolling sums of ``r`` and
``r**2``, O(1) per bar. A variance below :data:`VAR_FLOOR` counts as zero: rolling
sums leave a rounding residue of that order after large returns leave the window, and
its square root would otherwise show up as spurious volatility in a flat market.
"""

from __future__ import annotations

import math

import numpy as np

VAR_FLOOR = 1e-14
"""Per-bar variance of log returns (a standard deviation of 1e-7) treated as zero."""


def std_from_sums(total: float, squares: float, count: int) -> float:
    """Population standard deviation of ``count`` values from their sum and sum of squares."""
    mean = total / count
    var = squares / count - mean * mean
    return math.sqrt(var) if var > VAR_FLOOR else 0.0


def std_from_sums_array(total: np.ndarray, squares: np.ndarray, count: int) -> np.ndarray:
    """Vectorised :func:`std_from_sums`."""
    mean = total / count
    var = squares / count - mean * mean
    return np.where(var > VAR_FLOOR, np.sqrt(np.maximum(var, 0.0)), 0.0)


def clustering(short: float, long: float) -> float:
    """Short over long volatility; 1.0 when the long volatility is zero."""
    return short / long if long > 0.0 else 1.0


def clustering_array(short: np.ndarray, long: np.ndarray) -> np.ndarray:
    """Vectorised :func:`clustering`."""
    return np.where(long > 0.0, short, 1.0) / np.where(long > 0.0, long, 1.0)
