"""News at archive scale: reading, score-store look-ups, and replays that read the store.

Four figures, each against a baseline measured in the same run:

1. ``read_news`` (validated, column-wise) on ``--headlines`` rows from Parquet and CSV,
   against Arrow reading the same file without validation.
2. Store look-ups: ``score_column`` with every score stored (normalise, hash-join,
   gather), against scoring the same headlines with the lexicon (the fastest scorer).
3. ``replay_frame`` on ``--tickers`` × ``--bars`` bars and the headlines, scores from the
   store (the model is never called: counted), against the same replay scoring with the
   lexicon. The store holds the lexicon's scores: a look-up costs the same whatever model
   computed what it finds.
4. ``gnosis replay`` (``replay_files``: read, validate, score, replay, write) of a bars CSV
   and a news CSV, against the same run without news; with the lexicon, and with a filled
   store.

    .venv/bin/python bench/bench_news.py [--headlines 1000000] [--tickers 100] [--bars 10000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from rich.console import Console

from gnosis.config import SentimentConfig, Settings
from gnosis.events import format_timestamp
from gnosis.models.sentiment import LexiconScorer, SentimentScore, score_column
from gnosis.models.sentiment.synthetic import synthetic_headlines
from gnosis.replay.inprocess import replay_frame
from gnosis.replay.readers import read_news
from gnosis.replay.run import replay_files
from gnosis.replay.synthetic import synthetic_bars

READ_TARGETS = {"parquet": 1_000_000, "csv": 300_000}
"""Headlines per second read and validated."""
LOOKUP_TARGET = 1_000_000
RATIO_TARGET = 2.0
"""A replay reading the store within this multiple of its baseline."""


class CountingLexicon(LexiconScorer):
    """The lexicon, counting the headlines it is asked to score."""

    def __init__(self) -> None:
        super().__init__()
        self.texts = 0

    def score_batch(self, texts: Sequence[str]) -> list[SentimentScore]:
        self.texts += len(texts)
        return super().score_batch(texts)


def best(run: Callable[[], object], repeats: int = 2) -> float:
    """Fastest of ``repeats`` timings (the machine is shared)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def news_frame(bars: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """``n`` headlines stamped across the bars' span, one or two tickers each."""
    rng = np.random.default_rng(seed)
    names = np.array(sorted(bars["ticker"].unique()))
    ts = np.sort(rng.integers(bars["ts"].min(), bars["ts"].max(), n)) // 1000 * 1000
    first = rng.integers(len(names), size=n)
    second = (first + 1) % len(names)
    pairs = rng.random(n) < 0.1
    tickers = [(names[a], names[b]) if p else (names[a],)
               for a, b, p in zip(first, second, pairs, strict=True)]
    return pd.DataFrame({"id": [f"n{i}" for i in range(n)], "ts": ts, "tickers": tickers,
                         "headline": synthetic_headlines(n, seed=seed)})


def write_files(news: pd.DataFrame, bars: pd.DataFrame, folder: Path) -> dict[str, Path]:
    """The news as Parquet and CSV, the bars as CSV, in the readers' formats."""
    paths = {"parquet": folder / "news.parquet", "csv": folder / "news.csv",
             "bars": folder / "bars.csv"}
    stamps = pd.to_datetime(news["ts"], utc=True)
    news.assign(timestamp=stamps, tickers=news["tickers"].map(list)).drop(
        columns="ts").to_parquet(paths["parquet"])
    news.assign(timestamp=[format_timestamp(int(t)) for t in news["ts"]],
                tickers=news["tickers"].map(";".join)).drop(columns="ts").to_csv(
        paths["csv"], index=False)
    bars.assign(timestamp=bars["ts"] // 1_000_000).drop(columns="ts").to_csv(
        paths["bars"], index=False)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--headlines", type=int, default=1_000_000)
    parser.add_argument("--tickers", type=int, default=100)
    parser.add_argument("--bars", type=int, default=10_000, help="bars per ticker")
    parser.add_argument("--replay-headlines", type=int, default=166_667,
                        help="headlines of the gnosis replay case")
    parser.add_argument("--parts", default="1,2,3,4", help="which figures to measure")
    args = parser.parse_args()
    parts = {int(p) for p in args.parts.split(",")}

    started = time.perf_counter()
    bars = synthetic_bars(args.tickers, args.bars, seed=1)
    news = news_frame(bars, args.headlines, seed=2)
    distinct = news["headline"].nunique()
    print(f"data: {len(bars):,} bars, {len(news):,} headlines ({distinct:,} distinct), "
          f"{args.tickers} tickers (generated in {time.perf_counter() - started:.0f} s)")

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = write_files(news, bars, folder)

        if 1 in parts:
            read_figures(news, paths)
        store = folder / "store"
        if parts & {2, 3}:
            lookup_figures(news, store)
        if 3 in parts:
            replay_figures(bars, news, store)
        if 4 in parts:
            cli_figures(news, paths, folder, args.replay_headlines)


def read_figures(news: pd.DataFrame, paths: dict[str, Path]) -> None:
    """1. read_news against Arrow's unvalidated read of the same file."""
    print("\n1. read_news, validated, vs Arrow reading the file unvalidated")
    raw = {"parquet": lambda: pq.read_table(paths["parquet"]),
           "csv": lambda: pa_csv.read_csv(paths["csv"], parse_options=pa_csv.ParseOptions(
               newlines_in_values=True))}
    for kind in ("parquet", "csv"):
        ours = best(lambda kind=kind: read_news(paths[kind]))
        floor = best(raw[kind])
        rate = len(news) / ours
        print(f"   {kind:<8} {ours:6.2f} s = {rate:>11,.0f} headlines/s "
              f"(target >= {READ_TARGETS[kind]:,}); Arrow alone {floor:5.2f} s; "
              f"ratio {ours / floor:.1f}x")


def lookup_figures(news: pd.DataFrame, store: Path) -> None:
    """2. score_column with a full store against lexicon scoring."""
    print("\n2. store look-ups vs lexicon scoring, all headlines")
    lexicon = CountingLexicon()
    fill = best(lambda: score_column(news["headline"], lexicon, store), 1)
    lexicon.texts = 0
    lookup = best(lambda: score_column(news["headline"], lexicon, store))
    assert lexicon.texts == 0
    score = best(lambda: LexiconScorer().score_batch(news["headline"].tolist()), 1)
    print(f"   look-up  {lookup:6.2f} s = {len(news) / lookup:>11,.0f} headlines/s "
          f"(target >= {LOOKUP_TARGET:,}); lexicon {score:5.2f} s "
          f"({len(news) / score:,.0f}/s): {score / lookup:.1f}x faster; filling the "
          f"store took {fill:.2f} s")


def replay_figures(bars: pd.DataFrame, news: pd.DataFrame, store: Path) -> None:
    """3. replay_frame reading the store against replay_frame scoring with the lexicon."""
    print("\n3. replay_frame with stored scores vs with the lexicon")
    plain = Settings()
    stored = replace(plain, sentiment=replace(plain.sentiment, store_dir=str(store)))
    lexicon_replay = best(lambda: replay_frame(bars, news, plain, LexiconScorer()), 1)
    counting = CountingLexicon()
    store_replay = best(lambda: replay_frame(bars, news, stored, counting), 1)
    print(f"   store    {store_replay:6.2f} s, {counting.texts} headlines scored; "
          f"lexicon {lexicon_replay:5.2f} s; ratio {store_replay / lexicon_replay:.2f} "
          f"(target <= {RATIO_TARGET})")


def cli_figures(news: pd.DataFrame, paths: dict[str, Path], folder: Path, n: int) -> None:
    """4. replay_files with news (lexicon; store) against replay_files without news."""
    print("\n4. gnosis replay (replay_files) of bars.csv + news.csv vs bars.csv alone")
    small = news.iloc[:n]
    small_path = folder / "news-small.csv"
    small.assign(timestamp=[format_timestamp(int(t)) for t in small["ts"]],
                 tickers=small["tickers"].map(";".join)).drop(columns="ts").to_csv(
        small_path, index=False)
    with open(os.devnull, "w") as sink:
        console = Console(file=sink)

        def run(news_path: Path | None, settings: Settings) -> float:
            return best(lambda: replay_files(paths["bars"], news_path, folder / "s.parquet",
                                             settings=settings, console=console), 1)

        plain = Settings()
        without = run(None, plain)
        with_lexicon = run(small_path, plain)
        store = replace(plain, sentiment=SentimentConfig(store_dir=str(folder / "small")))
        run(small_path, store)  # fills the store
        with_store = run(small_path, store)
    print(f"   without news {without:6.2f} s; with {len(small):,} headlines: lexicon "
          f"{with_lexicon:5.2f} s ({with_lexicon / without:.2f}x), store "
          f"{with_store:5.2f} s ({with_store / without:.2f}x) (target <= {RATIO_TARGET}x)")


if __name__ == "__main__":
    main()
