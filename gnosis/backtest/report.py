"""Backtest reports: plain text, and a self-contained HTML page with inline SVG charts.

The HTML page needs no network, no JavaScript and no plotting library: charts are
hand-written SVG, long series are reduced to per-pixel min/max envelopes so a million bars
still make a page of a few hundred kilobytes.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gnosis.backtest.inputs import target_weights
from gnosis.backtest.metrics import STATISTICS
from gnosis.backtest.result import BacktestResult
from gnosis.backtest.signal_mix import format_mix, has_mix, signal_mix
from gnosis.config import RuleConfig
from gnosis.events import NO_INFORMATION_SE

Scale = Callable[[np.ndarray], np.ndarray]
"""Data-to-pixel mapping of one chart axis."""

_WIDTH, _PAD_L, _PAD_R, _PAD_T, _PAD_B = 1100, 70, 20, 26, 28
_MAX_POINTS = 1600
_MAX_MARKERS = 400
PAGE_STYLE = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;
max-width:1140px;color:#222;background:#fff}
h1{font-size:22px;margin:0 0 4px} h2{font-size:15px;margin:22px 0 4px;color:#444}
.sub{color:#666;margin-bottom:12px}
.grid{display:flex;flex-wrap:wrap;gap:8px 32px;align-items:flex-start}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{padding:3px 10px;border-bottom:1px solid #eee;text-align:right}
th{text-align:left;font-weight:500;color:#444} svg{display:block;max-width:100%;height:auto}
td.text{text-align:left} .note{color:#555;max-width:1100px}
#trades th,#round-trips th{text-align:right}
.axis{font-size:11px;fill:#666} .grid-line{stroke:#eee}
"""
"""The CSS of every HTML page (no external resources)."""
_PERCENT_ROWS = {s.label for s in STATISTICS if s.kind == "percent"}


def generate_report(result: BacktestResult, title: str = "Backtest report") -> str:
    """A fixed-width text report: every statistic, then the last trades."""
    lines = [title, "=" * 48]
    for name, value in result.as_series().items():
        lines.append(f"{name:<30}{_format(name, value):>18}")
    if result.permutation is not None:
        lines.append(f"{'Permutations':<30}{len(result.permutation.null):>18}")
    trades = result.trades
    if len(trades):
        lines += ["", f"Last trades ({min(len(trades), 10)} of {len(trades)} lots, "
                  "first in first out)", "-" * 48]
        view = trades.tail(10)[["entry_time", "exit_time", "direction", "pnl", "return"]]
        lines.append(view.to_string(index=False, float_format=lambda v: f"{v:,.4f}"))
    return "\n".join(lines)


def feature_uncertainty(signals: pd.DataFrame, hurst_significance: float) -> pd.DataFrame:
    """Per ticker: how precisely the Hurst exponent and branching ratio were known.

    Over the signals whose features were warm (standard errors below the "no information"
    value): their count, the median estimate and median standard error of each, and the
    share of them whose Hurst exponent differed from 0.5 by more than
    ``hurst_significance`` standard errors (the rules' significance test). Signals files
    without standard errors (schema version 1) give an empty table.
    """
    columns = ["signals", "hurst", "hurst_se", "hurst_significant", "hawkes", "hawkes_se"]
    if not {"hurst_se", "hawkes_se"} <= set(signals.columns):
        return pd.DataFrame(columns=columns)
    warm = signals[(signals["hurst_se"] < NO_INFORMATION_SE)
                   & (signals["hawkes_se"] < NO_INFORMATION_SE)]
    significant = (warm["hurst_exponent"] - 0.5).abs() > hurst_significance * warm["hurst_se"]
    grouped = warm.assign(significant=significant).groupby("ticker", sort=True)
    return pd.DataFrame({
        "signals": grouped.size(),
        "hurst": grouped["hurst_exponent"].median(),
        "hurst_se": grouped["hurst_se"].median(),
        "hurst_significant": grouped["significant"].mean(),
        "hawkes": grouped["hawkes_branching"].median(),
        "hawkes_se": grouped["hawkes_se"].median(),
    }, columns=columns)


