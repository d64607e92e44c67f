"""Significance after many tries: the max-statistic permutation test and the Deflated
Sharpe Ratio.

**Max-statistic permutation test** (White's Reality Check, Romano–Wolf single step).
Each configuration's statistic is the one of :mod:`gnosis.backtest.permutation`: the mean
gross strategy return per bar, ``mean(positions * returns)``, averaged over tickers. Under
the null no configuration has timing skill, so permuting each ticker's bar returns under
its fixed positions gives a draw of every configuration's statistic at once; the *same*
permutations serve every configuration, so the draws keep the configurations'
dependence. The maximum over the grid in each permutation is the null of the best
configuration; a configuration's corrected p-value is
``(1 + #{max_null >= observed}) / (1 + N)``, valid however many configurations were tried.

**Deflated Sharpe Ratio** (Bailey & López de Prado, 2014): the probability that the true
Sharpe ratio of the chosen configuration exceeds the best Sharpe ratio that ``trials``
configurations without skill would show by luck, given the Sharpe ratios' spread across
the trials, the number of bars and the skewness and kurtosis of the chosen returns.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

EULER_GAMMA = 0.5772156649015329
# Permutations per block: bounded memory (block × bars float64) whatever the sizes.
_BLOCK_CELLS = 6_400_000


def permuted_statistics(
    positions: np.ndarray,
    returns: np.ndarray,
    n_permutations: int,
    *,
    seed: int | tuple[int, ...] = 7,
) -> tuple[np.ndarray, np.ndarray]:
    """Statistic of every configuration, observed and under ``n_permutations`` shuffles.

    Args:
        positions: ``(configs, bars)`` weights held over each bar.
        returns: ``(bars,)`` the instrument's return over each bar.
        n_permutations: shuffles of ``returns``; the same ones score every configuration.
        seed: seeds the shuffles (a tuple, e.g. ``(seed, ticker, window)``, keeps
            independent streams apart).

    Returns:
        ``observed`` of shape ``(configs,)`` and ``null`` of shape ``(n_permutations,
        configs)``: ``mean(positions * returns)`` per configuration.
    """
    positions = np.atleast_2d(np.asarray(positions, dtype=np.float64))
    returns = np.asarray(returns, dtype=np.float64)
    configs, n = positions.shape
    if returns.shape != (n,):
        raise ValueError("returns must have one value per bar of positions")
    if n == 0:
        return np.zeros(configs), np.zeros((n_permutations, configs))
    observed = positions @ returns / n
    null = np.empty((n_permutations, configs))
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    block = max(1, min(n_permutations, _BLOCK_CELLS // n))
    for start in range(0, n_permutations, block):
        rows = min(block, n_permutations - start)
        shuffled = np.tile(returns, (rows, 1))
        rng.permuted(shuffled, axis=1, out=shuffled)
        null[start:start + rows] = shuffled @ positions.T / n
    return observed, null


def max_statistic_p_values(observed: np.ndarray, null: np.ndarray) -> np.ndarray:
    """Corrected p-value of every configuration against the null of the grid's maximum.

    ``observed`` is ``(configs,)``, ``null`` ``(permutations, configs)`` from the same
    permutations for every configuration.
    """
    observed = np.asarray(observed, dtype=np.float64)
    null = np.asarray(null, dtype=np.float64)
    if null.shape[0] == 0:
        return np.full(observed.shape, math.nan)
    best = null.max(axis=1)
    # Ties (e.g. a configuration that never trades) are ties, not rounding noise.
    tolerance = 1e-9 * max(float(np.abs(observed).max(initial=0.0)),
                           float(np.abs(best).max(initial=0.0)))
    exceed = (best[:, None] >= observed[None, :] - tolerance).sum(axis=0)
    return (1 + exceed) / (1 + null.shape[0])


def expected_max_sharpe(trials: int, sharpe_variance: float) -> float:
    """Expected maximum of ``trials`` Sharpe ratios of zero true mean and the given
    variance (the false strategy theorem): ``sqrt(V) * ((1 - γ) Φ⁻¹(1 - 1/N) + γ Φ⁻¹(1 -
    1/(N e)))``."""
    if trials < 2 or sharpe_variance <= 0:
        return 0.0
    z = NormalDist().inv_cdf
    return math.sqrt(sharpe_variance) * ((1 - EULER_GAMMA) * z(1 - 1 / trials)
                                         + EULER_GAMMA * z(1 - 1 / (trials * math.e)))


def deflated_sharpe_ratio(sharpe: float, *, trials: int, sharpe_variance: float, bars: int,
                          skewness: float = 0.0, kurtosis: float = 3.0) -> float:
    """Probability that the true Sharpe ratio beats the best of ``trials`` lucky ones.

    Args:
        sharpe: the chosen configuration's Sharpe ratio, per bar (not annualised).
        trials: configurations tried.
        sharpe_variance: variance of the per-bar Sharpe ratios across the trials.
        bars: bars behind ``sharpe``.
        skewness: skewness of the chosen bar returns.
        kurtosis: kurtosis (not excess: 3 for a normal) of the chosen bar returns.
    """
    if bars < 2:
        return math.nan
    benchmark = expected_max_sharpe(trials, sharpe_variance)
    spread = 1 - skewness * sharpe + (kurtosis - 1) / 4 * sharpe ** 2
    if spread <= 0:
        return math.nan
    z = (sharpe - benchmark) * math.sqrt(bars - 1) / math.sqrt(spread)
    return NormalDist().cdf(z)
