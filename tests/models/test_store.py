"""The score store: round trip, resume after kill -9, model identity, concurrent writers,
replays that make no model calls, and a live cache warmed from it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from gnosis.config import SentimentConfig, Settings
from gnosis.models.sentiment import (
    TINY_MODEL_DIR,
    OnnxSentimentScorer,
    ScoreStore,
    load_scorer,
    score_column,
    warm_cache,
)
from gnosis.models.sentiment.score import normalise_key
from gnosis.models.sentiment.store import normalise_keys
from gnosis.models.sentiment.synthetic import synthetic_headlines
from gnosis.replay.inprocess import replay_frame
from gnosis.replay.synthetic import synthetic_bars, synthetic_news


class CountingScorer(OnnxSentimentScorer):
    """The real ONNX scorer, counting its model calls (session runs) and texts."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.calls = 0
        self.texts = 0

    def _run(self, encodings: list) -> np.ndarray:
        self.calls += 1
        self.texts += len(encodings)
        return super()._run(encodings)


def _news_csv(path: Path, headlines: list[str]) -> Path:
    pd.DataFrame({"id": [f"n{i}" for i in range(len(headlines))],
                  "timestamp": 1_704_209_400_000 + np.arange(len(headlines)) * 1000,
                  "tickers": "AAPL", "headline": headlines}).to_csv(path, index=False)
    return path


def _gnosis(*args: str) -> list[str]:
    return [sys.executable, "-m", "gnosis.cli", *args]


@given(st.lists(st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(
    [" ", "\t", "A", "z", "\x00", "\u00a0", "ß", "\x7f"]), max_size=40)
    | st.sampled_from(["é " * 2100, "Ab  " * 1100, " x" * 2100]), max_size=30))
def test_vectorised_keys_equal_normalise_key(texts: list[str]) -> None:
    assert normalise_keys(texts).to_pylist() == [normalise_key(t) for t in texts]


def test_round_trip_scores_each_distinct_headline_once(tmp_path, tiny) -> None:
    headlines = synthetic_headlines(300, seed=4)
    headlines = headlines + [h.upper() + "  " for h in headlines[:50]]  # same keys
    distinct = len({normalise_key(h) for h in headlines})
    scorer = CountingScorer(TINY_MODEL_DIR, batch_size=8)
    first, report = score_column(headlines, scorer, tmp_path)
    assert (report.headlines, report.distinct, report.stored, report.scored) == (
        350, distinct, 0, distinct)
    assert scorer.texts == distinct
    expected = np.array([s.score for s in tiny.score_batch(
        [normalise_key(h) for h in headlines])])
    np.testing.assert_allclose(first, expected, atol=1e-6)

    again = CountingScorer(TINY_MODEL_DIR, batch_size=8)
    second, report = score_column(headlines, again, tmp_path)
    assert (report.stored, report.scored, again.calls) == (distinct, 0, 0)
    assert np.array_equal(first, second)  # stored as float64: bit for bit
    info = ScoreStore.for_scorer(tmp_path, again).info()
    assert (info.rows, info.providers, info.model_id) == (distinct, ("CPUExecutionProvider",),
                                                          tiny.model_id)


def test_a_new_model_or_truncation_never_reuses_scores(tmp_path, tiny) -> None:
    from gnosis.models.export import quantize_model

    headlines = list(dict.fromkeys(synthetic_headlines(50, seed=6)))
    score_column(headlines, tiny, tmp_path / "store")
    quantize_model(TINY_MODEL_DIR, tmp_path / "int8")
    for other in (OnnxSentimentScorer(tmp_path / "int8"),
                  OnnxSentimentScorer(TINY_MODEL_DIR, max_length=8)):
        assert other.digest != tiny.digest
        _, report = score_column(headlines, other, tmp_path / "store")
        assert (report.stored, report.scored) == (0, len(headlines))
    _, report = score_column(headlines, OnnxSentimentScorer(TINY_MODEL_DIR), tmp_path / "store")
    assert (report.stored, report.scored) == (len(headlines), 0)


