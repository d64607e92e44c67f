"""File-to-file replay and backtest: what ``gnosis replay`` and ``gnosis backtest`` run."""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from gnosis.config import Settings, duration_ns
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
    """Signals a replay yields: one per bar that does not repeat an earlier bar of its
    ticker and interval."""
    from gnosis.replay.inprocess import duplicate_bars

    return int((~duplicate_bars(bars)).sum())


def skipped_summary(rows: int, errors: list[RowError]) -> str:
    """``"1,200 rows (3 skipped: 2 duplicate_bar, 1 bad_timestamp)"``: every row read
    and, by reason, every row left out."""
    if not errors:
        return f"{rows:,} rows (0 skipped)"
    reasons = ", ".join(f"{n:,} {code}" for code, n in
                        Counter(e.code for e in errors).most_common())
    return f"{rows:,} rows ({len(errors):,} skipped: {reasons})"


def replay_files(bars_path: Path, news_path: Path | None, out: Path, *, settings: Settings,
                 via: str = "inprocess", speed: float | None = None, strict: bool = False,
                 console: Console | None = None) -> str:
    """Replay a bars file (and optionally a news file) and write the signals to ``out``.

    ``via="inprocess"`` runs the vectorised core in this process; ``via="kafka"``
    publishes to the configured broker, where a running worker (``gnosis worker``)
    computes the signals, and collects them from the signals topic. Returns a summary.
    """
    from gnosis.replay.inprocess import write_frame
    from gnosis.sinks.files import write_signals

    console = console or Console(stderr=True)
    if via not in {"inprocess", "kafka"}:
        raise ReplayError(f"--via must be 'inprocess' or 'kafka', not {via!r}")
    max_future = duration_ns(settings.worker.max_future)
    bars = read_bars(bars_path, strict=strict, max_future_ns=max_future)
    report_row_errors(bars.errors, console)
    news_frame, news_text = None, ""
    if news_path is not None:
        news = read_news(news_path, strict=strict, max_future_ns=max_future)
        report_row_errors(news.errors, console)
        news_frame = news.frame
        news_text = f"; news: {skipped_summary(len(news.frame) + len(news.errors), news.errors)}"
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
        written = write_frame(frame, out)
    else:
        signals = _replay_kafka(bars.frame, news_frame, settings, speed)
        written = write_signals(signals, out)
    # The readers leave out every bar that yields no signal, so this is 0; say so if not.
    silent = len(bars.frame) - written
    missing = f", {silent:,} bars without a signal" if silent > 0 else ""
    return (f"{written:,} signals from bars: "
            f"{skipped_summary(len(bars.frame) + len(bars.errors), bars.errors)}{missing}"
            f"{news_text} → {out}")


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
    import asyncio

    from gnosis.replay.kafka import replay_via_kafka
    from gnosis.replay.knowledge import bar_known, news_known
    from gnosis.replay.synthetic import bars_to_events, news_to_events
    from gnosis.security import explained

    events = bars_to_events(bars)
    items = news_to_events(news) if news is not None else []
    with explained(settings), Progress(
            TextColumn("through Kafka"), BarColumn(), MofNCompleteColumn(), TextColumn("signals"),
            TimeElapsedColumn(), transient=True) as progress:
        task = progress.add_task("kafka", total=expected_signals(bars))
        signals, missing = asyncio.run(replay_via_kafka(
            events, items, settings, speed=speed, on_signal=lambda _s: progress.advance(task),
            bars_known=bar_known(bars).tolist(),
            news_known=news_known(news, settings).tolist() if news is not None else []))
    if missing:
        raise ReplayError(
            f"{len(missing):,} of {len(signals) + len(missing):,} signals did not arrive; is "
            f"a worker running against {settings.kafka.bootstrap_servers}? (bars the live "
            f"state has already seen go to {settings.kafka.deadletter_topic!r} instead)")
    return signals


