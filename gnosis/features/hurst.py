"""Hurst exponent of log returns by detrended fluctuation analysis (DFA-1).

The returns ``r`` of one window of ``n`` are demeaned and integrated into a profile
``Y_k = sum_{j<=k} (r_j - mean r)``. For each box size ``s`` (a geometric ladder, two
sizes per octave, from :data:`MIN_BOX` to ``n // 8``) the profile is cut into
``n // s`` non-overlapping boxes laid back from the end of the window (the newest
bars always count). A least-squares line is removed from each box and ``F(s)`` is the
root mean square of what is left over all boxes. For fractional Gaussian noise
``F(s) ~ s**H``; the estimate is the least-squares slope of ``log F(s)`` on ``log s``,
clipped to ``[0, 1]`` (0.5 = random walk, above = trending, below = mean reverting).
On fGn of 4096 points the standard error is about 0.02-0.03 with no visible bias for
``H`` in ``[0.3, 0.7]``. A window without variation gives the neutral 0.5.

A box's residual needs only the sums of ``Y``, ``Y**2`` and ``k*Y`` over it, so a window
costs three prefix sums (:func:`hurst_rows`). The residual of a box is also unchanged
by adding a constant or a line to the profile, so it depends on the returns inside the
box alone: :func:`hurst_series` computes every box of the series once and sums boxes
per window with rolling sums, which makes a Hurst value every few bars over a long
series cost O(1) per bar instead of O(window).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from gnosis.features.windows import rolling_sum

MIN_BOX = 10
"""Smallest DFA box (points); smaller boxes bias the estimate of anti-persistent series."""
MIN_RETURNS = 8 * 2 * MIN_BOX
"""Fewest returns :func:`hurst_exponent` accepts (three box sizes or more)."""
NEUTRAL = 0.5


@lru_cache(maxsize=32)
def _plan(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                           np.ndarray]:
    """Box layout for windows of ``n`` returns.

    Returns the box sizes and the slope weights over them; then, for every box of every
    size (grouped by size), its first profile index and its size; then where each
    size's group starts and how many boxes it holds.
    """
    ladder = np.round(MIN_BOX * 2.0 ** (np.arange(0, 64) / 2)).astype(np.int64)
    sizes = np.unique(ladder[ladder <= n // 8])
    x = np.log(sizes.astype(np.float64))
    x -= x.mean()
    starts = [np.arange(n % s, n, s) for s in sizes]
    counts = np.array([b.size for b in starts])
    box_size = np.repeat(sizes, counts).astype(np.float64)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return (sizes, x / (x @ x), np.concatenate(starts), box_size, offsets,
            counts.astype(np.float64))


def _box_residual(s1: np.ndarray, s2: np.ndarray, sk: np.ndarray, a: np.ndarray,
                  s: np.ndarray | int) -> np.ndarray:
    """Mean squared residual of a line fit over boxes of ``s`` points from their sums.

    ``s1, s2, sk`` are the sums of ``Y``, ``Y**2`` and ``k*Y`` over each box, ``a`` the
    first ``k`` of each box.
    """
    sxx = s * (s * s - 1.0) / 12.0
    sxy = sk - (a + 0.5 * (s - 1.0)) * s1
    resid = (s * s2 - s1 * s1) * sxx - s * sxy * sxy
    return np.maximum(resid, 0.0) / (s * s * sxx)


def _slope(f2: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Clipped slope of ``log sqrt(F2)`` on ``log s`` per row; 0.5 where undefined."""
    ok = f2.min(axis=1) > 0.0
    h = (np.log(np.where(ok[:, None], f2, 1.0)) * (0.5 * weights)).sum(axis=1)
    return np.clip(np.where(ok & np.isfinite(h), h, NEUTRAL), 0.0, 1.0)


