"""The signal mix: BUY / SELL / HOLD per ticker, and which conditions held each HOLD."""

from __future__ import annotations

import pandas as pd

from gnosis.backtest.signal_mix import format_mix, signal_mix
from gnosis.config import RuleConfig

NO_RULE = "hold: no rule's conditions all met"


def test_holds_are_split_by_their_reasons_and_the_conditions_they_failed():
    rules = RuleConfig()  # positive 0.1, trending 0.55, k = 2, calm <= 1.0
    rows = [  # signal, reasons, sentiment mean and count, H, se, vol clustering
        ("BUY", ["buy: positive sentiment, trending, low volatility clustering"],
         0.3, 2, 0.62, 0.02, 0.9),
        ("HOLD", ["warming_up: not enough bars for every feature yet"], 0.0, 0, 0.5, 1.0, 1.0),
        ("HOLD", ["hold: a rule fired below min_confidence"], 0.3, 2, 0.62, 0.02, 0.9),
        ("HOLD", [NO_RULE], 0.3, 2, 0.56, 0.04, 0.9),   # only the significance test failed
        ("HOLD", [NO_RULE], 0.0, 0, 0.50, 0.02, 1.1),   # no news, no trend, not calm
    ]
    signals = pd.DataFrame(rows, columns=["signal_type", "reasons", "sentiment_mean",
                                          "sentiment_count", "hurst_exponent", "hurst_se",
                                          "volatility_clustering"]).assign(ticker="AAA")
    mix = signal_mix(signals, rules)["AAA"]
    assert (mix["BUY"], mix["SELL"], mix["HOLD"]) == (1, 0, 4)
    assert (mix["HOLD: warming up"], mix["HOLD: below min_confidence"],
            mix["HOLD: no rule met"]) == (1, 1, 2)
    assert mix["BUY blocked: no news, or sentiment < +0.1"] == 1
    assert mix["BUY blocked: Hurst < 0.55"] == 1
    assert mix["BUY blocked: Hurst ≥ 0.55 but within 2 se of 0.5"] == 1
    assert mix["BUY blocked: vol clustering > 1"] == 1
    assert mix["SELL blocked: no news, or sentiment > -0.1"] == 2
    assert mix["SELL blocked: vol clustering < 1.25"] == 2
    assert format_mix(signal_mix(signals, rules))["AAA"]["HOLD"] == "4 (80.0%)"
    # A replay's frame has no reasons yet: its rule column says the same.
    frame = signals.drop(columns="reasons").assign(
        rule=["buy", "warming_up", "below_min_confidence", "hold", "hold"])
    assert signal_mix(frame, rules).equals(signal_mix(signals, rules))