def test_replay_with_a_full_store_makes_no_model_calls(tmp_path) -> None:
    bars = synthetic_bars(3, 600, seed=3)
    news = synthetic_news(bars, per_bar=0.2, seed=4)
    settings = Settings(sentiment=SentimentConfig(model_dir=str(TINY_MODEL_DIR),
                                                  store_dir=str(tmp_path / "store")))
    filling = CountingScorer(TINY_MODEL_DIR)
    filled = replay_frame(bars, news, settings, filling)
    assert filling.calls > 0
    reading = CountingScorer(TINY_MODEL_DIR)
    again = replay_frame(bars, news, settings, reading)
    assert reading.calls == 0
    pd.testing.assert_frame_equal(filled, again)
    # and the store gives what scoring without it gives
    plain = replay_frame(bars, news, replace(settings, sentiment=replace(
        settings.sentiment, store_dir="")), load_scorer(settings.sentiment))
    np.testing.assert_allclose(again.sentiment_mean, plain.sentiment_mean, atol=1e-6)


def test_gnosis_replay_reports_store_hits(tmp_path) -> None:
    bars = synthetic_bars(2, 300, seed=3)
    news = synthetic_news(bars, per_bar=0.2, seed=4)
    bars_path, news_path = tmp_path / "bars.parquet", tmp_path / "news.parquet"
    bars.assign(timestamp=bars.ts // 1_000_000).drop(columns="ts").to_parquet(bars_path)
    news.assign(timestamp=news.ts // 1_000_000, tickers=news.tickers.map(list)).drop(
        columns="ts").to_parquet(news_path)
    env = {**os.environ, "GNOSIS_SENTIMENT__MODEL_DIR": str(TINY_MODEL_DIR),
           "GNOSIS_SENTIMENT__STORE_DIR": str(tmp_path / "store")}
    runs = [subprocess.run(_gnosis("replay", str(bars_path), str(news_path), "-o",
                                   str(tmp_path / f"s{i}.parquet")), env=env,
                           capture_output=True, text=True, timeout=300, check=True)
            for i in range(2)]
    distinct = len(set(news.headline.map(normalise_key)))
    assert f"0 from the score store, {distinct:,} scored" in runs[0].stderr
    assert f"{distinct:,} from the score store, 0 scored" in runs[1].stderr
    assert pd.read_parquet(tmp_path / "s0.parquet").equals(
        pd.read_parquet(tmp_path / "s1.parquet"))


def _parts_rows(store: Path) -> int:
    return sum(pq.read_metadata(p).num_rows for p in store.glob("*/part-*.parquet"))


@pytest.mark.slow
def test_news_score_resumes_after_kill_9(tmp_path, tiny) -> None:
    headlines = synthetic_headlines(12_000, seed=11)
    distinct = sorted({normalise_key(h) for h in headlines})
    news = _news_csv(tmp_path / "news.csv", headlines)
    store = tmp_path / "store"
    command = _gnosis("news", "score", str(news), "--store", str(store), "-m",
                      str(TINY_MODEL_DIR), "--processes", "1", "--flush-rows", "500")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True)
    deadline = time.monotonic() + 300
    while _parts_rows(store) < 1000 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    written = _parts_rows(store)
    assert 1000 <= written < len(distinct), "kill -9 came too late to test a resume"
    target = ScoreStore.for_scorer(store, tiny)
    keys, values = target.load()  # every finished part is whole and readable
    assert len(keys) == written and len(set(keys.to_pylist())) == written

    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=True)
    assert f"{written:,} already in the store, {len(distinct) - written:,} to score" in \
        done.stderr
    final = ScoreStore.for_scorer(store, tiny)
    keys, values = final.load()
    assert sorted(keys.to_pylist()) == distinct  # each distinct headline scored once
    expected = {s: r.score for s, r in zip(distinct, tiny.score_batch(distinct), strict=True)}
    got = dict(zip(keys.to_pylist(), values[:, 3].tolist(), strict=True))
    assert max(abs(got[k] - expected[k]) for k in distinct) < 1e-5