def write_html_report(
    result: BacktestResult,
    path: str | Path,
    *,
    title: str = "Backtest report",
    price: pd.Series | pd.DataFrame | None = None,
    signals: Any = None,
    rules: RuleConfig | None = None,
    intro: str = "",
) -> Path:
    """Write a self-contained HTML report and return its path.

    Args:
        result: what :meth:`BacktestRunner.run` returned.
        path: the ``.html`` file to write.
        title: page heading.
        price: close prices (a Series, or an OHLCV frame) to chart with trade markers.
        signals: if given, the BUY/SELL markers show these signals at the close of the bar
            they were computed on; otherwise they show the fills (position increases and
            decreases) at the open they were filled at. A signals DataFrame also adds
            its signal mix (:func:`~gnosis.backtest.signal_mix.signal_mix`: why HOLD)
            and, with standard errors, a table of :func:`feature_uncertainty`.
        rules: the rules the signals were made with, for those tables (default rules if
            omitted).
        intro: HTML to show under the heading, above the charts.
    """
    rules = rules or RuleConfig()
    index = result.equity_curve.index
    sections = []
    if price is not None:
        close = _close(price).reindex(index) if isinstance(index, pd.DatetimeIndex) \
            else _close(price)
        sections.append((f"Price and {'signals' if signals is not None else 'fills'} "
                         "(▲ buy, ▼ sell)",
                         _price_chart(index, close, result, price, signals)))
    sections.append(("Equity", svg_chart(index, [(result.equity_curve.to_numpy(), "#1f5fbf")],
                                         height=240, fmt="{:,.0f}")))
    sections.append(("Drawdown", svg_chart(index, [(result.drawdown.to_numpy(), "#c0392b")],
                                           height=150, fmt="{:.0%}", fill=True)))
    sections.append(("Position", svg_chart(index, [(result.positions.to_numpy(), "#555")],
                                           height=120, fmt="{:+.2f}", step=True)))
    stats_rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_format(k, v))}"
                         "</td></tr>" for k, v in result.as_series().items())
    trades_html = _trades_table(result.trades, "trades")
    trips_html = _trades_table(result.round_trips, "round-trips")
    mix_html = ""
    if isinstance(signals, pd.DataFrame):
        trades_html += _uncertainty_table(feature_uncertainty(signals,
                                                              rules.hurst_significance))
        mix_html = mix_section(signals, rules)
    charts = "".join(f"<h2>{html.escape(name)}</h2>{svg}" for name, svg in sections)
    sub = (f"{len(index):,} bars · {_span(index)} · p-value "
           f"{_format('MCPT p-value', result.mcpt_p_value)}")
    return write_page(path, title, sub, f"""{intro}{charts}{mix_html}
<div class="grid"><div><h2>Statistics</h2><table id="metrics">{stats_rows}</table></div>
<div><h2>Trades (lots, first in first out)</h2>{trades_html}
<h2>Round trips (flat to flat, volume-weighted prices)</h2>{trips_html}</div></div>""")


