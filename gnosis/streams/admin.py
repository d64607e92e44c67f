"""``gnosis state``: inspect, repair and warm tickers' live state through Kafka.

``show`` reads the ticker's snapshot and journal from the changelog topics (what a worker
taking the partition over would restore). ``reset`` sends a command to the control topic
partition the ticker's owner consumes; the owner applies it in order with the ticker's
bars, under exactly-once in the same transaction as the new snapshot, while workers run.
``warm`` replays history files here and sends each ticker's resulting state the same way
(:mod:`gnosis.warm`). Nothing here edits files or needs a worker to stop.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from gnosis.config import Settings, duration_ns
from gnosis.engine import TickerEngine
from gnosis.events import InvalidEvent, format_timestamp, parse_timestamp
from gnosis.security import client_options
from gnosis.streams.changelog import restore_tables
from gnosis.streams.journal import TickerState, restore
from gnosis.streams.records import ResetCommand, WarmCommand, ticker_partition
from gnosis.streams.topics import topic_names
from gnosis.warm import overlap


async def read_state(settings: Settings, ticker: str) -> TickerState | None:
    """The ticker's committed state as a worker would restore it; ``None`` if it has none."""
    return (await read_states(settings, [ticker]))[ticker]


async def read_states(settings: Settings, tickers: list[str]) -> dict[str, TickerState | None]:
    """:func:`read_state` of many tickers, reading each changelog partition once."""
    n = settings.kafka.partitions
    parts = sorted({ticker_partition(t, n) for t in tickers})
    tables = await restore_tables(client_options(settings), topic_names(settings), parts)
    every = settings.worker.snapshot_every
    out: dict[str, TickerState | None] = {}
    for ticker in tickers:
        table, key = tables[ticker_partition(ticker, n)], ticker.encode()
        if key not in table.snapshots and f"{ticker}:0".encode() not in table.journal:
            out[ticker] = None
            continue
        out[ticker] = restore(ticker, settings, "lexicon", table.snapshots.get(key),
                              lambda k, table=table: table.journal.get(k.encode()), every)
    return out


def describe(state: TickerState, settings: Settings) -> dict[str, Any]:
    """What an operator wants to see of a ticker's state."""
    engine = state.engine
    return {
        "ticker": engine.ticker,
        "partition": ticker_partition(engine.ticker, settings.kafka.partitions),
        "bars_seen": {interval: series.features.bars
                      for interval, series in sorted(engine.series.items())},
        "last_bar": None if engine.last_ts is None else format_timestamp(engine.last_ts),
        "last_bar_offset": state.bar_offset,
        "headlines_held": len(engine.news_times()),
        "journal_seq": state.seq,
        "news_applied_up_to": {str(q): o for q, o in sorted(state.news_offsets.items())},
    }


async def send_commands(settings: Settings, commands: list[ResetCommand | WarmCommand]
                        ) -> None:
    """Send ``commands`` to the control partitions of their tickers."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(**client_options(settings), acks="all",
                                enable_idempotence=True)
    await producer.start()
    try:
        for command in commands:
            await producer.send(
                topic_names(settings).control, command.to_json(), key=command.ticker.encode(),
                partition=ticker_partition(command.ticker, settings.kafka.partitions))
        await producer.flush()
    finally:
        await producer.stop()


async def reset_and_wait(settings: Settings, command: ResetCommand,
                         timeout: float = 60.0) -> TickerState | None:
    """Send ``command`` and wait until the changelog shows it applied (``None``: it did not
    within ``timeout``, e.g. no worker is running)."""
    before = await read_state(settings, command.ticker)
    await send_commands(settings, [command])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        state = await read_state(settings, command.ticker)
        if state is None or (before is not None and state.seq == before.seq
                             and state.engine.last_ts == before.engine.last_ts):
            continue
        last = state.engine.last_ts
        if command.to_ts is None or last is None or last <= command.to_ts:
            return state
    return None


def _warmed(state: TickerState | None, before: TickerState | None,
            engine: TickerEngine) -> bool:
    """Whether ``state`` (``before`` the command was sent) shows the warm start of
    ``engine`` applied: the history's bar counts, and a new journal position or snapshot."""
    if state is None:
        return False
    for interval, series in engine.series.items():
        held = state.engine.series.get(interval)
        if held is None or held.features.bars < series.features.bars:
            return False
    return before is None or state.snapshot_seq != before.snapshot_seq or (
        state.engine.to_state() != before.engine.to_state())


async def warm_and_wait(settings: Settings, engines: dict[str, TickerEngine], model_id: str,
                        on_applied: Callable[[int], None], *, replace: bool = False,
                        timeout: float = 60.0) -> list[str]:
    """Check, send and wait for the warm starts of ``engines`` (ticker -> engine after the
    history); the one-line refusals, if any ticker's state cannot take it (then nothing is
    sent, see :func:`gnosis.warm.overlap`), else the tickers whose owners did not apply it
    within ``timeout`` (empty: all did). ``on_applied(n)`` reports progress."""
    tickers = sorted(engines)
    current = await read_states(settings, tickers)
    refused = [reason for t in tickers if (state := current[t]) is not None
               and (reason := overlap(state.engine, engines[t], replace)) is not None]
    if refused:
        return refused
    await send_commands(settings, [WarmCommand(t, engines[t].to_state(), model_id, replace)
                                   for t in tickers])
    pending = set(tickers)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        states = await read_states(settings, sorted(pending))
        done = {t for t in pending if _warmed(states[t], current[t], engines[t])}
        pending -= done
        if done:
            on_applied(len(done))
    return [f"{t}: the warm start was sent but not applied within {timeout:.0f} s (a worker "
            "refused it, its log says why, or none is running)" for t in sorted(pending)]


