"""The incremental form equals the vectorised one, through warm-up and after restore()."""

from __future__ import annotations

import math
from dataclasses import fields, replace

import numpy as np
import pytest

from gnosis.config import FeatureConfig
from gnosis.features import (
    VSA_CLASSES,
    FeatureSnapshot,
    TickerFeatures,
    compute_features,
    ticker_phase,
)
from gnosis.features.branching import MEMORY
from gnosis.features.state import rows_of

from .simulate import random_bars

SMALL = FeatureConfig(window=192, vsa_window=10, hurst_stride=5, hawkes_window=300,
                      hawkes_stride=6, event_threshold=1.5, vol_short=8, vol_long=40,
                      trend_lookback=7)
CONFIGS = [SMALL, FeatureConfig(), FeatureConfig(window=256, hurst_stride=1, hawkes_stride=2,
                                                 vol_long=256, vol_short=2)]
NEUTRAL = {"vsa_score": 0.0, "vsa_class": "neutral", "hawkes_branching": 0.0,
           "hurst_exponent": 0.5, "volatility_clustering": 1.0,
           "realized_volatility": 0.0, "trend": 0.0}


def feed(state: TickerFeatures, bars: dict[str, np.ndarray], start: int = 0,
         stop: int | None = None) -> list[FeatureSnapshot]:
    rows = zip(*(bars[k][start:stop].tolist() for k in
                 ("ts", "open", "high", "low", "close", "volume")), strict=True)
    return [state.update(*row) for row in rows]


def assert_same(snap: FeatureSnapshot, other: FeatureSnapshot, where: str) -> None:
    for f in fields(FeatureSnapshot):
        a, b = getattr(snap, f.name), getattr(other, f.name)
        if isinstance(a, float):
            assert math.isfinite(a), f"{where}: {f.name} is {a}"
            assert a == pytest.approx(b, rel=1e-9, abs=1e-9), f"{where}: {f.name}"
        else:
            assert a == b, f"{where}: {f.name} {a!r} != {b!r}"


@pytest.mark.parametrize("config", CONFIGS, ids=["small", "default", "stride1"])
@pytest.mark.parametrize("seed", [1, 2])
def test_incremental_equals_batch(config: FeatureConfig, seed: int) -> None:
    bars = random_bars(3_000, np.random.default_rng(seed))
    frame = compute_features(**bars, config=config)
    snaps = feed(TickerFeatures(config), bars)
    assert len(frame) == len(snaps) == 3_000
    for i, snap in enumerate(snaps):
        assert_same(snap, frame.snapshot(i), f"bar {i}")
    # The series is long enough to warm up everything and exercise every VSA class.
    assert frame.ready[-1]
    assert set(np.unique(frame.vsa_class)) == set(range(len(VSA_CLASSES)))
    assert frame.hawkes_branching[frame.ready].max() > 0.0


@pytest.mark.parametrize("config", CONFIGS[:2], ids=["small", "default"])
def test_incremental_equals_batch_at_a_tickers_phase(config: FeatureConfig) -> None:
    phase = ticker_phase("MSFT")
    assert phase % config.hurst_stride and phase % config.hawkes_stride  # not phase 0's
    bars = random_bars(3_000, np.random.default_rng(11))
    frame = compute_features(**bars, config=config, phase=phase)
    for i, snap in enumerate(feed(TickerFeatures(config, phase), bars)):
        assert_same(snap, frame.snapshot(i), f"bar {i}")
    assert frame.ready[-1]
    # Re-estimated at the ticker's own stride points, held in between.
    changed = np.flatnonzero(np.diff(frame.hawkes_branching)) + 2  # bar counts
    assert changed.size and np.all((changed - phase) % config.hawkes_stride == 0)


def test_tickers_closing_together_reestimate_on_different_bars() -> None:
    """Their bars close at the same times, so a shared stride point would put every
    ticker's Hurst and Hawkes estimate on the same bar."""
    stride = FeatureConfig().hawkes_stride
    points = {ticker_phase(f"T{i:03d}") % stride for i in range(50)}
    assert len(points) > stride // 2


def test_incremental_equals_batch_past_the_periodic_resums() -> None:
    """Past several exact recomputations of the rolling sums (every 4,096 bars)."""
    config = replace(SMALL, hawkes_stride=1)
    bars = random_bars(9_000, np.random.default_rng(9))
    frame = compute_features(**bars, config=config)
    for i, snap in enumerate(feed(TickerFeatures(config), bars)):
        assert_same(snap, frame.snapshot(i), f"bar {i}")


