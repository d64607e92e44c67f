"""Historical bars and news from CSV or Parquet files (chosen by suffix).

Columns (names are exact, extra columns are ignored):

* bars: ``ticker``, ``timestamp`` (ISO-8601 or epoch milliseconds, UTC, the bar's close),
  ``open``, ``high``, ``low``, ``close``, ``volume``, optional ``interval`` (default ``1m``).
* news: ``id``, ``timestamp``, ``tickers`` (``;``- or ``|``-separated in CSV, a list in
  Parquet), ``headline``, optional ``body`` and ``source``.

Rows are validated by the same rules as the live edge (:meth:`gnosis.events.Bar.from_dict`,
:meth:`gnosis.events.NewsItem.from_dict`), timestamps included: one that cannot be
represented, or that lies more than ``max_future_ns`` ahead of ``now_ns`` (one clock
reading per file, the wall clock by default), is refused as ``bad_timestamp``. A bar
that repeats the ticker, interval and close of an earlier row is skipped as
``duplicate_bar``, naming the row it repeats, as the live worker deadletters it. Bars are
checked with vectorised column tests and only the rows those flag go through
``Bar.from_dict``, which gives the exact reason, so a million-row file loads in about a
second. A bad row is skipped and reported as a
:class:`RowError` naming file, row and field::

    bars.csv:17: field 'high': high 9.5 < max(open, close) 10.0 [high_below_body]

For CSV the row number is the 1-based line number in the file, header included; for
Parquet it is the 1-based row number. An empty CSV cell counts as a missing value. With
``strict=True`` the first bad row raises :class:`ReaderError` instead; a missing required
column always does.
"""

from __future__ import annotations

import csv
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gnosis.events import (
    MAX_FUTURE_NS,
    MIN_EPOCH_MS,
    TS_MAX,
    Bar,
    InvalidEvent,
    NewsItem,
    format_timestamp,
    interval_seconds,
)

BAR_COLUMNS = ("ticker", "timestamp", "open", "high", "low", "close", "volume")
NEWS_COLUMNS = ("id", "timestamp", "tickers", "headline")
_PRICE_FIELDS = ("open", "high", "low", "close", "volume")
_TICKER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._\-/^=]{0,31}$"
# What datetime.fromisoformat reads and pandas' ISO-8601 parser reads the same way; anything
# else is sent to the row-wise check, which decides.
_ISO_PATTERN = (r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)?"
                r"(?:Z|[+-]\d{2}:\d{2})?$")
_TICKER_SPLIT = re.compile(r"[;|]")


class ReaderError(ValueError):
    """A file that cannot be read as a whole, or (strict mode) its first bad row."""


@dataclass(frozen=True)
class RowError:
    """One skipped row: where it is and why it was rejected."""

    file: str
    row: int
    field: str | None
    code: str
    message: str

    def __str__(self) -> str:
        where = f"field {self.field!r}: " if self.field else ""
        return f"{self.file}:{self.row}: {where}{self.message} [{self.code}]"


@dataclass(frozen=True)
class BarsLoad:
    """Valid bars (columns ticker, ts, open, high, low, close, volume, interval; sorted by
    ts then ticker; ``ts`` is int64 epoch ns of the bar's close) and the rejected rows."""

    frame: pd.DataFrame
    errors: list[RowError] = field(default_factory=list)
    path: str = ""

    def prices(self, ticker: str) -> pd.DataFrame:
        """One ticker's bars as an OHLCV frame on a UTC DatetimeIndex, for the backtester."""
        bars = self.frame[self.frame["ticker"] == ticker]
        index = pd.DatetimeIndex(pd.to_datetime(bars["ts"].to_numpy(), unit="ns", utc=True),
                                 name="timestamp")
        return pd.DataFrame({
            "Open": bars["open"].to_numpy(), "High": bars["high"].to_numpy(),
            "Low": bars["low"].to_numpy(), "Close": bars["close"].to_numpy(),
            "Volume": bars["volume"].to_numpy(),
        }, index=index)


@dataclass(frozen=True)
class NewsLoad:
    """Valid news (columns id, ts, tickers (tuple), headline, body, source; sorted by ts
    then id) and the rejected rows."""

    frame: pd.DataFrame
    errors: list[RowError] = field(default_factory=list)
    path: str = ""


# --------------------------------------------------------------------------- bars


