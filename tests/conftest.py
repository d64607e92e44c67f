"""Shared fixtures: a real Kafka broker for the whole session, and helpers around it.

``kafka_bootstrap`` resolves, in order: ``$KAFKA_BOOTSTRAP_SERVERS``; a testcontainers
``KafkaContainer`` when a Docker daemon answers; else a :class:`LocalKafka` broker (KRaft,
jars from Maven) in a temporary folder, stopped at the end of the session.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

from gnosis.config import Settings

# Shared CI machines are noisy: property tests are judged on what they find, not on time.
hypothesis_settings.register_profile("gnosis", deadline=None)
hypothesis_settings.load_profile("gnosis")


def _docker_answers() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=2)
        client.ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of a running Kafka broker for this test session."""
    env = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if env:
        yield env
        return
    if _docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    from gnosis.streams.kafka.broker import LocalKafka

    kafka = LocalKafka(port=0, data_dir=tmp_path_factory.mktemp("kafka"))
    kafka.start(timeout=90)
    try:
        yield kafka.bootstrap_servers
    finally:
        kafka.stop()


@pytest.fixture
def kafka_settings(kafka_bootstrap: str, tmp_path: Path) -> Callable[..., Settings]:
    """Factory of Settings with uniquely named topics and app id, so tests never share.

    Keyword arguments override ``[worker]`` fields, e.g. ``processing_guarantee=...``.
    """

    def make(partitions: int = 2, **worker: Any) -> Settings:
        tag = uuid.uuid4().hex[:8]
        base = Settings()
        kafka = replace(base.kafka, bootstrap_servers=kafka_bootstrap, partitions=partitions,
                        bars_topic=f"bars-{tag}", news_topic=f"news-{tag}",
                        signals_topic=f"signals-{tag}", deadletter_topic=f"deadletter-{tag}")
        w = replace(base.worker, app_id=f"gnosis-{tag}",
                    commit_interval=0.1, log_level=worker.pop("log_level", "info"), **worker)
        return replace(base, kafka=kafka, worker=w)

    return make


def settings_env(settings: Settings) -> dict[str, str]:
    """``GNOSIS_<SECTION>__<KEY>`` variables that reproduce ``settings`` in a subprocess."""
    return {f"GNOSIS_{section.upper()}__{key.upper()}": str(value)
            for section, key, value in settings.as_rows()}


@pytest.fixture
def gnosis_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the ``gnosis`` command with ``Settings`` given as environment variables."""

    def run(settings: Settings, *args: object, timeout: float = 300
            ) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "gnosis.cli", *map(str, args)],
                              env={**os.environ, **settings_env(settings)},
                              capture_output=True, text=True, timeout=timeout, check=False)

    return run


class WorkerProcess:
    """``python -m gnosis.streams.service`` as a child process, for end-to-end tests."""

    def __init__(self, settings: Settings, log: Path) -> None:
        self.settings = settings
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        env = {**os.environ, **settings_env(self.settings)}
        with self.log.open("ab") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "gnosis.streams.service"],
                                            env=env, stdout=out, stderr=subprocess.STDOUT)
        return self

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no final commit."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        """SIGTERM and wait; SIGKILL if it hangs."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@pytest.fixture
def worker_process(tmp_path: Path) -> Iterator[Callable[[Settings], WorkerProcess]]:
    """Factory of started worker subprocesses; all are stopped after the test."""
    started: list[WorkerProcess] = []

    def start(settings: Settings) -> WorkerProcess:
        worker = WorkerProcess(settings, tmp_path / f"worker-{len(started)}.log").start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def kafka_topics(kafka_settings: Callable[..., Settings]) -> Callable[[Settings], None]:
    """Create every topic of a Settings object (see ``gnosis.streams.topics``)."""
    from gnosis.streams.topics import ensure_topics

    def create(settings: Settings) -> None:
        asyncio.run(ensure_topics(settings))

    return create


def produce(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes]],
            partition: int | None = None) -> None:
    """Send (key, value) records and wait until the broker has them all."""
    from aiokafka import AIOKafkaProducer

    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                    enable_idempotence=True, linger_ms=5)
        await producer.start()
        try:
            for key, value in records:
                await producer.send(topic, value, key=key, partition=partition)
            await producer.flush()
        finally:
            await producer.stop()

    asyncio.run(run())