@pytest.mark.slow
def test_two_concurrent_writers_leave_a_sound_store(tmp_path, tiny) -> None:
    headlines = synthetic_headlines(6_000, seed=12)
    a = _news_csv(tmp_path / "a.csv", headlines[:4_000])
    b = _news_csv(tmp_path / "b.csv", headlines[2_000:])
    store = tmp_path / "store"
    processes = [subprocess.Popen(
        _gnosis("news", "score", str(path), "--store", str(store), "-m", str(TINY_MODEL_DIR),
                "--processes", "1", "--flush-rows", "300"),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for path in (a, b)]
    for process in processes:
        assert process.wait(timeout=600) == 0, process.stderr.read()
    target = ScoreStore.for_scorer(store, tiny)
    keys, values = target.load()
    distinct = sorted({normalise_key(h) for h in headlines})
    assert sorted(set(keys.to_pylist())) == distinct
    assert not list(target.path.glob(".tmp-*"))
    # a key both wrote holds the same scores in both parts; look-ups take the oldest
    expected = {k: r.score for k, r in zip(distinct, tiny.score_batch(distinct), strict=True)}
    assert max(abs(s - expected[k]) for k, s in zip(keys.to_pylist(), values[:, 3],
                                                      strict=True)) < 1e-5
    _, found = target.lookup(normalise_keys(headlines))
    assert found.all()


def test_warm_cache_serves_stored_headlines_without_the_model(tmp_path) -> None:
    headlines = list(dict.fromkeys(synthetic_headlines(60, seed=13)))[:40]
    config = SentimentConfig(model_dir=str(TINY_MODEL_DIR), cache_size=25)
    score_column(headlines, load_scorer(config), tmp_path)
    cache = load_scorer(config)
    counting = CountingScorer(TINY_MODEL_DIR)
    cache.scorer = counting
    assert warm_cache(cache, tmp_path) == 25
    assert len(cache) == 25
    cache.score_batch(headlines[-25:])  # the newest 25 were loaded
    assert (counting.calls, cache.hits, cache.misses) == (0, 25, 0)
    assert warm_cache(load_scorer(config), tmp_path / "empty") == 0


def test_cli_news_score_and_info(tmp_path) -> None:
    from gnosis.cli import app

    news = _news_csv(tmp_path / "news.csv",
                     list(dict.fromkeys(synthetic_headlines(40, seed=14)))[:30])
    runner = CliRunner()
    first = runner.invoke(app, ["news", "score", str(news), "--store", str(tmp_path / "s"),
                                "--processes", "1"])
    assert first.exit_code == 0, first.output
    assert "30 to score with lexicon-v1" in first.output
    info = runner.invoke(app, ["news", "info", "--store", str(tmp_path / "s")])
    assert "lexicon-v1" in info.output and "30 scores in 1 part(s)" in info.output
    missing = runner.invoke(app, ["news", "score", str(news)])
    assert missing.exit_code != 0


def test_bulk_scoring_across_processes_equals_one_process(tmp_path) -> None:
    from gnosis.models.sentiment.bulk import ScorerSpec, score_parallel

    texts = [normalise_key(h) for h in dict.fromkeys(synthetic_headlines(300, seed=15))]
    spec = ScorerSpec(str(TINY_MODEL_DIR), batch_size=16)
    alone = dict(zip(*_flatten(score_parallel(spec, texts, processes=1)), strict=True))
    pooled = dict(zip(*_flatten(score_parallel(spec, texts, processes=2, chunk=40)),
                      strict=True))
    assert alone.keys() == pooled.keys() == set(texts)
    assert max(abs(alone[t][3] - pooled[t][3]) for t in texts) < 1e-5


def _flatten(chunks) -> tuple[list[str], list[tuple[float, ...]]]:
    keys, rows = [], []
    for texts, values in chunks:
        keys += texts
        rows += [tuple(v) for v in values.tolist()]
    return keys, rows
