"""File-to-file research runs: what ``gnosis sweep`` and ``gnosis walkforward`` do."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from gnosis.config import Settings
from gnosis.replay.readers import read_bars, read_news
from gnosis.replay.run import report_row_errors
from gnosis.research.grid import Grid
from gnosis.research.parameter_sweep import Market, SweepError, prepare_market


@contextlib.contextmanager
def _client(scheduler: str | None, workers: int) -> Iterator[Any]:
    """No client for ``workers == 0`` without a scheduler (this process), else Dask's."""
    if not scheduler and workers == 0:
        yield None
        return
    from gnosis.research.cluster import open_client

    try:
        import dask.distributed  # noqa: F401 - only to say what is missing, and how to fix it
    except ImportError:
        raise SweepError("dask.distributed is not installed: pip install "
                         "'gnosis-sentiment-engine[research]', or run with --workers 0"
                         ) from None
    with contextlib.ExitStack() as stack:
        try:
            client = stack.enter_context(open_client(scheduler, workers or None))
        except OSError as exc:
            raise SweepError(f"cannot reach the Dask scheduler {scheduler}: {exc}") from None
        yield client


def _progress(what: str, console: Console) -> Progress:
    return Progress(TextColumn(what), BarColumn(), MofNCompleteColumn(),
                    TextColumn("configurations"), TimeElapsedColumn(), console=console,
                    transient=True)


def _market(bars_path: Path, news_path: Path | None, settings: Settings,
            console: Console) -> Market:
    return _inputs(bars_path, news_path, settings, console)[0]


def _inputs(bars_path: Path, news_path: Path | None, settings: Settings,
            console: Console) -> tuple[Market, pd.DataFrame, pd.DataFrame | None]:
    """The prepared market, and the bars and news it was prepared from."""
    bars = read_bars(bars_path)
    report_row_errors(bars.errors, console)
    news = None
    if news_path is not None:
        loaded = read_news(news_path)
        report_row_errors(loaded.errors, console)
        news = loaded.frame
    with console.status("reading and scoring headlines…"):
        return prepare_market(bars.frame, news, settings), bars.frame, news


def sweep_files(bars_path: Path, news_path: Path | None, grid_path: Path, out: Path, *,
                settings: Settings, permutations: int, metric: str,
                scheduler: str | None, workers: int, heatmap: tuple[str, str] | None,
                top: int, console: Console) -> str:
    """Sweep the grid over the files; write ``results.parquet``, ``results.csv`` and
    ``sweep.html`` under ``out`` (resuming what is there). Returns a summary."""
    from gnosis.replay.inprocess import replay_frame
    from gnosis.research.parameter_sweep import sweep
    from gnosis.research.report import write_sweep_html

    grid = Grid.load(grid_path)
    market, bars, news = _inputs(bars_path, news_path, settings, console)
    with _client(scheduler, workers) as client, _progress("sweeping", console) as progress:
        task = progress.add_task("sweep", total=len(grid))
        result = sweep(market, grid=grid, settings=settings, permutations=permutations,
                       metric=metric, out_dir=out, client=client,
                       progress=lambda done, _: progress.update(task, completed=done))
    x, y = heatmap or (None, None)
    best = result.chosen
    # The best configuration's signals, for the page's signal mix (why HOLD).
    overrides = {name: value.item() if hasattr(value, "item") else value  # numpy → Python
                 for name, value in best[grid.names].items()}
    chosen = Grid.apply(settings, overrides)
    with console.status("replaying the best configuration for its signal mix…"):
        signals = replay_frame(bars, news, chosen)
    page = write_sweep_html(result, out / "sweep.html", x=x, y=y, top=top,
                            title=f"Sweep of {grid_path.name} on {bars_path.name}",
                            signals=signals, rules=chosen.rules)
    shown = ["config_id", *grid.names, metric, "total_return", "num_trades", "p_value",
             "max_p_value", "deflated_sharpe"]
    table = result.best(top)[[c for c in dict.fromkeys(shown) if c in result.table]]
    return (table.to_string(index=False, float_format=lambda v: f"{v:.4g}")
            + f"\n\nbest by {metric}: {best['config_id']} · max-statistic p-value "
              f"{best['max_p_value']:.4g} · deflated Sharpe {best['deflated_sharpe']:.4g}"
            + f"\n{len(result.table)} configurations → {out / 'results.parquet'}, {page}")


def walkforward_files(bars_path: Path, news_path: Path | None, grid_path: Path, out: Path,
                      *, settings: Settings, folds: int,
                      mode: Literal["rolling", "anchored"], train_blocks: int, metric: str,
                      scheduler: str | None, workers: int, console: Console) -> str:
    """Walk the grid forward over the files; write ``folds.csv`` and ``oos_equity.csv``
    under ``out``. Returns a summary."""
    from gnosis.research.walkforward import walk_forward

    grid = Grid.load(grid_path)
    market = _market(bars_path, news_path, settings, console)
    with _client(scheduler, workers) as client, _progress("walking forward",
                                                           console) as progress:
        task = progress.add_task("walk", total=len(grid))
        result = walk_forward(market, grid=grid, settings=settings, folds=folds, mode=mode,
                              train_blocks=train_blocks, metric=metric, client=client,
                              progress=lambda done, _: progress.update(task, completed=done))
    out.mkdir(parents=True, exist_ok=True)
    result.folds.to_csv(out / "folds.csv", index=False)
    result.equity.to_csv(out / "oos_equity.csv")
    shown = ["fold", "test_start", "config_id", f"train_{metric}", metric, "total_return"]
    table: pd.DataFrame = result.folds[shown]
    return (table.to_string(index=False, float_format=lambda v: f"{v:.4g}")
            + f"\n\nout-of-sample total return {result.total_return:.2%} "
              f"→ {out / 'folds.csv'}, {out / 'oos_equity.csv'}")
