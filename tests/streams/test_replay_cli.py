"""``gnosis replay --via kafka`` as a user runs it: files in, a live worker, signals out."""

from __future__ import annotations

import pandas as pd
import pytest

from gnosis.config import duration_ns
from gnosis.sinks.files import read_signals
from gnosis.streams.kafka.broker import free_port

from .conftest import market_events, write_files

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def test_two_runs_on_one_cluster_each_collect_their_own_signals(
        tmp_path, kafka_settings, kafka_topics, worker_process, gnosis_cli) -> None:
    settings = kafka_settings(partitions=3, processing_guarantee="exactly_once",
                              web_port=free_port())
    kafka_topics(settings)

    def gnosis(*args: object) -> None:
        done = gnosis_cli(settings, *args)
        assert done.returncode == 0, done.stderr[-2000:]

    bars, news = market_events(tickers=("AAPL", "MSFT", "TSLA"), bars_per_ticker=300,
                               news_per_bar=0.3, seed=8)
    cut = sorted(b.ts for b in bars)[len(bars) // 2]
    # Each run publishes what was known before the cut, or after it: a headline is known
    # replay.news_latency after its stamp, a bar at its close.
    delay = duration_ns(settings.replay.news_latency)
    halves = [([b for b in bars if b.ts < cut], [n for n in news if n.ts + delay < cut]),
              ([b for b in bars if b.ts >= cut], [n for n in news if n.ts + delay >= cut])]
    whole = tmp_path / "whole"
    whole.mkdir()
    gnosis("replay", *write_files(whole, bars, news), "-o", whole / "signals.jsonl")
    reference = read_signals(whole / "signals.jsonl")

    worker_process(settings)
    for i, (part_bars, part_news) in enumerate(halves):
        folder = tmp_path / f"half-{i}"
        folder.mkdir()
        out = folder / "signals.jsonl"
        gnosis("replay", *write_files(folder, part_bars, part_news), "-o", out,
                "--via", "kafka")
        got = read_signals(out)
        assert len(got) == len(part_bars), "signals of this run's bars, and no others"
        want = reference[reference["ts"].isin({b.ts for b in part_bars})]
        merged = got.merge(want, on="signal_id", suffixes=("", "_ref"), validate="1:1")
        assert len(merged) == len(part_bars)
        for column in want.columns:
            if column == "signal_id":
                continue
            a, b = merged[column], merged[f"{column}_ref"]
            if pd.api.types.is_float_dtype(b):
                assert ((a - b).abs() <= 1e-9).all(), column
            else:
                assert (a.astype(str) == b.astype(str)).all(), column