def write_page(path: str | Path, title: str, sub: str, body: str) -> Path:
    """Write a self-contained HTML page: heading, a line of plain-text facts under it,
    then ``body`` (HTML); returns its path."""
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{PAGE_STYLE}</style></head><body>
<h1>{html.escape(title)}</h1>
<div class="sub">{html.escape(sub)}</div>
{body}
</body></html>
"""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- charts


def svg_chart(index: pd.Index, series: list[tuple[np.ndarray, str]], *, height: int,
              fmt: str, fill: bool = False, step: bool = False,
              markers: Callable[[Scale, Scale], str] | None = None) -> str:
    """An inline SVG line chart of ``(values, colour)`` series over ``index``, y labels
    formatted with ``fmt`` (more decimals when the range needs them); a DatetimeIndex is
    drawn on a true time axis (gaps as gaps); long series are drawn as per-pixel min/max
    envelopes."""
    finite = [v[np.isfinite(v)] for v, _ in series]
    lo = min((float(f.min()) for f in finite if len(f)), default=0.0)
    hi = max((float(f.max()) for f in finite if len(f)), default=1.0)
    if fill:
        hi = max(hi, 0.0)
    if hi == lo:
        lo, hi = lo - 1.0, hi + 1.0
    plot_w = _WIDTH - _PAD_L - _PAD_R
    plot_h = height - _PAD_T - _PAD_B
    where = _positions(index)

    def x(i: np.ndarray) -> np.ndarray:
        return _PAD_L + plot_w * where[np.asarray(i, dtype=np.int64)]

    def y(v: np.ndarray) -> np.ndarray:
        return _PAD_T + plot_h * (1 - (v - lo) / (hi - lo))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" '
             f'viewBox="0 0 {_WIDTH} {height}" role="img">']
    ticks, label = value_ticks(lo, hi, fmt, least=3 if plot_h < 100 else 4)
    for v in ticks:
        yy = float(y(np.array(v)))
        parts.append(f'<line class="grid-line" x1="{_PAD_L}" x2="{_WIDTH - _PAD_R}" '
                     f'y1="{yy:.1f}" y2="{yy:.1f}"/><text class="axis y-label" '
                     f'x="{_PAD_L - 6}" y="{yy + 4:.1f}" text-anchor="end">'
                     f'{html.escape(label(v))}</text>')
    for k in range(6):
        anchor = "start" if k == 0 else ("end" if k == 5 else "middle")
        parts.append(f'<text class="axis x-label" x="{_PAD_L + plot_w * k / 5:.1f}" '
                     f'y="{height - 8}" text-anchor="{anchor}">'
                     f'{html.escape(_axis_time(index, k / 5))}</text>')
    for values, color in series:
        xs, ys = _envelope(values, where, step=step)
        points = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(x(xs), y(ys), strict=True))
        if fill and len(xs):
            base = float(y(np.array(0.0)))
            parts.append(f'<polygon fill="{color}" fill-opacity="0.25" stroke="none" '
                         f'points="{float(x(xs[0])):.1f},{base:.1f} {points} '
                         f'{float(x(xs[-1])):.1f},{base:.1f}"/>')
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.3" '
                     f'points="{points}"/>')
    if markers is not None:
        parts.append(markers(x, y))
    parts.append("</svg>")
    return "".join(parts)


def value_ticks(lo: float, hi: float, fmt: str,
                least: int = 4) -> tuple[list[float], Callable[[float], str]]:
    """Round y-axis ticks over ``[lo, hi]`` (the coarsest 1, 2 or 5 step giving at least
    ``least`` of them) and a label function: ``fmt`` with as many more decimals as the
    step needs to tell neighbouring ticks apart (a range of 0.5 % gets ``-0.1%``, not
    ``-0%``)."""
    magnitude = 10.0 ** math.floor(math.log10(hi - lo))

    def count(step: float) -> int:
        return math.floor(hi / step + 1e-9) - math.ceil(lo / step - 1e-9) + 1

    step = next(m * magnitude / 10 ** k for k in range(3) for m in (5, 2, 1)
                if count(m * magnitude / 10 ** k) >= least)
    first = math.ceil(lo / step - 1e-9)
    ticks = [k * step for k in range(first, math.floor(hi / step + 1e-9) + 1)]
    match = _FORMAT.fullmatch(fmt)
    if match is None:
        return ticks, fmt.format
    flags, given, kind = match.group(1), int(match.group(2)), match.group(3)
    shown = step * 100 if kind == "%" else step
    decimals = max(given, -math.floor(math.log10(shown) + 1e-9))
    spec = f"{{:{flags}.{decimals}{kind}}}"
    # 0 stays "0", never "-0"
    return ticks, lambda v: spec.format(0.0 if abs(v) < step / 2 else v)


_FORMAT = re.compile(r"\{:([+,]*)\.(\d+)([f%])\}")


def _positions(index: pd.Index) -> np.ndarray:
    """Where each bar sits on the x axis, 0 to 1: by time for a DatetimeIndex, else by
    position."""
    n = len(index)
    if isinstance(index, pd.DatetimeIndex) and n > 1 and index[-1] > index[0]:
        stamps = index.asi8.astype(np.float64)
        return (stamps - stamps[0]) / (stamps[-1] - stamps[0])
    return np.arange(n, dtype=np.float64) / max(n - 1, 1)


def _axis_time(index: pd.Index, fraction: float) -> str:
    """The x-axis label at ``fraction`` of the axis."""
    if len(index) == 0:
        return ""
    if not isinstance(index, pd.DatetimeIndex):
        return str(index[round((len(index) - 1) * fraction)])
    stamp = index[0] + (index[-1] - index[0]) * fraction
    if index[-1] - index[0] >= pd.Timedelta(days=5):
        return stamp.strftime("%Y-%m-%d")
    return stamp.strftime("%Y-%m-%d %H:%M")


def _price_chart(index: pd.Index, close: pd.Series, result: BacktestResult, price: Any,
                 signals: Any) -> str:
    values = close.to_numpy(dtype=np.float64)
    if isinstance(signals, pd.DataFrame) and {"ts", "signal_type"} <= set(signals.columns) \
            and isinstance(index, pd.DatetimeIndex):
        # every BUY and SELL, also those adding to a position already held
        acting = signals[signals["signal_type"].isin(("BUY", "SELL"))]
        found = index.get_indexer(pd.DatetimeIndex(pd.to_datetime(acting["ts"], utc=True)))
        bars = found[found >= 0]
        sides = np.where(acting["signal_type"].to_numpy()[found >= 0] == "BUY", 1.0, -1.0)
        at = values
    elif signals is not None:
        direction = np.sign(target_weights(signals, index, 1.0, hold="keep"))
        # target_weights gives what is in force from the next open; shift back to the
        # bar whose close produced the signal, and keep only changes of direction.
        decided = np.concatenate((direction[1:], [direction[-1]]))
        prior = np.concatenate(([0.0], decided[:-1]))
        bars = np.flatnonzero(decided != prior)
        sides = decided[bars]
        at = values
    else:
        pos = result.positions.to_numpy()
        prior = np.concatenate(([0.0], pos[:-1]))
        bars = np.flatnonzero(pos != prior)
        sides = np.sign(pos[bars] - prior[bars])
        opens = _column(price, "open")
        at = opens.reindex(index).to_numpy(dtype=np.float64) if opens is not None else values
    if len(bars) > _MAX_MARKERS:
        keep = np.linspace(0, len(bars) - 1, _MAX_MARKERS).round().astype(int)
        bars, sides = bars[keep], sides[keep]
    shapes = []
    for bar, side in zip(bars.tolist(), sides.tolist(), strict=True):
        if not math.isfinite(at[bar]) or side == 0:
            continue
        # BUY: green triangle pointing up from below the price; SELL: red, from above.
        color, d = ("#1e8449", 1) if side > 0 else ("#c0392b", -1)
        label = "BUY" if side > 0 else "SELL"
        shapes.append((bar, at[bar], color, d, label))

    price_format = _price_format(values)

    def draw(x: Scale, y: Scale) -> str:
        out = []
        for bar, level, color, d, label in shapes:
            cx, cy = float(x(np.array(bar))), float(y(np.array(level)))
            tip, base = cy + 3 * d, cy + 12 * d
            out.append(f'<polygon class="marker {label.lower()}" fill="{color}" '
                       f'points="{cx:.1f},{tip:.1f} {cx - 5:.1f},{base:.1f} '
                       f'{cx + 5:.1f},{base:.1f}"><title>{label} '
                       f'{html.escape(_time_label(index[bar]))} @ {price_format.format(level)}'
                       '</title></polygon>')
        return "".join(out)

    return svg_chart(index, [(values, "#333")], height=300, fmt="{:,.2f}",
                  markers=draw)


def _envelope(values: np.ndarray, where: np.ndarray, *,
              step: bool) -> tuple[np.ndarray, np.ndarray]:
    """Bars to draw and their values: all of them, or the min and max of each slice of
    the x axis (``where``: each bar's place on it, 0 to 1)."""
    n = len(values)
    idx = np.arange(n, dtype=np.int64)
    if n <= _MAX_POINTS:
        if step and n > 1:
            return np.repeat(idx, 2)[1:], np.repeat(values, 2)[:-1]
        return idx, values
    buckets = _MAX_POINTS // 2
    edges = np.unique(np.searchsorted(where, np.linspace(0.0, 1.0, buckets + 1)[:-1]))
    clean = np.where(np.isfinite(values), values, np.nan)
    lows = np.fmin.reduceat(clean, edges)
    highs = np.fmax.reduceat(clean, edges)
    ends = np.append(edges[1:], n) - 1
    xs = np.column_stack((edges, ends)).ravel()
    ys = np.column_stack((lows, highs)).ravel()
    ok = np.isfinite(ys)
    return xs[ok], ys[ok]


# --------------------------------------------------------------------------- helpers


def _close(price: pd.Series | pd.DataFrame) -> pd.Series:
    if isinstance(price, pd.Series):
        series = price
    else:
        series = _column(price, "close")
        if series is None:
            raise ValueError("price frame has no Close column")
    if isinstance(series.index, pd.DatetimeIndex) and series.index.tz is None:
        series = series.tz_localize("UTC")
    return series


def _column(price: Any, name: str) -> pd.Series | None:
    if not isinstance(price, pd.DataFrame):
        return None
    for column in price.columns:
        if str(column).lower() == name:
            series = price[column]
            if isinstance(series.index, pd.DatetimeIndex) and series.index.tz is None:
                series = series.tz_localize("UTC")
            return series
    return None


def _trades_table(trades: pd.DataFrame, table_id: str) -> str:
    if trades.empty:
        return "<p>No trades.</p>"
    book = "ticker" in trades.columns  # a book's trades: say whose
    head = (f"<tr>{'<th>Ticker</th>' if book else ''}<th>Entry</th><th>Exit</th><th>Side</th>"
            "<th>Entry price</th><th>Exit price</th><th>Return</th></tr>")
    rows = []
    for t in trades.tail(25).to_dict("records"):
        side = "long" if t["direction"] > 0 else "short"
        price = _price_format([t["entry_price"]])
        ticker = f"<td>{html.escape(str(t['ticker']))}</td>" if book else ""
        rows.append(f"<tr>{ticker}<td>{_time_label(t['entry_time'])}</td>"
                    f"<td>{_time_label(t['exit_time'])}{'' if t['closed'] else ' (open)'}</td>"
                    f"<td>{side}</td><td>{price.format(t['entry_price'])}</td>"
                    f"<td>{price.format(t['exit_price'])}</td><td>{t['return']:+.2%}</td>"
                    "</tr>")
    caption = f"<p>Last {len(rows)} of {len(trades)}.</p>" if len(trades) > len(rows) else ""
    return f'<table id="{table_id}">{head}{"".join(rows)}</table>{caption}'


def mix_section(signals: pd.DataFrame, rules: RuleConfig) -> str:
    """The signal mix as an HTML section: BUY / SELL / HOLD per ticker and why HOLD."""
    if signals.empty or not has_mix(signals):
        return ""
    return ("<h2>Signal mix, and why HOLD</h2>"
            '<p class="note">The HOLDs where no rule held, by the BUY and SELL conditions '
            "they failed (each usually fails several); thresholds as configured.</p>"
            + frame_table(format_mix(signal_mix(signals, rules)), "mix"))


def frame_table(frame: pd.DataFrame, table_id: str, *, link: str = "") -> str:
    """A DataFrame of text as an HTML table, its index as row headings (each a link to
    ``link.format(name)`` if ``link`` is given)."""
    head = "<tr><th></th>" + "".join(f"<th>{html.escape(str(c))}</th>"
                                     for c in frame.columns) + "</tr>"

    def heading(name: object) -> str:
        text = html.escape(str(name))
        return f'<a href="{html.escape(link.format(name))}">{text}</a>' if link else text

    body = "".join(f"<tr><th>{heading(name)}</th>"
                   + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
                   for name, row in zip(frame.index, frame.itertuples(index=False),
                                        strict=True))
    return f'<table id="{html.escape(table_id)}">{head}{body}</table>'


def _price_format(prices: pd.Series | np.ndarray) -> str:
    """A format giving prices about five significant digits (1.18734, 314.21)."""
    finite = np.abs(np.asarray(prices, dtype=np.float64))
    finite = finite[np.isfinite(finite) & (finite > 0)]
    level = float(np.median(finite)) if len(finite) else 1.0
    return f"{{:,.{max(2, 4 - math.floor(math.log10(level)))}f}}"


def _uncertainty_table(table: pd.DataFrame) -> str:
    if table.empty:
        return ""
    head = ("<tr><th>Ticker</th><th>Signals</th><th>Hurst ± se</th><th>Significant</th>"
            "<th>Branching ± se</th></tr>")
    rows = "".join(
        f"<tr><th>{html.escape(str(ticker))}</th><td>{int(r.signals):,}</td>"
        f"<td>{r.hurst:.3f} ± {r.hurst_se:.3f}</td><td>{r.hurst_significant:.0%}</td>"
        f"<td>{r.hawkes:.2f} ± {r.hawkes_se:.2f}</td></tr>"
        for ticker, r in table.iterrows())
    return ('<h2>Feature uncertainty (medians over warm signals)</h2>'
            f'<table id="uncertainty">{head}{rows}</table>')


def _format(name: str, value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, pd.Timestamp):
        return _time_label(value)
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        if not math.isfinite(value):
            return "—" if math.isnan(value) else ("∞" if value > 0 else "-∞")
        if name in _PERCENT_ROWS:
            return f"{value:.2%}"
        return f"{value:,.4f}" if abs(value) < 1000 else f"{value:,.2f}"
    return str(value)


def _time_label(stamp: Any) -> str:
    if isinstance(stamp, pd.Timestamp):
        if stamp.hour == stamp.minute == stamp.second == 0:
            return stamp.strftime("%Y-%m-%d")
        return stamp.strftime("%Y-%m-%d %H:%M")
    return str(stamp)


def _span(index: pd.Index) -> str:
    if len(index) == 0:
        return "empty"
    return f"{_time_label(index[0])} → {_time_label(index[-1])}"
