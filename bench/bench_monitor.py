"""Overhead of ``PerformanceMonitor.track`` against a bare timer.

Each variant wraps an empty block, so the figure is pure bookkeeping per tracked call;
the baseline, measured in the same run, is two ``time.perf_counter()`` calls and an append
to a bounded deque (the least any timer that keeps its readings does). Figures are the best
of ``--repeats`` runs of ``--calls`` calls each.

    .venv/bin/python bench/bench_monitor.py [--calls 100000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time
from collections import deque
from collections.abc import Callable

import psutil

from gnosis.monitor import PerformanceMonitor

MAX_OVERHEAD_US = 10.0
"""Per-call cost the default monitor (resources sampled, Prometheus fed) should stay under."""


def bare_timer(calls: int) -> None:
    kept: deque[float] = deque(maxlen=10_000)
    clock = time.perf_counter
    for _ in range(calls):
        start = clock()
        kept.append(clock() - start)


def tracked(monitor: PerformanceMonitor) -> Callable[[int], None]:
    def run(calls: int) -> None:
        track = monitor.track
        for _ in range(calls):
            with track("bench"):
                pass

    return run


def psutil_rss(calls: int) -> None:
    process = psutil.Process()
    for _ in range(calls):
        process.memory_info()


def best_us(run: Callable[[int], None], calls: int, repeats: int) -> float:
    """Best time per call, in microseconds."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run(calls)
        best = min(best, time.perf_counter() - started)
    return best / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    variants = {
        "bare timer (baseline)": bare_timer,
        "track: duration only": tracked(PerformanceMonitor(sample_resources=False,
                                                           prometheus=False)),
        "track: + Prometheus histogram": tracked(PerformanceMonitor(sample_resources=False)),
        "track: + RSS and CPU (default)": tracked(PerformanceMonitor()),
        "reference: psutil memory_info()": psutil_rss,
    }
    baseline = None
    results = {}
    print(f"{'variant':<34}{'µs/call':>10}{'x baseline':>12}")
    for name, run in variants.items():
        us = best_us(run, args.calls, args.repeats)
        baseline = baseline or us
        results[name] = us
        print(f"{name:<34}{us:>10.2f}{us / baseline:>12.1f}")
    default = results["track: + RSS and CPU (default)"]
    verdict = "ok" if default <= MAX_OVERHEAD_US else "SLOWER THAN TARGET"
    print(f"\ndefault track() overhead {default - baseline:.2f} µs/call over the bare timer "
          f"(target: total under {MAX_OVERHEAD_US:.0f} µs/call): {verdict}")


if __name__ == "__main__":
    main()