def read_bars(path: str | Path, *, strict: bool = False, now_ns: int | None = None,
              max_future_ns: int = MAX_FUTURE_NS) -> BarsLoad:
    """Read and validate bars from a ``.csv`` or ``.parquet`` file.

    ``now_ns`` and ``max_future_ns`` bound the timestamps as at the live edge
    (:func:`gnosis.events.validate_time`); ``now_ns`` defaults to the wall clock.
    """
    path = Path(path)
    now = time.time_ns() if now_ns is None else now_ns
    limit = min(now + max_future_ns, TS_MAX)
    raw, is_csv = _read_table(path, floats=_PRICE_FIELDS)
    _require_columns(raw, BAR_COLUMNS, path)
    ok, ts, values, interval = _check_bars(raw, limit)
    if is_csv and not ok.all() and any(raw[c].dtype.kind == "f" for c in _PRICE_FIELDS):
        # The typed fast path has turned bad cells into NaN; re-read them as written.
        raw, _ = _read_table(path)
        ok, ts, values, interval = _check_bars(raw, limit)

    errors: list[RowError] = []
    rescued: dict[int, Bar] = {}
    bad = np.flatnonzero(~ok)
    lines: np.ndarray | None = None
    if len(bad):
        lines = _row_numbers(path, len(raw), is_csv)
        for i in bad.tolist():
            record = _record(raw, i, (*BAR_COLUMNS, "interval"), numeric=_PRICE_FIELDS,
                             is_csv=is_csv)
            try:
                rescued[i] = Bar.from_dict(record, now_ns=now, max_future_ns=max_future_ns)
            except InvalidEvent as exc:
                errors.append(RowError(path.name, int(lines[i]), exc.field, exc.code,
                                       exc.detail))
    for i, bar in rescued.items():
        ok[i] = True
        ts[i] = bar.ts
        for name in _PRICE_FIELDS:
            values[name][i] = getattr(bar, name)
        interval[i] = bar.interval

    tickers = raw["ticker"].to_numpy(dtype=object)
    repeats = _repeated_bars(tickers, interval, ts, ok)
    if repeats:
        lines = _row_numbers(path, len(raw), is_csv) if lines is None else lines
        for i, first in repeats:
            ok[i] = False
            errors.append(RowError(
                path.name, int(lines[i]), "timestamp", "duplicate_bar",
                f"repeats the {interval[i]} bar of {tickers[i]} at "
                f"{format_timestamp(int(ts[i]))} (row {int(lines[first])})"))
    errors.sort(key=lambda e: e.row)
    if strict and errors:
        raise ReaderError(str(errors[0]))

    frame = pd.DataFrame({
        "ticker": tickers[ok],
        "ts": ts[ok],
        **{name: values[name][ok] for name in _PRICE_FIELDS},
        "interval": interval[ok],
    })
    frame = frame.sort_values(["ts", "ticker"], kind="stable", ignore_index=True)
    return BarsLoad(frame, errors, str(path))


def _repeated_bars(tickers: np.ndarray, interval: np.ndarray, ts: np.ndarray,
                   ok: np.ndarray) -> list[tuple[int, int]]:
    """(row, first row) of each valid row repeating the ticker, interval and close of an
    earlier valid row."""
    valid = np.flatnonzero(ok)
    key = pd.DataFrame({"ticker": tickers[valid], "interval": interval[valid],
                        "ts": ts[valid]})
    again = key.duplicated(keep="first").to_numpy()
    if not again.any():
        return []
    first = key.groupby(["ticker", "interval", "ts"], sort=False).ngroup().to_numpy()
    first_row = {}
    for row, group in zip(valid.tolist(), first.tolist(), strict=True):
        first_row.setdefault(group, row)
    return [(row, first_row[group]) for row, group, dup in
            zip(valid.tolist(), first.tolist(), again.tolist(), strict=True) if dup]


def _check_bars(raw: pd.DataFrame, limit: int) -> tuple[np.ndarray, np.ndarray,
                                                         dict[str, np.ndarray], np.ndarray]:
    """Vectorised validity mask and parsed columns; rows it rejects get a row-wise look.

    ``limit`` is the latest acceptable bar close (epoch ns)."""
    n = len(raw)
    ok = raw["ticker"].notna().to_numpy() & _matches(raw["ticker"], _TICKER_PATTERN)
    ts, ts_ok = _vector_timestamps(raw["timestamp"], limit)
    ok &= ts_ok
    values = {}
    for name in _PRICE_FIELDS:
        column = raw[name]
        if column.dtype.kind not in "fiu":
            column = pd.to_numeric(column, errors="coerce")
        x = column.to_numpy(dtype=np.float64, na_value=np.nan)
        values[name] = x
        ok &= np.isfinite(x) & (x >= 0)
    o, h, lo, c = (values[k] for k in ("open", "high", "low", "close"))
    with np.errstate(invalid="ignore"):
        ok &= (h >= np.maximum(o, c)) & (lo <= np.minimum(o, c))
    if "interval" in raw.columns:
        interval = raw["interval"].astype(object).where(raw["interval"].notna(), "")
        interval = interval.where(interval != "", "1m").to_numpy(dtype=object)
        good = {v for v in pd.unique(interval) if _valid_interval(v)}
        ok &= np.fromiter((v in good for v in interval), dtype=bool, count=n)
    else:
        interval = np.full(n, "1m", dtype=object)
    return ok, ts, values, interval


