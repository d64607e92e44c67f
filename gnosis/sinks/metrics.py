"""Prometheus metrics of a Gnosis worker.

Names follow Prometheus conventions: base units (seconds, bytes), ``_total`` on
counters, and bounded label sets (no per-ticker labels). All metrics live in one
registry, :data:`REGISTRY`, which also carries the standard process and platform
collectors, so ``/metrics`` shows memory and CPU next to the engine's own series.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from gnosis.backtest.metrics import STATISTICS

if TYPE_CHECKING:
    from gnosis.backtest.result import BacktestResult

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

# Latency buckets from 100 µs to 5 s: bar-to-signal sits in the low milliseconds.
_LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                    0.25, 0.5, 1.0, 2.5, 5.0)
_UPDATE_BUCKETS = (0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001,
                   0.0025, 0.01)

BARS_CONSUMED = Counter("gnosis_bars_consumed_total", "Valid bars consumed.",
                        registry=REGISTRY)
NEWS_CONSUMED = Counter("gnosis_news_consumed_total", "Valid news items consumed.",
                        registry=REGISTRY)
SIGNALS_EMITTED = Counter("gnosis_signals_emitted_total", "Trading signals produced, by type.",
                          ["signal_type"], registry=REGISTRY)
DEADLETTER_EVENTS = Counter("gnosis_deadletter_events_total",
                            "Invalid events sent to the deadletter topic, by reason and source.",
                            ["reason", "topic"], registry=REGISTRY)
LATE_NEWS = Counter("gnosis_late_news_total",
                    "Headlines applied after a bar their stamp precedes (they arrived late): "
                    "they count for the later bars whose window covers them, never dropped.",
                    ["topic"], registry=REGISTRY)
SENTIMENT_CACHE_HITS = Counter("gnosis_sentiment_cache_hits_total",
                               "Headline scores served from the cache.", registry=REGISTRY)
SENTIMENT_CACHE_MISSES = Counter("gnosis_sentiment_cache_misses_total",
                                 "Headline scores computed by the model.", registry=REGISTRY)

BAR_TO_SIGNAL_SECONDS = Histogram("gnosis_bar_to_signal_seconds",
                                  "From receiving a bar to producing its signal.",
                                  buckets=_LATENCY_BUCKETS, registry=REGISTRY)
FEATURE_UPDATE_SECONDS = Histogram("gnosis_feature_update_seconds",
                                   "Time to update one ticker's features with one bar.",
                                   buckets=_UPDATE_BUCKETS, registry=REGISTRY)
SENTIMENT_BATCH_SECONDS = Histogram("gnosis_sentiment_batch_seconds",
                                    "Time to score one batch of headlines.",
                                    buckets=_LATENCY_BUCKETS, registry=REGISTRY)
SENTIMENT_BATCH_SIZE = Histogram("gnosis_sentiment_batch_size", "Headlines per scored batch.",
                                 buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=REGISTRY)
OPERATION_SECONDS = Histogram("gnosis_operation_seconds",
                              "Duration of operations tracked by the PerformanceMonitor.",
                              ["operation"], buckets=_LATENCY_BUCKETS, registry=REGISTRY)
OPERATION_ERRORS = Counter("gnosis_operation_errors_total",
                           "Operations tracked by the PerformanceMonitor that raised.",
                           ["operation"], registry=REGISTRY)
ALERTS = Counter("gnosis_alerts_total", "Threshold alerts raised by the PerformanceMonitor.",
                 ["operation", "metric"], registry=REGISTRY)
SIGNAL_CONFIDENCE = Histogram("gnosis_signal_confidence",
                              "Confidence of emitted trading signals, by type.",
                              ["signal_type"],
                              buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
                              registry=REGISTRY)

RECORDS_IN = Counter("gnosis_records_in_total", "Input records taken, by source topic.",
                     ["topic"], registry=REGISTRY)
RECORD_OUTCOMES = Counter(
    "gnosis_record_outcomes_total",
    "What became of each input record, by source topic: signal, deadletter, rekeyed (a "
    "headline scored and sent to its tickers), applied or expired (a re-keyed headline; "
    "expired: stamped before the window of every bar to come), mark "
    "(a progress mark) or repeat (already applied: delivered again after a crash, or "
    "applied directly by the worker that re-keyed it).",
    ["topic", "outcome"], registry=REGISTRY)
RECORDS_WAITING = Gauge("gnosis_records_waiting",
                        "Input records taken but not yet decided: bars held for news, "
                        "headlines waiting to be scored.", ["topic"], registry=REGISTRY)
TICKERS_REJECTING = Gauge(
    "gnosis_tickers_rejecting_bars",
    "Tickers whose latest bars were all rejected as duplicate or out of order (at least "
    "5 in a row): their state is ahead of the feed and needs `gnosis state reset`.",
    registry=REGISTRY)
TICKERS_IN_STATE = Gauge("gnosis_tickers_in_state", "Tickers with feature state on this worker.",
                         registry=REGISTRY)
CONSUMER_LAG = Gauge("gnosis_consumer_lag_messages", "Messages behind the partition's end.",
                     ["topic", "partition"], registry=REGISTRY)
KAFKA_REFUSED = Gauge(
    "gnosis_kafka_refused",
    "1 while Kafka refuses this worker (the cause: authentication, tls, authorization, "
    "unreachable, config or other), else 0; /health names the reason and the setting.",
    ["cause"], registry=REGISTRY)
KAFKA_REFUSALS = Counter("gnosis_kafka_refusals_total",
                         "Attempts of the worker to start that Kafka refused, by cause.",
                         ["cause"], registry=REGISTRY)
WORKER_RESTARTS = Counter("gnosis_worker_restarts_total",
                          "Times this process replaced its worker after a failure that was "
                          "not a refusal by Kafka.", registry=REGISTRY)
WORKER_FAILING = Gauge(
    "gnosis_worker_failing",
    "1 while the worker fails again and again without committing progress (at least "
    "worker.failing_after times in a row); /health then answers 503 with the cause.",
    registry=REGISTRY)
STATE_CHANGES = Counter(
    "gnosis_state_changes_total",
    "Saved ticker states restored under a setting or state version other than they were "
    "saved with, by setting and by what was done (rebuilt, kept, afresh).",
    ["setting", "action"], registry=REGISTRY)
GROUP_EXPULSIONS = Counter(
    "gnosis_group_expulsions_total",
    "Assignments after a group generation this worker missed (put out of the group, e.g. "
    "for not heartbeating within worker.session_timeout); each one restores every task.",
    registry=REGISTRY)
HANDOVER_SECONDS = Gauge("gnosis_handover_seconds",
                         "Duration of the last hand-over: assignment to tasks restored and "
                         "consuming.", registry=REGISTRY)
MODEL_INFO = Info("gnosis_sentiment_model", "The sentiment model in use.", registry=REGISTRY)

# Results of the latest backtest per strategy, for a backtest or replay process that serves
# /metrics (gnosis.sinks.http.serve_metrics) while it runs. Names, help and formulas come
# from the one list of statistics, so a renamed statistic cannot drift from its gauge.
BACKTEST_GAUGES: dict[str, Gauge] = {
    stat.key: Gauge(f"gnosis_backtest_{stat.gauge}", stat.formula, ["strategy"],
                    registry=REGISTRY)
    for stat in STATISTICS if stat.gauge is not None
}
"""Gauge of each exported statistic, keyed by the statistic's key."""


