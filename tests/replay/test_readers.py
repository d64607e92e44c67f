"""Historical readers: row-level errors name file, line and field; same rules as the edge."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gnosis.events import Bar, InvalidEvent, NewsItem, TradingSignal, signal_id
from gnosis.replay.readers import ReaderError, read_bars, read_news
from gnosis.sinks.files import read_signals, write_signals

BARS_CSV = """\
ticker,timestamp,open,high,low,close,volume,interval
AAPL,2024-01-02T15:30:00Z,10,11,9,10.5,100,1m
AAPL,1704209460000,10,11,9,10.5,100,1m
,2024-01-02T15:32:00Z,10,11,9,10.5,100,1m
AAPL,yesterday,10,11,9,10.5,100,1m
AAPL,2024-01-02T15:34:00Z,abc,11,9,10.5,100,1m
AAPL,2024-01-02T15:35:00Z,10,NaN,9,10.5,100,1m
AAPL,2024-01-02T15:36:00Z,10,9.5,9,10,100,1m
AAPL,2024-01-02T15:37:00Z,10,11,9,10.5,-1,1m
AAPL,2024-01-02T15:38:00Z,10,11,9,10.5,100,7x
AAPL,2024-01-02 15:29:00+01:00,10,11,9,10.5,100,
MSFT,2024-01-02T15:30:00.25Z,10,11,9.5,10.5,,1m
MSFT,2024-01-02T15:30:00Z,10,11,9,10.5,100,5m
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_bad_bar_rows_are_skipped_and_named(tmp_path):
    load = read_bars(write(tmp_path, "bars.csv", BARS_CSV))
    assert [str(e) for e in load.errors] == [
        "bars.csv:4: field 'ticker': field 'ticker' is missing [missing_field]",
        "bars.csv:5: field 'timestamp': unparseable timestamp 'yesterday' [bad_timestamp]",
        "bars.csv:6: field 'open': open is not a number [wrong_type]",
        "bars.csv:7: field 'high': high is 'NaN' [non_finite]",
        "bars.csv:8: field 'high': high 9.5 < max(open, close) 10.0 [high_below_body]",
        "bars.csv:9: field 'volume': volume is -1.0, below 0.0 [negative_value]",
        "bars.csv:10: field 'interval': interval '7x' is not like 1m, 5m, 1h, 1d "
        "[bad_interval]",
        "bars.csv:12: field 'volume': field 'volume' is missing [missing_field]",
    ]
    frame = load.frame
    assert list(frame.columns) == ["ticker", "ts", "open", "high", "low", "close", "volume",
                                   "interval"]
    assert frame.ts.dtype == np.int64
    # Sorted by ts then ticker; the +01:00 bar is the earliest.
    assert frame.ticker.tolist() == ["AAPL", "AAPL", "MSFT", "AAPL"]
    assert frame.ts.is_monotonic_increasing
    assert frame.interval.tolist() == ["1m", "1m", "5m", "1m"]


def test_valid_rows_equal_bar_from_dict(tmp_path):
    load = read_bars(write(tmp_path, "bars.csv", BARS_CSV))
    expected = sorted(
        (Bar.from_dict({"ticker": "AAPL", "timestamp": "2024-01-02T15:30:00Z", "open": 10,
                        "high": 11, "low": 9, "close": 10.5, "volume": 100}).ts,
         Bar.from_dict({"ticker": "AAPL", "timestamp": 1704209460000, "open": 10, "high": 11,
                        "low": 9, "close": 10.5, "volume": 100}).ts,
         Bar.from_dict({"ticker": "AAPL", "timestamp": "2024-01-02 15:29:00+01:00",
                        "open": 10, "high": 11, "low": 9, "close": 10.5,
                        "volume": 100}).ts,
         Bar.from_dict({"ticker": "MSFT", "timestamp": "2024-01-02T15:30:00Z", "open": 10,
                        "high": 11, "low": 9, "close": 10.5, "volume": 100}).ts))
    assert load.frame.ts.tolist() == expected


