"""The ``gnosis`` command.

Every option can also be set in the configuration file (``--config`` or
``GNOSIS_CONFIG``) or by a ``GNOSIS_<SECTION>__<KEY>`` environment variable; run
``gnosis config`` to see every key, its value and where to set it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from gnosis.config import ConfigError, Settings
from gnosis.models.cli import app as model_app
from gnosis.replay.news_cli import app as news_app
from gnosis.streams.admin import app as state_app
from gnosis.streams.kafka.cli import app as kafka_app

app = typer.Typer(
    name="gnosis",
    help="Streaming trading signals from market bars and news: live on Kafka, or replayed "
    "into a backtester.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(kafka_app, name="kafka", help="Run a local Apache Kafka broker (KRaft).")
app.add_typer(model_app, name="model", help="Export and inspect sentiment models.")
app.add_typer(state_app, name="state",
              help="Inspect, reset or warm tickers' live state (through Kafka, workers running).")
app.add_typer(news_app, name="news", help="Score news archives once into the score store.")

console = Console(stderr=True)
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", envvar="GNOSIS_CONFIG", exists=True, dir_okay=False,
                 help="TOML configuration file."),
]


def _settings(config: Path | None) -> Settings:
    return Settings.load(config)


@app.callback()
def _check_environment() -> None:
    # Every command refuses bad GNOSIS_* variables (and a bad GNOSIS_CONFIG file) before
    # it does anything, including the commands that take no --config.
    Settings.load()


@app.command()
def worker(config: ConfigOption = None) -> None:
    """Run a live worker: bars and news from Kafka in, signals out."""
    from gnosis.streams.service import run_worker

    run_worker(_settings(config))


@app.command()
def replay(
    bars: Annotated[Path, typer.Argument(help="Bars file (.csv or .parquet).", exists=True,
                                         dir_okay=False)],
    news: Annotated[Path | None, typer.Argument(help="News file (.csv or .parquet).",
                                                exists=True, dir_okay=False)] = None,
    out: Annotated[Path, typer.Option("--out", "-o",
                                      help="Signals file (.jsonl or .parquet).")] = Path(
        "out/signals.parquet"),
    via: Annotated[str, typer.Option(help="'inprocess' (fast, vectorised) or 'kafka' "
                                          "(through the live worker).")] = "inprocess",
    speed: Annotated[float | None, typer.Option(help="With --via kafka: replay at this "
                                                     "multiple of real time (default: as fast "
                                                     "as possible).")] = None,
    strict: Annotated[bool, typer.Option(help="Stop at the first bad row.")] = False,
    config: ConfigOption = None,
) -> None:
    """Feed historical bars and news through the engine and write the signals."""
    from gnosis.replay.run import replay_files

    summary = replay_files(bars, news, out, settings=_settings(config), via=via, speed=speed,
                           strict=strict, console=console)
    console.print(summary, soft_wrap=True)


@app.command()
def record(
    out: Annotated[Path, typer.Argument(help="Folder for bars.parquet, news.parquet and "
                                             "rejected.parquet; a rerun resumes from it.")
                   ] = Path("out/recording"),
    config: ConfigOption = None,
) -> None:
    """Record what the bars and news topics hold, with when each record arrived, into files
    `gnosis replay` reads: the recording replays to the live signals."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from gnosis.security import explained
    from gnosis.streams.recorder import record as record_topics

    settings = _settings(config)
    with explained(settings), Progress(TextColumn("recording"), BarColumn(),
                                       MofNCompleteColumn(), TextColumn("records"),
                                       console=console, transient=True) as progress:
        task = progress.add_task("record", total=None)
        result = record_topics(settings, out, lambda done, total: progress.update(
            task, completed=done, total=total))
    console.print(result.summary(out), soft_wrap=True)


@app.command()
def backtest(
    signals: Annotated[Path, typer.Argument(help="Signals file from `gnosis replay`.",
                                            exists=True, dir_okay=False)],
    bars: Annotated[Path, typer.Argument(help="The bars the signals were computed on.",
                                         exists=True, dir_okay=False)],
    report_dir: Annotated[Path, typer.Option("--report-dir", "-r",
                                             help="Where to write report.txt and "
                                                  "report.html.")] = Path("out/report"),
    permutations: Annotated[int | None, typer.Option(help="Permutations for the "
                                                          "significance test.")] = None,
    interval: Annotated[str | None, typer.Option(help="Bar interval to trade (e.g. 5m) "
                                                      "when the signals hold several.")] = None,
    config: ConfigOption = None,
) -> None:
    """Backtest signals against prices; write a text and an HTML report."""
    from gnosis.replay.run import backtest_files

    text, html = backtest_files(signals, bars, report_dir, settings=_settings(config),
                                permutations=permutations, interval=interval,
                                console=console)
    typer.echo(text.read_text())
    console.print(f"[bold green]report:[/] {html}")


BarsArg = Annotated[Path, typer.Argument(help="Bars file (.csv or .parquet).", exists=True,
                                          dir_okay=False)]
NewsArg = Annotated[Path | None, typer.Argument(help="News file (.csv or .parquet).",
                                                exists=True, dir_okay=False)]
GridOption = Annotated[Path, typer.Option("--grid", "-g", exists=True, dir_okay=False,
                                          help="TOML grid: a list of values per setting, "
                                               "e.g. \\[rules] trending_hurst = [0.5, 0.6].")]
MetricOption = Annotated[str, typer.Option(help="Statistic that picks the best "
                                                "configuration (higher is better).")]