def _valid_interval(value: Any) -> bool:
    try:
        interval_seconds(value)
    except (InvalidEvent, TypeError):
        return False
    return isinstance(value, str)


def _matches(column: pd.Series, pattern: str) -> np.ndarray:
    if column.dtype == object:
        column = column.where(column.map(lambda v: isinstance(v, str)), None)
    matched = column.astype("string").str.match(pattern)
    return matched.fillna(False).to_numpy(dtype=bool)


def _vector_timestamps(column: pd.Series, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """Epoch ns and a validity mask for ISO-8601 strings, epoch-ms numbers or datetimes.

    Stamps after ``limit`` (epoch ns), and epoch numbers the edge refuses, are marked
    invalid for the row-wise check to name."""
    n = len(column)
    if isinstance(column.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(column):
        stamps = pd.DatetimeIndex(column)
        stamps = stamps.tz_localize("UTC") if stamps.tz is None else stamps.tz_convert("UTC")
        ts, ok = _epoch_ns(stamps)
        return ts, ok & (ts <= limit)
    ts = np.zeros(n, dtype=np.int64)
    if column.dtype.kind in "fiu":
        numeric = np.ones(n, dtype=bool)
    else:
        # ISO-8601 first: the regex is cheap, to_numeric on non-numbers is not.
        iso = _matches(column, _ISO_PATTERN)
        parsed = pd.DatetimeIndex(pd.to_datetime(column.where(iso, None), format="ISO8601",
                                                 utc=True, errors="coerce"))
        ts, fits = _epoch_ns(parsed)
        iso &= fits
        numeric = ~iso
    millis = pd.to_numeric(column[numeric], errors="coerce").to_numpy(dtype=np.float64,
                                                                      na_value=np.nan)
    with np.errstate(invalid="ignore"):
        # Below 2**63 - 1024, the largest float64 that fits in int64.
        believable = ((millis >= MIN_EPOCH_MS)
                      & (millis * 1e6 <= float(min(limit, 2**63 - 1024))))
    # parse_timestamp computes round(ms * 1e6) in float64 too, so the results are identical.
    where = np.flatnonzero(numeric)[believable]
    ts[where] = np.round(millis[believable] * 1e6).astype(np.int64)
    ok = ~numeric & (ts <= limit)
    ok[where] = True
    return ts, ok


_NS_MIN, _NS_MAX = pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC")


def _epoch_ns(stamps: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
    """Epoch ns of UTC datetimes and where they are valid: not NaT and within what
    nanoseconds hold (pandas parses later dates at a coarser unit)."""
    fits = np.asarray((stamps >= _NS_MIN) & (stamps <= _NS_MAX))
    ts = np.zeros(len(stamps), dtype=np.int64)
    ts[fits] = stamps[fits].as_unit("ns").asi8
    return ts, fits


# --------------------------------------------------------------------------- news


def read_news(path: str | Path, *, strict: bool = False, now_ns: int | None = None,
              max_future_ns: int = MAX_FUTURE_NS) -> NewsLoad:
    """Read and validate news items from a ``.csv`` or ``.parquet`` file (``now_ns`` and
    ``max_future_ns`` as for :func:`read_bars`)."""
    path = Path(path)
    now = time.time_ns() if now_ns is None else now_ns
    raw, is_csv = _read_table(path)
    _require_columns(raw, NEWS_COLUMNS, path)
    columns = [c for c in ("id", "timestamp", "tickers", "headline", "body", "source")
               if c in raw.columns]
    items: list[NewsItem] = []
    errors: list[RowError] = []
    lines: np.ndarray | None = None
    for i in range(len(raw)):
        record = _record(raw, i, columns, numeric=(), is_csv=is_csv)
        tickers = record.get("tickers")
        if isinstance(tickers, str):
            record["tickers"] = [t.strip() for t in _TICKER_SPLIT.split(tickers) if t.strip()]
        elif isinstance(tickers, np.ndarray | tuple):
            record["tickers"] = list(tickers)
        try:
            items.append(NewsItem.from_dict(record, now_ns=now, max_future_ns=max_future_ns))
        except InvalidEvent as exc:
            if lines is None:
                lines = _row_numbers(path, len(raw), is_csv)
            errors.append(RowError(path.name, int(lines[i]), exc.field, exc.code, exc.detail))
            if strict:
                raise ReaderError(str(errors[0])) from None
    frame = pd.DataFrame({
        "id": [n.id for n in items],
        "ts": np.array([n.ts for n in items], dtype=np.int64),
        "tickers": [n.tickers for n in items],
        "headline": [n.headline for n in items],
        "body": pd.Series([n.body for n in items], dtype=object),
        "source": pd.Series([n.source for n in items], dtype=object),
    })
    frame = frame.sort_values(["ts", "id"], kind="stable", ignore_index=True)
    return NewsLoad(frame, errors, str(path))


# --------------------------------------------------------------------------- shared


def _read_table(path: Path, floats: tuple[str, ...] = ()) -> tuple[pd.DataFrame, bool]:
    """The file's cells and whether it is CSV.

    CSV cells are strings ('' when empty), except that ``floats`` columns are first tried
    as numbers with the fast pyarrow parser; Parquet cells keep their stored types.
    """
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise ReaderError(f"{path.name}: unsupported file type {suffix!r} "
                          "(expected .csv or .parquet)")
    if not path.exists():
        raise ReaderError(f"{path}: file not found")
    if suffix != ".csv":
        try:
            return pd.read_parquet(path), False
        except Exception as exc:  # pyarrow raises several unrelated types for bad files
            raise ReaderError(f"{path.name}: not a readable Parquet file: {exc}") from None
    if floats:
        # About 10x faster than parsing strings; refuses bad numbers, missing columns and
        # newlines inside quotes, all of which the string read below handles.
        # Timestamps are left to the parser's own ISO-8601 inference (to datetimes);
        # everything else is text, as a CSV cell is.
        header = _header(path)
        dtype: dict[str, Any] = {c: ("float64" if c in floats else str) for c in header
                                 if c != "timestamp"}
        try:
            return pd.read_csv(path, engine="pyarrow", dtype=dtype), True
        except Exception:
            pass
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False), True
    except pd.errors.EmptyDataError:
        raise ReaderError(f"{path.name}: file is empty (no header)") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ReaderError(f"{path.name}: malformed CSV: {exc}") from None


def _header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8", errors="replace") as fh:
        return next(csv.reader(fh), [])


def _require_columns(raw: pd.DataFrame, required: tuple[str, ...], path: Path) -> None:
    missing = [c for c in required if c not in raw.columns]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        names = ", ".join(repr(c) for c in missing)
        raise ReaderError(f"{path.name}: missing required column{plural} {names}")


def _record(raw: pd.DataFrame, i: int, columns: tuple[str, ...] | list[str], *,
            numeric: tuple[str, ...], is_csv: bool) -> dict[str, Any]:
    """One row as the mapping ``from_dict`` validates; empty or null cells are left out."""
    record: dict[str, Any] = {}
    for name in columns:
        if name not in raw.columns:
            continue
        value = raw[name].iloc[i]
        if isinstance(value, np.generic):
            value = value.item()
        if value is None or value is pd.NaT or (is_csv and value == ""):
            continue
        if isinstance(value, float) and math.isnan(value) and name not in numeric:
            continue
        if is_csv and (name in numeric or name == "timestamp"):
            value = _csv_number(value)
        record[name] = value
    return record


def _csv_number(text: str) -> float | str:
    """A CSV cell as a number when it is a finite one; the raw text otherwise."""
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


def _row_numbers(path: Path, n: int, is_csv: bool) -> np.ndarray:
    """Row number of each record: the CSV line it starts on, or the 1-based Parquet row."""
    if not is_csv:
        return np.arange(1, n + 1)
    starts = []
    with path.open(newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.reader(fh)
        line = 1
        for i, row in enumerate(reader):
            if i and row:  # pandas skips blank lines; so do the numbers
                starts.append(line)
            line = reader.line_num + 1
    if len(starts) != n:  # unusual quoting: fall back to one record per line
        return np.arange(2, n + 2)
    return np.asarray(starts)