app = typer.Typer(no_args_is_help=True)
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", envvar="GNOSIS_CONFIG", exists=True, dir_okay=False,
                 help="TOML configuration file."),
]


def _print(state: TickerState, settings: Settings) -> None:
    for key, value in describe(state, settings).items():
        typer.echo(f"{key:>20}: {value}")


@app.command()
def show(ticker: str, config: ConfigOption = None) -> None:
    """Show TICKER's live state as stored in the changelog topics."""
    settings = Settings.load(config)
    state = asyncio.run(read_state(settings, ticker))
    if state is None:
        typer.echo(f"error: no state for {ticker!r} in {topic_names(settings).snapshots_changelog}"
                   " or the journal", err=True)
        raise typer.Exit(1)
    _print(state, settings)


@app.command()
def reset(
    ticker: str,
    to: Annotated[str | None, typer.Option(
        "--to", help="Roll back to the last bar at or before this time (ISO-8601 or epoch "
        "ms) if the snapshot and journal reach back that far; without it, start afresh.")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Reset TICKER's state while workers run, and wait until its worker applied it.

    For a ticker whose bars are all rejected as out_of_order, e.g. after a bar stamped far
    in the future: /health lists such tickers.
    """
    settings = Settings.load(config)
    try:
        to_ts = None if to is None else parse_timestamp(to, "--to")
    except InvalidEvent as exc:
        typer.echo(f"error: --to {to!r}: {exc.detail}", err=True)
        raise typer.Exit(2) from None
    state = asyncio.run(reset_and_wait(settings, ResetCommand(ticker, to_ts)))
    if state is None:
        typer.echo(f"error: the reset of {ticker!r} was sent but no worker applied it within "
                   "60 s; is a worker running?", err=True)
        raise typer.Exit(1)
    typer.echo(f"{ticker}: reset applied")
    _print(state, settings)


@app.command()
def warm(
    bars: Annotated[Path, typer.Argument(exists=True, dir_okay=False,
                                         help="Bars file (.csv or .parquet).")],
    news: Annotated[Path | None, typer.Argument(exists=True, dir_okay=False,
                                                help="News file (.csv or .parquet).")] = None,
    replace: Annotated[bool, typer.Option(
        "--replace", help="Also take the place of bars a ticker's state has, when the "
        "history reaches its last one (e.g. to rebuild a ticker that a settings change "
        "started afresh from the archive).")] = False,
    config: ConfigOption = None,
) -> None:
    """Bring each ticker of BARS up to the end of that history while workers run.

    The history is replayed here, as `gnosis replay` would (knowledge times from
    received_at, else modelled), and each ticker's state sent to the worker owning it,
    which takes it without emitting signals for the history. For tickers without bars:
    a new deployment, a new ticker, after `gnosis state reset` (docs/operations.md).
    """
    from rich.console import Console

    from gnosis.models.sentiment import load_scorer
    from gnosis.replay.knowledge import bar_known, news_known
    from gnosis.replay.readers import read_bars, read_news
    from gnosis.replay.run import report_row_errors
    from gnosis.replay.synthetic import bars_to_events, news_to_events
    from gnosis.security import explained
    from gnosis.warm import warm_states

    settings = Settings.load(config)
    console = Console(stderr=True)
    max_future = duration_ns(settings.worker.max_future)
    bar_load = read_bars(bars, max_future_ns=max_future)  # ReaderError: one line (gnosis.cli)
    news_frame = None if news is None else read_news(news, max_future_ns=max_future)
    report_row_errors(bar_load.errors, console)
    if news_frame is not None:
        report_row_errors(news_frame.errors, console)
    scorer = load_scorer(settings.sentiment)
    frame = bar_load.frame
    items = [] if news_frame is None else news_to_events(news_frame.frame)
    engines = warm_states(
        bars_to_events(frame), items, settings, scorer, bars_known=bar_known(frame).tolist(),
        news_known=[] if news_frame is None else news_known(news_frame.frame,
                                                            settings).tolist())
    if not engines:
        typer.echo(f"error: {bars}: no bars to warm from", err=True)
        raise typer.Exit(2)
    with explained(settings), typer.progressbar(length=len(engines), label="warming",
                                                file=sys.stderr) as bar:
        problems = asyncio.run(warm_and_wait(settings, engines, scorer.model_id, bar.update,
                                             replace=replace))
    for line in problems:
        typer.echo(f"error: {line}", err=True)
    if problems:
        raise typer.Exit(1)
    for ticker, engine in sorted(engines.items()):
        typer.echo(f"{ticker}: warmed to {format_timestamp(engine.last_ts)} (" + ", ".join(
            f"{interval} {s.features.bars} bars" for interval, s in sorted(
                engine.series.items())) + ")")
