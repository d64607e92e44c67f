"""Signal rules: the seed's logic, and scalar == vectorised."""

from __future__ import annotations

import numpy as np
import pytest

from gnosis.config import RuleConfig
from gnosis.models.rules import RISK_LEVELS, RULES, SIGNAL_OF_RULE, decide, decide_arrays

CFG = RuleConfig()
BASE = dict(ready=True, vsa_score=0.0, hawkes_branching=0.2, hurst_exponent=0.5,
            hurst_se=0.03, volatility_clustering=1.1, realized_volatility=0.01, trend=0.0,
            sentiment_mean=0.0, sentiment_count=0)


def run(**changes):
    return decide(**{**BASE, **changes}, config=CFG)


def test_buy_needs_positive_sentiment_trend_and_calm():
    d = run(sentiment_mean=0.3, sentiment_count=4, hurst_exponent=0.65,
            volatility_clustering=0.8, trend=0.02)
    assert (d.rule, d.signal_type) == ("buy", "BUY")
    assert 0 < d.confidence <= 1 and d.suggested_position_size > 0
    # Remove any one leg and it is no longer a BUY.
    assert run(sentiment_mean=0.3, sentiment_count=4, hurst_exponent=0.5,
               volatility_clustering=0.8).signal_type == "HOLD"
    assert run(sentiment_mean=0.3, sentiment_count=4, hurst_exponent=0.65,
               volatility_clustering=1.4).signal_type == "HOLD"
    assert run(sentiment_mean=0.3, sentiment_count=0, hurst_exponent=0.65,
               volatility_clustering=0.8).signal_type == "HOLD"


def test_strong_buy_is_contrarian_accumulation():
    d = run(sentiment_mean=0.4, sentiment_count=5, hurst_exponent=0.62, vsa_score=0.6,
            trend=-0.05, volatility_clustering=1.1)
    assert d.rule == "strong_buy" and d.signal_type == "BUY" and d.is_contrarian_market
    # base + sentiment 0.8 + regime 0.48 + calm 0.9 + evidence 1.0, plus the strong bonus
    expected = 0.15 + 0.3 * 0.8 + 0.25 * 0.48 + 0.15 * 0.9 + 0.15 * 1.0 + 0.15
    assert d.confidence == pytest.approx(expected)


def test_sell_needs_negative_sentiment_reversion_and_stress():
    d = run(sentiment_mean=-0.3, sentiment_count=2, hurst_exponent=0.35,
            volatility_clustering=1.5)
    assert (d.rule, d.signal_type, d.risk_level) == ("sell", "SELL", "HIGH")


def test_regimes_need_significance_as_well_as_the_thresholds():
    buy = dict(sentiment_mean=0.3, sentiment_count=4, volatility_clustering=0.8)
    sell = dict(sentiment_mean=-0.3, sentiment_count=4, volatility_clustering=1.5)
    # 0.08 from 0.5: significant at 2 standard errors of 0.03, not of 0.05.
    assert run(**buy, hurst_exponent=0.58, hurst_se=0.03).rule == "buy"
    assert run(**buy, hurst_exponent=0.58, hurst_se=0.05).rule == "hold"
    assert run(**sell, hurst_exponent=0.42, hurst_se=0.03).rule == "sell"
    assert run(**sell, hurst_exponent=0.42, hurst_se=0.05).rule == "hold"
    # Significant but below the threshold: still no regime.
    assert run(**buy, hurst_exponent=0.54, hurst_se=0.001).rule == "hold"
    # k = 0 leaves the raw thresholds alone; a large k demands more evidence.
    loose = RuleConfig(hurst_significance=0.0)
    assert decide(**{**BASE, **buy, "hurst_exponent": 0.56, "hurst_se": 0.5},
                  config=loose).rule == "buy"
    strict = RuleConfig(hurst_significance=3.0)
    assert decide(**{**BASE, **buy, "hurst_exponent": 0.58, "hurst_se": 0.03},
                  config=strict).rule == "hold"


def test_warming_up_is_hold_with_no_size():
    d = run(ready=False, sentiment_mean=0.9, sentiment_count=9, hurst_exponent=0.9,
            volatility_clustering=0.5)
    assert (d.rule, d.signal_type, d.confidence, d.suggested_position_size) == (
        "warming_up", "HOLD", 0.0, 0.0)


def test_min_confidence_downgrades_to_hold():
    cfg = RuleConfig(min_confidence=0.99)
    d = decide(**{**BASE, "sentiment_mean": 0.12, "sentiment_count": 1,
                  "hurst_exponent": 0.58, "volatility_clustering": 0.9}, config=cfg)
    assert (d.rule, d.signal_type, d.suggested_position_size) == (
        "below_min_confidence", "HOLD", 0.0)


def test_position_size_is_volatility_targeted_and_capped():
    calm = run(sentiment_mean=0.3, sentiment_count=4, hurst_exponent=0.65,
               volatility_clustering=0.8, realized_volatility=1e-5)
    wild = run(sentiment_mean=0.3, sentiment_count=4, hurst_exponent=0.65,
               volatility_clustering=0.8, realized_volatility=0.05)
    assert calm.suggested_position_size <= CFG.max_position_size
    assert wild.suggested_position_size < calm.suggested_position_size


@pytest.mark.parametrize("seed", range(5))
def test_vectorised_rules_equal_scalar_rules(seed):
    rng = np.random.default_rng(seed)
    n = 4000
    inputs = dict(
        ready=rng.random(n) > 0.1,
        vsa_score=rng.uniform(-1, 1, n),
        hawkes_branching=rng.uniform(0, 0.99, n),
        hurst_exponent=rng.uniform(0.2, 0.8, n),
        hurst_se=rng.uniform(0.0, 0.1, n),
        volatility_clustering=rng.uniform(0.3, 2.5, n),
        realized_volatility=np.where(rng.random(n) < 0.05, 0.0, rng.uniform(1e-4, 0.05, n)),
        trend=rng.normal(0, 0.05, n),
        sentiment_mean=np.where(rng.random(n) < 0.3, 0.0, rng.uniform(-1, 1, n)),
        sentiment_count=rng.integers(0, 8, n),
    )
    cfg = RuleConfig(min_confidence=0.55)
    arrays = decide_arrays(**inputs, config=cfg)
    for i in range(n):
        d = decide(**{k: v[i].item() for k, v in inputs.items()}, config=cfg)
        assert RULES[arrays.rule_code[i]] == d.rule
        assert SIGNAL_OF_RULE[arrays.rule_code[i]] == d.signal_type
        assert RISK_LEVELS[arrays.risk_code[i]] == d.risk_level
        assert arrays.confidence[i] == d.confidence
        assert arrays.suggested_position_size[i] == d.suggested_position_size
        assert bool(arrays.is_contrarian_market[i]) == d.is_contrarian_market
    assert {RULES[c] for c in arrays.rule_code} >= {"warming_up", "hold", "buy", "sell"}