def test_random_corruptions_agree_with_the_edge_rules(tmp_path):
    rng = np.random.default_rng(5)
    n = 400
    rows = pd.DataFrame({
        "ticker": rng.choice(["AAPL", "MSFT", "BRK.B", "bad ticker", ""], n,
                             p=[.4, .4, .1, .05, .05]),
        "timestamp": rng.choice(["2024-03-01T10:00:00Z", "1709287200000", "2024-03-01",
                                 "2024-13-01T00:00:00Z", "soon", "2024-03-01T10:00:00+05:30",
                                 "2100-01-01T00:00:00Z", "3000-01-01", "1e15", "9.9e300",
                                 "1709287200", "4102444800000"], n,
                                p=[.25, .2, .15, .02, .02, .16, .04, .04, .03, .03, .03, .03]),
        "open": rng.choice(["10", "10.5", "-1", "x", "", "inf"], n, p=[.5, .3, .05, .05,
                                                                      .05, .05]),
        "high": rng.choice(["11", "10.2", "9"], n),
        "low": rng.choice(["9", "10.4", "12"], n),
        "close": rng.choice(["10", "10.3"], n),
        "volume": rng.choice(["5", "0", "-3", "1e3"], n),
        "interval": rng.choice(["1m", "5m", "", "0m", "1d"], n),
    })
    rows = pd.concat([rows, rows.iloc[:100]], ignore_index=True)  # some bars sent twice
    path = tmp_path / "fuzz.csv"
    rows.to_csv(path, index=False)
    load = read_bars(path)
    accepted, rejected = [], {}
    for i, row in enumerate(rows.to_dict("records")):
        record = {}
        for key, value in row.items():
            if value == "" or pd.isna(value):
                continue
            if key in ("open", "high", "low", "close", "volume", "timestamp"):
                try:
                    number = float(value)
                    value = number if np.isfinite(number) else value
                except ValueError:
                    pass
            record[key] = value
        try:
            bar = Bar.from_dict(record)
        except InvalidEvent as exc:
            rejected[i + 2] = (exc.field, exc.code)
            continue
        if any((b.ticker, b.interval, b.ts) == (bar.ticker, bar.interval, bar.ts)
               for b in accepted):
            rejected[i + 2] = ("timestamp", "duplicate_bar")
        else:
            accepted.append(bar)
    assert {"bad_timestamp", "duplicate_bar"} <= {code for _, code in rejected.values()}
    assert {e.row: (e.field, e.code) for e in load.errors} == rejected
    got = sorted(zip(load.frame.ts, load.frame.ticker, load.frame.open, load.frame.interval,
                     strict=True))
    want = sorted((b.ts, b.ticker, b.open, b.interval) for b in accepted)
    assert got == want


def test_strict_raises_on_first_bad_row(tmp_path):
    with pytest.raises(ReaderError, match=r"^bars.csv:4: field 'ticker'"):
        read_bars(write(tmp_path, "bars.csv", BARS_CSV), strict=True)


def test_missing_column_is_one_clear_error(tmp_path):
    text = "ticker,timestamp,open,high,low,volume\nAAPL,2024-01-02T15:30:00Z,1,1,1,1\n"
    with pytest.raises(ReaderError, match=r"^bars.csv: missing required column 'close'$"):
        read_bars(write(tmp_path, "bars.csv", text))
    with pytest.raises(ReaderError, match="unsupported file type"):
        read_bars(write(tmp_path, "bars.txt", text))


def test_parquet_bars_with_native_types(tmp_path):
    frame = pd.DataFrame({
        "ticker": ["AAPL", "AAPL", "AAPL"],
        "timestamp": pd.to_datetime(["2024-01-02 15:30", "2024-01-02 15:31",
                                     "2024-01-02 15:32"]),
        "open": [10.0, 10.0, np.nan], "high": [11.0, 9.0, 11.0], "low": [9.0, 9.0, 9.0],
        "close": [10.5, 10.0, 10.0], "volume": [100, 100, 100],
    })
    path = tmp_path / "bars.parquet"
    frame.to_parquet(path)
    load = read_bars(path)
    assert [str(e) for e in load.errors] == [
        "bars.parquet:2: field 'high': high 9.0 < max(open, close) 10.0 [high_below_body]",
        "bars.parquet:3: field 'open': open is nan [non_finite]",
    ]
    assert load.frame.ts.tolist() == [pd.Timestamp("2024-01-02 15:30", tz="UTC").value]
    prices = load.prices("AAPL")
    assert list(prices.columns) == ["Open", "High", "Low", "Close", "Volume"]
    assert str(prices.index.tz) == "UTC"


NEWS_CSV = """\
id,timestamp,tickers,headline,body,source
n1,2024-01-02T15:30:00Z,AAPL;MSFT,Apple beats estimates,"two
line body",wire
n2,2024-01-02T15:31:00Z,,No tickers here,,wire
n3,1704209460000,AAPL|GOOG,Fine one,,
n4,2024-01-02T15:32:00Z,AAPL,,,wire
"""


