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


def hawkes_bars(branching: float, tau: float, rate: float, bars: int,
                rng: np.random.Generator) -> np.ndarray:
    """Volumes of bars (one time unit each) fed by a Hawkes stream of ``rate`` events per bar.

    The kernel ``n exp(-t / tau) / tau`` has mean delay ``tau`` bars. A bar's volume is a
    calm lognormal (sd 0.1) times ``1 + 4 k`` for ``k`` events in it, so the feature's
    threshold finds exactly the bars with events.
    """
    return hawkes_stream(branching, tau, rate, bars, rng)[1]


def hawkes_stream(branching: float, tau: float, rate: float, bars: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The event times behind :func:`hawkes_bars` and the bar volumes."""
    t = hawkes(mu=rate * (1.0 - branching), branching=branching, beta=1.0 / tau,
               horizon=float(bars), rng=rng)
    counts = np.bincount(t.astype(np.int64), minlength=bars)[:bars]
    return t, rng.lognormal(0.0, 0.1, bars) * (1.0 + 4.0 * counts)


def hawkes_mle(times: np.ndarray, horizon: float) -> float:
    """Branching ratio of event times on ``[0, horizon]`` by the continuous-time likelihood.

    Exponential kernel ``n beta exp(-beta t)``, an independent check of the bar-level
    feature (it sees the exact times, not one bit per bar). For each ``beta`` of a grid,
    ``A_i = sum_{j<i} exp(-beta (t_i - t_j))`` and, with ``theta = n beta / mu``, the
    log-likelihood ``N log mu + sum log(1 + theta A_i) - mu (horizon + theta C / beta)``
    (``C = sum 1 - exp(-beta (horizon - t_i))``) has ``mu`` in closed form; ``theta`` on a
    fine log grid, refined by a parabola.
    """
    t = np.asarray(times, dtype=np.float64)
    if t.size < 2:
        return 0.0
    log_theta = np.linspace(np.log(1e-3), np.log(1e4), 400)
    theta = np.exp(log_theta)
    lag = t[:, None] - t[None, :]
    earlier = np.tril(np.ones_like(lag, dtype=bool), -1)
    best, estimate = -np.inf, 0.0
    for beta in np.geomspace(0.02, 20.0, 48):
        a = np.where(earlier, np.exp(-beta * np.where(earlier, lag, 0.0)), 0.0).sum(axis=1)
        c = -np.expm1(-beta * (horizon - t)).sum()
        mu = t.size / (horizon + theta * c / beta)
        ll = t.size * np.log(mu) + np.log1p(theta[:, None] * a).sum(axis=1)
        j = int(np.argmax(ll))
        if ll[j] > best:
            i = min(max(j, 1), theta.size - 2)
            y0, y1, y2 = ll[i - 1], ll[i], ll[i + 1]
            curve = y0 - 2.0 * y1 + y2
            shift = float(np.clip(0.5 * (y0 - y2) / curve, -1.0, 1.0)) if curve < 0 else 0.0
            th = np.exp(log_theta[i] + shift * (log_theta[1] - log_theta[0]))
            best, estimate = ll[j], th * t.size / (horizon + th * c / beta) / beta
    null = t.size * np.log(t.size / horizon)
    return float(estimate) if best > null else 0.0


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


def fgn_exact_mle(x: np.ndarray, step: float = 0.005) -> float:
    """Exact Gaussian maximum-likelihood Hurst exponent of fGn (an independent check).

    Time domain, unlike the Whittle estimator under test: the Durbin-Levinson recursion
    gives the one-step prediction errors and their variances for every ``H`` of a grid at
    once; the scale is profiled out and a parabola refines the best grid point.
    """
    n = x.size
    grid = np.arange(step, 1.0, step)
    k = np.arange(n, dtype=np.float64)
    two_h = 2.0 * grid[:, None]
    rho = 0.5 * (np.abs(k + 1) ** two_h - 2.0 * k ** two_h + np.abs(k - 1) ** two_h)
    g = grid.size
    phi = np.zeros((g, n))
    v = np.ones(g)
    err = np.empty((g, n))
    var = np.empty((g, n))
    err[:, 0], var[:, 0] = x[0], 1.0
    for t in range(1, n):
        # Reflection coefficient of order t, then the order-t predictor of x[t].
        prev = phi[:, : t - 1]
        kappa = (rho[:, t] - (prev * rho[:, t - 1:0:-1]).sum(axis=1)) / v
        phi[:, : t - 1] = prev - kappa[:, None] * prev[:, ::-1]
        phi[:, t - 1] = kappa
        v = v * (1.0 - kappa * kappa)
        err[:, t] = x[t] - (phi[:, :t] * x[t - 1::-1][None, :]).sum(axis=1)
        var[:, t] = v
    nll = n * np.log((err * err / var).mean(axis=1)) + np.log(var).sum(axis=1)
    i = int(np.clip(np.argmin(nll), 1, g - 2))
    left, mid, right = nll[i - 1], nll[i], nll[i + 1]
    return float(grid[i] + 0.5 * step * (left - right) / (left - 2.0 * mid + right))
