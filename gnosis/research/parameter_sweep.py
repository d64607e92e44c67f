"""Parameter sweeps over the vectorised replay: every configuration of a grid, its full
statistics in one table, and significance corrected for having tried them all.

    from gnosis.research import Grid, sweep
    result = sweep(bars, news, Grid.load("grid.toml"), permutations=200)
    result.table.sort_values("sharpe_ratio").tail()
    result.chosen                     # best by the metric, with its corrected p-value

Each configuration is the equal-weight book :meth:`BacktestRunner.run_portfolio` would
give on the signals ``replay_frame`` would give (same functions, so the same figures).
Work is split into tasks of a chunk of tickers × a batch of configurations
(:mod:`gnosis.research.evaluate`), run in this process or on a Dask cluster
(:mod:`gnosis.research.cluster`); the chunking does not depend on the cluster, so neither
do the results. With ``out_dir`` every finished batch is saved at once, and a rerun with
the same data and settings skips the configurations already there.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from gnosis.backtest.metrics import STATISTICS
from gnosis.config import Settings
from gnosis.research.cluster import run_tasks
from gnosis.research.evaluate import (
    Batch,
    Part,
    TickerData,
    combine_chunks,
    part_stats,
    run_task,
)
from gnosis.research.grid import Grid, config_id
from gnosis.research.significance import deflated_sharpe_ratio, max_statistic_p_values

if TYPE_CHECKING:
    from gnosis.models.sentiment import SentimentScorer

Progress = Callable[[int, int], None]
"""Called with (configurations done, configurations in all)."""

_CHUNKS = 8  # ticker chunks: enough tasks for a few workers, few enough to stay cheap


@dataclass(frozen=True)
class Market:
    """A sweep's input, prepared once: per-ticker arrays and the union of bar times."""

    tickers: list[list[TickerData]]
    """Chunks of tickers, the unit shipped to workers."""
    bars: np.ndarray
    """Sorted union of every ticker's bar times (epoch ns)."""
    fingerprint: str
    """Hash of the data and scores, to tell a resumable sweep from a different one."""

    @property
    def count(self) -> int:
        return sum(len(c) for c in self.tickers)


def prepare_market(bars: pd.DataFrame, news: pd.DataFrame | None = None,
                   settings: Settings | None = None,
                   scorer: SentimentScorer | None = None) -> Market:
    """Score the headlines once and split the bars into per-ticker arrays and chunks."""
    from gnosis.engine import score_headlines
    from gnosis.models.sentiment import load_scorer
    from gnosis.research.evaluate import ticker_data

    settings = settings or Settings()
    scores = None
    if news is not None and len(news):
        scorer = scorer or load_scorer(settings.sentiment)
        scores = score_headlines(scorer, news["headline"].tolist())
    data = ticker_data(bars, news, scores, settings)
    size = max(1, math.ceil(len(data) / _CHUNKS))
    chunks = [data[i:i + size] for i in range(0, len(data), size)]
    union = np.unique(np.concatenate([d.ts for d in data])) if data else np.empty(0, np.int64)
    digest = hashlib.sha1(usedforsecurity=False)
    for d in data:
        for array in (d.ts, d.open, d.high, d.low, d.close, d.volume, d.news_ts, d.news_score,
                      d.known, d.news_known):
            digest.update(np.ascontiguousarray(array).tobytes())
    return Market(chunks, union, digest.hexdigest()[:16])


@dataclass
class SweepResult:
    """Every configuration's statistics, equity curves and corrected significance."""

    grid: Grid
    table: pd.DataFrame
    """One row per configuration: ``config_id``, the varied settings, every statistic of
    :data:`~gnosis.backtest.metrics.STATISTICS` (except the single-test p-value), the
    per-bar ``bar_sharpe``/``skewness``/``kurtosis``, ``mean_bar_return`` (the
    permutation statistic), ``p_value`` (this configuration alone), ``max_p_value``
    (against the grid's maximum) and ``deflated_sharpe`` (for this many trials)."""
    curves: dict[str, pd.Series] = field(repr=False)
    """Equity of the book per ``config_id``."""
    metric: str = "sharpe_ratio"

    @property
    def chosen(self) -> pd.Series:
        """The row of the best configuration by :attr:`metric`."""
        return self.best(1).iloc[0]

    def best(self, n: int = 5) -> pd.DataFrame:
        """The ``n`` best rows by :attr:`metric` (NaN last)."""
        return self.table.sort_values(self.metric, ascending=False, na_position="last",
                                      kind="stable").head(n)