def test_news_csv_lines_count_quoted_newlines(tmp_path):
    load = read_news(write(tmp_path, "news.csv", NEWS_CSV))
    assert [str(e) for e in load.errors] == [
        "news.csv:4: field 'tickers': field 'tickers' is missing [missing_field]",
        "news.csv:6: field 'headline': field 'headline' is missing [missing_field]",
    ]
    assert load.frame.id.tolist() == ["n1", "n3"]
    assert load.frame.tickers.tolist() == [("AAPL", "MSFT"), ("AAPL", "GOOG")]
    assert load.frame.body.tolist() == ["two\nline body", None]


def test_news_parquet_lists(tmp_path):
    path = tmp_path / "news.parquet"
    pd.DataFrame({"id": ["a", "b"], "timestamp": ["2024-01-02T15:30:00Z", "2024-01-02T15:29Z"],
                  "tickers": [["AAPL", "AAPL", "MSFT"], ["bad ticker"]],
                  "headline": ["x", "y"]}).to_parquet(path)
    load = read_news(path)
    item = NewsItem.from_dict({"id": "a", "timestamp": "2024-01-02T15:30:00Z",
                               "tickers": ["AAPL", "MSFT"], "headline": "x"})
    assert load.frame.tickers.tolist() == [item.tickers]
    assert load.frame.ts.tolist() == [item.ts]
    assert [(e.row, e.field, e.code) for e in load.errors] == [(2, "tickers", "bad_ticker")]


def signals() -> list[TradingSignal]:
    base = 1_704_209_400_000_000_000
    return [TradingSignal(signal_id("AAPL", base + i, "1m"), "AAPL", base + i * 60 * 10**9,
                          kind, 0.7, 0.1, 0.2, 3, False, 0.1, 0.5, 0.05, 0.55, 0.03, 1.1,
                          "LOW", 0.2, 101.5, ("a", "b"))
            for i, kind in enumerate(["BUY", "HOLD", "SELL"])]


def test_signal_files_round_trip(tmp_path):
    events = signals()
    write_signals(events, tmp_path / "s.jsonl")
    lines = (tmp_path / "s.jsonl").read_bytes().splitlines()
    assert lines == [e.to_json() for e in events]
    frame = read_signals(tmp_path / "s.jsonl")
    assert frame.ts.tolist() == [e.ts for e in events]
    assert frame.signal_type.tolist() == ["BUY", "HOLD", "SELL"]
    write_signals(frame, tmp_path / "s.parquet")
    assert read_signals(tmp_path / "s.parquet").equals(frame)
    write_signals(frame, tmp_path / "again.jsonl")
    assert (tmp_path / "again.jsonl").read_bytes() == (tmp_path / "s.jsonl").read_bytes()


def test_signal_frame_without_ids_gets_engine_ids(tmp_path):
    frame = pd.DataFrame([e.to_dict() for e in signals()])
    frame = frame.drop(columns=["signal_id", "reasons", "schema_version"])
    write_signals(frame, tmp_path / "s.jsonl")
    back = read_signals(tmp_path / "s.jsonl")
    assert back.signal_id.tolist() == [signal_id("AAPL", int(t), "1m") for t in back.ts]


def test_bad_signal_line_names_file_and_line(tmp_path):
    path = tmp_path / "s.jsonl"
    write_signals(signals(), path)
    path.write_bytes(path.read_bytes() + b'{"schema_version": 1}\n')
    with pytest.raises(ValueError, match=r"^s.jsonl:4: missing_field"):
        read_signals(path)


TIMES_CSV = """\
ticker,timestamp,open,high,low,close,volume,interval
AAPL,2024-01-02T15:30:00Z,10,11,9,10.5,100,1m
AAPL,2024-01-02T15:30:00Z,10,11,9,10.5,100,5m
AAPL,2024-01-02T15:30:00Z,10,11,9,10.6,100,1m
AAPL,1e15,10,11,9,10.5,100,1m
AAPL,1704209400,10,11,9,10.5,100,1m
AAPL,2100-01-01T00:00:00Z,10,11,9,10.5,100,1m
AAPL,3000-01-01,10,11,9,10.5,100,1m
AAPL,2024-01-03T17:00:00Z,10,11,9,10.5,100,1m
"""


