"""Per-bar metrics gathered over a batch read exactly as if observed one by one."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from gnosis.sinks.metrics import observe_many

_BUCKETS = (0.001, 0.01, 0.1, 1.0, 10.0)


def _pair() -> tuple[CollectorRegistry, Histogram, CollectorRegistry, Histogram]:
    one, many = CollectorRegistry(), CollectorRegistry()
    return (one, Histogram("h_seconds", "h", buckets=_BUCKETS, registry=one),
            many, Histogram("h_seconds", "h", buckets=_BUCKETS, registry=many))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([0.0, *_BUCKETS, 20.0]) | st.floats(0.0, 30.0), max_size=60))
def test_observe_many_equals_observe_one_by_one(values: list[float]) -> None:
    """Bucket counts (bounds included, +Inf too), count and sum are the same."""
    one_registry, one, many_registry, many = _pair()
    for v in values:
        one.observe(v)
    half = len(values) // 2
    observe_many(many, values[:half])  # twice, so that counts add up across flushes
    observe_many(many, np.asarray(values[half:]))
    expected, got = _samples(one_registry), _samples(many_registry)
    assert expected.keys() == got.keys()
    for key, value in expected.items():
        if key[0] == "h_seconds_sum":  # summed in another order
            assert abs(got[key] - value) <= 1e-9 * max(1.0, abs(value))
        else:
            assert got[key] == value, key


def _samples(registry: CollectorRegistry) -> dict[tuple[str, str | None], float]:
    return {(s.name, s.labels.get("le")): s.value
            for s in next(iter(registry.collect())).samples if "created" not in s.name}


def test_observe_many_of_nothing_changes_nothing() -> None:
    _, _, many_registry, many = _pair()
    before = generate_latest(many_registry)
    observe_many(many, [])
    assert generate_latest(many_registry) == before
