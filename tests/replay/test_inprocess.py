"""The vectorised replay writes what the live engine emits, field for field, reasons too."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gnosis.config import FeatureConfig, Settings
from gnosis.engine import run_events
from gnosis.events import TradingSignal
from gnosis.replay.inprocess import replay_frame, to_signals, write_frame
from gnosis.replay.synthetic import bars_to_events, news_to_events, synthetic_bars, synthetic_news
from gnosis.sinks.files import read_signals, write_signals

SETTINGS = dataclasses.replace(
    Settings(), features=dataclasses.replace(FeatureConfig(), window=160, vsa_window=10,
                                             vol_short=8, vol_long=32, hurst_stride=4))


def assert_same_fields(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key, x in a.items():
        y = b[key]
        if isinstance(x, float) and not isinstance(x, bool):
            assert math.isclose(x, y, rel_tol=0, abs_tol=1e-9), (key, x, y)
        else:
            assert x == y, (key, x, y)


def market(seed: int, tickers: int, minutes: int, fives: int, per_bar: float):
    one = synthetic_bars(tickers, minutes, seed=seed)
    five = synthetic_bars(tickers, fives, seed=seed + 1, interval="5m")
    bars = pd.concat([one, five], ignore_index=True)
    return bars, synthetic_news(one, per_bar=per_bar, seed=seed + 2)


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10_000), tickers=st.integers(1, 3), minutes=st.integers(150, 300),
       fives=st.integers(1, 200), per_bar=st.floats(0.0, 0.6))
def test_replay_equals_the_streaming_core_field_for_field(tmp_path_factory, seed, tickers,
                                                          minutes, fives, per_bar):
    bars, news = market(seed, tickers, minutes, fives, per_bar)
    live = run_events(bars_to_events(bars), news_to_events(news), SETTINGS)
    frame = replay_frame(bars, news, SETTINGS)
    assert len(live) == len(frame) == len(bars)
    for streamed, replayed in zip(live, to_signals(frame), strict=True):
        assert replayed.reasons, "every signal says why"
        assert_same_fields(replayed.to_dict(), streamed.to_dict())

    # Through the file sink, as `gnosis replay` writes them: JSON lines and Parquet.
    folder = tmp_path_factory.mktemp("sink")
    assert write_frame(frame, folder / "replay.jsonl") == len(live)
    lines = (folder / "replay.jsonl").read_bytes().splitlines()
    for line, streamed in zip(lines, live, strict=True):
        assert_same_fields(TradingSignal.from_json(line).to_dict(), streamed.to_dict())
    write_frame(frame, folder / "replay.parquet")
    write_signals(live, folder / "live.parquet")
    replayed, expected = read_signals(folder / "replay.parquet"), read_signals(
        folder / "live.parquet")
    for a, b in zip(replayed[list(expected.columns)].to_dict("records"),
                    expected.to_dict("records"), strict=True):
        assert_same_fields(a, b)


def test_the_file_sink_refuses_a_signal_frame_without_its_reasons(tmp_path) -> None:
    bars, news = market(1, 1, 150, 1, 0.3)
    with pytest.raises(ValueError, match="write_frame"):
        write_signals(replay_frame(bars, news, SETTINGS), tmp_path / "signals.jsonl")


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10_000), tickers=st.integers(1, 3), minutes=st.integers(150, 300),
       per_bar=st.floats(0.1, 0.8), late=st.floats(0.0, 1.0))
def test_knowledge_times_decide_the_same_way_in_both_forms(seed, tickers, minutes, per_bar,
                                                           late):
    """With ``received_at`` on bars and news (headlines up to ten bars late, some arriving
    exactly with a bar), the vectorised replay and the streaming core count the same
    headlines for every bar, and late ones only from the first bar known after them."""
    rng = np.random.default_rng(seed)
    bars, news = market(seed, tickers, minutes, 1, per_bar)
    bars = bars.assign(received_at=bars["ts"] + rng.integers(0, 2 * 10**9, len(bars)))
    lag = np.where(rng.uniform(size=len(news)) < late,
                   rng.integers(0, 600, len(news)) * 10**9, rng.integers(0, 3, len(news)) * 10**9)
    news = news.assign(received_at=news["ts"].to_numpy() + lag)
    tied = rng.uniform(size=len(news)) < 0.2  # arrives with a bar: the tie counts
    news.loc[tied, "received_at"] = rng.choice(bars["received_at"].to_numpy(), int(tied.sum()))
    frame = replay_frame(bars, news, SETTINGS)
    live = run_events(bars_to_events(bars), news_to_events(news), SETTINGS,
                      bars_known=bars["received_at"].tolist(),
                      news_known=news["received_at"].tolist())
    for streamed, replayed in zip(live, to_signals(frame), strict=True):
        assert_same_fields(replayed.to_dict(), streamed.to_dict())
    stamped_only = replay_frame(bars.drop(columns="received_at"),
                                news.assign(received_at=news["ts"]), SETTINGS)
    assert (frame["sentiment_count"] <= stamped_only["sentiment_count"]).all()
