"""PerformanceMonitor: statistics, errors, bounded history, alerts, export, Prometheus."""

from __future__ import annotations

import json
import logging
import math
from datetime import timedelta

import numpy as np
import psutil
import pytest

from gnosis import monitor as monitor_module
from gnosis.monitor import Measurement, PerformanceMonitor
from gnosis.sinks.metrics import REGISTRY


class ManualClock:
    """A clock that only moves when the test says so."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


class Rig:
    """A monitor whose clocks, CPU time and RSS are all set by the test."""

    def __init__(self, **kwargs: object) -> None:
        self.clock = ManualClock(100.0)
        self.cpu = ManualClock(5.0)
        self.wall = ManualClock(1_700_000_000.0)
        self.rss = 64.0
        self.monitor = PerformanceMonitor(clock=self.clock, cpu_clock=self.cpu,
                                          rss_mb=lambda: self.rss, wall_clock=self.wall,
                                          **kwargs)

    def run(self, operation: str, duration_ms: float, *, cpu_share: float = 0.5,
            rss: float | None = None, raises: type[Exception] | None = None) -> None:
        """Track one block that 'takes' duration_ms and uses cpu_share of the machine."""
        if rss is not None:
            self.rss = rss
        try:
            with self.monitor.track(operation):
                seconds = duration_ms / 1000.0
                self.clock.now += seconds
                self.cpu.now += seconds * self.monitor.cpus * cpu_share
                if raises is not None:
                    raise raises("boom")
        except Exception as exc:
            if raises is None or not isinstance(exc, raises):
                raise
        self.wall.now += 1.0


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_duration_statistics_match_numpy() -> None:
    rig = Rig(alert_thresholds={"duration_ms": 1e9})
    durations = np.random.default_rng(3).lognormal(mean=1.0, sigma=0.8, size=257)
    for d in durations:
        rig.run("stats.numpy", float(d))
    stats = rig.monitor.get_statistics("stats.numpy")
    got = stats["duration_ms"]
    assert stats["count"] == durations.size
    assert got["mean"] == pytest.approx(np.mean(durations), rel=1e-9)
    assert got["median"] == pytest.approx(np.median(durations), rel=1e-9)
    assert got["std"] == pytest.approx(np.std(durations), rel=1e-6)
    assert got["p95"] == pytest.approx(np.percentile(durations, 95), rel=1e-9)
    assert got["p99"] == pytest.approx(np.percentile(durations, 99), rel=1e-9)
    assert got["max"] == pytest.approx(durations.max(), rel=1e-9)
    assert got["min"] == pytest.approx(durations.min(), rel=1e-9)
    assert stats["cpu_percent"]["mean"] == pytest.approx(50.0)
    assert stats["memory_mb"] == {"mean": 64.0, "max": 64.0}


def test_windows_by_count_and_by_time() -> None:
    rig = Rig()
    for d in range(1, 11):  # wall clock advances 1 s per record
        rig.run("stats.window", float(d))
    assert rig.monitor.get_statistics("stats.window", window=3)["duration_ms"]["mean"] == (
        pytest.approx(9.0))
    # now = start + 10 s; the last 4 records started at +6..+9 s
    by_time = rig.monitor.get_statistics("stats.window", window=timedelta(seconds=4))
    assert by_time["count"] == 4
    assert by_time["duration_ms"]["min"] == pytest.approx(7.0)
    with pytest.raises(ValueError, match="window"):
        rig.monitor.get_statistics("stats.window", window=0)


def test_errors_are_counted_and_reraised() -> None:
    rig = Rig()
    before = sample("gnosis_operation_errors_total", operation="errors.op")
    for raises in (None, ValueError, None, KeyError, ValueError, None, None, None):
        rig.run("errors.op", 1.0, raises=raises)
    with pytest.raises(RuntimeError, match="kept"), rig.monitor.track("errors.other"):
        raise RuntimeError("kept")
    stats = rig.monitor.get_statistics("errors.op")
    assert (stats["count"], stats["successes"], stats["errors"]) == (8, 5, 3)
    assert stats["success_rate"] == pytest.approx(5 / 8)
    assert stats["error_counts"] == {"ValueError": 2, "KeyError": 1}
    assert sample("gnosis_operation_errors_total", operation="errors.op") - before == 3
    assert rig.monitor.get_statistics()["errors.other"]["error_counts"] == {"RuntimeError": 1}


def test_history_is_bounded_per_operation() -> None:
    rig = Rig(max_history=5)
    for d in range(12):
        rig.run("bounded.a", float(d))
    rig.run("bounded.b", 1.0)
    kept = rig.monitor.records("bounded.a")
    assert [round(m.duration_ms) for m in kept] == [7, 8, 9, 10, 11]
    assert rig.monitor.get_statistics("bounded.a")["count"] == 5
    assert rig.monitor.get_statistics("bounded.b")["count"] == 1
    assert rig.monitor.operations == ["bounded.a", "bounded.b"]


def test_threshold_alerts_are_logged_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    rig = Rig(alert_thresholds={"duration_ms": 10.0, "memory_mb": 100.0})
    before = sample("gnosis_alerts_total", operation="alerts.op", metric="duration_ms")
    with caplog.at_level(logging.WARNING, logger="gnosis.monitor"):
        rig.run("alerts.op", 5.0)
        rig.run("alerts.op", 15.0)
        rig.run("alerts.op", 20.0, rss=150.0)
        rig.run("alerts.op", 1.0, cpu_share=0.9, rss=50.0)
    assert rig.monitor.alert_counts == {("alerts.op", "duration_ms"): 2,
                                        ("alerts.op", "memory_mb"): 1,
                                        ("alerts.op", "cpu_percent"): 1}
    assert rig.monitor.get_statistics("alerts.op")["alerts"] == {
        "duration_ms": 2, "memory_mb": 1, "cpu_percent": 1}
    assert sample("gnosis_alerts_total", operation="alerts.op", metric="duration_ms") - before == 2
    assert sum("above threshold" in r.getMessage() for r in caplog.records) == 4
    with pytest.raises(ValueError, match="unknown alert threshold"):
        PerformanceMonitor(alert_thresholds={"latency": 1.0})


def test_durations_reach_prometheus() -> None:
    rig = Rig()
    count0 = sample("gnosis_operation_seconds_count", operation="prom.op")
    sum0 = sample("gnosis_operation_seconds_sum", operation="prom.op")
    bucket0 = sample("gnosis_operation_seconds_bucket", operation="prom.op", le="0.005")
    for d in (1.0, 2.0, 30.0):
        rig.run("prom.op", d)
    assert sample("gnosis_operation_seconds_count", operation="prom.op") - count0 == 3
    assert sample("gnosis_operation_seconds_sum", operation="prom.op") - sum0 == (
        pytest.approx(0.033))
    assert sample("gnosis_operation_seconds_bucket", operation="prom.op",
                  le="0.005") - bucket0 == 2


def test_csv_round_trip(tmp_path) -> None:
    rig = Rig()
    for i, raises in enumerate((None, ValueError, None)):
        rig.run(f"csv.{i % 2}", 1.5 * (i + 1), rss=70.0 + i, raises=raises)
    path = rig.monitor.export_metrics(tmp_path / "m.csv", format="csv")
    assert PerformanceMonitor.read_csv(path) == rig.monitor.records()


def test_json_round_trip_with_unsampled_resources(tmp_path) -> None:
    rig = Rig(sample_resources=False)
    rig.run("json.op", 2.0)
    rig.run("json.op", 4.0, raises=KeyError)
    doc = json.loads(rig.monitor.export_metrics(tmp_path / "m.json", format="json").read_text())
    stats = doc["statistics"]["json.op"]
    assert stats["duration_ms"]["mean"] == pytest.approx(3.0)
    assert stats["memory_mb"] == {"mean": None, "max": None}
    assert stats["error_counts"] == {"KeyError": 1}
    records = [Measurement(**{**r, "memory_mb": math.nan, "cpu_percent": math.nan})
               for r in doc["records"]]
    assert [(r.duration_ms, r.success, r.error) for r in records] == [
        (m.duration_ms, m.success, m.error) for m in rig.monitor.records()]
    assert all(r["memory_mb"] is None for r in doc["records"])
    with pytest.raises(ValueError, match="format"):
        rig.monitor.export_metrics(tmp_path / "m.xml", format="xml")  # type: ignore[arg-type]


def test_report_lists_every_operation() -> None:
    rig = Rig()
    rig.run("report.alpha", 2.0)
    rig.run("report.beta", 4.0, raises=ValueError)
    report = rig.monitor.generate_report()
    lines = report.splitlines()
    assert any(line.startswith("report.alpha") and "100.0" in line for line in lines)
    assert any(line.startswith("report.beta") and "  0.0" in line for line in lines)
    assert "error ValueError: 1" in report


def test_real_clocks_measure_real_rss() -> None:
    monitor = PerformanceMonitor(prometheus=False)
    with monitor.track("real.op"):
        sum(range(10_000))
    (m,) = monitor.records("real.op")
    assert m.duration_ms > 0
    assert 0.0 <= m.cpu_percent <= 100.0 + 1e-6
    rss = psutil.Process().memory_info().rss / 2**20
    assert abs(m.memory_mb - rss) < 16.0
    assert monitor_module._statm_rss_mb() == pytest.approx(
        psutil.Process().memory_info().rss / 2**20, abs=4.0)