def publish_backtest(strategy: str, results: BacktestResult | Mapping[str, float]) -> None:
    """Set the ``gnosis_backtest_*`` gauges of ``strategy`` from a backtest's results.

    ``results`` is a :class:`~gnosis.backtest.result.BacktestResult` (every exported
    statistic is set) or a mapping with some of the keys of :data:`BACKTEST_GAUGES`;
    missing ones are left as they were, unknown ones are an error (so a renamed
    statistic cannot silently stop updating a dashboard).
    """
    values = results if isinstance(results, Mapping) else {
        key: results.stats[key] for key in BACKTEST_GAUGES}
    unknown = set(values) - set(BACKTEST_GAUGES)
    if unknown:
        raise KeyError(f"unknown backtest statistics {sorted(unknown)}; "
                       f"expected some of {sorted(BACKTEST_GAUGES)}")
    for key, value in values.items():
        BACKTEST_GAUGES[key].labels(strategy).set(float(value))


@functools.lru_cache(maxsize=4096)
def child(metric: Any, *label_values: str) -> Any:
    """``metric.labels(*label_values)``, cached: on a per-record path the label lookup costs
    more than the increment. Label sets are bounded (no per-ticker labels), so is the cache."""
    return metric.labels(*label_values)


def render() -> tuple[bytes, str]:
    """The registry in Prometheus text format, with its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def observe_many(histogram: Histogram, values: Sequence[float]) -> None:
    """``histogram.observe(v)`` for every ``v`` in ``values``, one update per bucket.

    Reaches into prometheus_client's ``Histogram`` (``_upper_bounds``, ``_buckets``: per
    bucket, not cumulative; ``_sum``), unchanged from 0.4 to 0.26; the result is checked
    against ``observe`` in ``tests/observability/test_metrics_batch.py``.
    """
    if not len(values):
        return
    amounts = np.asarray(values, dtype=np.float64)
    counts = np.bincount(np.searchsorted(histogram._upper_bounds, amounts, side="left"),
                         minlength=len(histogram._upper_bounds))
    for i in np.flatnonzero(counts):
        histogram._buckets[i].inc(int(counts[i]))
    histogram._sum.inc(float(amounts.sum()))


class BarTally:
    """The per-bar metrics of a batch of bars, applied together by :meth:`flush`.

    On the per-bar path six metric updates (each a lock and, for histograms, a bucket
    search) cost about a tenth of a bar's processing; gathered here they cost an append.
    """

    __slots__ = ("confidence", "latency", "update")

    def __init__(self) -> None:
        self.update: list[float] = []
        self.latency: list[float] = []
        self.confidence: dict[str, list[float]] = {}

    def add(self, update_seconds: float, latency_seconds: float, signal_type: str,
            confidence: float) -> None:
        """One bar turned into a signal."""
        self.update.append(update_seconds)
        self.latency.append(latency_seconds)
        self.confidence.setdefault(signal_type, []).append(confidence)

    def flush(self, bars_topic: str) -> None:
        """Apply what was gathered since the last flush."""
        if not self.update:
            return
        bars = len(self.update)
        BARS_CONSUMED.inc(bars)
        child(RECORD_OUTCOMES, bars_topic, "signal").inc(bars)
        observe_many(FEATURE_UPDATE_SECONDS, self.update)
        observe_many(BAR_TO_SIGNAL_SECONDS, self.latency)
        for signal_type, confidences in self.confidence.items():
            child(SIGNALS_EMITTED, signal_type).inc(len(confidences))
            observe_many(child(SIGNAL_CONFIDENCE, signal_type), confidences)
        self.update, self.latency, self.confidence = [], [], {}
