"""Significance after many tries, checked on cases whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gnosis.research import deflated_sharpe_ratio, max_statistic_p_values, permuted_statistics
from gnosis.research.significance import expected_max_sharpe

CONFIGS, BARS, PERMUTATIONS = 10, 400, 199


def noise_trial(rng: np.random.Generator, edge: float = 0.0) -> tuple[float, float]:
    """Best configuration's (single-test p, grid-corrected p) on one noise market.

    Positions are persistent long/short rules with no knowledge of the returns, except,
    with ``edge`` > 0, configuration 3, which leans on the coming return.
    """
    returns = rng.standard_normal(BARS) * 0.01
    drift = np.cumsum(rng.standard_normal((CONFIGS, BARS)), axis=1)
    positions = np.sign(drift - drift.mean(axis=1, keepdims=True))
    if edge:
        positions[3] = np.sign(returns + rng.standard_normal(BARS) * 0.01 / edge)
    observed, null = permuted_statistics(positions, returns, PERMUTATIONS,
                                         seed=int(rng.integers(1 << 31)))
    best = int(np.argmax(observed))
    single = (1 + np.sum(null[:, best] >= observed[best])) / (1 + PERMUTATIONS)
    return float(single), float(max_statistic_p_values(observed, null)[best])


def test_noise_gives_uniform_corrected_p_values_and_biased_naive_ones():
    rng = np.random.default_rng(11)
    trials = np.array([noise_trial(rng) for _ in range(300)])
    naive, corrected = trials[:, 0], trials[:, 1]
    # Corrected: uniform under the null (mean 1/2, 5 % below 0.05, flat histogram).
    assert corrected.mean() == pytest.approx(0.5, abs=0.06)
    assert 0.015 <= np.mean(corrected <= 0.05) <= 0.10
    counts = np.histogram(corrected, bins=5, range=(0, 1))[0]
    assert counts.min() >= 40 and counts.max() <= 80
    # Naive p of the best of ten: far too many "discoveries" (about 1 - 0.95 ** 10).
    assert np.mean(naive <= 0.05) > 0.2


def test_planted_edge_is_found():
    rng = np.random.default_rng(12)
    for _ in range(5):
        _, corrected = noise_trial(rng, edge=0.3)
        assert corrected <= 0.01


def test_same_permutations_for_every_configuration():
    rng = np.random.default_rng(1)
    returns = rng.standard_normal(200)
    positions = np.sign(rng.standard_normal((3, 200)))
    _, together = permuted_statistics(positions, returns, 50, seed=(7, 0, 0))
    for c in range(3):
        _, alone = permuted_statistics(positions[c:c + 1], returns, 50, seed=(7, 0, 0))
        assert np.allclose(alone[:, 0], together[:, c])


def test_deflated_sharpe_matches_the_papers_example():
    # Bailey & López de Prado (2014): annual SR 2.5 over 1,250 days, 100 trials with an
    # annualised variance of 0.5, skewness -3, kurtosis 10: DSR 0.9004.
    daily = math.sqrt(250)
    assert expected_max_sharpe(100, 0.5 / 250) * daily == pytest.approx(1.79, abs=0.01)
    dsr = deflated_sharpe_ratio(2.5 / daily, trials=100, sharpe_variance=0.5 / 250,
                                bars=1250, skewness=-3, kurtosis=10)
    assert dsr == pytest.approx(0.9004, abs=5e-4)


def test_deflated_sharpe_on_noise_and_on_an_edge():
    rng = np.random.default_rng(5)
    bars, trials = 1000, 50
    lucky = []
    for _ in range(100):
        sharpe = rng.standard_normal((trials, bars)).mean(axis=1)  # unit std: mean is SR
        lucky.append(deflated_sharpe_ratio(float(sharpe.max()), trials=trials,
                                           sharpe_variance=float(sharpe.var(ddof=1)),
                                           bars=bars))
    # The best of 50 skill-less trials is rarely judged real.
    assert np.mean(np.array(lucky) > 0.95) <= 0.1
    assert deflated_sharpe_ratio(0.2, trials=trials, sharpe_variance=1 / bars,
                                 bars=bars) > 0.99
