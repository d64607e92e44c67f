"""Rolling sums over numpy arrays that stay exact to rounding on long series.

A rolling sum taken as the difference of one cumulative sum loses precision as the
cumulative sum grows (on a million bars, or after a quiet spell following a busy one).
:func:`rolling_sum` instead cuts the series into blocks of the window length and adds
the suffix sum of the previous block to the prefix sum of the current one, so every
result is a sum of at most ``2 * window`` terms of the same magnitude.
"""

from __future__ import annotations

import numpy as np


def rolling_sum(x: np.ndarray, window: int) -> np.ndarray:
    """Sums of ``x[max(0, i - window + 1) : i + 1]`` along axis 0, for every ``i``.

    The first ``window - 1`` rows hold the partial sums of what is available.
    """
    n = x.shape[0]
    blocks = -(-n // window)
    padded = np.zeros((blocks * window, *x.shape[1:]), dtype=np.result_type(x, np.float64))
    padded[:n] = x
    grid = padded.reshape(blocks, window, *x.shape[1:])
    prefix = np.cumsum(grid, axis=1)
    # suffix[q, t] = sum of block q from position t+1 to its end.
    suffix = prefix[:, -1:] - prefix
    out = prefix.copy()
    out[1:] += suffix[:-1]
    return out.reshape(blocks * window, *x.shape[1:])[:n]
