"""Historical bars and news from CSV or Parquet files (chosen by suffix).

Columns (names are exact, extra columns are ignored):

* bars: ``ticker``, ``timestamp`` (ISO-8601 or epoch milliseconds, UTC, the bar's close),
  ``open``, ``high``, ``low``, ``close``, ``volume``, optional ``interval`` (default ``1m``).
* news: ``id``, ``timestamp``, ``tickers`` (``;``- or ``|``-separated in CSV, a list in
  Parquet), ``headline``, optional ``body`` and ``source``.
* both: optional ``received_at`` (as ``timestamp``): when the row was known, which decides
  what a signal may count (:mod:`gnosis.replay.knowledge`); it becomes the frames'
  ``received_at`` column (int64 epoch ns). A file that has the column needs it in every
  row.

Rows are validated by the same rules as the live edge (:meth:`gnosis.events.Bar.from_dict`,
:meth:`gnosis.events.NewsItem.from_dict`), timestamps included: one that cannot be
represented, or that lies more than ``max_future_ns`` ahead of ``now_ns`` (one clock
reading per file, the wall clock by default), is refused as ``bad_timestamp``. A bar
that repeats the ticker, interval and close of an earlier row is skipped as
``duplicate_bar``, naming the row it repeats, as the live worker deadletters it. Both files
are checked with vectorised column tests and only the rows those flag go through
``from_dict``, which gives the exact reason, so a million-row file loads in about a
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
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from gnosis.events import (
    MAX_BODY_CHARS,
    MAX_FUTURE_NS,
    MAX_HEADLINE_CHARS,
    MAX_TICKERS_PER_NEWS,
    MIN_EPOCH_MS,
    TS_MAX,
    Bar,
    InvalidEvent,
    NewsItem,
    format_timestamp,
    interval_seconds,
)
from gnosis.replay.knowledge import RECEIVED_AT

BAR_COLUMNS = ("ticker", "timestamp", "open", "high", "low", "close", "volume")
NEWS_COLUMNS = ("id", "timestamp", "tickers", "headline")
_PRICE_FIELDS = ("open", "high", "low", "close", "volume")
_TICKER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._\-/^=]{0,31}$"
# What datetime.fromisoformat reads and pandas' ISO-8601 parser reads the same way; anything
# else is sent to the row-wise check, which decides.
_ISO_PATTERN = (r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)?"
                r"(?:Z|[+-]\d{2}:\d{2})?$")
_TICKER_SPLIT = re.compile(r"[;|]")
_TICKER_RE = re.compile(_TICKER_PATTERN)


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
    _require_columns(raw.columns, BAR_COLUMNS, path)
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

    received = _received_at(raw.get(RECEIVED_AT), limit)
    if received is not None and not received[1].all():
        lines = _row_numbers(path, len(raw), is_csv) if lines is None else lines
        errors.extend(_received_errors(path, lines, ok & ~received[1]))
        ok &= received[1]
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
        **({} if received is None else {RECEIVED_AT: received[0][ok]}),
    })
    frame = frame.sort_values(["ts", "ticker"], kind="stable", ignore_index=True)
    return BarsLoad(frame, errors, str(path))


def _received_at(column: pd.Series | pa.ChunkedArray | None, limit: int
                 ) -> tuple[np.ndarray, np.ndarray] | None:
    """Knowledge times (epoch ns) of a ``received_at`` column and where they are valid
    (``None`` without the column)."""
    if column is None:
        return None
    if not isinstance(column, pd.Series):
        column = column.to_pandas()
    if column.dtype == object:
        column = column.where(column != "", None)
    return _vector_timestamps(column, limit)


def _received_errors(path: Path, lines: np.ndarray, bad: np.ndarray) -> list[RowError]:
    return [RowError(path.name, int(lines[i]), RECEIVED_AT, "bad_timestamp",
                     "received_at is missing or not a time (ISO-8601 or epoch ms, not in "
                     "the future)") for i in np.flatnonzero(bad).tolist()]


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
    ``max_future_ns`` as for :func:`read_bars`).

    Column-wise, as bars are: vectorised checks (Arrow compute) pass the plain rows, and
    only the rows they flag are built one by one through ``NewsItem.from_dict``, which
    names the exact field and reason.
    """
    path = Path(path)
    now = time.time_ns() if now_ns is None else now_ns
    limit = min(now + max_future_ns, TS_MAX)
    table, is_csv = _read_news_table(path)
    _require_columns(table.column_names, NEWS_COLUMNS, path)
    n = table.num_rows
    ids, ok = _news_ids(table["id"])
    ts, ts_ok = _vector_timestamps(table["timestamp"].to_pandas(), limit)
    ok &= ts_ok
    tickers, tickers_ok = _news_tickers(table["tickers"], is_csv)
    ok &= tickers_ok
    texts: dict[str, pa.Array] = {}
    for name, longest, required in (("headline", MAX_HEADLINE_CHARS, True),
                                    ("body", MAX_BODY_CHARS, False), ("source", 200, False)):
        if name in table.column_names:
            texts[name], valid = _news_text(table[name], longest, required, is_csv)
            ok &= valid
        else:
            texts[name] = pa.nulls(n, pa.string())
            ok &= not required

    errors: list[RowError] = []
    rescued: list[tuple[int, NewsItem]] = []
    bad = np.flatnonzero(~ok)
    if len(bad):
        lines = _row_numbers(path, n, is_csv)
        rows = table.take(pa.array(bad)).to_pylist()
        for i, row in zip(bad.tolist(), rows, strict=True):
            try:
                rescued.append((i, NewsItem.from_dict(_news_record(row, is_csv), now_ns=now,
                                                      max_future_ns=max_future_ns)))
            except InvalidEvent as exc:
                errors.append(RowError(path.name, int(lines[i]), exc.field, exc.code,
                                       exc.detail))
                if strict:
                    raise ReaderError(str(errors[0])) from None
    received = _received_at(table[RECEIVED_AT] if RECEIVED_AT in table.column_names else None,
                            limit)
    if received is not None:
        for i, _ in rescued:
            ok[i] = True
        bad = ok & ~received[1]
        if bad.any():
            lines = _row_numbers(path, n, is_csv)
            errors.extend(_received_errors(path, lines, bad))
            errors.sort(key=lambda e: e.row)
            if strict:
                raise ReaderError(str(errors[0]))
            rescued = [(i, item) for i, item in rescued if not bad[i]]
            ok &= ~bad
        for i, _ in rescued:
            ok[i] = False
    # Valid rows stay in Arrow; the few that only the row-wise check accepted join them.
    columns = {"id": ids, "ts": pa.array(ts), "row": pa.array(np.arange(n)), **texts}
    if received is not None:
        columns[RECEIVED_AT] = pa.array(received[0])
    every_tickers = tickers
    if not ok.all():
        keep = pa.array(ok)
        columns = {name: column.filter(keep) for name, column in columns.items()}
        every_tickers = tickers[ok]
    if rescued:
        items = [item for _, item in rescued]
        extra = {"id": [r.id for r in items], "ts": [r.ts for r in items],
                 "row": [i for i, _ in rescued], "headline": [r.headline for r in items],
                 "body": [r.body for r in items], "source": [r.source for r in items]}
        if received is not None:
            extra[RECEIVED_AT] = [int(received[0][i]) for i, _ in rescued]
        columns = {name: pa.concat_arrays([column, pa.array(extra[name], column.type)])
                   for name, column in columns.items()}
        every_tickers = np.concatenate([every_tickers, np.fromiter(
            (r.tickers for r in items), dtype=object, count=len(items))])
    merged = pa.table(columns)
    if not _sorted(merged):
        order = pc.sort_indices(merged, [("ts", "ascending"), ("id", "ascending"),
                                         ("row", "ascending")])
        merged = merged.take(order)
        every_tickers = every_tickers[order.to_numpy()]
    frame = pd.DataFrame({
        "id": merged["id"].to_pandas(), "ts": merged["ts"].to_numpy(),
        "tickers": every_tickers,
        "headline": merged["headline"].to_pandas(),
        "body": pd.Series(merged["body"].to_numpy(zero_copy_only=False), dtype=object),
        "source": pd.Series(merged["source"].to_numpy(zero_copy_only=False), dtype=object),
        **({} if received is None else {RECEIVED_AT: merged[RECEIVED_AT].to_numpy()}),
    })
    return NewsLoad(frame, errors, str(path))


