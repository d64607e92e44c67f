"""The sweep's HTML page: a heatmap over two settings, the best configurations' equity
curves and the table of the best rows. Self-contained like the backtest report (inline
SVG, no script, no network)."""

from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np
import pandas as pd

from gnosis.backtest.report import PAGE_STYLE, mix_section, svg_chart
from gnosis.config import RuleConfig
from gnosis.research.parameter_sweep import SweepResult

_COLOURS = ("#1f5fbf", "#c0392b", "#1e8449", "#8e44ad", "#d35400", "#555555")
_CELL_W, _CELL_H, _LEFT, _TOP = 90, 34, 170, 44
_SHOWN = ("total_return", "sharpe_ratio", "max_drawdown", "num_trades", "win_rate",
          "p_value", "max_p_value", "deflated_sharpe")


def heatmap(result: SweepResult, x: str, y: str, metric: str | None = None) -> str:
    """An SVG heatmap of ``metric`` over settings ``x`` (columns) and ``y`` (rows); where
    other settings vary too, each cell shows the best value over them."""
    metric = metric or result.metric
    table = result.table.pivot_table(index=y, columns=x, values=metric, aggfunc="max",
                                     sort=False)
    values = table.to_numpy(dtype=np.float64)
    finite = values[np.isfinite(values)]
    lo, hi = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
    width = _LEFT + _CELL_W * len(table.columns) + 10
    height = _TOP + _CELL_H * len(table.index) + 10
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img" class="heatmap"><text class="axis" x="{_LEFT}" y="14">'
             f'{html.escape(x)} →</text><text class="axis" x="4" y="{_TOP - 8}">'
             f'{html.escape(y)} ↓</text>']
    for j, column in enumerate(table.columns):
        parts.append(f'<text class="axis" x="{_LEFT + _CELL_W * (j + 0.5):.0f}" '
                     f'y="{_TOP - 8}" text-anchor="middle">{html.escape(str(column))}</text>')
    for i, row in enumerate(table.index):
        top = _TOP + _CELL_H * i
        parts.append(f'<text class="axis" x="{_LEFT - 6}" y="{top + _CELL_H / 2 + 4:.0f}" '
                     f'text-anchor="end">{html.escape(str(row))}</text>')
        for j in range(len(table.columns)):
            v = values[i, j]
            left = _LEFT + _CELL_W * j
            label = f"{v:.3g}" if math.isfinite(v) else "—"
            parts.append(f'<rect class="cell" x="{left}" y="{top}" width="{_CELL_W - 2}" '
                         f'height="{_CELL_H - 2}" fill="{_colour(v, lo, hi)}"><title>'
                         f'{html.escape(f"{x}={table.columns[j]}, {y}={row}: {label}")}'
                         f'</title></rect><text x="{left + _CELL_W / 2 - 1:.0f}" '
                         f'y="{top + _CELL_H / 2 + 4:.0f}" text-anchor="middle" '
                         f'font-size="12">{label}</text>')
    parts.append("</svg>")
    return "".join(parts)


def identical_trades(result: SweepResult) -> list[list[str]]:
    """Groups of configurations (two or more each, by ``config_id``) whose books had
    exactly the same equity curve, hence the same trades: the settings they differ in
    changed no decision on this data."""
    groups: dict[bytes, list[str]] = {}
    for config, curve in result.curves.items():
        groups.setdefault(curve.to_numpy(dtype=np.float64).tobytes(), []).append(config)
    return [ids for ids in groups.values() if len(ids) > 1]


