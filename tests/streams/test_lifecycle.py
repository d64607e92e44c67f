"""A worker's state across its lifecycle, on a real broker: a warm start from history
files, restarts with changed settings or an older state version (healthy, signals as
documented in gnosis.carryover), and a crash loop reported, not hidden behind 'ok'."""

from __future__ import annotations

from dataclasses import replace

import orjson
import pytest
from conftest import produce

from gnosis.config import Duration, Settings
from gnosis.engine import _STATE_VERSION, TickerEngine, run_events
from gnosis.events import TradingSignal, format_timestamp
from gnosis.features import ticker_phase
from gnosis.features.state import last_point
from gnosis.replay.kafka import collect_signals, publish
from gnosis.streams.journal import TickerState
from gnosis.streams.kafka.broker import free_port
from gnosis.streams.records import ticker_partition
from gnosis.streams.topics import topic_names

from .conftest import (
    MINUTE_NS,
    assert_signals_equal,
    http_get,
    market_events,
    wait_until,
    write_files,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def _health(url: str) -> tuple[int, dict]:
    status, body = http_get(f"{url}/health")
    return status, orjson.loads(body)


def _metric(url: str, name: str) -> float:
    lines = http_get(f"{url}/metrics")[1].decode().splitlines()
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(name + " "))


