"""Branching ratio of a bar series' volume events: a discrete-time Hawkes likelihood.

The feature sees one bit per bar (the bar is an *event* or not) and estimates the
branching ratio ``n`` of a continuous-time Hawkes process with an exponential kernel of
mean delay ``tau`` bars behind those bits:

* **Model.** Events that start bar ``t``'s activity ("triggers": immigrants at rate
  ``mu`` per bar, and offspring of earlier bars' events) are Poisson with mean
  ``Lambda_t``, so ``P(bar t is an event | past) = 1 - exp(-Lambda_t)``. An event at
  a uniform position in its bar sends ``n (1 - b) / beta`` of kernel mass past the bar
  end (``beta = 1 / tau``, ``b = exp(-beta)``), spread over the following bars as
  ``(1 - b) b**(k - 1)``; its offspring inside the same bar add more. Hence
  ``Lambda_t = mu + a S_t`` with the excitation ``S_t = sum_{k=1..MEMORY} b**(k-1)
  x_{t-k}`` of the past event bits ``x`` (O(1) to update) and
  ``a = (1 - b) M T``, where ``T`` is the mean number of triggers in an event bar and
  ``M`` the mean kernel mass one trigger and its in-bar descendants send past the bar
  end (:func:`exit_mass`, a function of ``n`` and ``beta``).
* **Fit.** For each ``tau`` of :data:`TAUS` and each ``theta = a / mu`` of a log grid,
  the log-likelihood of the window, with ``log(1 - exp(-L)) = log L - L/2 + L**2/24``
  (exact to 3e-4 for ``L <= 1``), needs only the window's event count ``E``, its sums
  ``A = sum S``, ``A1 = sum_events S``, ``A2 = sum_events S**2`` and
  ``G(theta) = sum_events log(1 + theta S)``: all rolling sums. ``mu`` is profiled out
  in closed form (a quadratic); the best grid point is refined by a parabola in
  ``log theta``; ``n`` follows from ``M = a / ((1 - b) T)`` through the tabulated
  :func:`exit_mass`. No term of the likelihood is left out beyond that expansion.
* **Standard error.** The delta method on ``log a`` with the observed information of
  ``(log mu, log theta)`` at the estimate, and at least the error of ``a`` under
  ``n = 0`` (where the log scale degenerates).

What the bits cannot tell: a kernel much shorter than a bar keeps a cluster inside one
bar, i.e. one bit, so the bit sequence of ``n = 0.85`` with ``tau -> 0`` is that of
independent events at a lower rate. The smallest kernel scale fitted is one bar; shorter
kernels read as the part of their branching that crosses bar ends (BENCHMARKS.md,
"Hawkes branching ratio").
"""

from __future__ import annotations

from typing import Any

import numpy as np

MAX_BRANCHING = 0.99
"""Largest branching ratio estimated (``n -> 1`` is a process that feeds on itself)."""
TAUS = np.array([1.0, 2.0, 4.0, 8.0, 16.0, 32.0])
"""Kernel mean delays (bars) over which the likelihood is maximised."""
DECAYS = np.exp(-1.0 / TAUS)
MEMORY = 256
"""Bars of event history in the excitation (``b**MEMORY <= e**-8`` for every tau)."""
LOG_THETA = np.linspace(np.log(1e-2), np.log(2e3), 32)
THETA = np.exp(LOG_THETA)
_STEP = LOG_THETA[1] - LOG_THETA[0]
_TAIL = DECAYS ** MEMORY
_BLOCK = 32


def exit_mass(n: np.ndarray, beta: float) -> np.ndarray:
    """Mean kernel mass a trigger and its in-bar descendants send past the bar end.

    From position ``u`` in the bar the in-bar cascade sends ``n exp(-beta (1 - n)(1 - u))``
    (it solves ``M(u) = n e**(-beta (1-u)) + int_u^1 n beta e**(-beta (v-u)) M(v) dv``).
    Immigrants sit uniformly in the bar; offspring of earlier bars with density
    ``~ exp(-beta v)``; in the stationary mix a share ``M`` of triggers are offspring.
    """
    g = beta * (1.0 - n)
    uniform = n * -np.expm1(-g) / g
    early = np.exp(-g) * -np.expm1(-n * beta) / -np.expm1(-beta)
    return uniform / (1.0 - early + uniform)