def write_sweep_html(result: SweepResult, path: str | Path, *, x: str | None = None,
                     y: str | None = None, top: int = 5,
                     title: str = "Parameter sweep", signals: pd.DataFrame | None = None,
                     rules: RuleConfig | None = None) -> Path:
    """Write the sweep page: heatmap of ``result.metric`` over settings ``x`` and ``y``
    (default: the first two settings the grid varies over more than one value), which
    configurations traded identically, the equity curves of the ``top`` best
    configurations and their statistics, and (given the best configuration's
    ``signals`` and ``rules``) its signal mix: why it held."""
    varied = [name for name, values in result.grid.axes.items() if len(values) > 1]
    x = x or (varied[0] if varied else None)
    y = y or next((v for v in varied if v != x), None)
    for name in (x, y):
        if name is not None and name not in result.table.columns:
            raise ValueError(f"{name!r} is not a setting of this sweep "
                             f"(have {', '.join(result.grid.names)})")
    best = result.best(top)
    sections = []
    if x is not None and y is not None:
        sections.append(f"<h2>{html.escape(result.metric)} by {html.escape(x)} and "
                        f"{html.escape(y)}</h2>{heatmap(result, x, y)}")
    curves = [(result.curves[i].to_numpy(), _COLOURS[k % len(_COLOURS)])
              for k, i in enumerate(best["config_id"])]
    if curves:
        index = result.curves[best["config_id"].iloc[0]].index
        legend = " ".join(f'<span style="color:{c}">■ {html.escape(i)}</span>'
                          for (_, c), i in zip(curves, best["config_id"], strict=True))
        sections.append(f"<h2>Equity of the best {len(curves)}</h2><div>{legend}</div>"
                        + svg_chart(index, curves, height=280, fmt="{:,.0f}"))
    columns = ["config_id", *result.grid.names, *[c for c in _SHOWN if c in best.columns]]
    sections.append("<h2>Best configurations</h2>" + _table(best[columns]))
    same = identical_trades(result)
    if same:
        rows = result.table.set_index("config_id")

        def values(ids: list[str]) -> str:
            return "; ".join(f"{name}: {', '.join(map(str, dict.fromkeys(rows.loc[ids, name])))}"
                             for name in result.grid.names)

        shown = "".join(f"<li>{len(ids)} configurations, {html.escape(values(ids))} "
                        f'<span class="sub">({html.escape(", ".join(ids))})</span></li>'
                        for ids in same)
        sections.insert(0, f'<h2>Identical trades</h2><p class="note">'
                        f"{sum(len(ids) for ids in same):,} of {len(result.curves):,} "
                        f"configurations traded exactly as another one did (equal equity "
                        f"curves): in each group below, the settings that differ changed "
                        f"no BUY or SELL on this data. The signal mix below says which "
                        f"conditions held the signals back.</p><ul>{shown}</ul>")
    if signals is not None:
        intervals = signals.groupby("ticker")["interval"].first()
        if intervals.nunique() > 1:
            mixed = ", ".join(f"{t} {i}" for t, i in intervals.items())
            sections.insert(0, '<p class="note">The book holds tickers of different bar '
                            f"intervals ({html.escape(mixed)}): its equity is drawn on one "
                            "time axis, but its per-bar statistics (Sharpe ratio, bars per "
                            "year) mix bars of different lengths; sweep one interval at a "
                            "time for figures that compare.</p>")
        sections.append(f"<h2>Best configuration ({html.escape(str(best['config_id'].iloc[0]))})"
                        f"</h2>" + mix_section(signals, rules or RuleConfig()))
    chosen = result.chosen if len(result.table) else None
    summary = (f"{len(result.table):,} configurations · best by {html.escape(result.metric)}"
               + (f": {html.escape(str(chosen['config_id']))}, max-statistic p-value "
                  f"{_fmt(chosen.get('max_p_value'))}, deflated Sharpe "
                  f"{_fmt(chosen.get('deflated_sharpe'))}" if chosen is not None else ""))
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>'
            f"{html.escape(title)}</title><style>{PAGE_STYLE}"
            ".heatmap text{fill:#222} th.wrap{white-space:normal;max-width:90px;"
            "vertical-align:bottom;text-align:right}</style></head><body>"
            f'<h1>{html.escape(title)}</h1><div class="sub">{summary}</div>'
            f"{''.join(sections)}</body></html>\n")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


def _colour(v: float, lo: float, hi: float) -> str:
    """Red (low) through white to green (high)."""
    if not math.isfinite(v):
        return "#eeeeee"
    t = 0.5 if hi == lo else (v - lo) / (hi - lo)
    if t < 0.5:
        k = t * 2
        return f"#{230:02x}{int(120 + 135 * k):02x}{int(110 + 145 * k):02x}"
    k = (t - 0.5) * 2
    return f"#{int(255 - 155 * k):02x}{int(255 - 55 * k):02x}{int(255 - 135 * k):02x}"


def _fmt(value: object) -> str:
    if isinstance(value, float | np.floating):
        return f"{value:.4g}" if math.isfinite(value) else "—"
    return html.escape(str(value))


def _table(frame: pd.DataFrame) -> str:
    # "rules.trending_hurst" → "trending hurst" (the section is in the grid file), and
    # headings may wrap, so that the table fits the page.
    head = "".join(f'<th class="wrap">{html.escape(str(c).split(".")[-1].replace("_", " "))}'
                   "</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>"
                   for row in frame.itertuples(index=False))
    return f'<table id="best"><tr>{head}</tr>{body}</table>'