def backtest_files(signals_path: Path, bars_path: Path, report_dir: Path, *,
                   settings: Settings, permutations: int | None = None,
                   interval: str | None = None,
                   console: Console | None = None) -> tuple[Path, Path]:
    """Backtest a signals file against its bars; write ``report.txt`` and ``report.html``.

    Every ticker trades its own equal share of the capital, against the bars of its
    signals' interval (when the signals hold several intervals of one ticker, choose one
    with ``interval``). Each ticker gets a report and a page of its own
    (``report-TICKER.html``: price and signals, equity, drawdown, why HOLD);
    ``report.html`` compares them. When every ticker trades bars of one interval, the
    book as a whole is reported too, on one time axis; with several intervals it is not:
    its statistics (bars per year, duration) would mix incommensurable bars.
    """
    from gnosis.backtest import BacktestRunner
    from gnosis.backtest.report import (
        feature_uncertainty,
        frame_table,
        generate_report,
        mix_section,
        write_html_report,
        write_page,
    )
    from gnosis.backtest.signal_mix import format_mix, signal_mix
    from gnosis.sinks.files import read_signals

    console = console or Console(stderr=True)
    config = settings.backtest
    if permutations is not None:
        config = dataclasses.replace(config, permutations=permutations)
    runner = BacktestRunner.from_config(config)
    signals = read_signals(signals_path)
    bars = read_bars(bars_path, max_future_ns=duration_ns(settings.worker.max_future))
    report_row_errors(bars.errors, console)
    if interval is not None:
        signals = signals[signals["interval"] == interval]
    per_ticker_intervals = signals.groupby("ticker")["interval"].nunique()
    mixed = sorted(per_ticker_intervals[per_ticker_intervals > 1].index)
    if mixed:
        raise ReplayError(f"{signals_path}: {', '.join(mixed[:5])} "
                          f"{'has' if len(mixed) == 1 else 'have'} signals of several bar "
                          f"intervals ({', '.join(sorted(set(signals['interval'])))}): "
                          "backtest one with --interval")
    # Each ticker trades against the bars of its signals' interval.
    traded = pd.MultiIndex.from_frame(signals[["ticker", "interval"]].drop_duplicates())
    keep = pd.MultiIndex.from_frame(bars.frame[["ticker", "interval"]]).isin(traded)
    bars = dataclasses.replace(bars, frame=bars.frame[keep])
    tickers = sorted(set(signals["ticker"]) & set(bars.frame["ticker"]))
    if not tickers:
        raise ReplayError(f"{signals_path} and {bars_path} share no ticker")
    signals = signals[signals["ticker"].isin(tickers)]
    intervals = signals.groupby("ticker")["interval"].first()
    one_axis = intervals.nunique() == 1 and len(tickers) > 1
    prices = {t: bars.prices(t) for t in tickers}
    with console.status("backtesting (with the permutation test)…"):
        book = runner.run_portfolio(signals, prices) if one_axis else None
        per_ticker = {t: runner.run(signals[signals["ticker"] == t], prices[t])
                      for t in tickers}
    report_dir.mkdir(parents=True, exist_ok=True)
    rules = settings.rules
    table = runner.compare_strategies(per_ticker)[
        ["total_return", "sharpe_ratio", "max_drawdown", "num_trades", "win_rate",
         "mcpt_p_value"]]
    table.insert(0, "interval", intervals.reindex(table.index))
    if book is not None:
        scope = f"equal-weight book of {len(tickers)} tickers, {intervals.iloc[0]} bars"
        parts = [generate_report(book, f"Backtest report: {scope}")]
    else:
        scope = ("each ticker on its own: " + ", ".join(
            f"{t} {intervals[t]}" for t in tickers) + " bars")
        parts = [generate_report(per_ticker[t], f"Backtest report: {t} ({intervals[t]} bars)")
                 for t in tickers]
    parts.append("Per ticker\n" + "-" * 48 + "\n"
                 + table.to_string(float_format=lambda v: f"{v:.4f}"))
    parts.append("Signal mix, and why HOLD (the HOLDs where no rule held, by the conditions "
                 "they failed)\n" + "-" * 48 + "\n"
                 + format_mix(signal_mix(signals, rules)).to_string())
    k = rules.hurst_significance
    uncertainty = feature_uncertainty(signals, k)
    if len(uncertainty):
        parts.append(f"Feature uncertainty (medians over warm signals; significant: "
                     f"|H - 0.5| > {k:g} se)\n" + "-" * 48 + "\n"
                     + uncertainty.to_string(float_format=lambda v: f"{v:.4f}"))
    text_path = report_dir / "report.txt"
    text_path.write_text("\n\n".join(parts) + "\n")
    for ticker in tickers:
        write_html_report(per_ticker[ticker], report_dir / f"report-{ticker}.html",
                          title=f"Backtest: {ticker} ({intervals[ticker]} bars)",
                          price=prices[ticker], signals=signals[signals["ticker"] == ticker],
                          rules=rules, intro='<p><a href="report.html">← all tickers</a></p>')
    overview = "<h2>Per ticker</h2>" + frame_table(_overview_rows(table), "tickers",
                                                      link="report-{}.html")
    title = f"Backtest: {', '.join(tickers)}"
    if book is not None:
        html_path = write_html_report(book, report_dir / "report.html", title=title,
                                      signals=signals, rules=rules, intro=overview)
    else:
        note = ('<p class="note">No combined book: these tickers trade bars of different '
                "intervals, so one equity curve, Sharpe ratio or bars-per-year figure for "
                "them would splice incommensurable bars. Each ticker's page has its "
                "price, signals, equity and drawdown.</p>")
        html_path = write_page(report_dir / "report.html", title, scope,
                               overview + note + mix_section(signals, rules))
    return text_path, html_path


def _overview_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The per-ticker statistics as text."""
    return pd.DataFrame({
        "interval": table["interval"],
        "total return": table["total_return"].map(lambda v: f"{v:+.2%}"),
        "Sharpe": table["sharpe_ratio"].map(lambda v: f"{v:.2f}"),
        "max drawdown": table["max_drawdown"].map(lambda v: f"{v:.2%}"),
        "trades": table["num_trades"].map(lambda v: f"{int(v):,}"),
        "win rate": table["win_rate"].map(lambda v: f"{v:.0%}" if pd.notna(v) else "—"),
        "p-value": table["mcpt_p_value"].map(lambda v: f"{v:.3f}" if pd.notna(v) else "—"),
    })
