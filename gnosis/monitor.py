"""PerformanceMonitor: time, memory and CPU of named operations, in-process and in Prometheus.

One measurement serves two readers. :meth:`PerformanceMonitor.track` records a
:class:`Measurement` in a bounded per-operation history (for :meth:`~PerformanceMonitor.
get_statistics`, :meth:`~PerformanceMonitor.generate_report` and
:meth:`~PerformanceMonitor.export_metrics`) and observes the same duration in the
``gnosis_operation_seconds`` histogram, so ``/metrics`` and the report agree.

>>> monitor = PerformanceMonitor()
>>> with monitor.track("generate_signal"):
...     pass
>>> monitor.get_statistics("generate_signal")["count"]
1

What is measured, per tracked block:

- ``duration_ms``: wall time of the block (``time.perf_counter``).
- ``memory_mb``: resident set size of the whole process when the block ends.
- ``cpu_percent``: process CPU time spent during the block over its wall time, as a share
  of the CPUs available to the process (all of them busy = 100; one busy thread on a
  2-CPU machine = 50), like a system monitor shows it.

Sampling RSS through psutil costs about 15 µs; on Linux the monitor reads
``/proc/self/statm`` directly instead (about 2 µs, the same number psutil reports), and
``sample_resources=False`` skips memory and CPU altogether (they are then NaN).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, NamedTuple

import numpy as np

from gnosis.sinks import metrics

__all__ = ["DEFAULT_THRESHOLDS", "Measurement", "PerformanceMonitor"]

log = logging.getLogger(__name__)

DEFAULT_THRESHOLDS: Mapping[str, float] = {
    "duration_ms": 1000.0,
    "memory_mb": 500.0,
    "cpu_percent": 80.0,
}
"""Alert when a tracked block exceeds any of these (strictly greater than)."""

Window = int | timedelta | None
"""Which records a statistic covers: ``None`` all kept, an ``int`` the last N per
operation, a :class:`~datetime.timedelta` those started within that span before now."""

_MB = 1024.0 * 1024.0


class Measurement(NamedTuple):
    """One tracked execution of an operation (a named tuple: cheap to create on the hot
    path, immutable, and compared by value)."""

    operation: str
    started_at: float
    """Wall-clock start, epoch seconds."""
    duration_ms: float
    memory_mb: float
    """Process RSS at the end of the block; NaN when resources are not sampled."""
    cpu_percent: float
    """Process CPU time over wall time during the block, as a percentage of the CPUs
    available; NaN when not sampled."""
    success: bool
    error: str = ""
    """Exception type name when the block raised, else empty."""


class PerformanceMonitor:
    """Track named operations and summarise them.

    Args:
        max_history: records kept per operation (older ones are dropped), so memory is
            bounded by ``max_history`` x the number of distinct operation names.
        alert_thresholds: ``duration_ms``, ``memory_mb`` and ``cpu_percent`` limits; a
            record above a limit is logged as a warning and counted in
            ``gnosis_alerts_total{operation, metric}``. Missing keys take
            :data:`DEFAULT_THRESHOLDS`.
        sample_resources: sample RSS and CPU time per block (a few µs); when false only
            the duration is measured.
        prometheus: also observe ``gnosis_operation_seconds{operation}`` and count
            ``gnosis_operation_errors_total{operation}``.
        clock, cpu_clock, rss_mb, wall_clock: sources of monotonic seconds, process CPU
            seconds, RSS in MiB and epoch seconds. Injectable so that tests can dictate
            exact values; the defaults are the real ones.
    """

    def __init__(
        self,
        max_history: int = 10_000,
        alert_thresholds: Mapping[str, float] | None = None,
        *,
        sample_resources: bool = True,
        prometheus: bool = True,
        clock: Callable[[], float] = time.perf_counter,
        cpu_clock: Callable[[], float] = time.process_time,
        rss_mb: Callable[[], float] | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if max_history < 1:
            raise ValueError(f"max_history must be at least 1, not {max_history}")
        thresholds = dict(DEFAULT_THRESHOLDS)
        for key, value in (alert_thresholds or {}).items():
            if key not in DEFAULT_THRESHOLDS:
                raise ValueError(f"unknown alert threshold {key!r}; "
                                 f"expected one of {sorted(DEFAULT_THRESHOLDS)}")
            thresholds[key] = float(value)
        self.max_history = max_history
        self.alert_thresholds: Mapping[str, float] = thresholds
        self.sample_resources = sample_resources
        self.prometheus = prometheus
        self._clock = clock
        self._cpu_clock = cpu_clock
        self._rss_mb = rss_mb or _default_rss_reader()
        self._wall_clock = wall_clock
        self.cpus = _available_cpus()
        self._history: dict[str, deque[Measurement]] = {}
        self._observe: dict[str, Callable[[float], None]] = {}
        self._limits = (thresholds["duration_ms"], thresholds["memory_mb"],
                        thresholds["cpu_percent"])
        self._alerts: dict[tuple[str, str], int] = {}

    def track(self, operation: str) -> _Tracking:
        """Context manager that measures the block it wraps under ``operation``.

        An exception in the block is recorded as a failure and re-raised.
        """
        return _Tracking(self, operation)

    def record(self, measurement: Measurement) -> None:
        """Add one measurement (what :meth:`track` does on exit), check thresholds, export."""
        op = measurement.operation
        history = self._history.get(op)
        if history is None:
            history = self._history[op] = deque(maxlen=self.max_history)
            # label lookups cost ~1 µs each: resolve the child once per operation
            self._observe[op] = metrics.OPERATION_SECONDS.labels(op).observe
        history.append(measurement)
        if self.prometheus:
            self._observe[op](measurement.duration_ms / 1000.0)
            if not measurement.success:
                metrics.OPERATION_ERRORS.labels(op).inc()
        duration, memory, cpu = self._limits
        if (measurement.duration_ms > duration or measurement.memory_mb > memory
                or measurement.cpu_percent > cpu):  # NaN never alerts
            self._alert(measurement)

    def _alert(self, measurement: Measurement) -> None:
        op = measurement.operation
        for metric, limit in self.alert_thresholds.items():
            value = getattr(measurement, metric)
            if value > limit:
                self._alerts[op, metric] = self._alerts.get((op, metric), 0) + 1
                if self.prometheus:
                    metrics.ALERTS.labels(op, metric).inc()
                log.warning("%s: %s %.3f above threshold %.3f", op, metric, value, limit)

    @property
    def operations(self) -> list[str]:
        """Names of the operations tracked so far, sorted."""
        return sorted(self._history)

    @property
    def alert_counts(self) -> dict[tuple[str, str], int]:
        """Alerts raised since creation, by (operation, metric); not bounded by history."""
        return dict(self._alerts)

    def records(self, operation: str | None = None, window: Window = None) -> list[Measurement]:
        """The kept measurements (of one operation, or all), oldest first per operation."""
        ops = [operation] if operation is not None else self.operations
        out: list[Measurement] = []
        for op in ops:
            out.extend(self._window(self._history.get(op, ()), window))
        return out

    def get_statistics(self, operation: str | None = None,
                       window: Window = None) -> dict[str, Any]:
        """Summary statistics.

        With ``operation``: that operation's statistics (``count`` 0 and NaN figures if it
        has no records in the window). Without: ``{operation: statistics}`` for every
        operation tracked.

        Statistics: ``count``, ``successes``, ``errors``, ``success_rate``,
        ``error_counts`` (by exception type), ``alerts`` (records above each threshold),
        ``duration_ms`` (mean, median, std — population, like ``numpy.std`` — p95, p99,
        min, max; percentiles interpolate linearly like ``numpy.percentile``),
        ``memory_mb`` and ``cpu_percent`` (mean, max).
        """
        if operation is None:
            return {op: self.get_statistics(op, window) for op in self.operations}
        return self._summarise(self.records(operation, window))

    def generate_report(self, window: Window = None) -> str:
        """A plain-text table, one row per operation."""
        header = (f"{'operation':<28}{'count':>8}{'ok %':>8}{'mean ms':>10}{'p50 ms':>10}"
                  f"{'p95 ms':>10}{'p99 ms':>10}{'max ms':>10}{'max MB':>9}{'cpu %':>7}"
                  f"{'alerts':>8}")
        lines = [f"Performance report ({_describe(window)})", header, "-" * len(header)]
        for op, stats in self.get_statistics(window=window).items():
            d = stats["duration_ms"]
            lines.append(
                f"{op[:27]:<28}{stats['count']:>8}{100 * stats['success_rate']:>8.1f}"
                f"{d['mean']:>10.3f}{d['median']:>10.3f}{d['p95']:>10.3f}{d['p99']:>10.3f}"
                f"{d['max']:>10.3f}{stats['memory_mb']['max']:>9.1f}"
                f"{stats['cpu_percent']['mean']:>7.1f}{sum(stats['alerts'].values()):>8}")
            for name, n in sorted(stats["error_counts"].items()):
                lines.append(f"    error {name}: {n}")
        if len(lines) == 3:
            lines.append("(no operations tracked)")
        return "\n".join(lines)

    def export_metrics(self, output_file: str | os.PathLike[str],
                       format: Literal["csv", "json"] = "csv",
                       window: Window = None) -> Path:
        """Write the kept measurements to a file and return its path.

        ``csv``: one row per measurement, columns as :class:`Measurement` (``started_at``
        in epoch seconds). ``json``: ``{"statistics": {...}, "records": [...]}``, NaN
        written as ``null``.
        """
        path = Path(output_file)
        rows = self.records(window=window)
        if format == "csv":
            with path.open("w", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(_COLUMNS)
                writer.writerows([getattr(r, c) for c in _COLUMNS] for r in rows)
        elif format == "json":
            doc = {"statistics": self.get_statistics(window=window),
                   "records": [r._asdict() for r in rows]}
            path.write_text(json.dumps(_nan_to_none(doc), indent=2))
        else:
            raise ValueError(f"format must be 'csv' or 'json', not {format!r}")
        return path

    @staticmethod
    def read_csv(path: str | os.PathLike[str]) -> list[Measurement]:
        """Measurements from a file written by ``export_metrics(..., format='csv')``."""
        with Path(path).open(newline="") as fh:
            return [Measurement(operation=row["operation"],
                                started_at=float(row["started_at"]),
                                duration_ms=float(row["duration_ms"]),
                                memory_mb=float(row["memory_mb"]),
                                cpu_percent=float(row["cpu_percent"]),
                                success=row["success"] == "True",
                                error=row["error"])
                    for row in csv.DictReader(fh)]

    def reset(self) -> None:
        """Forget all records and alert counts (Prometheus counters keep counting)."""
        self._history.clear()
        self._observe.clear()
        self._alerts.clear()

    def _window(self, history: Iterable[Measurement], window: Window) -> list[Measurement]:
        items = list(history)
        if window is None:
            return items
        if isinstance(window, timedelta):
            since = self._wall_clock() - window.total_seconds()
            return [m for m in items if m.started_at >= since]
        if isinstance(window, int) and not isinstance(window, bool) and window > 0:
            return items[-window:]
        raise ValueError(f"window must be None, a positive int or a timedelta, not {window!r}")

    def _summarise(self, rows: list[Measurement]) -> dict[str, Any]:
        n = len(rows)
        duration = np.array([r.duration_ms for r in rows], dtype=float)
        memory = np.array([r.memory_mb for r in rows], dtype=float)
        cpu = np.array([r.cpu_percent for r in rows], dtype=float)
        successes = sum(r.success for r in rows)
        errors: dict[str, int] = {}
        for r in rows:
            if not r.success:
                errors[r.error] = errors.get(r.error, 0) + 1
        alerts = {metric: int(np.sum(np.array([getattr(r, metric) for r in rows]) > limit))
                  for metric, limit in self.alert_thresholds.items()}
        return {
            "count": n,
            "successes": successes,
            "errors": n - successes,
            "success_rate": successes / n if n else math.nan,
            "error_counts": errors,
            "alerts": alerts,
            "duration_ms": {
                "mean": _stat(np.mean, duration), "median": _stat(np.median, duration),
                "std": _stat(np.std, duration),
                "p95": _stat(lambda a: np.percentile(a, 95), duration),
                "p99": _stat(lambda a: np.percentile(a, 99), duration),
                "min": _stat(np.min, duration), "max": _stat(np.max, duration),
            },
            "memory_mb": {"mean": _stat(np.mean, memory), "max": _stat(np.max, memory)},
            "cpu_percent": {"mean": _stat(np.mean, cpu), "max": _stat(np.max, cpu)},
        }


class _Tracking:
    """The context manager returned by :meth:`PerformanceMonitor.track` (a class, not a
    generator, because it is on the hot path)."""

    __slots__ = ("_cpu", "_monitor", "_operation", "_start", "_started_at")

    def __init__(self, monitor: PerformanceMonitor, operation: str) -> None:
        self._monitor = monitor
        self._operation = operation

    def __enter__(self) -> None:
        m = self._monitor
        self._started_at = m._wall_clock()
        # Wall interval encloses the CPU interval, so a short block cannot read above 100 %.
        self._start = m._clock()
        self._cpu = m._cpu_clock() if m.sample_resources else 0.0

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> Literal[False]:
        m = self._monitor
        if m.sample_resources:
            cpu_used = m._cpu_clock() - self._cpu
            elapsed = m._clock() - self._start
            cpu_percent = 100.0 * cpu_used / (elapsed * m.cpus) if elapsed > 0 else 0.0
            memory = m._rss_mb()
        else:
            elapsed = m._clock() - self._start
            cpu_percent = memory = math.nan
        m.record(Measurement(self._operation, self._started_at, elapsed * 1000.0, memory,
                             cpu_percent, exc_type is None,
                             "" if exc_type is None else exc_type.__name__))
        return False


_COLUMNS = Measurement._fields


def _stat(fn: Callable[[np.ndarray], Any], values: np.ndarray) -> float:
    if values.size == 0 or np.isnan(values).all():
        return math.nan
    return float(fn(values))


def _describe(window: Window) -> str:
    if window is None:
        return "all kept records"
    if isinstance(window, timedelta):
        return f"last {window}, as of {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC"
    return f"last {window} records per operation"


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    return value


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _default_rss_reader() -> Callable[[], float]:
    """RSS in MiB: ``/proc/self/statm`` on Linux (cheap), psutil elsewhere."""
    if sys.platform.startswith("linux") and os.path.exists("/proc/self/statm"):
        return _statm_rss_mb
    import psutil

    process = psutil.Process()
    return lambda: process.memory_info().rss / _MB


_PAGE_MB = os.sysconf("SC_PAGE_SIZE") / _MB if hasattr(os, "sysconf") else 0.0
_statm: tuple[int, int] | None = None  # (pid, fd): one descriptor per process, reopened after fork


def _statm_rss_mb() -> float:
    global _statm
    pid = os.getpid()
    if _statm is None or _statm[0] != pid:
        _statm = (pid, os.open("/proc/self/statm", os.O_RDONLY | os.O_CLOEXEC))
    return int(os.pread(_statm[1], 128, 0).split()[1]) * _PAGE_MB
