"""Hawkes branching ratio: the fraction of activity that is self-excited.

In a Hawkes process each event raises the future event rate; the branching ratio ``n``
(the integral of that kernel) is the mean number of events one event triggers, so
``n`` is also the fraction of events that are offspring rather than exogenous
(``n = 0``: Poisson; ``n -> 1``: almost all activity feeds on itself).

Estimator (Hardiman & Bouchaud 2014, "Branching-ratio approximation for the
self-exciting Hawkes process"): for counts ``N`` of events in bins of length ``D``
much longer than the kernel, ``Var N / E N -> 1 / (1 - n)**2``, hence
``n = 1 - sqrt(mean / var)`` of the bin counts. It needs no kernel shape, only sums of
counts and squared counts, so it is O(1) to update.

Two forms are built on it:

* The rolling feature (:func:`branching_from_sums`): an *event* is a bar whose volume
  exceeds ``event_threshold`` times the mean volume of the ``vol_long`` bars before it;
  time is counted in bars; bins of ``hawkes_bin`` bars aligned to the absolute bar
  count; the estimate uses the last ``window // hawkes_bin`` complete bins and is
  refreshed when a bin completes. Under-dispersed counts (``var <= mean``) give 0 and
  the result is clipped to ``[0, 0.99]``. With at most one event per bar and bins not
  much longer than the excitation, this understates the true ratio: read it as a
  relative gauge of clustering (independent events score about 0). Measured at window
  512 and 0.1 events per bar (``bench/bench_accuracy.py``): true ratios 0.3 / 0.5 /
  0.7 / 0.85 read about 0.07 / 0.15 / 0.25 / 0.32 with a kernel of 5 bars and less
  with a kernel shorter than a bar. Its standard error (:func:`branching_se`) is the
  sampling spread of the gauge, not its distance from the true ratio. Fitting the
  finite-bin Fano curve below over 1-64-bar bins of the window removes much of that bias
  for kernels longer than a bar but, with the ~50 events a window holds, has an error of
  0.2-0.3: the window does not hold enough events to estimate the ratio within 0.1.
* :func:`hawkes_branching_ratio` for a window of event timestamps, where the kernel
  time scale is unknown: the Fano factor ``F(D) = var / mean`` is measured at a ladder
  of bin lengths and fitted by the exact finite-bin curve of an exponential kernel,
  ``F(D) = 1 + (A - 1) * (1 - (1 - exp(-k D)) / (k D))`` with
  ``A = 1 / (1 - n)**2`` and ``k = beta (1 - n)`` (least squares on ``log F``, each
  bin length weighted by its number of bins, over a grid of ``n`` and ``k``). For
  long bins this is the estimator above; the short bins pin down the time scale.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

MAX_BRANCHING = 0.99
MIN_EVENTS = 20
"""Fewer events than this carry no usable evidence: :func:`hawkes_branching_ratio` is 0."""
_MIN_BINS = 64
_N_GRID = np.arange(0.0, MAX_BRANCHING + 1e-9, 0.0025)


def branching_from_sums(count_sum: int, square_sum: int, bins: int) -> float:
    """``1 - sqrt(mean / var)`` of ``bins`` bin counts given their sum and sum of squares.

    0 when the counts are not over-dispersed (``var <= mean``); at most 0.99.
    """
    mean = count_sum / bins
    var = square_sum / bins - mean * mean
    if mean <= 0.0 or var <= mean:
        return 0.0
    return min(1.0 - math.sqrt(mean / var), MAX_BRANCHING)


def branching_se(ratio: Any, bins: int) -> Any:
    """Standard error of :func:`branching_from_sums` (a float or an array of them).

    The sample variance of ``B`` roughly Gaussian bin counts has relative variance
    ``2 / (B - 1)``; through ``n = 1 - F**-0.5`` (delta method) that is
    ``(1 - n) / sqrt(2 (B - 1))``, about ``0.09 (1 - n)`` with 64 bins.
    """
    return (1.0 - ratio) / math.sqrt(2.0 * (bins - 1))


def branching_from_sums_array(count_sum: np.ndarray, square_sum: np.ndarray,
                              bins: int) -> np.ndarray:
    """Vectorised :func:`branching_from_sums` (same float operations, same results)."""
    mean = count_sum / bins
    var = square_sum / bins - mean * mean
    ok = (mean > 0.0) & (var > mean)
    ratio = np.where(ok, mean, 1.0) / np.where(ok, var, 1.0)
    return np.where(ok, np.minimum(1.0 - np.sqrt(ratio), MAX_BRANCHING), 0.0)


def hawkes_branching_ratio(event_times: np.ndarray) -> float:
    """Branching ratio in ``[0, 0.99]`` of one window of event timestamps (seconds).

    Args:
        event_times: 1-D ascending (non-decreasing) finite timestamps.

    Returns 0.0 with fewer than :data:`MIN_EVENTS` events or too short a span for
    :data:`_MIN_BINS` bins.

    Raises:
        ValueError: for non-finite, unsorted or multi-dimensional input.
    """
    t = np.asarray(event_times, dtype=np.float64)
    if t.ndim != 1:
        raise ValueError(f"event_times must be 1-D, got shape {t.shape}")
    if not np.isfinite(t).all():
        raise ValueError("event_times must be finite")
    if np.any(np.diff(t) < 0.0):
        raise ValueError("event_times must be ascending")
    if t.size < MIN_EVENTS:
        return 0.0
    offset = t - t[0]
    span = offset[-1]
    gap = span / (t.size - 1)
    if gap <= 0.0:
        return 0.0
    lengths = gap * 0.5 * 2.0 ** (np.arange(0, 64) / 2)
    lengths = lengths[lengths <= span / _MIN_BINS]
    if lengths.size < 2:
        return 0.0
    fano = np.empty(lengths.size)
    nbins = np.empty(lengths.size)
    for j, length in enumerate(lengths):
        full = int(span // length)
        counts = np.bincount((offset // length).astype(np.int64), minlength=full + 1)[:full]
        mean = counts.mean()
        fano[j] = counts.var() / mean if mean > 0.0 else 1.0
        nbins[j] = full
    log_fano = np.log(np.maximum(fano, 1e-3))
    # Exponential-kernel Fano curve over a grid of time scales k and ratios n.
    rates = np.geomspace(4.0 / lengths[-1], 100.0 / lengths[0], 160)
    x = rates[:, None] * lengths[None, :]
    shape = 1.0 - (-np.expm1(-x)) / x
    excess = _N_GRID * (2.0 - _N_GRID) / (1.0 - _N_GRID) ** 2
    model = np.log1p(excess[:, None, None] * shape[None, :, :])
    loss = ((model - log_fano) ** 2 * nbins).sum(axis=2)
    best = np.unravel_index(np.argmin(loss), loss.shape)[0]
    return float(_N_GRID[best])
