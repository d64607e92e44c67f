"""``gnosis state``: inspect and repair one ticker's live state through Kafka.

``show`` reads the ticker's snapshot and journal from the changelog topics (what a worker
taking the partition over would restore). ``reset`` sends a command to the control topic
partition the ticker's owner consumes; the owner applies it in order with the ticker's
bars, under exactly-once in the same transaction as the new snapshot, while workers run.
Nothing here edits files or needs a worker to stop.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from gnosis.config import Settings
from gnosis.events import InvalidEvent, format_timestamp, parse_timestamp
from gnosis.streams.records import ResetCommand, ticker_partition
from gnosis.streams.state import TickerState, restore
from gnosis.streams.store import restore_tables
from gnosis.streams.topics import client_options, topic_names


async def read_state(settings: Settings, ticker: str) -> TickerState | None:
    """The ticker's committed state as a worker would restore it; ``None`` if it has none."""
    p = ticker_partition(ticker, settings.kafka.partitions)
    tables = (await restore_tables(client_options(settings), topic_names(settings), [p]))[p]
    key = ticker.encode()
    every = settings.worker.snapshot_every
    if key not in tables.snapshots and f"{ticker}:0".encode() not in tables.journal:
        return None
    return restore(ticker, settings, "lexicon", tables.snapshots.get(key),
                   lambda k: tables.journal.get(k.encode()), every)


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


async def send_reset(settings: Settings, command: ResetCommand) -> None:
    """Send ``command`` to the control partition of its ticker."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(**client_options(settings), acks="all",
                                enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(
            topic_names(settings).control, command.to_json(), key=command.ticker.encode(),
            partition=ticker_partition(command.ticker, settings.kafka.partitions))
    finally:
        await producer.stop()


async def reset_and_wait(settings: Settings, command: ResetCommand,
                         timeout: float = 60.0) -> TickerState | None:
    """Send ``command`` and wait until the changelog shows it applied (``None``: it did not
    within ``timeout``, e.g. no worker is running)."""
    before = await read_state(settings, command.ticker)
    await send_reset(settings, command)
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