def evaluate(market: Market, settings: Sequence[Settings],
             windows: Sequence[tuple[int, int]], *, permutations: int = 0, seed: int = 7,
             batch_size: int = 100, client: Any = None,
             on_batch: Callable[[list[int], list[list[Part]]], None] | None = None
             ) -> list[list[Part]]:
    """Combined parts ``[config][window]`` of every configuration on every window.

    Configurations sharing a feature configuration are batched together (features are
    computed once per ticker and batch). ``on_batch(config_numbers, parts)`` is called as
    each batch completes.
    """
    window_bars = [market.bars[(market.bars >= a) & (market.bars < b)] for a, b in windows]
    order = sorted(range(len(settings)), key=lambda i: repr(settings[i].features))
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    specs = [Batch([settings[i] for i in numbers], list(windows), window_bars, market.count,
                   permutations, seed) for numbers in batches]
    groups = [[(c, spec) for c in range(len(market.tickers))] for spec in specs]
    out: list[list[Part] | None] = [None] * len(settings)

    def done(b: int, combined: list[list[Part]]) -> None:
        for j, number in enumerate(batches[b]):
            out[number] = combined[j]
        if on_batch is not None:
            on_batch(batches[b], combined)

    run_tasks(run_task, market.tickers, groups, combine_chunks, client=client, on_done=done)
    return out  # type: ignore[return-value]


def sweep(bars: pd.DataFrame | Market, news: pd.DataFrame | None = None,
          grid: Grid | None = None, settings: Settings | None = None, *,
          scorer: SentimentScorer | None = None, permutations: int = 0,
          seed: int | None = None, metric: str = "sharpe_ratio",
          out_dir: str | Path | None = None, client: Any = None, batch_size: int = 100,
          progress: Progress | None = None) -> SweepResult:
    """Evaluate every configuration of ``grid`` on the whole history.

    Args:
        bars: bars frame (``read_bars`` columns) or a :func:`prepare_market` result.
        news: news frame (``ts``, ``tickers``, ``headline``), scored once.
        grid: the settings to vary; the others come from ``settings``.
        settings: base configuration (defaults when omitted).
        scorer: headline scorer; the configured one when omitted.
        permutations: permutations for the max-statistic test (0: none).
        seed: permutation seed (default ``settings.backtest.seed``).
        metric: column that picks the best configuration.
        out_dir: save ``results.parquet``/``results.csv`` and curves here, and resume
            from what is there.
        client: a ``dask.distributed.Client``; None runs in this process.
        batch_size: configurations per task.
        progress: called with (configurations done, total) as batches finish.
    """
    settings = settings or Settings()
    grid = grid or Grid({})
    check_metric(metric)
    seed = settings.backtest.seed if seed is None else seed
    market = bars if isinstance(bars, Market) else prepare_market(bars, news, settings, scorer)
    configs = grid.configurations()
    ids = [config_id(c) for c in configs]
    store = _Store(Path(out_dir), market, settings, permutations, seed) if out_dir else None
    rows: dict[str, dict[str, Any]] = store.rows() if store else {}
    curves: dict[str, np.ndarray] = {i: store.curve(i) for i in rows} if store else {}
    nulls: dict[str, np.ndarray] = {i: store.null(i) for i in rows} if store else {}
    todo = [k for k, i in enumerate(ids) if i not in rows]
    todo_settings = [grid.apply(settings, configs[k]) for k in todo]
    done_count = len(configs) - len(todo)
    if progress is not None:
        progress(done_count, len(configs))

    def on_batch(numbers: list[int], parts: list[list[Part]]) -> None:
        nonlocal done_count
        for number, (part,) in zip(numbers, parts, strict=True):
            k = todo[number]
            stats = part_stats(part, market.bars, todo_settings[number])
            rows[ids[k]] = {"config_id": ids[k], **configs[k], **stats}
            curves[ids[k]], nulls[ids[k]] = part.equity, part.null
            if store:
                store.save(ids[k], rows[ids[k]], part.equity, part.null)
        if store:
            store.flush()
        done_count += len(numbers)
        if progress is not None:
            progress(done_count, len(configs))

    if todo:
        window = [(int(market.bars[0]), int(market.bars[-1]) + 1)] if len(market.bars) \
            else [(0, 0)]
        evaluate(market, todo_settings, window, permutations=permutations, seed=seed,
                 batch_size=batch_size, client=client, on_batch=on_batch)
    table = pd.DataFrame([rows[i] for i in ids])
    _add_significance(table, np.array([nulls[i] for i in ids]).T)
    if store:
        store.finish(table)
    index = pd.DatetimeIndex(pd.to_datetime(market.bars, unit="ns", utc=True))
    return SweepResult(grid, table,
                       {i: pd.Series(curves[i], index=index, name=i) for i in ids}, metric)


