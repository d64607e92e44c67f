"""A feature state carried over to other settings goes on as a replay under them would."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from gnosis.features import TickerFeatures, ticker_phase
from gnosis.features.reconfigure import CannotCarry, reconfigure
from gnosis.features.state import last_point

from .simulate import random_bars
from .test_equivalence import SMALL, assert_same, feed

CUT = 700  # bars under the old settings: every feature warm, Hurst and Hawkes re-estimated
PHASE = ticker_phase("AAPL")

REBUILT = {
    "shorter window": {"window": 160},
    "shorter hawkes_window": {"hawkes_window": 250},
    "shorter vsa_window": {"vsa_window": 6},
    "vol_short": {"vol_short": 4},
    "trend_lookback": {"trend_lookback": 12},
    "window and hurst_stride": {"window": 150, "hurst_stride": 7},
}
REFUSED = {
    "longer window": ({"window": 200, "hawkes_window": 300}, "the state keeps 192 returns, "
                      "200 are needed"),
    "longer hawkes_window": ({"hawkes_window": 400}, "the state keeps 557 event bits, 657 "
                             "are needed"),
    "longer vsa_window": ({"vsa_window": 60}, "the state keeps 41 bars of high, low, close "
                          "and volume, 61 are needed"),
    "event_threshold": ({"event_threshold": 2.0}, "which bars are Hawkes events depends on "
                        "event_threshold and vol_long"),
    "vol_long": ({"vol_long": 30}, "which bars are Hawkes events depends on event_threshold "
                 "and vol_long"),
}


@pytest.mark.parametrize("change", list(REBUILT.values()), ids=list(REBUILT))
def test_a_rebuilt_state_continues_as_a_replay_under_the_new_settings(change) -> None:
    new = replace(SMALL, **change)
    bars = random_bars(CUT + 300, np.random.default_rng(7))
    old_state = TickerFeatures(SMALL, PHASE)
    feed(old_state, bars, 0, CUT)
    carried = reconfigure(old_state.history(), SMALL, new, PHASE)
    assert carried.held == ()
    replayed = TickerFeatures(new, PHASE)
    feed(replayed, bars, 0, CUT)
    after = feed(carried.features, bars, CUT)
    for i, (a, b) in enumerate(zip(after, feed(replayed, bars, CUT), strict=True)):
        assert_same(a, b, f"bar {CUT + i}")
    assert after[-1].ready and after[-1].hurst_exponent != 0.5


@pytest.mark.parametrize(("setting", "estimate", "kept", "fields"), [
    ("hawkes_stride", "Hawkes estimate", "event bits", ("hawkes_branching", "hawkes_se")),
    ("hurst_stride", "Hurst exponent", "returns", ("hurst_exponent", "hurst_se")),
])
def test_a_new_stride_holds_the_last_estimate_until_its_next_point(setting, estimate, kept,
                                                                    fields) -> None:
    """The new stride's last point lies before the data kept: the estimate made under the
    old stride stays until the new stride's next point, then all is the replay's."""
    new = replace(SMALL, **{setting: 7})  # whose last point is 2 bars before CUT
    bars = random_bars(CUT + 300, np.random.default_rng(7))
    old_state = TickerFeatures(SMALL, PHASE)
    feed(old_state, bars, 0, CUT)
    carried = reconfigure(old_state.history(), SMALL, new, PHASE)
    upto = int(last_point(CUT, 7, PHASE)) + 7
    assert carried.held == (f"{estimate} held until bar {upto} (its {kept} are not kept)",)
    replayed = TickerFeatures(new, PHASE)
    feed(replayed, bars, 0, CUT)
    for a, b in zip(feed(carried.features, bars, CUT), feed(replayed, bars, CUT), strict=True):
        if a.bars < upto:
            a = replace(a, **{f: getattr(b, f) for f in fields})
        assert_same(a, b, f"bar {a.bars}")


@pytest.mark.parametrize(("change", "reason"), list(REFUSED.values()), ids=list(REFUSED))
def test_a_state_that_does_not_keep_enough_is_refused_with_the_reason(change, reason) -> None:
    old_state = TickerFeatures(SMALL, PHASE)
    feed(old_state, random_bars(CUT, np.random.default_rng(7)))
    with pytest.raises(CannotCarry, match=reason):
        reconfigure(old_state.history(), SMALL, replace(SMALL, **change), PHASE)


def test_a_young_state_carries_over_to_any_window() -> None:
    """While fewer bars were seen than any buffer holds, the state keeps them all."""
    new = replace(SMALL, window=240, hawkes_window=400, vsa_window=30)
    bars = random_bars(600, np.random.default_rng(8))
    young = TickerFeatures(SMALL, PHASE)
    feed(young, bars, 0, 35)
    carried = reconfigure(young.history(), SMALL, new, PHASE).features
    replayed = TickerFeatures(new, PHASE)
    feed(replayed, bars, 0, 35)
    for i, (a, b) in enumerate(zip(feed(carried, bars, 35), feed(replayed, bars, 35),
                                   strict=True)):
        assert_same(a, b, f"bar {35 + i}")