def _sorted(table: pa.Table) -> bool:
    """Whether rows are already in (ts, id) order, as archives usually are."""
    if table.num_rows < 2:
        return True
    ts = table["ts"].to_numpy()
    step = np.diff(ts)
    if (step < 0).any():
        return False
    tied = np.flatnonzero(step == 0)
    if not len(tied):
        return True
    ids = table["id"].combine_chunks()
    before, after = ids.take(pa.array(tied)), ids.take(pa.array(tied + 1))
    return bool(pc.all(pc.less_equal(before, after)).as_py())


def _read_news_table(path: Path) -> tuple[pa.Table, bool]:
    """The news file as an Arrow table: every CSV cell a string ('' when empty)."""
    if _is_parquet(path):
        return _read_parquet(path), False
    header = _header(path)
    if not header:
        raise ReaderError(f"{path.name}: file is empty (no header)")
    try:
        table = pa_csv.read_csv(
            path, parse_options=pa_csv.ParseOptions(newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()), strings_can_be_null=False,
                quoted_strings_can_be_null=False))
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise ReaderError(f"{path.name}: malformed CSV: {exc}") from None
    return table, True


def _news_ids(column: pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """Ids as text and a mask of the cells that are plainly valid (non-empty text or an
    integer); anything else is left to the row-wise check."""
    column = _one_chunk(column)
    kind = column.type
    if pa.types.is_integer(kind):
        ok = column.is_valid().to_numpy(zero_copy_only=False)
        text = pc.cast(column, pa.string())
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        ok = pc.fill_null(pc.greater(pc.utf8_length(column), 0), False).to_numpy(
            zero_copy_only=False)
        text = column.cast(pa.string())
    else:
        return pa.nulls(len(column), pa.string()), np.zeros(len(column), dtype=bool)
    return text, ok


def _one_chunk(column: pa.ChunkedArray) -> pa.Array:
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


_LIST_SEPARATOR = "\x00"  # joins a Parquet list's tickers; never in a valid ticker


def _news_tickers(column: pa.ChunkedArray, is_csv: bool) -> tuple[np.ndarray, np.ndarray]:
    """Each row's tickers as a tuple (duplicates dropped, order kept) and a mask of the rows
    whose tickers are plainly valid: 1 to MAX_TICKERS_PER_NEWS well-formed tickers.

    Archives repeat the same few ticker cells endlessly, so each distinct cell is parsed
    once (dictionary encoding) and rows share its tuple.
    """
    n = len(column)
    column = _one_chunk(column)
    kind = column.type
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        if not (pa.types.is_string(kind.value_type)
                or pa.types.is_large_string(kind.value_type)):
            return np.full(n, None, dtype=object), np.zeros(n, dtype=bool)
        joined = pc.binary_join(column, _LIST_SEPARATOR)  # null if the list or a ticker is
        # a separator inside a ticker would split it: leave such rows to the row-wise check
        whole = pc.equal(pc.count_substring(joined, _LIST_SEPARATOR),
                         pc.subtract(pc.list_value_length(column), 1))
        joined = pc.if_else(pc.fill_null(whole, False), joined, pa.scalar(None, pa.string()))
        parse = _parse_ticker_list
    elif is_csv or pa.types.is_string(kind) or pa.types.is_large_string(kind):
        joined, parse = column, _parse_ticker_cell
    else:  # a single ticker per cell, or something the row-wise check must judge
        return np.full(n, None, dtype=object), np.zeros(n, dtype=bool)
    encoded = pc.dictionary_encode(joined)
    parsed = [parse(cell) for cell in encoded.dictionary.to_pylist()]
    tuples = np.empty(len(parsed) + 1, dtype=object)  # the last entry stands for null
    tuples[:-1] = np.fromiter(parsed, dtype=object, count=len(parsed))
    valid = np.array([t is not None for t in parsed] + [False])
    codes = pc.fill_null(encoded.indices, len(parsed)).to_numpy()
    return tuples[codes], valid[codes]


def _parse_ticker_cell(cell: str) -> tuple[str, ...] | None:
    """A CSV (or text) cell's tickers, or None unless plainly valid."""
    return _checked_tickers([t.strip() for t in _TICKER_SPLIT.split(cell) if t.strip()])


def _parse_ticker_list(cell: str) -> tuple[str, ...] | None:
    """A Parquet list's tickers (joined by the separator), or None unless plainly valid."""
    return _checked_tickers(cell.split(_LIST_SEPARATOR))


def _checked_tickers(tickers: list[str]) -> tuple[str, ...] | None:
    if not 0 < len(tickers) <= MAX_TICKERS_PER_NEWS:
        return None
    if not all(_TICKER_RE.match(t) for t in tickers):
        return None
    return tuple(dict.fromkeys(tickers))


def _news_text(column: pa.ChunkedArray, limit: int, required: bool,
               is_csv: bool) -> tuple[pa.Array, np.ndarray]:
    """Text cells (null when missing) and a mask of the plainly valid ones."""
    n = len(column)
    column = _one_chunk(column)
    if pa.types.is_null(column.type):
        return pa.nulls(n, pa.string()), np.full(n, not required)
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return pa.nulls(n, pa.string()), np.zeros(n, dtype=bool)
    column = column.cast(pa.string())
    if is_csv:  # an empty CSV cell is a missing value
        column = pc.if_else(pc.equal(column, ""), pa.scalar(None, pa.string()), column)
    present = column.is_valid().to_numpy(zero_copy_only=False)
    length = pc.fill_null(pc.utf8_length(column), 0).to_numpy(zero_copy_only=False)
    ok = (length <= limit) & (present if required else True)
    return column, ok


def _news_record(row: dict[str, Any], is_csv: bool) -> dict[str, Any]:
    """One row as the mapping ``NewsItem.from_dict`` validates (CSV: '' is missing,
    numbers are numbers, tickers are split)."""
    record: dict[str, Any] = {}
    for name, value in row.items():
        if value is None or (is_csv and value == ""):
            continue
        if isinstance(value, float) and math.isnan(value):
            continue
        if is_csv and name == "timestamp":
            value = _csv_number(value)
        elif name == "tickers" and isinstance(value, str):
            value = [t.strip() for t in _TICKER_SPLIT.split(value) if t.strip()]
        record[name] = value
    return record


# --------------------------------------------------------------------------- shared


def _read_table(path: Path, floats: tuple[str, ...] = ()) -> tuple[pd.DataFrame, bool]:
    """The file's cells and whether it is CSV.

    CSV cells are strings ('' when empty), except that ``floats`` columns are first tried
    as numbers with the fast pyarrow parser; Parquet cells keep their stored types.
    """
    if _is_parquet(path):
        return _read_parquet(path).to_pandas(), False
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


def _is_parquet(path: Path) -> bool:
    """Whether ``path`` is Parquet (else CSV); other suffixes and missing files raise."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise ReaderError(f"{path.name}: unsupported file type {suffix!r} "
                          "(expected .csv or .parquet)")
    if not path.exists():
        raise ReaderError(f"{path}: file not found")
    return suffix != ".csv"


def _read_parquet(path: Path) -> pa.Table:
    try:
        return pq.read_table(path)
    except Exception as exc:  # pyarrow raises several unrelated types for bad files
        raise ReaderError(f"{path.name}: not a readable Parquet file: {exc}") from None


def _header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8", errors="replace") as fh:
        return next(csv.reader(fh), [])


def _require_columns(columns: Iterable[str], required: tuple[str, ...], path: Path) -> None:
    present = set(columns)
    missing = [c for c in required if c not in present]
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