def test_untrue_timestamps_and_repeated_bars_are_named(tmp_path):
    now = Bar.from_dict({"ticker": "A", "timestamp": "2024-01-02T16:00:00Z", "open": 1,
                         "high": 1, "low": 1, "close": 1, "volume": 1}).ts
    load = read_bars(write(tmp_path, "bars.csv", TIMES_CSV), now_ns=now)
    assert [(e.row, e.code) for e in load.errors] == [
        (4, "duplicate_bar"), (5, "bad_timestamp"), (6, "bad_timestamp"),
        (7, "bad_timestamp"), (8, "bad_timestamp"), (9, "bad_timestamp")]
    text = [str(e) for e in load.errors]
    assert text[0] == ("bars.csv:4: field 'timestamp': repeats the 1m bar of AAPL at "
                       "2024-01-02T15:30:00Z (row 2) [duplicate_bar]")
    assert "looks like microseconds, not milliseconds" in text[1]
    assert "looks like seconds, not milliseconds" in text[2]
    assert "(year 2100) is more than 1d ahead of now (2024-01-02T16:00:00Z)" in text[3]
    assert "is the year 3000" in text[4]
    assert "(year 2024) is more than 1d ahead" in text[5]  # a day ahead of this clock
    # The same close in another interval is another bar.
    assert load.frame[["interval", "close"]].values.tolist() == [["1m", 10.5], ["5m", 10.5]]
    # A later clock, or a longer max_future, lets the last bar in.
    assert len(read_bars(tmp_path / "bars.csv", now_ns=now + 86_400 * 10**9).frame) == 3
    assert len(read_bars(tmp_path / "bars.csv", now_ns=now,
                         max_future_ns=2 * 86_400 * 10**9).frame) == 3
    with pytest.raises(ReaderError, match=r"^bars.csv:4: .*\[duplicate_bar\]$"):
        read_bars(tmp_path / "bars.csv", strict=True, now_ns=now)


def test_untrue_timestamps_in_parquet_and_news(tmp_path):
    now = pd.Timestamp("2024-01-02T16:00:00Z").value
    stamps = pd.to_datetime(["2024-01-02T15:30:00Z", "2100-01-01T00:00:00Z",
                             "3000-01-01T00:00:00Z"], utc=True, format="ISO8601")
    frame = pd.DataFrame({"ticker": "AAPL", "timestamp": stamps, "open": 10.0, "high": 11.0,
                          "low": 9.0, "close": 10.5, "volume": 100.0})
    frame.to_parquet(tmp_path / "bars.parquet")
    load = read_bars(tmp_path / "bars.parquet", now_ns=now)
    assert [(e.row, e.code) for e in load.errors] == [(2, "bad_timestamp"),
                                                     (3, "bad_timestamp")]
    assert len(load.frame) == 1
    news = write(tmp_path, "news.csv", "id,timestamp,tickers,headline\n"
                 "a,2024-01-02T15:00:00Z,AAPL,fine\nb,2100-01-01T00:00:00Z,AAPL,from the future\n")
    loaded = read_news(news, now_ns=now)
    assert loaded.frame["id"].tolist() == ["a"]
    assert [(e.row, e.code) for e in loaded.errors] == [(3, "bad_timestamp")]


def _news_rows(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "id": rng.choice(["a1", "b2", "", "c3"], n, p=[.4, .3, .1, .2]),
        "timestamp": rng.choice(["2024-03-01T10:00:00Z", "1709287200000", "2024-03-01",
                                 "2024-13-01T00:00:00Z", "soon", "", "nan"], n),
        "tickers": rng.choice(["AAPL", "AAPL;MSFT", "AAPL|AAPL", " MSFT ; ", "bad ticker",
                               "", ";", ";".join(["T"] * 33), ";".join(["T"] * 32)], n),
        "headline": rng.choice(["Acme beats", "  ", "", "x" * 1001, "x" * 1000, "Ünïcode"],
                               n),
        "body": rng.choice(["", "body", "b" * 40_000], n, p=[.5, .4, .1]),
        "source": rng.choice(["", "wire", "s" * 201], n, p=[.4, .5, .1]),
    })


def _edge_news(rows: pd.DataFrame) -> tuple[list[NewsItem], dict[int, tuple]]:
    """What the live edge makes of each row read as CSV text ('' is missing)."""
    accepted, rejected = [], {}
    for i, row in enumerate(rows.to_dict("records")):
        record: dict = {}
        for key, value in row.items():
            if value == "":
                continue
            if key == "timestamp":
                try:
                    number = float(value)
                    value = number if np.isfinite(number) else value
                except ValueError:
                    pass
            if key == "tickers":
                value = [t.strip() for t in value.replace("|", ";").split(";") if t.strip()]
            record[key] = value
        try:
            accepted.append(NewsItem.from_dict(record))
        except InvalidEvent as exc:
            rejected[i + 2] = (exc.field, exc.code)
    return accepted, rejected


