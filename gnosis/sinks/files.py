"""Signal files: JSON Lines or Parquet (chosen by suffix), for research and backtests.

* ``.jsonl``: one :meth:`TradingSignal.to_json` per line, the same bytes as on the
  ``signals`` topic, so a file and a topic dump can be compared with ``diff``.
* ``.parquet``: one row per signal with the same fields, ``ts`` (int64 epoch ns) first and
  ``timestamp``/``bar_timestamp`` as UTC timestamps; extra columns of a signals DataFrame
  (e.g. ``rule``, ``trend``) are kept.

:func:`read_signals` returns the same DataFrame layout for both formats, which is what
:meth:`gnosis.backtest.BacktestRunner.run` accepts as signals.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gnosis.events import (
    NO_INFORMATION_SE,
    SCHEMA_VERSION,
    InvalidEvent,
    TradingSignal,
    signal_id,
)

# TradingSignal.to_dict() keys, in order.
FIELDS: tuple[str, ...] = (
    "schema_version", "signal_id", "ticker", "timestamp", "bar_timestamp", "interval",
    "signal_type", "confidence", "sentiment_mean", "sentiment_std", "sentiment_count",
    "is_contrarian_market", "vsa_score", "hawkes_branching", "hawkes_se", "hurst_exponent",
    "hurst_se", "volatility_clustering", "risk_level", "suggested_position_size", "price",
    "reasons", "model_id",
)
_STAMPS = ("timestamp", "bar_timestamp")


def write_signals(signals: Iterable[TradingSignal] | pd.DataFrame, path: str | Path) -> int:
    """Write signals to ``path`` (``.jsonl`` or ``.parquet``); returns how many were written.

    ``signals`` is a list of :class:`TradingSignal` or a DataFrame with the signal columns
    (``ts`` or ``timestamp`` plus the fields of ``TradingSignal.to_dict()``). A DataFrame
    may omit ``signal_id`` (derived from ticker, bar time and interval, as the engine does),
    ``reasons`` (then none), ``schema_version``, ``interval`` (``1m``), ``model_id`` and the
    standard errors ``hawkes_se`` and ``hurst_se`` (``NO_INFORMATION_SE``, as in signals of
    schema version 1). A replay's signal frame (it has a ``rule`` column) is written with
    :func:`gnosis.replay.inprocess.write_frame`, which gives each signal the reasons the live
    engine writes; here it raises ``ValueError`` without ``reasons``.
    """
    path = Path(path)
    kind = file_kind(path)
    frame = signals if isinstance(signals, pd.DataFrame) else None
    events = None if frame is not None else list(signals)
    if frame is not None and "rule" in frame.columns and "reasons" not in frame.columns:
        raise ValueError("a replay signal frame lacks its reasons: write it with "
                         "gnosis.replay.inprocess.write_frame")
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "jsonl":
        if events is None:
            events = _events(frame)
        with path.open("wb") as fh:
            for event in events:
                fh.write(event.to_json())
                fh.write(b"\n")
        return len(events)
    table = _complete(frame) if frame is not None else _frame(events or [])
    table.to_parquet(path, index=False)
    return len(table)


def read_signals(path: str | Path) -> pd.DataFrame:
    """Read a signal file written by :func:`write_signals` (or any ``signals`` topic dump).

    Returns one row per signal: ``ts`` (int64 epoch ns) then the ``TradingSignal.to_dict()``
    fields, ``timestamp`` and ``bar_timestamp`` as UTC datetimes. JSON lines are validated
    with :meth:`TradingSignal.from_dict`; a bad one raises ``ValueError`` naming file and line.
    """
    path = Path(path)
    if file_kind(path) == "parquet":
        frame = pd.read_parquet(path)
        if "reasons" in frame.columns:  # Parquet lists come back as arrays
            frame["reasons"] = [list(r) if r is not None else [] for r in frame["reasons"]]
        return frame
    events = []
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                events.append(TradingSignal.from_json(line))
            except InvalidEvent as exc:
                raise ValueError(f"{path.name}:{number}: {exc}") from None
    return _frame(events)


def file_kind(path: str | Path) -> str:
    """``"jsonl"`` or ``"parquet"``, by the suffix of ``path``; ``ValueError`` for others."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise ValueError(f"{path.name}: unsupported signal file type {suffix!r} "
                     "(expected .jsonl or .parquet)")


def _frame(events: list[TradingSignal]) -> pd.DataFrame:
    rows = [e.to_dict() for e in events]
    frame = pd.DataFrame(rows, columns=list(FIELDS))
    frame.insert(0, "ts", np.array([e.ts for e in events], dtype=np.int64))
    return _typed(frame)


def _complete(frame: pd.DataFrame) -> pd.DataFrame:
    """A signals DataFrame with every TradingSignal field filled in."""
    out = frame.copy()
    if "ts" not in out.columns:
        if "timestamp" not in out.columns:
            raise ValueError("signals need a 'ts' or 'timestamp' column")
        stamps = pd.DatetimeIndex(pd.to_datetime(out["timestamp"], utc=True, format="ISO8601"))
        out.insert(0, "ts", stamps.as_unit("ns").asi8)
    out["ts"] = out["ts"].astype(np.int64)
    n = len(out)
    defaults: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "interval": "1m",
                                "model_id": "lexicon", "hawkes_se": NO_INFORMATION_SE,
                                "hurst_se": NO_INFORMATION_SE}
    for name, value in defaults.items():
        if name not in out.columns:
            out[name] = value
    if "reasons" not in out.columns:
        out["reasons"] = [[] for _ in range(n)]
    else:
        out["reasons"] = [list(r) if r is not None else [] for r in out["reasons"]]
    if "signal_id" not in out.columns:
        out["signal_id"] = [signal_id(t, int(ts), str(i)) for t, ts, i in
                            zip(out["ticker"], out["ts"], out["interval"], strict=True)]
    missing = [f for f in FIELDS if f not in out.columns and f not in _STAMPS]
    if missing:
        raise ValueError(f"signals lack column(s): {', '.join(missing)}")
    stamp = pd.to_datetime(out["ts"].to_numpy(), unit="ns", utc=True)
    out["timestamp"] = stamp
    out["bar_timestamp"] = stamp
    extra = [c for c in out.columns if c not in FIELDS and c != "ts"]
    return _typed(out[["ts", *FIELDS, *extra]])


def _events(frame: pd.DataFrame) -> list[TradingSignal]:
    table = _complete(frame)
    events = []
    for row in table[["ts", *FIELDS]].itertuples(index=False):
        values = row._asdict()
        values.pop("timestamp"), values.pop("bar_timestamp")
        values["reasons"] = tuple(values["reasons"])
        clean = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in values.items()}
        events.append(TradingSignal(**clean))
    return events


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    for name in _STAMPS:
        if frame[name].dtype == object or pd.api.types.is_string_dtype(frame[name]):
            frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601")
        frame[name] = frame[name].dt.as_unit("ns")
    return frame.reset_index(drop=True)
