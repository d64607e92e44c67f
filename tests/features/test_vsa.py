"""Hand-built bars are classified as Volume Spread Analysis reads them."""

from __future__ import annotations

import numpy as np
import pytest

from gnosis.config import FeatureConfig
from gnosis.features import VSA_CLASSES, TickerFeatures, compute_features
from gnosis.features.vsa import classify

CONFIG = FeatureConfig(vsa_window=10)
# Background: identical bars, open = close = 100, range 99.5-100.5, volume 1000.
BASE = (100.0, 100.5, 99.5, 100.0, 1_000.0)

CASES = [
    # name, (open, high, low, close, volume), sign of the score
    ("stopping_volume", (100.0, 100.2, 98.5, 99.8, 3_000.0), 1),  # down, closes high
    ("climactic", (100.0, 100.5, 98.5, 98.7, 3_000.0), -1),  # wide, closes on the low
    ("upthrust", (100.0, 101.0, 99.9, 100.0, 1_200.0), -1),  # new high, sold back
    ("test", (100.0, 100.3, 99.3, 100.25, 500.0), 1),  # probes lower on low volume
    ("no_supply", (100.0, 100.2, 99.8, 99.9, 500.0), 1),  # narrow down bar, low volume
    ("no_demand", (100.0, 100.2, 99.8, 100.1, 500.0), -1),  # narrow up bar, low volume
    ("neutral", (100.0, 100.5, 99.5, 100.3, 1_000.0), 1),  # ordinary bar
]


def last_bar(bar: tuple[float, ...]) -> tuple[str, float, str, float]:
    rows = [BASE] * 12 + [bar]
    state = TickerFeatures(CONFIG)
    snap = None
    for i, row in enumerate(rows):
        snap = state.update(i, *row)
    columns = np.array(rows).T
    frame = compute_features(np.arange(len(rows)), *columns, config=CONFIG)
    return (snap.vsa_class, snap.vsa_score, VSA_CLASSES[frame.vsa_class[-1]],
            float(frame.vsa_score[-1]))


@pytest.mark.parametrize(("name", "bar", "sign"), CASES, ids=[c[0] for c in CASES])
def test_hand_built_bars(name: str, bar: tuple[float, ...], sign: int) -> None:
    cls, score, batch_cls, batch_score = last_bar(bar)
    assert cls == batch_cls == name
    assert batch_score == pytest.approx(score, abs=1e-12)
    assert np.sign(score) == sign
    if name == "neutral":
        assert abs(score) <= 0.25
    else:
        assert 0.35 <= abs(score) <= 1.0


def test_signal_classes_outscore_neutral_bars() -> None:
    scores = {name: last_bar(bar)[1] for name, bar, _ in CASES}
    assert scores["no_supply"] >= 0.3  # the rules' default no-supply threshold
    assert scores["stopping_volume"] > scores["no_supply"]
    assert scores["climactic"] < scores["no_demand"] < 0


def test_more_extreme_volume_scores_stronger() -> None:
    args = dict(high=100.2, low=98.5, close=99.8, prev_close=100.0, prev_low=99.5,
                prev_volume=1_000.0, prev2_volume=1_000.0, mean_volume=1_000.0,
                mean_spread=1.0, max_high=100.5)
    code_a, a = classify(volume=2_500.0, **args)
    code_b, b = classify(volume=6_000.0, **args)
    assert VSA_CLASSES[code_a] == VSA_CLASSES[code_b] == "stopping_volume"
    assert 0 < a < b <= 1.0


def test_zero_baselines_do_not_divide_by_zero() -> None:
    code, score = classify(high=1.0, low=1.0, close=1.0, volume=0.0, prev_close=1.0,
                           prev_low=1.0, prev_volume=0.0, prev2_volume=0.0,
                           mean_volume=0.0, mean_spread=0.0, max_high=1.0)
    assert (VSA_CLASSES[code], score) == ("neutral", 0.0)
