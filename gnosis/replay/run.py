"""File-to-file replay and backtest: what ``gnosis replay`` and ``gnosis backtest`` run."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from gnosis.config import Settings
from gnosis.replay.readers import BarsLoad, RowError, read_bars, read_news

if TYPE_CHECKING:
    from gnosis.models.sentiment import SentimentScorer

_SHOWN_ERRORS = 10


class ReplayError(RuntimeError):
    """A replay or backtest that cannot go on; the message says why."""


def report_row_errors(errors: list[RowError], console: Console) -> None:
    """Print the first skipped rows and how many there were in all."""
    for error in errors[:_SHOWN_ERRORS]:
        console.print(f"[yellow]skipped[/] {escape(str(error))}", highlight=False,
                      soft_wrap=True)
    if len(errors) > _SHOWN_ERRORS:
        console.print(f"[yellow]… and {len(errors) - _SHOWN_ERRORS} more skipped rows[/]")


def expected_signals(bars: pd.DataFrame) -> int:
    """Signals a replay yields: one per bar that is strictly after its ticker's previous."""
    return int((~bars.duplicated(["ticker", "ts"], keep="first")).sum())


def replay_files(bars_path: Path, news_path: Path | None, out: Path, *, settings: Settings,
                 via: str = "inprocess", speed: float | None = None, strict: bool = False,
                 console: Console | None = None) -> str:
    """Replay a bars file (and optionally a news file) and write the signals to ``out``.

    ``via="inprocess"`` runs the vectorised core in this process; ``via="kafka"``
    publishes to the configured broker, where a running worker (``gnosis worker``)
    computes the signals, and collects them from the signals topic. Returns a summary.
    """
    from gnosis.sinks.files import write_signals

    console = console or Console(stderr=True)
    if via not in {"inprocess", "kafka"}:
        raise ReplayError(f"--via must be 'inprocess' or 'kafka', not {via!r}")
    bars = read_bars(bars_path, strict=strict)
    report_row_errors(bars.errors, console)
    news_frame = None
    if news_path is not None:
        news = read_news(news_path, strict=strict)
        report_row_errors(news.errors, console)
        news_frame = news.frame
    if via == "inprocess":
        from gnosis.models.sentiment import load_scorer, score_column

        scorer = load_scorer(settings.sentiment)
        if news_frame is not None and settings.sentiment.store_dir:
            with console.status("scoring headlines (score store first)…"):
                scores, report = score_column(news_frame["headline"], scorer,
                                              settings.sentiment.store_dir)
            console.print(f"news: {report}", highlight=False, soft_wrap=True)
            news_frame = news_frame.assign(score=scores)
        frame = _replay_inprocess(bars, news_frame, settings, scorer)
        written = write_signals(frame, out)
    else:
        signals = _replay_kafka(bars.frame, news_frame, settings, speed)
        written = write_signals(signals, out)
    skipped = len(bars.errors)
    return (f"{written:,} signals from {len(bars.frame):,} bars ({skipped:,} rows skipped) "
            f"→ {out}")


def _replay_inprocess(bars: BarsLoad, news: pd.DataFrame | None, settings: Settings,
                      scorer: SentimentScorer) -> pd.DataFrame:
    from gnosis.replay.inprocess import replay_frame

    with Progress(TextColumn("replaying"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("bars"), TimeElapsedColumn(), transient=True) as progress:
        task = progress.add_task("replay", total=len(bars.frame))
        return replay_frame(bars.frame, news, settings, scorer,
                            on_ticker=lambda _t, n: progress.advance(task, n))


def _replay_kafka(bars: pd.DataFrame, news: pd.DataFrame | None, settings: Settings,
                  speed: float | None) -> list:
    from gnosis.replay.kafka import collect_signals, publish
    from gnosis.replay.synthetic import bars_to_events, news_to_events

    publish(bars_to_events(bars), news_to_events(news) if news is not None else [], settings,
            speed=speed, progress=True)
    expected = expected_signals(bars)
    signals = collect_signals(settings, expected=expected, timeout=max(60.0, expected / 500))
    if len(signals) < expected:
        raise ReplayError(f"only {len(signals)} of {expected} signals arrived; is a worker "
                           f"running against {settings.kafka.bootstrap_servers}?")
    return signals


def backtest_files(signals_path: Path, bars_path: Path, report_dir: Path, *,
                   settings: Settings, permutations: int | None = None,
                   console: Console | None = None) -> tuple[Path, Path]:
    """Backtest a signals file against its bars; write ``report.txt`` and ``report.html``.

    Every ticker trades its own equal share of the capital; the report shows the book
    as a whole, a table per ticker, and one HTML page per ticker with its price and
    signals.
    """
    from gnosis.backtest import BacktestRunner
    from gnosis.backtest.report import write_html_report
    from gnosis.sinks.files import read_signals

    console = console or Console(stderr=True)
    config = settings.backtest
    if permutations is not None:
        config = dataclasses.replace(config, permutations=permutations)
    runner = BacktestRunner.from_config(config)
    signals = read_signals(signals_path)
    bars = read_bars(bars_path)
    report_row_errors(bars.errors, console)
    tickers = sorted(set(signals["ticker"]) & set(bars.frame["ticker"]))
    if not tickers:
        raise ReplayError(f"{signals_path} and {bars_path} share no ticker")
    prices = {t: bars.prices(t) for t in tickers}
    with console.status("backtesting (with the permutation test)…"):
        book = runner.run_portfolio(signals[signals["ticker"].isin(tickers)], prices)
        per_ticker = {t: runner.run(signals[signals["ticker"] == t], prices[t])
                      for t in tickers}
    report_dir.mkdir(parents=True, exist_ok=True)
    table = runner.compare_strategies(per_ticker)
    text = (runner.generate_report(book) + "\n\nPer ticker\n" + "-" * 48 + "\n"
            + table[["total_return", "sharpe_ratio", "max_drawdown", "num_trades",
                     "win_rate", "mcpt_p_value"]].to_string(float_format=lambda v: f"{v:.4f}"))
    text_path = report_dir / "report.txt"
    text_path.write_text(text + "\n")
    html_path = write_html_report(book, report_dir / "report.html",
                                  title=f"Backtest: {', '.join(tickers)} (equal-weight book)")
    for ticker in tickers:
        write_html_report(per_ticker[ticker], report_dir / f"report-{ticker}.html",
                          title=f"Backtest: {ticker}", price=prices[ticker],
                          signals=signals[signals["ticker"] == ticker])
    return text_path, html_path