def test_warm_up_reports_neutral_values_then_becomes_ready() -> None:
    config = SMALL
    bars = random_bars(400, np.random.default_rng(3))
    snaps = feed(TickerFeatures(config), bars)
    first = snaps[0]
    assert not first.ready
    assert first.bars == 1
    assert {k: getattr(first, k) for k in NEUTRAL} == NEUTRAL
    ready = [s.ready for s in snaps]
    became = ready.index(True)
    assert all(ready[became:]) and not any(ready[:became])
    # Hawkes is the slowest here: vol_long bars of baseline, then window bars of events,
    # up to its next stride point.
    stride = config.hawkes_stride
    assert became == -(-(config.vol_long + config.window) // stride) * stride - 1
    assert snaps[config.vsa_window - 1].vsa_class == "neutral"
    assert snaps[config.vol_long].realized_volatility > 0.0


@pytest.mark.parametrize("n", [1, 2, 9, 50])
def test_short_series_are_not_ready_and_finite(n: int) -> None:
    bars = random_bars(n, np.random.default_rng(4))
    frame = compute_features(**bars, config=SMALL)
    snaps = feed(TickerFeatures(SMALL), bars)
    assert not frame.ready.any()
    for i, snap in enumerate(snaps):
        assert_same(snap, frame.snapshot(i), f"bar {i}")


def test_flat_market_and_zero_volume_stay_finite() -> None:
    n = 600
    flat = np.full(n, 50.0)
    bars = {"ts": np.arange(n), "open": flat, "high": flat, "low": flat, "close": flat,
            "volume": np.zeros(n)}
    frame = compute_features(**bars, config=SMALL)
    snaps = feed(TickerFeatures(SMALL), bars)
    for i, snap in enumerate(snaps):
        assert_same(snap, frame.snapshot(i), f"bar {i}")
    last = snaps[-1]
    assert last.ready
    assert (last.hurst_exponent, last.volatility_clustering, last.hawkes_branching,
            last.vsa_class, last.trend) == (0.5, 1.0, 0.0, "neutral", 0.0)


def test_ranges() -> None:
    frame = compute_features(**random_bars(5_000, np.random.default_rng(5)), config=SMALL)
    assert np.all(np.abs(frame.vsa_score) <= 1.0)
    assert np.all((frame.hawkes_branching >= 0.0) & (frame.hawkes_branching < 1.0))
    assert np.all((frame.hurst_exponent >= 0.0) & (frame.hurst_exponent <= 1.0))
    assert np.all(frame.volatility_clustering >= 0.0)
    assert np.all(frame.realized_volatility >= 0.0)


@pytest.mark.parametrize("config", CONFIGS[:2], ids=["small", "default"])
@pytest.mark.parametrize("cut", [0, 5, 150, 700, 2_345, 3_001])
def test_restore_rebuilds_the_state(config: FeatureConfig, cut: int) -> None:
    bars = random_bars(3_500, np.random.default_rng(6))
    live = TickerFeatures(config)
    feed(live, bars, 0, cut)
    saved = live.history()
    assert saved.bars == cut
    assert saved.rows.shape == (min(cut, rows_of(config)), 4)
    assert saved.returns.shape == (min(cut, config.window),)
    assert saved.events.shape == (min(cut, config.hawkes_window + MEMORY + 1),)
    if cut:
        assert saved.rows[-1].tolist() == [bars[k][cut - 1] for k in ("high", "low", "close",
                                                                      "volume")]
    restored = TickerFeatures.restore(config, saved)
    assert restored.bars == live.bars == cut
    again = restored.history()
    for name in ("rows", "returns", "events"):
        np.testing.assert_array_equal(getattr(again, name), getattr(saved, name))
    assert again.held == saved.held
    after_live = feed(live, bars, cut, cut + 400)
    after_restored = feed(restored, bars, cut, cut + 400)
    for i, (a, b) in enumerate(zip(after_live, after_restored, strict=True)):
        assert_same(a, b, f"bar {cut + i}")


def test_restored_state_equals_batch() -> None:
    """Restored mid-window (between Hurst and Hawkes stride points), the stream still
    equals the vectorised form, event bits from before the kept rows included."""
    config = SMALL
    bars = random_bars(2_000, np.random.default_rng(8))
    frame = compute_features(**bars, config=config)
    live = TickerFeatures(config)
    feed(live, bars, 0, 1_003)
    restored = TickerFeatures.restore(config, live.history())
    for i, snap in enumerate(feed(restored, bars, 1_003), start=1_003):
        assert_same(snap, frame.snapshot(i), f"bar {i}")
    # At a ticker's phase, with its stride points on either side of the cut.
    phase = ticker_phase("MSFT")
    frame = compute_features(**bars, config=config, phase=phase)
    live = TickerFeatures(config, phase)
    feed(live, bars, 0, 1_003)
    restored = TickerFeatures.restore(config, live.history(), phase)
    for i, snap in enumerate(feed(restored, bars, 1_003), start=1_003):
        assert_same(snap, frame.snapshot(i), f"bar {i}")


def test_state_keeps_rows_only_for_the_short_lookbacks() -> None:
    """Full rows for the non-Hawkes lookbacks; the Hawkes window only as event bits."""
    config = FeatureConfig()
    live = TickerFeatures(config)
    feed(live, random_bars(3_000, np.random.default_rng(10)))
    saved = live.history()
    assert saved.rows.shape == (config.vol_long + 1, 4)
    assert saved.events.size == config.hawkes_window + MEMORY + 1 < live.lookback


@pytest.mark.parametrize("field", ["rows", "returns", "events"])
def test_restore_rejects_a_history_of_the_wrong_length(field: str) -> None:
    live = TickerFeatures(SMALL)
    feed(live, random_bars(50, np.random.default_rng(7)))
    saved = live.history()
    short = replace(saved, **{field: getattr(saved, field)[1:]})
    with pytest.raises(ValueError, match=f"saved {field} must have shape"):
        TickerFeatures.restore(SMALL, short)


def test_lookback_covers_every_window() -> None:
    config = FeatureConfig()
    state = TickerFeatures(config)
    assert state.lookback >= config.window + config.hurst_stride
    assert state.lookback >= config.window + config.vol_long


def test_invalid_config_is_rejected() -> None:
    with pytest.raises(ValueError, match="vol_short < vol_long"):
        TickerFeatures(FeatureConfig(vol_short=200, vol_long=100))
    with pytest.raises(ValueError, match="window must be at least"):
        compute_features(*(np.ones(3) for _ in range(6)), config=FeatureConfig(window=50,
                                                                             vol_long=40))
