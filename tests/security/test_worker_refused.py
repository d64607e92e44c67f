"""A live worker that Kafka refuses stays up, says why, and gets in once it may.

Real worker processes against the secured broker: ``/health`` answers 503 with the one line
naming the cause and the setting, ``gnosis_kafka_refused{cause}`` is 1, the log has that
line and no traceback; fixing the password file or granting the ACLs lets the same process
in, with no restart.
"""

from __future__ import annotations

import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import WorkerProcess
from prometheus_client.parser import text_string_to_metric_families

from gnosis.config import Settings
from gnosis.sinks.files import read_signals
from gnosis.streams.kafka.broker import free_port
from gnosis.streams.topics import topic_specs

from .conftest import (
    SecuredKafka,
    gnosis,
    grant_acls,
    small_sample,
    unique,
    wait_health,
    wait_healthy,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

WRONG = "not-the-password"


def _quick(settings: Settings) -> Settings:
    """Unique names, a short cap on the wait between attempts, and the info log."""
    return unique(settings, retry_backoff_max=0.5, log_level="info")


def _metrics(worker: WorkerProcess) -> str:
    url = f"http://127.0.0.1:{worker.settings.worker.web_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


def _sample(text: str, name: str, cause: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == {"cause": cause}:
                return sample.value
    raise AssertionError(f"no {name}{{cause={cause!r}}} in /metrics")


def _refused(worker: WorkerProcess, cause: str, phrase: str = "") -> dict[str, object]:
    """Wait for a 503 ``refused`` body of ``cause`` whose reason contains ``phrase``."""
    _, body = wait_health(worker, lambda status, body: (
        status == 503 and body.get("status") == "refused" and body.get("cause") == cause
        and phrase in str(body.get("reason"))))
    return body


def _check_log(worker: WorkerProcess, cause: str) -> str:
    text = worker.log.read_text()
    refusals = [line for line in text.splitlines() if "Kafka refused the worker" in line]
    assert refusals, text[-3000:]
    assert all(f"({cause}, attempt" in line for line in refusals), refusals
    assert "Traceback" not in text, text[-3000:]
    assert "Unclosed" not in text, text[-3000:]  # a refused attempt closes its clients
    return text


def test_wrong_password_file_then_fixed_without_restart(secured_kafka: SecuredKafka,
                                                        tmp_path: Path) -> None:
    password_file = tmp_path / "kafka-password"
    password_file.write_text(WRONG + "\n")
    settings = _quick(secured_kafka.settings(sasl_password_file=str(password_file)))
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    shown: list[str] = []
    try:
        body = _refused(worker, "authentication")
        assert "refused the credentials of user 'gnosis' (SCRAM-SHA-512)" in body["reason"]
        assert "kafka.sasl_password_file" in body["reason"]
        assert "kafka.sasl_password_file" in body["settings"]
        assert body["attempts"] >= 1 and body["retrying_in"] >= 0
        # Still refused, and still trying: the process lives on through several attempts.
        body = _refused(worker, "authentication")
        wait_health(worker, lambda _, later: later.get("attempts", 0) > body["attempts"])
        metrics = _metrics(worker)
        assert _sample(metrics, "gnosis_kafka_refused", "authentication") == 1
        assert _sample(metrics, "gnosis_kafka_refused", "authorization") == 0
        assert _sample(metrics, "gnosis_kafka_refusals_total", "authentication") >= 2
        shown += [str(body), metrics]

        password_file.write_text(secured_kafka.files.password("gnosis") + "\n")
        shown.append(str(wait_healthy(worker)))
        metrics = _metrics(worker)
        assert _sample(metrics, "gnosis_kafka_refused", "authentication") == 0
        shown.append(metrics)

        bars, news, n_bars = small_sample(tmp_path, per_ticker=40)
        replay = gnosis(settings, "replay", str(bars), str(news), "--via", "kafka",
                        "-o", str(tmp_path / "signals.jsonl"))
        assert replay.returncode == 0, replay.stderr
        assert len(read_signals(tmp_path / "signals.jsonl")) == n_bars
        assert worker.alive()
    finally:
        worker.stop()
    log = _check_log(worker, "authentication")
    assert "Kafka lets the worker in after" in log
    for secret in (WRONG, secured_kafka.files.password("gnosis")):
        assert secret not in log
        assert all(secret not in text for text in shown)


def test_user_without_acls_gets_in_once_granted(secured_kafka: SecuredKafka,
                                                tmp_path: Path) -> None:
    settings = _quick(secured_kafka.settings("mallory"))
    as_gnosis = replace(settings, kafka=replace(
        settings.kafka, sasl_username="gnosis",
        sasl_password_file=str(secured_kafka.files.password_file("gnosis"))))
    assert gnosis(as_gnosis, "kafka", "topics").returncode == 0
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        body = _refused(worker, "authorization", "TOPIC_AUTHORIZATION_FAILED")
        assert "denied user 'mallory' access to topic" in body["reason"]
        assert settings.kafka.signals_topic in body["reason"]
        assert body["settings"] == ["kafka.sasl_username"]
        assert _sample(_metrics(worker), "gnosis_kafka_refused", "authorization") == 1

        # Rights on the topics only: the next refusal names the consumer group.
        grant_acls(secured_kafka.plaintext, "mallory",
                   topics=[spec.name for spec in topic_specs(settings)])
        body = _refused(worker, "authorization", "GROUP_AUTHORIZATION_FAILED")
        assert f"access to consumer group {settings.worker.app_id}" in body["reason"]

        grant_acls(secured_kafka.plaintext, "mallory", groups=[settings.worker.app_id])
        assert wait_healthy(worker)["status"] == "ok"
        assert _sample(_metrics(worker), "gnosis_kafka_refused", "authorization") == 0
    finally:
        worker.stop()
    log = _check_log(worker, "authorization")
    assert secured_kafka.files.password("mallory") not in log


def test_unreachable_broker_keeps_the_worker_up(secured_kafka: SecuredKafka,
                                                tmp_path: Path) -> None:
    where = f"localhost:{free_port()}"
    settings = _quick(secured_kafka.settings(bootstrap_servers=where))
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        body = _refused(worker, "unreachable")
        assert f"no Kafka broker listens at {where}" in body["reason"]
        assert body["settings"] == ["kafka.bootstrap_servers"]
        wait_health(worker, lambda _, later: later.get("attempts", 0) > body["attempts"])
        assert _sample(_metrics(worker), "gnosis_kafka_refused", "unreachable") == 1
        assert worker.alive()
    finally:
        worker.stop()
    # SIGTERM while waiting for the next attempt is a clean exit, not a kill.
    assert worker.process is not None and worker.process.returncode == 0
    _check_log(worker, "unreachable")