def _inverse_table(points: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """``n`` on a uniform grid of exit masses ``[0, M(0.99)]``, one row per tau."""
    n = np.linspace(0.0, MAX_BRANCHING, 8 * points)
    rows, tops = [], []
    for tau in TAUS:
        m = exit_mass(n, 1.0 / tau)
        top = m[-1]
        rows.append(np.interp(np.linspace(0.0, top, points), m, n))
        tops.append(top)
    return np.array(rows), np.array(tops)


_N_OF_M, _M_TOP = _inverse_table()


_CELLS = _N_OF_M.shape[1] - 1
_WIDTH = _M_TOP / _CELLS
_SLOPE0 = (_N_OF_M[:, 1] - _N_OF_M[:, 0]) / _WIDTH
"""``dn/dM`` at ``n = 0`` per tau."""


def _n_of_mass(mass: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``n`` and ``dn/dM`` for exit masses ``mass`` of kernel scales ``TAUS[k]``."""
    width = _WIDTH[k]
    pos = np.minimum(mass / width, _CELLS - 1e-9)
    i = pos.astype(np.int64)
    lo, hi = _N_OF_M[k, i], _N_OF_M[k, i + 1]
    return lo + (pos - i) * (hi - lo), (hi - lo) / width


def excitation(bits: np.ndarray) -> np.ndarray:
    """``S[t, k] = sum_{j=1..MEMORY} DECAYS[k]**(j-1) bits[t-j]`` for every ``t`` (bits
    before the series are 0).

    Blocks of :data:`_BLOCK` bars: inside a block the infinite-memory sum is a scaled
    cumulative sum (the scale ``b**-i`` stays below ``e**32``, and each sum is dominated
    by its latest terms, so it keeps full relative precision); block starts are carried by
    the recursion ``U(t + B) = b**B (U(t) + in-block sum)``. The memory cut is
    ``S(t) = U(t) - b**MEMORY U(t - MEMORY)``.
    """
    x = np.asarray(bits, dtype=np.float64)
    n = x.size
    blocks = -(-n // _BLOCK)
    padded = np.zeros(blocks * _BLOCK)
    padded[:n] = x
    grid = padded.reshape(blocks, _BLOCK)
    i = np.arange(_BLOCK)
    up = DECAYS[:, None] ** -(i + 1.0)                       # (K, B)
    down = DECAYS[:, None] ** i                              # (K, B)
    # inner[q, k, i] = sum over s < i of bits[q, s] b**-(s+1), then times b**i.
    scaled = np.cumsum(grid[:, None, :] * up[None], axis=2)
    inner = np.concatenate([np.zeros((blocks, TAUS.size, 1)), scaled[:, :, :-1]], axis=2)
    carry_in = scaled[:, :, -1] * DECAYS ** _BLOCK           # block's own contribution
    start = np.zeros((blocks, TAUS.size))
    factor = DECAYS ** _BLOCK
    for q in range(1, blocks):
        start[q] = factor * start[q - 1] + carry_in[q - 1]
    u = (start[:, :, None] + inner) * down[None]
    u = u.transpose(0, 2, 1).reshape(blocks * _BLOCK, TAUS.size)[:n]
    s = u.copy()
    s[MEMORY:] -= _TAIL * u[:-MEMORY]
    return s


def event_terms(s: np.ndarray) -> np.ndarray:
    """``log(1 + theta S)`` over the theta grid for excitation rows ``s`` (..., K)."""
    return np.log1p(s[..., :, None] * THETA)


def _profile(length: Any, e: Any, q0: Any, q1: Any, q2: Any,
             theta: Any) -> tuple[Any, Any]:
    """``mu`` maximising the likelihood at ``theta`` and ``mu c1 - mu**2 c2`` (the terms of
    the log-likelihood linear and quadratic in ``mu``), given the window sums
    ``q0 = A - A1 / 2``, ``q1 = A1``, ``q2 = A2``."""
    c1 = (length - 0.5 * e) + theta * q0
    c2 = (e + theta * (2.0 * q1 + theta * q2)) / 24.0
    mu = 2.0 * e / (c1 + np.sqrt(np.maximum(c1 * c1 - 8.0 * c2 * e, 0.0)))
    return mu, mu * (c1 - mu * c2)


def estimate_rows(length: np.ndarray, events: np.ndarray, total: np.ndarray,
                  first: np.ndarray, second: np.ndarray,
                  logs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Branching ratio in ``[0, 0.99]`` and its standard error for windows given their sums.

    Args (one row per window): ``length`` bars, ``events`` event bars ``E``; per tau
    (shape (R, K)) ``total = sum S``, ``first = sum_events S``, ``second = sum_events
    S**2``; ``logs`` (R, K, T) ``= sum_events log(1 + theta S)``.

    Rows without events give 0 with standard error 1 (no information).
    """
    length = np.asarray(length, dtype=np.float64)
    e = np.asarray(events, dtype=np.float64)
    rows = e.size
    none = e <= 0.0
    e = np.maximum(e, 1.0)
    q0 = total - 0.5 * first
    mu, drop = _profile(length[:, None, None], e[:, None, None], q0[..., None],
                        first[..., None], second[..., None], THETA)
    ll = e[:, None, None] * np.log(mu) + logs - drop
    mu0, drop0 = _profile(length, e, 0.0, 0.0, 0.0, 0.0)
    ll0 = e * np.log(mu0) - drop0

    r = np.arange(rows)
    best = ll.reshape(rows, -1).argmax(axis=1)
    k, j = np.divmod(best, THETA.size)
    j = np.minimum(np.maximum(j, 1), THETA.size - 2)
    line, gline = ll[r, k], logs[r, k]
    y0, y1, y2 = line[r, j - 1], line[r, j], line[r, j + 1]
    curve = y0 - 2.0 * y1 + y2
    bend = curve < 0.0
    offset = np.where(bend, 0.5 * (y0 - y2) / np.where(bend, curve, -1.0), 0.0)
    t = np.exp(LOG_THETA[j] + np.minimum(np.maximum(offset, -1.0), 1.0) * _STEP)
    a0, a1, a2 = q0[r, k], first[r, k], second[r, k]
    m, _ = _profile(length, e, a0, a1, a2, t)
    # Mean triggers in an event bar: E[L / (1 - e**-L)] ~ 1 + L/2 + L**2/12 over events.
    triggers = 1.0 + (0.5 * m * (e + t * a1)
                      + m * m * (e + t * (2.0 * a1 + t * a2)) / 12.0) / e
    mass = t * m / ((1.0 - DECAYS[k]) * triggers)
    n, slope = _n_of_mass(mass, k)

    # Observed information of (log mu, log theta) at the estimate.
    big1 = (length - 0.5 * e) + t * a0
    big2 = (e + t * (2.0 * a1 + t * a2)) / 24.0
    d2 = (a1 + t * a2) / 12.0
    g_curve = (gline[r, j - 1] - 2.0 * gline[r, j] + gline[r, j + 1]) / _STEP ** 2
    i_mm = m * big1 - 4.0 * m * m * big2
    i_mt = t * m * (a0 - 2.0 * m * d2)
    i_tt = m * t * a0 - g_curve - m * m * t * (t * a2 / 12.0 + d2)
    det = i_mm * i_tt - i_mt * i_mt
    num = i_mm + i_tt - 2.0 * i_mt
    ok = (det > 0.0) & (num > 0.0)
    se_fit = slope * mass * np.sqrt(np.where(ok, num / np.where(ok, det, 1.0), np.inf))
    # Error of a at a = 0: information (E A2 - A1**2) / (mu**2 E) for (mu, a).
    spread = e * a2 - a1 * a1
    var_a0 = np.where(spread > 0.0, mu0 * mu0 * e / np.where(spread > 0.0, spread, 1.0),
                      np.inf)
    se0 = _SLOPE0[k] / (1.0 - DECAYS[k]) * np.sqrt(var_a0)
    fitted = ll.reshape(rows, -1).max(axis=1) > ll0
    estimate = np.where(fitted & ~none, n, 0.0)
    # An estimate within two null errors of 0 carries the null error: there the curvature
    # in log theta is too flat to invert reliably.
    clear = fitted & (n > 2.0 * se0)
    se = np.where(none, 1.0, np.minimum(np.maximum(np.where(clear, se_fit, 0.0), se0), 1.0))
    return estimate, se
