"""``gnosis.streams.access`` without a broker: waits, the refused /health body, metrics."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

import pytest
from aiokafka.errors import KafkaConnectionError, SaslAuthenticationFailed

from gnosis.config import ConfigError, Settings
from gnosis.sinks.metrics import REGISTRY
from gnosis.streams.access import KafkaAccess, is_refusal


def _settings(cap: float = 30.0) -> Settings:
    base = Settings()
    kafka = replace(base.kafka, bootstrap_servers="broker.example:9096",
                    security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
                    sasl_username="gnosis", sasl_password="hunter2-secret")
    return replace(base, kafka=kafka, worker=replace(base.worker, retry_backoff_max=cap))


def _refused(cause: str) -> float:
    return REGISTRY.get_sample_value("gnosis_kafka_refused", {"cause": cause}) or 0.0


def _refusals(cause: str) -> float:
    return REGISTRY.get_sample_value("gnosis_kafka_refusals_total", {"cause": cause}) or 0.0


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("cap", "waits"), [(30.0, [1, 2, 4, 8, 16, 30, 30]),
                                            (0.5, [0.5, 0.5, 0.5]),
                                            (0.0, [0.1, 0.1])])
def test_waits_double_up_to_the_cap(cap: float, waits: list[float]) -> None:
    access = KafkaAccess(_settings(cap))
    got = []
    for _ in waits:
        access.attempts += 1
        got.append(access.wait())
    assert got == waits


def test_refusal_in_health_and_metrics_until_granted() -> None:
    clock = _Clock()
    access = KafkaAccess(_settings(), clock)
    before = {cause: _refusals(cause) for cause in ("authentication", "unreachable")}
    bootstrap = KafkaConnectionError("Unable to bootstrap")
    with access.watching():
        for _ in range(2):
            access.attempt()
            # aiokafka logs the cause of a failed bootstrap and raises a bare error.
            logging.getLogger("aiokafka.conn").error(
                "Unable connect to %s: %s", "broker.example:9096",
                SaslAuthenticationFailed("invalid credentials for hunter2-secret"))
            delay = asyncio.run(access.refused(bootstrap))
        assert delay == 2.0
        clock.now += 1.5
        body = access.health()
        assert body is not None
        assert body["status"] == "refused" and body["cause"] == "authentication"
        assert body["settings"] == ["kafka.sasl_username", "kafka.sasl_password"]
        assert body["attempts"] == 2 and body["retrying_in"] == 0.5
        assert "hunter2-secret" not in str(body)
        assert _refused("authentication") == 1 and _refused("unreachable") == 0

        access.attempt()  # a cause logged in an earlier attempt is not this one's
        asyncio.run(access.refused(bootstrap))
    body = access.health()
    assert body is not None and body["cause"] == "unreachable" and body["attempts"] == 3
    assert _refused("authentication") == 0 and _refused("unreachable") == 1
    assert _refusals("authentication") == before["authentication"] + 2
    assert _refusals("unreachable") == before["unreachable"] + 1

    access.granted()
    assert access.health() is None and access.attempts == 0
    assert _refused("unreachable") == 0


def test_a_fault_of_the_worker_is_not_a_refusal() -> None:
    assert is_refusal(KafkaConnectionError("Unable to bootstrap"))
    assert is_refusal(ConfigError("kafka.sasl_password_file: cannot read"))
    assert is_refusal(ConnectionRefusedError(111, "refused"))
    assert not is_refusal(KeyError("a bug"))