SchedulerOption = Annotated[str | None, typer.Option(
    help="Dask scheduler address (tcp://host:8786) of a running cluster; default: a local "
         "cluster of --workers processes.")]
WorkersOption = Annotated[int, typer.Option(help="Local Dask worker processes; 0 runs "
                                                 "everything in this process.")]


@app.command()
def sweep(
    bars: BarsArg,
    news: NewsArg = None,
    grid: GridOption = Path("grid.toml"),
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for results.parquet, "
                                      "results.csv and sweep.html; a rerun resumes from "
                                      "it.")] = Path("out/sweep"),
    permutations: Annotated[int, typer.Option(help="Permutations for the max-statistic "
                                                   "test (same ones for every "
                                                   "configuration; 0 skips it).")] = 200,
    metric: MetricOption = "sharpe_ratio",
    heatmap: Annotated[str | None, typer.Option(help="Two grid settings for the heatmap, "
                                                     "'section.key,section.key' (default: "
                                                     "the first two varied).")] = None,
    top: Annotated[int, typer.Option(help="Best configurations to chart and list.")] = 5,
    scheduler: SchedulerOption = None,
    workers: WorkersOption = 2,
    config: ConfigOption = None,
) -> None:
    """Evaluate every configuration of a grid on the vectorised replay.

    Writes every configuration's statistics (results.parquet / .csv), an HTML page with a
    heatmap and the best equity curves, and, for the chosen configuration, a p-value
    corrected for the whole grid and the Deflated Sharpe Ratio.
    """
    from gnosis.research.run import sweep_files

    axes = tuple(heatmap.split(",")) if heatmap else None
    if axes is not None and len(axes) != 2:
        raise typer.BadParameter("give two settings separated by a comma", param_hint="heatmap")
    summary = sweep_files(bars, news, grid, out, settings=_settings(config),
                          permutations=permutations, metric=metric, scheduler=scheduler,
                          workers=workers, heatmap=axes, top=top, console=console)
    typer.echo(summary)


@app.command()
def walkforward(
    bars: BarsArg,
    news: NewsArg = None,
    grid: GridOption = Path("grid.toml"),
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for folds.csv and "
                                      "oos_equity.csv.")] = Path("out/walkforward"),
    folds: Annotated[int, typer.Option(help="Test windows (the history is cut into "
                                            "folds + 1 equal blocks).")] = 4,
    mode: Annotated[str, typer.Option(help="'rolling' (train on the blocks just before) "
                                           "or 'anchored' (train from the start).")] =
    "rolling",
    train_blocks: Annotated[int, typer.Option(help="With rolling: blocks to train "
                                                   "on.")] = 1,
    metric: MetricOption = "sharpe_ratio",
    scheduler: SchedulerOption = None,
    workers: WorkersOption = 2,
    config: ConfigOption = None,
) -> None:
    """Choose on each training window, report the next window only (out of sample)."""
    from gnosis.research.run import walkforward_files

    if mode not in ("rolling", "anchored"):
        raise typer.BadParameter("must be 'rolling' or 'anchored'", param_hint="mode")
    summary = walkforward_files(bars, news, grid, out, settings=_settings(config),
                                folds=folds, mode=mode, train_blocks=train_blocks,
                                metric=metric, scheduler=scheduler, workers=workers,
                                console=console)
    typer.echo(summary)


@app.command()
def demo(
    workdir: Annotated[Path, typer.Option(help="Where the demo keeps its data, broker and "
                                               "reports.")] = Path("out/demo"),
    port: Annotated[int, typer.Option(help="Local Kafka broker port.")] = 19092,
    config: ConfigOption = None,
) -> None:
    """The whole system on sample data: broker, worker, live signals, backtest report
    (with the demo's settings, gnosis/config/demo.toml, unless given --config)."""
    from gnosis.demo import DEMO_SETTINGS, run_demo

    run_demo(workdir, port=port, settings=_settings(config or DEMO_SETTINGS), console=console)


@app.command()
def sample(
    directory: Annotated[Path, typer.Argument(help="Folder for bars.csv and news.csv.")] = Path(
        "out/sample"),
) -> None:
    """Write the sample data set (real GOOG/EURUSD bars, synthetic news) as CSV."""
    from gnosis.replay.sample import write_sample

    bars, news = write_sample(directory)
    console.print(f"wrote {bars} and {news}")


@app.command("config")
def show_config(config: ConfigOption = None) -> None:
    """Show every setting, its current value and its environment variable (secrets masked)."""
    from gnosis.security import shown_value

    rows = [(f"{section}.{key}", repr(shown_value(section, key, value)),
             f"GNOSIS_{section.upper()}__{key.upper()}")
            for section, key, value in _settings(config).as_rows()]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    for key, value, env in rows:
        typer.echo(f"{key:<{widths[0]}}  {value:<{widths[1]}}  {env}")


def main() -> None:
    """Entry point: run the CLI, turning expected failures into one clear line."""
    from rich.markup import escape

    from gnosis.events import InvalidEvent
    from gnosis.models.sentiment.providers import ProviderError
    from gnosis.replay.readers import ReaderError
    from gnosis.replay.run import ReplayError
    from gnosis.research.parameter_sweep import SweepError
    from gnosis.security import KafkaAccessError
    from gnosis.streams.recorder import RecordError

    try:
        app()
    except (ConfigError, InvalidEvent, ProviderError, ReaderError, ReplayError, SweepError,
            RecordError, FileNotFoundError) as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        sys.exit(2)
    except KafkaAccessError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        sys.exit(130)


if __name__ == "__main__":
    main()
