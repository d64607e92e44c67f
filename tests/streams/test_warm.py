"""What a ticker's state takes from a warm start, and what it refuses (no broker)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gnosis.config import Settings
from gnosis.engine import TickerEngine
from gnosis.events import Bar, format_timestamp
from gnosis.models.sentiment import load_scorer
from gnosis.streams.records import WarmCommand, decode_command
from gnosis.warm import WarmRefused, adopt, warm_states, warmed_engine

from .conftest import MINUTE_NS, market_events, small_windows

SETTINGS = small_windows(Settings())


def _history() -> tuple[list[Bar], dict[str, TickerEngine]]:
    bars, news = market_events(("AAPL",), 60, news_per_bar=0.5)
    return bars, warm_states(bars, news, SETTINGS, load_scorer(SETTINGS.sentiment))


def test_a_state_without_bars_takes_the_history_and_keeps_its_live_headlines() -> None:
    bars, engines = _history()
    warmed = engines["AAPL"]
    last = bars[-1].ts
    current = TickerEngine("AAPL", SETTINGS)
    current.add_sentiment(last + MINUTE_NS // 2, 0.7, last + MINUTE_NS)  # live, before warm
    five = Bar("AAPL", last, 1.0, 1.0, 1.0, 1.0, 10.0, "5m")
    current.on_bar(five, last)  # another interval: kept as it is
    held = len(warmed.headlines())
    taken = adopt(current, warmed)
    assert taken.series["1m"].features.bars == 60
    assert taken.series["5m"].features.bars == 1
    assert (last + MINUTE_NS // 2, last + MINUTE_NS, 0.7) in taken.headlines()
    assert len(taken.headlines()) == held + 1


def test_history_that_would_replace_bars_is_refused_unless_it_reaches_their_last() -> None:
    bars, engines = _history()
    current = TickerEngine("AAPL", SETTINGS)
    for bar in bars[:10]:
        current.on_bar(bar, bar.ts)
    with pytest.raises(WarmRefused, match=f"AAPL 1m: the state already has 10 bars up to "
                       f"{format_timestamp(bars[9].ts)}, and the history's 60 bars"):
        adopt(current, engines["AAPL"])
    assert adopt(current, engines["AAPL"], replace=True).series["1m"].features.bars == 60

    ahead = TickerEngine("AAPL", SETTINGS)
    later = replace(bars[-1], ts=bars[-1].ts + MINUTE_NS)
    ahead.on_bar(later, later.ts)
    with pytest.raises(WarmRefused, match="--replace needs history that reaches the state's "
                       "last bar"):
        adopt(ahead, engines["AAPL"], replace=True)


def test_a_state_replayed_under_other_settings_or_model_is_refused() -> None:
    _, engines = _history()
    command = decode_command(WarmCommand("AAPL", engines["AAPL"].to_state(), "lexicon",
                                         True).to_json())
    assert isinstance(command, WarmCommand) and command.replace
    assert warmed_engine("AAPL", SETTINGS, command.state, "lexicon", "lexicon").series[
        "1m"].features.bars == 60
    other = replace(SETTINGS, features=replace(SETTINGS.features, window=128))
    with pytest.raises(WarmRefused, match=r"other settings: features.window 160 \(the "
                       r"worker's 128\)"):
        warmed_engine("AAPL", other, command.state, "lexicon", "lexicon")
    with pytest.raises(WarmRefused, match="scored by 'lexicon', the worker's model is 'onnx'"):
        warmed_engine("AAPL", SETTINGS, command.state, "onnx", "lexicon")