def test_random_news_corruptions_agree_with_the_edge_rules(tmp_path):
    rows = _news_rows(600, seed=9)
    path = tmp_path / "news.csv"
    rows.to_csv(path, index=False)
    load = read_news(path)
    accepted, rejected = _edge_news(rows)
    assert rejected  # the generator does produce bad rows
    assert {e.row: (e.field, e.code) for e in load.errors} == rejected
    got = sorted(zip(load.frame.ts, load.frame.id, load.frame.tickers, load.frame.headline,
                     load.frame.body, load.frame.source, strict=True), key=repr)
    want = sorted(((n.ts, n.id, n.tickers, n.headline, n.body, n.source) for n in accepted),
                  key=repr)
    assert got == want


def test_news_parquet_types_and_errors(tmp_path):
    path = tmp_path / "news.parquet"
    pd.DataFrame({
        "id": [1, 2, 3, 4],
        "timestamp": pd.to_datetime(["2024-01-02 15:30", "2024-01-02 15:31", None,
                                     "2024-01-02 15:33"]),
        "tickers": [["AAPL"], [], ["MSFT"], ["MSFT", "AAPL", "MSFT"]],
        "headline": ["a", "b", "c", None],
    }).to_parquet(path)
    load = read_news(path)
    assert [str(e) for e in load.errors] == [
        "news.parquet:2: field 'tickers': tickers must be a non-empty list [bad_ticker]",
        "news.parquet:3: field 'timestamp': field 'timestamp' is missing [missing_field]",
        "news.parquet:4: field 'headline': field 'headline' is missing [missing_field]",
    ]
    assert load.frame.id.tolist() == ["1"]
    with pytest.raises(ReaderError, match=r"^news.parquet:2: field 'tickers'"):
        read_news(path, strict=True)
    pd.DataFrame({"id": ["x"], "timestamp": ["2024-01-02T15:30:00Z"], "tickers": ["AAPL;MSFT"],
                  "headline": ["h"]}).to_parquet(path)
    assert read_news(path).frame.tickers.tolist() == [("AAPL", "MSFT")]


def test_news_missing_column_and_empty_file(tmp_path):
    with pytest.raises(ReaderError, match=r"^news.csv: missing required column 'headline'$"):
        read_news(write(tmp_path, "news.csv", "id,timestamp,tickers\nn1,1,AAPL\n"))
    with pytest.raises(ReaderError, match="file is empty"):
        read_news(write(tmp_path, "empty.csv", ""))
    empty = read_news(write(tmp_path, "header.csv", "id,timestamp,tickers,headline\n"))
    assert len(empty.frame) == 0 and not empty.errors


def test_received_at_is_read_as_knowledge_time_and_named_when_bad(tmp_path):
    """``received_at`` takes the timestamp's forms; a file that has it needs it per row."""
    bars = write(tmp_path, "bars.csv", """\
ticker,timestamp,open,high,low,close,volume,received_at
AAPL,2024-01-02T15:30:00Z,10,11,9,10.5,100,2024-01-02T15:30:00.7Z
AAPL,2024-01-02T15:31:00Z,10,11,9,10.5,100,1704209461000
AAPL,2024-01-02T15:32:00Z,10,11,9,10.5,100,
AAPL,2024-01-02T15:33:00Z,10,11,9,10.5,100,soon
""")
    load = read_bars(bars)
    assert load.frame["received_at"].tolist() == [1_704_209_400_700_000_000,
                                                  1_704_209_461_000_000_000]
    assert [str(e) for e in load.errors] == [
        f"bars.csv:{line}: field 'received_at': received_at is missing or not a time "
        "(ISO-8601 or epoch ms, not in the future) [bad_timestamp]" for line in (4, 5)]

    news = tmp_path / "news.parquet"
    pd.DataFrame({"id": ["a", "b", "c"],
                  "timestamp": pd.to_datetime(["2024-01-02T15:30:00Z"] * 3, utc=True),
                  "tickers": [["AAPL"], ["AAPL", "MSFT"], ["MSFT"]],
                  "headline": ["x", "y", "z"],
                  "received_at": pd.to_datetime(["2024-01-02T15:31:20Z", None,
                                                 "2024-01-02T15:30:05Z"], utc=True)}
                 ).to_parquet(news)
    loaded = read_news(news)
    assert loaded.frame["id"].tolist() == ["a", "c"]
    assert loaded.frame["received_at"].tolist() == [1_704_209_480_000_000_000,
                                                    1_704_209_405_000_000_000]
    assert [(e.row, e.field, e.code) for e in loaded.errors] == [(2, "received_at",
                                                                  "bad_timestamp")]
    with pytest.raises(ReaderError, match=r"news\.parquet:2: field 'received_at'"):
        read_news(news, strict=True)