def test_warm_start_then_live_signals_as_the_replay_of_history_and_live(
        tmp_path, kafka_settings, kafka_topics, worker_process, gnosis_cli) -> None:
    settings = _features(kafka_settings(partitions=2, processing_guarantee="exactly_once",
                                        web_port=free_port()),
                         window=160, vol_long=48, vol_short=8, vsa_window=10,
                         trend_lookback=10, hawkes_window=300)
    kafka_topics(settings)
    bars, news = market_events(TICKERS, 700, news_per_bar=0.4, seed=5)
    news = [replace(n, ts=n.ts // 1_000_000 * 1_000_000) for n in news]  # as files keep them
    cut = bars[549].ts  # 550 bars of history per ticker
    history = write_files(tmp_path, [b for b in bars if b.ts <= cut],
                          [n for n in news if n.ts <= cut], "bars.parquet")
    worker_process(settings)
    url = f"http://127.0.0.1:{settings.worker.web_port}"
    wait_until("the worker is up", lambda: _health(url)[1].get("status") == "ok", 60)

    warmed = gnosis_cli(settings, "state", "warm", *history)
    assert warmed.returncode == 0, warmed.stderr[-2000:]
    assert f"AAPL: warmed to {format_timestamp(cut)} (1m 550 bars)" in warmed.stdout
    # The same history again would replace bars the state now has: refused, nothing sent.
    again = gnosis_cli(settings, "state", "warm", *history)
    assert again.returncode == 1
    assert f"error: AAPL 1m: the state already has 550 bars up to {format_timestamp(cut)}" \
        in again.stderr

    live = [b for b in bars if b.ts > cut]
    publish(live, [n for n in news if n.ts > cut], settings, progress=False)
    got = collect_signals(settings, expected=len(live), timeout=120)
    assert sorted(s.ts for s in got) == sorted(b.ts for b in live), "no signal for history"
    expected = [s for s in run_events(bars, news, settings) if s.ts > cut]
    assert "BUY" in {s.signal_type for s in expected}
    assert all(s.hurst_se < 1.0 and s.hawkes_se < 1.0 for s in expected)
    assert_signals_equal({s.signal_id: s for s in got}, expected)


def test_a_snapshot_of_an_older_state_version_starts_its_ticker_afresh(
        kafka_settings, kafka_topics, worker_process) -> None:
    settings = kafka_settings(partitions=2, processing_guarantee="exactly_once",
                              web_port=free_port())
    kafka_topics(settings)
    header = TickerState(TickerEngine("AAPL", settings)).snapshot()[:-len(
        TickerEngine("AAPL", settings).to_state())]
    old = header + orjson.dumps({"v": 2, "news_ts": [], "news_scores": []})
    produce(settings.kafka.bootstrap_servers, topic_names(settings).snapshots_changelog,
            [(b"AAPL", old)], partition=ticker_partition("AAPL", settings.kafka.partitions))
    bars, news = market_events(tickers=("AAPL", "MSFT"), bars_per_ticker=40, news_per_bar=0.2)
    worker = worker_process(settings)
    publish(bars, news, settings, progress=False)
    expected = run_events(bars, news, settings)
    got = collect_signals(settings, expected=len(expected), timeout=120)
    assert_signals_equal({s.signal_id: s for s in got}, expected)
    url = f"http://127.0.0.1:{settings.worker.web_port}"
    assert _health(url)[1]["status"] == "ok"
    lines = http_get(f"{url}/metrics")[1].decode().splitlines()
    assert 'gnosis_state_changes_total{action="afresh",setting="state version"} 1.0' in lines
    assert f"AAPL: state version 2 -> {_STATE_VERSION}: started afresh" in worker.log.read_text()


def test_a_crash_loop_turns_health_to_503_until_a_worker_commits_progress(
        kafka_settings, kafka_topics, worker_process) -> None:
    settings = kafka_settings(partitions=2, processing_guarantee="exactly_once",
                              web_port=free_port(), failing_after=3, retry_backoff_max=1.0)
    kafka_topics(settings)
    # A snapshot that cannot be decoded: every fresh worker fails on AAPL's first bar.
    changelog = topic_names(settings).snapshots_changelog
    p = ticker_partition("AAPL", settings.kafka.partitions)
    produce(settings.kafka.bootstrap_servers, changelog, [(b"AAPL", b"garbage")], partition=p)
    bars, news = market_events(tickers=("AAPL", "MSFT"), bars_per_ticker=40, news_per_bar=0.2)
    publish(bars, news, settings, progress=False)
    worker_process(settings)
    url = f"http://127.0.0.1:{settings.worker.web_port}"

    wait_until("/health says failing", lambda: _health(url)[1].get("status") == "failing", 120)
    status, health = _health(url)
    assert status == 503
    assert health["cause"] == "error: unpack_from requires a buffer of at least 20 bytes for " \
        "unpacking 20 bytes at offset 0 (actual buffer size is 7)"
    assert health["restarts"] >= health["failures_in_a_row"] >= 3
    assert _metric(url, "gnosis_worker_failing") == 1
    assert _metric(url, "gnosis_worker_restarts_total") >= 3

    # The operator deletes the bad snapshot: the next worker starts AAPL afresh, commits
    # its bars, and the process is healthy again.
    produce(settings.kafka.bootstrap_servers, changelog, [(b"AAPL", None)], partition=p)
    wait_until("/health says ok", lambda: _health(url)[1].get("status") == "ok", 120)
    assert _health(url)[0] == 200
    assert _metric(url, "gnosis_worker_failing") == 0


TICKERS = ("AAPL", "MSFT", "NVDA")
LAST_RUN = 40  # bars per ticker after the warm start from the archive


def _features(settings: Settings, **changes) -> Settings:
    return replace(settings, features=replace(settings.features, **changes))


def test_restarts_with_changed_settings_stay_healthy_and_signal_as_documented(
        tmp_path, kafka_settings, kafka_topics, worker_process, gnosis_cli) -> None:
    """Four runs of one worker on one state, each restarted with other feature settings:
    shorter windows (rebuilt: the replay under them), new strides (rebuilt, estimates
    held until the new strides' next points), a longer window (afresh); then the archive
    rebuilds what the longer window started afresh."""
    base = kafka_settings(partitions=2, processing_guarantee="exactly_once",
                          web_port=free_port())
    base = _features(base, window=160, vol_long=48, vol_short=8, vsa_window=10,
                     trend_lookback=10, hawkes_window=300, hawkes_stride=32)
    kafka_topics(base)
    shorter = replace(_features(base, window=128, vsa_window=6, hawkes_window=260),
                      rules=replace(base.rules, sentiment_window=Duration("30m")))
    strides = _features(shorter, hurst_stride=5, hawkes_stride=16)
    longer = _features(strides, window=200)
    runs = [(base, 500), (shorter, 150), (strides, 150), (longer, 60)]
    bars, news = market_events(TICKERS, sum(n for _, n in runs) + LAST_RUN, news_per_bar=0.4,
                               seed=5)
    news = [replace(n, ts=n.ts // 1_000_000 * 1_000_000) for n in news]  # as files keep them
    url = f"http://127.0.0.1:{base.worker.web_port}"
    logs, cuts, seen = [], [], 0
    for settings, count in runs:
        lo, seen = seen, seen + count
        first_ts, last_ts = bars[lo].ts, bars[seen - 1].ts  # each ticker's bars in order
        cuts.append((first_ts, last_ts))
        worker = worker_process(settings)
        publish([b for b in bars if first_ts <= b.ts <= last_ts],
                [n for n in news if (lo == 0 or n.ts > cuts[-2][1]) and n.ts <= last_ts],
                settings, progress=False)
        got = collect_signals(settings, expected=seen * len(TICKERS), timeout=120)
        assert len(got) == seen * len(TICKERS)
        assert _health(url) == (200, _health(url)[1]) and _health(url)[1]["status"] == "ok"
        logs.append(worker.log.read_text())
        worker.stop()
    by_id = {s.signal_id: s for s in got}

    def replayed(settings: Settings, first_ts: int, last_ts: int,
                 from_ts: int | None = None) -> list[TradingSignal]:
        """The replay under ``settings`` of bars from ``from_ts`` (all without), as far as
        the bars ``first_ts..last_ts`` of a run."""
        start = first_ts if from_ts is None else from_ts
        out = run_events([b for b in bars if start <= b.ts <= last_ts],
                         [n for n in news if n.ts <= last_ts], settings)
        return [s for s in out if s.ts >= first_ts]

    # Shorter windows: rebuilt, every signal the replay's under the new settings; warm.
    expected = replayed(shorter, *cuts[1], from_ts=bars[0].ts)
    assert {"BUY"} <= {s.signal_type for s in expected}
    assert all(s.hurst_se < 1.0 and s.hawkes_se < 1.0 for s in expected)
    assert_signals_equal(by_id, expected)
    for setting, old, new in [("window", 160, 128), ("vsa_window", 10, 6),
                              ("hawkes_window", 300, 260)]:
        assert f"AAPL: features.{setting} {old} -> {new}: rebuilt from the bars its state " \
            "keeps" in logs[1]
    assert "AAPL: rules.sentiment_window 1h -> 30m: kept the headlines held" in logs[1]

    # New strides: the replay's from the new strides' next points on.
    before = sum(n for _, n in runs[:2])
    upto = {t: max(int(last_point(before, 5, ticker_phase(t))) + 5,
                   int(last_point(before, 16, ticker_phase(t))) + 16) for t in TICKERS}
    expected = [s for s in replayed(strides, *cuts[2], from_ts=bars[0].ts)
                if s.ts >= cuts[2][0] + (upto[s.ticker] - before - 1) * MINUTE_NS]
    assert_signals_equal(by_id, expected)
    assert "features.hawkes_stride 32 -> 16: rebuilt from the bars its state keeps" in logs[2]

    # A longer window than the state keeps: afresh, the replay of the run's bars alone
    # (with every headline before them).
    assert_signals_equal(by_id, replayed(longer, *cuts[3]))
    assert "AAPL: features.window 128 -> 200: started afresh, the state does not keep " \
        "enough (1m: the state keeps 128 returns, 200 are needed)" in logs[3]
    assert "Traceback" not in "".join(logs)

    # The archive rebuilds it: `gnosis state warm --replace` with every bar and headline so
    # far, and the next live bars signal as the replay of everything under the new window.
    end = cuts[3][1]
    archive = write_files(tmp_path, [b for b in bars if b.ts <= end],
                          [n for n in news if n.ts <= end], "bars.parquet")
    worker_process(longer)
    wait_until("the worker is up", lambda: _health(url)[1].get("status") == "ok", 60)
    warmed = gnosis_cli(longer, "state", "warm", "--replace", *archive)
    assert warmed.returncode == 0, warmed.stderr[-2000:]
    first = bars[seen].ts
    publish([b for b in bars if first <= b.ts <= bars[seen + LAST_RUN - 1].ts],
            [n for n in news if end < n.ts <= bars[seen + LAST_RUN - 1].ts], longer,
            progress=False)
    total = (seen + LAST_RUN) * len(TICKERS)
    got = collect_signals(longer, expected=total, timeout=120)
    assert len(got) == total
    expected = replayed(longer, first, bars[seen + LAST_RUN - 1].ts, from_ts=bars[0].ts)
    assert all(s.hurst_se < 1.0 and s.hawkes_se < 1.0 for s in expected)
    assert_signals_equal({s.signal_id: s for s in got}, expected)
