"""Exact simulators for the accuracy tests: fractional Gaussian noise and Hawkes processes."""

from __future__ import annotations

import numpy as np


def fgn(n: int, hurst: float, rng: np.random.Generator) -> np.ndarray:
    """Fractional Gaussian noise of unit variance, exactly, by circulant embedding.

    Davies & Harte (1987): embed the Toeplitz autocovariance in a circulant of size 2n,
    whose eigenvalues (an FFT of the first row) are non-negative for fGn.
    """
    k = np.arange(n + 1, dtype=np.float64)
    two_h = 2.0 * hurst
    gamma = 0.5 * (np.abs(k + 1) ** two_h - 2.0 * k**two_h + np.abs(k - 1) ** two_h)
    row = np.concatenate([gamma, gamma[-2:0:-1]])
    eig = np.fft.fft(row).real
    if eig.min() < -1e-9:
        raise ValueError("circulant embedding is not non-negative definite")
    m = row.size
    w = rng.standard_normal(m) + 1j * rng.standard_normal(m)
    z = np.fft.fft(np.sqrt(np.maximum(eig, 0.0) / m) * w)
    return z.real[:n]


def hawkes(mu: float, branching: float, beta: float, horizon: float,
           rng: np.random.Generator) -> np.ndarray:
    """Event times of a Hawkes process with kernel ``branching * beta * exp(-beta t)``.

    Cluster (branching) construction: Poisson immigrants at rate ``mu`` on
    ``[0, horizon]``; every event has Poisson(``branching``) children at exponential
    delays of mean ``1 / beta``. Sorted; events after ``horizon`` are dropped.
    """
    generation = rng.uniform(0.0, horizon, rng.poisson(mu * horizon))
    events = [generation]
    while generation.size:
        children = rng.poisson(branching, generation.size)
        parents = np.repeat(generation, children)
        generation = parents + rng.exponential(1.0 / beta, parents.size)
        generation = generation[generation <= horizon]
        events.append(generation)
    return np.sort(np.concatenate(events))


def random_bars(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """OHLCV bars with volatility regimes, clustered volume spikes and integer volumes.

    Integer volumes (some zero) and repeated closes exercise ties; the spikes make
    Hawkes events and VSA classes frequent.
    """
    vol = np.where(np.sin(np.arange(n) / 150.0) > 0.5, 0.004, 0.001)
    close = 100.0 * np.exp(np.cumsum(rng.standard_normal(n) * vol))
    close[rng.random(n) < 0.05] = np.nan
    close = np.round(_ffill(close, 100.0), 2)
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) + np.round(rng.exponential(0.05, n), 2)
    low = np.minimum(open_, close) - np.round(rng.exponential(0.05, n), 2)
    excite = np.convolve(rng.random(n) < 0.02, np.ones(6))[:n]
    volume = np.round(rng.lognormal(7.0, 0.5, n) * (1.0 + 3.0 * excite))
    volume[rng.random(n) < 0.01] = 0.0
    ts = 1_700_000_000_000_000_000 + np.arange(n, dtype=np.int64) * 60_000_000_000
    return {"ts": ts, "open": open_, "high": high, "low": low, "close": close,
            "volume": volume}


def _ffill(x: np.ndarray, first: float) -> np.ndarray:
    out = x.copy()
    if np.isnan(out[0]):
        out[0] = first
    for i in range(1, out.size):
        if np.isnan(out[i]):
            out[i] = out[i - 1]
    return out