def check_metric(metric: str) -> None:
    """Raise :class:`SweepError` unless ``metric`` is a statistic a sweep can rank by."""
    known = [s.key for s in STATISTICS if s.kind in ("percent", "number")
             and s.key != "mcpt_p_value"] + ["bar_sharpe"]
    if metric not in known:
        raise SweepError(f"unknown metric {metric!r}; choose one of {', '.join(known)}")


def _add_significance(table: pd.DataFrame, null: np.ndarray) -> None:
    """Add ``p_value``, ``max_p_value`` and ``deflated_sharpe`` columns in place."""
    observed = table["mean_bar_return"].to_numpy(dtype=np.float64)
    if null.size:
        tol = 1e-9 * np.maximum(np.abs(observed), np.abs(null).max(axis=0))
        table["p_value"] = (1 + (null >= observed - tol).sum(axis=0)) / (1 + len(null))
    else:
        table["p_value"] = math.nan
    table["max_p_value"] = max_statistic_p_values(observed, null)
    sharpe = table["bar_sharpe"].to_numpy(dtype=np.float64)
    variance = float(np.var(sharpe, ddof=1)) if len(sharpe) > 1 else 0.0
    table["deflated_sharpe"] = [
        deflated_sharpe_ratio(s, trials=len(table), sharpe_variance=variance, bars=int(n),
                              skewness=g3, kurtosis=g4)
        for s, n, g3, g4 in zip(sharpe, table["bars"], table["skewness"], table["kurtosis"],
                                strict=True)]


class _Store:
    """A sweep's folder: ``sweep.json`` (what was swept on what), ``results.parquet`` /
    ``results.csv`` (one row per configuration) and ``curves/`` (equity and null per
    configuration, ``.npy``)."""

    def __init__(self, root: Path, market: Market, settings: Settings, permutations: int,
                 seed: int) -> None:
        self.root = root
        (root / "curves").mkdir(parents=True, exist_ok=True)
        meta = {"data": market.fingerprint, "settings": repr(settings),
                "permutations": permutations, "seed": seed}
        path = root / "sweep.json"
        if path.exists() and json.loads(path.read_text()) != meta:
            raise SweepError(f"{root} holds a sweep of other data or settings; "
                             "use another --out folder or delete it")
        path.write_text(json.dumps(meta, indent=1))
        table = root / "results.parquet"
        self._rows = ({r["config_id"]: r for r in pd.read_parquet(table).to_dict("records")}
                      if table.exists() else {})

    def rows(self) -> dict[str, dict[str, Any]]:
        return {i: r for i, r in self._rows.items()
                if (self.root / "curves" / f"{i}.equity.npy").exists()}

    def curve(self, i: str) -> np.ndarray:
        return np.load(self.root / "curves" / f"{i}.equity.npy")

    def null(self, i: str) -> np.ndarray:
        return np.load(self.root / "curves" / f"{i}.null.npy")

    def save(self, i: str, row: dict[str, Any], equity: np.ndarray, null: np.ndarray) -> None:
        np.save(self.root / "curves" / f"{i}.equity.npy", equity)
        np.save(self.root / "curves" / f"{i}.null.npy", null)
        self._rows[i] = row

    def flush(self) -> None:
        # Written whole and renamed, so an interrupted write leaves the previous table.
        tmp = self.root / "results.parquet.tmp"
        pd.DataFrame(list(self._rows.values())).to_parquet(tmp, index=False)
        tmp.replace(self.root / "results.parquet")

    def finish(self, table: pd.DataFrame) -> None:
        table.to_parquet(self.root / "results.parquet", index=False)
        table.to_csv(self.root / "results.csv", index=False)


class SweepError(RuntimeError):
    """A sweep that cannot go on; the message says why."""