def hurst_rows(returns: np.ndarray) -> np.ndarray:
    """Hurst exponent of every row of a 2-D array of log returns (one window per row).

    Rows must hold at least :data:`MIN_RETURNS` finite values.
    """
    rows, n = returns.shape
    _, weights, starts, box_size, offsets, counts = _plan(n)
    profile = returns - returns.mean(axis=1, keepdims=True)
    np.cumsum(profile, axis=1, out=profile)
    prefix = np.zeros((3, rows, n + 1))
    np.cumsum(profile, axis=1, out=prefix[0, :, 1:])
    np.cumsum(profile * profile, axis=1, out=prefix[1, :, 1:])
    profile *= np.arange(n, dtype=np.float64)
    np.cumsum(profile, axis=1, out=prefix[2, :, 1:])
    sums = prefix[:, :, starts + box_size.astype(np.int64)] - prefix[:, :, starts]
    box = _box_residual(sums[0], sums[1], sums[2], starts, box_size)
    return _slope(np.add.reduceat(box, offsets, axis=1) / counts, weights)


def hurst_series(returns: np.ndarray, ends: np.ndarray, n: int) -> np.ndarray:
    """Hurst exponent of the windows ``returns[e - n:e]`` for each ``e`` in ``ends``.

    Equal (to rounding) to :func:`hurst_rows` of those windows, in O(len(returns))
    numpy work per box size whatever the number of windows. Every window must lie
    inside ``returns`` and hold finite values; values outside the windows are ignored.
    """
    sizes, weights, *_ = _plan(n)
    ends = np.asarray(ends, dtype=np.int64)
    if ends.size == 0:
        return np.empty(0)
    r = np.where(np.isfinite(returns), returns, 0.0)
    total = r.size
    smax = int(sizes[-1])
    block = 2 * smax
    # Profile points Z[g] = sum(r[:g]), kept per block of a few box lengths with a local origin so
    # that the sums of squares never grow with the length of the series.
    blocks = total // block + 1
    width = block + smax + 1
    padded = np.zeros(blocks * block + width)
    padded[:total] = r
    take = np.arange(blocks)[:, None] * block + np.arange(width - 1)[None, :]
    z = np.zeros((blocks, width))
    np.cumsum(padded[take], axis=1, out=z[:, 1:])
    prefix = np.zeros((3, blocks, width + 1))
    np.cumsum(z, axis=1, out=prefix[0, :, 1:])
    np.cumsum(z * z, axis=1, out=prefix[1, :, 1:])
    z *= np.arange(width, dtype=np.float64)
    np.cumsum(z, axis=1, out=prefix[2, :, 1:])
    first = np.arange(block, dtype=np.float64)
    f2 = np.empty((ends.size, sizes.size))
    for j, s in enumerate(sizes):
        s = int(s)
        # Box over returns r[e-s:e] <-> profile points Z[e-s+1 : e+1]; in block b its
        # first point has local index u = e - s + 1 - b * block, for u in [0, block).
        sums = prefix[:, :, s : s + block] - prefix[:, :, :block]
        res = _box_residual(sums[0], sums[1], sums[2], first, s).reshape(-1)
        box = np.zeros(total + 1)
        box[s:] = res[1 : total - s + 2]
        # Sum the n // s boxes ending at e, e - s, ...: a rolling sum within each
        # residue class of e modulo s.
        rows = -(-(total + 1) // s)
        grid = np.zeros(rows * s)
        grid[: total + 1] = box
        per_window = rolling_sum(grid.reshape(rows, s), n // s).reshape(-1)
        f2[:, j] = per_window[ends] / (n // s)
    return _slope(f2, weights)


def hurst_exponent(returns: np.ndarray) -> float:
    """Hurst exponent of one series of log returns (DFA-1, clipped to ``[0, 1]``).

    Args:
        returns: 1-D array of at least :data:`MIN_RETURNS` finite log returns.

    Raises:
        ValueError: for a shorter, multi-dimensional or non-finite input.
    """
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 1 or r.size < MIN_RETURNS:
        raise ValueError(f"need a 1-D series of at least {MIN_RETURNS} returns, "
                         f"got shape {r.shape}")
    if not np.isfinite(r).all():
        raise ValueError("returns must be finite")
    return float(hurst_rows(r[None, :])[0])
