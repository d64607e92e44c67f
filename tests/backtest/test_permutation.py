"""Monte Carlo permutation test: reproducible, sensitive to real timing, calm on noise."""

from __future__ import annotations

import numpy as np
import pandas as pd

from gnosis.backtest import BacktestRunner, permutation_test


def synthetic(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0002, 0.01, n)


def test_same_seed_same_p_value():
    r = synthetic(2_000, 1)
    pos = np.sign(np.random.default_rng(2).normal(size=2_000))
    a = permutation_test(pos, r, n_permutations=300, seed=11)
    b = permutation_test(pos, r, n_permutations=300, seed=11)
    c = permutation_test(pos, r, n_permutations=300, seed=12)
    assert a.p_value == b.p_value
    assert np.array_equal(a.null, b.null)
    assert not np.array_equal(a.null, c.null)


def test_strategy_with_edge_is_significant():
    r = synthetic(5_000, 3)
    rng = np.random.default_rng(4)
    # Knows the sign of the coming return 55 % of the time.
    right = rng.random(5_000) < 0.55
    pos = np.where(right, np.sign(r), -np.sign(r))
    test = permutation_test(pos, r, n_permutations=500, seed=5)
    assert test.p_value < 0.01


def test_random_positions_are_not_significant():
    p_values = [permutation_test(np.sign(np.random.default_rng(s).normal(size=3_000)),
                                 synthetic(3_000, 100 + s), n_permutations=200, seed=s).p_value
                for s in range(20)]
    # Under the null p is uniform: about 1 in 20 below 0.05, the median near 0.5.
    assert sum(p < 0.05 for p in p_values) <= 3
    assert 0.25 < float(np.median(p_values)) < 0.75


def test_always_long_has_no_timing_skill():
    r = synthetic(1_000, 6) + 0.01  # a strongly rising market
    test = permutation_test(np.ones(1_000), r, n_permutations=200, seed=1)
    assert test.p_value == 1.0


def test_runner_flags_lookahead_like_edge_on_prices():
    n = 3_000
    index = pd.date_range("2020-01-01", periods=n, freq="h")
    opens = 100 * np.cumprod(1 + synthetic(n, 8))
    prices = pd.DataFrame({"Open": opens, "Close": opens}, index=index)
    nxt = np.concatenate((opens[1:], opens[-1:]))
    # Decided at bar i's close, in force over bar i+1, which earns open[i+1] -> open[i+2]:
    # this target peeks two opens ahead, so it has an edge no honest signal could have.
    ahead = np.concatenate((np.sign(np.diff(nxt)), [0.0]))
    noisy = np.where(np.random.default_rng(9).random(n) < 0.6, ahead, -ahead)
    runner = BacktestRunner(permutations=300, seed=3, transaction_cost=0, slippage=0)
    edge = runner.run(pd.Series(noisy, index=index), prices)
    assert edge.is_significant
    assert edge.mcpt_p_value < 0.01
    coin = np.sign(np.random.default_rng(10).normal(size=n))
    noise = runner.run(pd.Series(coin, index=index), prices)
    assert noise.mcpt_p_value > 0.05
    assert not noise.is_significant
