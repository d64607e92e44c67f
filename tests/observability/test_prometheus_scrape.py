"""A real Prometheus scrapes the metrics a Gnosis process serves."""

from __future__ import annotations

import urllib.request

from gnosis.monitor import PerformanceMonitor
from gnosis.sinks import metrics
from gnosis.sinks.http import serve_metrics


def current(name: str, **labels: str) -> float:
    value = metrics.REGISTRY.get_sample_value(name, labels)
    assert value is not None, name
    return value


def test_prometheus_scrapes_metrics_server(prometheus) -> None:
    with serve_metrics(0, host="127.0.0.1") as server:
        with urllib.request.urlopen(f"{server.url}/health", timeout=5) as resp:
            assert resp.status == 200
        prom = prometheus({"gnosis": [f"127.0.0.1:{server.port}"]})
        (target,) = prom.wait_until_up("gnosis")
        assert target["scrapeUrl"] == f"{server.url}/metrics"

        # Drive the engine's metrics the way the agents do.
        metrics.SIGNALS_EMITTED.labels("STRONG_BUY").inc(3)
        for confidence in (0.15, 0.55, 0.95):
            metrics.SIGNAL_CONFIDENCE.labels("STRONG_BUY").observe(confidence)
        metrics.DEADLETTER_EVENTS.labels("invalid_price", "bars").inc(2)
        metrics.TICKERS_IN_STATE.set(17)
        metrics.publish_backtest("scrape-test", {"sharpe_ratio": 1.25, "max_drawdown": 0.08})
        monitor = PerformanceMonitor(sample_resources=False)
        for _ in range(5):
            with monitor.track("scrape_test_op"):
                pass
        metrics.BARS_CONSUMED.inc(41)  # last: a scrape that has it has all of the above

        # Prometheus must end up holding exactly what the registry holds now.
        bars = current("gnosis_bars_consumed_total")
        prom.wait_for_value("gnosis_bars_consumed_total", bars)
        assert prom.scalar('gnosis_signals_emitted_total{signal_type="STRONG_BUY"}') == (
            current("gnosis_signals_emitted_total", signal_type="STRONG_BUY"))
        assert prom.scalar('gnosis_signal_confidence_bucket{signal_type="STRONG_BUY",le="0.6"}'
                           ) == current("gnosis_signal_confidence_bucket",
                                        signal_type="STRONG_BUY", le="0.6")
        assert prom.scalar('gnosis_deadletter_events_total{reason="invalid_price"}') == (
            current("gnosis_deadletter_events_total", reason="invalid_price", topic="bars"))
        assert prom.scalar("gnosis_tickers_in_state") == 17
        assert prom.scalar('gnosis_backtest_sharpe_ratio{strategy="scrape-test"}') == 1.25
        assert prom.scalar('gnosis_operation_seconds_count{operation="scrape_test_op"}') == 5
        assert prom.scalar('up{job="gnosis"}') == 1
        assert (prom.scalar("process_resident_memory_bytes") or 0) > 0

        # A later update shows up in a later scrape.
        metrics.BARS_CONSUMED.inc(9)
        prom.wait_for_value("gnosis_bars_consumed_total", bars + 9)
