"""``gnosis news``: score news archives into the score store, and show what it holds."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from gnosis.config import ConfigError, Settings

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)
console = Console(stderr=True)

FLUSH_SECONDS = 10.0
"""Longest scored headlines wait to be written: what a killed run can lose."""

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", envvar="GNOSIS_CONFIG", exists=True, dir_okay=False,
                 help="TOML configuration file."),
]
StoreOption = Annotated[
    Path | None,
    typer.Option("--store", "-s", help="Score store folder (default: sentiment.store_dir)."),
]


class RateColumn(ProgressColumn):
    """Headlines per second over the run so far."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        rate = task.completed / elapsed if elapsed > 0 else 0.0
        return Text(f"{rate:,.0f} headlines/s", style="progress.data.speed")


def _store_dir(store: Path | None, settings: Settings) -> Path:
    path = store or (Path(settings.sentiment.store_dir) if settings.sentiment.store_dir
                     else None)
    if path is None:
        raise ConfigError("no score store: pass --store DIR or set sentiment.store_dir "
                          "(GNOSIS_SENTIMENT__STORE_DIR)")
    return path


@app.command()
def score(
    news: Annotated[list[Path], typer.Argument(help="News files (.csv or .parquet).",
                                               exists=True, dir_okay=False)],
    store: StoreOption = None,
    model_dir: Annotated[Path | None, typer.Option(
        "--model-dir", "-m", help="Exported model (default: sentiment.model_dir; empty: the "
                                  "lexicon).")] = None,
    processes: Annotated[int | None, typer.Option(
        help="Scoring processes (default: sentiment.bulk_processes; 0: one per core).")]
        = None,
    threads: Annotated[int | None, typer.Option(
        help="Threads per process (default: sentiment.bulk_threads; 0: one per core).")] = None,
    flush_rows: Annotated[int, typer.Option(
        help=f"Scored headlines per written part (one is also written every "
             f"{FLUSH_SECONDS:.0f} s): the most a killed run has to redo.")] = 8_192,
    config: ConfigOption = None,
) -> None:
    """Score each distinct headline of NEWS once into the score store.

    Headlines already stored for this model are skipped, so a run that was stopped (even
    by kill -9) carries on where it was when run again; at most the last few seconds of
    scoring are redone. Several runs may fill one store at once.
    """
    from gnosis.models.sentiment.bulk import (
        ScorerSpec,
        default_processes,
        score_parallel,
        scorer_for,
    )
    from gnosis.models.sentiment.store import ScoreStore, normalise_keys
    from gnosis.replay.readers import read_news
    from gnosis.replay.run import report_row_errors

    settings = Settings.load(config)
    root = _store_dir(store, settings)
    spec = ScorerSpec.from_config(settings.sentiment, threads=threads)
    if model_dir is not None:
        spec = ScorerSpec(str(model_dir), spec.max_length, spec.batch_size, spec.threads,
                          spec.providers)
    scorer = scorer_for(spec)  # here first: a bad provider fails before any work
    processes = processes if processes is not None else settings.sentiment.bulk_processes
    processes = processes or default_processes(spec)

    headlines: list[pa.ChunkedArray] = []
    for path in news:
        load = read_news(path)
        report_row_errors(load.errors, console)
        headlines.append(pa.chunked_array([pa.array(load.frame["headline"], pa.string())]))
    total = sum(len(h) for h in headlines)
    keys = normalise_keys(pa.chunked_array([c for h in headlines for c in h.chunks],
                                           pa.string()))
    distinct = pc.unique(keys)
    target = ScoreStore.for_scorer(root, scorer)
    target.remove_stale_temporaries()
    _, found = target.lookup(distinct)
    missing = distinct.take(pa.array(np.flatnonzero(~found))).to_pylist()
    console.print(f"{total:,} headlines in {len(news)} file(s), {len(distinct):,} distinct: "
                  f"{int(found.sum()):,} already in the store, {len(missing):,} to score with "
                  f"{scorer.model_id} on {getattr(scorer, 'provider', '')} "
                  f"({processes} process(es) × {spec.threads} thread(s))",
                  highlight=False, soft_wrap=True)

    started = time.perf_counter()
    buffered: list[tuple[list[str], np.ndarray]] = []
    last_flush = time.monotonic()

    def flush() -> None:
        nonlocal buffered, last_flush
        if buffered:
            target.append([t for texts, _ in buffered for t in texts],
                          np.concatenate([values for _, values in buffered]))
        buffered, last_flush = [], time.monotonic()

    with Progress(TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), RateColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=console,
                  transient=True) as progress:
        task = progress.add_task("score", total=len(missing))
        try:
            for texts, values in score_parallel(spec, missing, processes=processes):
                buffered.append((texts, values))
                progress.advance(task, len(texts))
                if (sum(len(t) for t, _ in buffered) >= flush_rows
                        or time.monotonic() - last_flush >= FLUSH_SECONDS):
                    flush()
        finally:
            flush()  # Ctrl-C keeps what was scored
    elapsed = time.perf_counter() - started
    rate = len(missing) / elapsed if elapsed > 0 and missing else 0.0
    console.print(f"scored {len(missing):,} headlines in {elapsed:.1f} s ({rate:,.0f} "
                  f"headlines/s) → {target.path}", highlight=False, soft_wrap=True)


@app.command()
def info(store: StoreOption = None, config: ConfigOption = None) -> None:
    """Show what the score store holds: per model, rows, parts and providers."""
    from gnosis.models.sentiment.store import iter_stores

    root = _store_dir(store, Settings.load(config))
    found = False
    for item in iter_stores(root):
        found = True
        providers = ", ".join(item.providers) or "-"
        typer.echo(f"{item.model_id}  digest {item.digest}  {item.rows:,} scores in "
                   f"{item.parts} part(s)  providers: {providers}  {item.path}")
    if not found:
        typer.echo(f"{root}: no scores stored")
