"""One secured broker for the session: PLAINTEXT plus SASL_SSL, StandardAuthorizer on.

Users: ``gnosis`` (super user) and ``mallory`` (no rights until a test grants some ACLs).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import for_code
from aiokafka.protocol.admin import CreateAclsRequest
from conftest import WorkerProcess

from gnosis.config import Settings
from gnosis.replay.sample import write_sample
from gnosis.streams.kafka.broker import KafkaError, SecureFiles, free_port


@dataclass(frozen=True)
class SecuredKafka:
    """What the tests need of the secured broker."""

    plaintext: str
    """PLAINTEXT bootstrap (the ANONYMOUS super user: for set-up only)."""
    sasl_ssl: str
    files: SecureFiles

    def settings(self, user: str = "gnosis", **kafka: str) -> Settings:
        """Settings that connect as ``user`` over SASL_SSL, the password read from its file."""
        base = Settings()
        k = replace(base.kafka, bootstrap_servers=self.sasl_ssl, security_protocol="SASL_SSL",
                    sasl_mechanism="SCRAM-SHA-512", sasl_username=user,
                    sasl_password_file=str(self.files.password_file(user)),
                    ssl_cafile=str(self.files.cafile))
        return replace(base, kafka=replace(k, **kafka))


@pytest.fixture(scope="session")
def secured_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredKafka]:
    """Started as a user would: ``gnosis kafka up --sasl-ssl``; its printed settings used."""
    data = tmp_path_factory.mktemp("secured-kafka")
    cli = [sys.executable, "-m", "gnosis.cli", "kafka"]
    up = subprocess.run([*cli, "up", "--port", "0", "--controller-port", "0", "--sasl-ssl",
                         "--sasl-port", "0", "--restricted-user", "mallory", "--authorizer",
                         "--data-dir", str(data)],
                        capture_output=True, text=True, timeout=300, check=False)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        exports = dict(re.findall(r"export GNOSIS_KAFKA__(\w+)=(\S+)", up.stdout))
        plaintext = re.search(r"Kafka up on (\S+) ", up.stdout)
        assert plaintext and exports["SASL_USERNAME"] == "gnosis", up.stdout
        files = SecureFiles(Path(exports["SSL_CAFILE"]).parent)
        assert Path(exports["SASL_PASSWORD_FILE"]) == files.password_file("gnosis")
        assert files.password("gnosis") not in up.stdout + up.stderr
        yield SecuredKafka(plaintext.group(1), exports["BOOTSTRAP_SERVERS"], files)
    finally:
        subprocess.run([*cli, "down", "--data-dir", str(data)], capture_output=True,
                       timeout=60, check=False)


def kafka_env(settings: Settings) -> dict[str, str]:
    """The process environment with ``[kafka]`` given only as ``GNOSIS_KAFKA__*``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GNOSIS_")}
    for section, key, value in settings.as_rows():
        if section == "kafka":
            env[f"GNOSIS_KAFKA__{key.upper()}"] = str(value)
    return env


def gnosis(settings: Settings, *args: str, cwd: Path | None = None
           ) -> subprocess.CompletedProcess[str]:
    """``gnosis ARGS`` in a child process configured by environment variables only."""
    return subprocess.run([sys.executable, "-m", "gnosis.cli", *args], capture_output=True,
                          text=True, env=kafka_env(settings), cwd=cwd, timeout=300,
                          check=False)


def unique(settings: Settings, **worker: object) -> Settings:
    """``settings`` with topics, app id and web port of their own; ``worker`` overrides
    ``[worker]`` fields."""
    tag = uuid.uuid4().hex[:8]
    kafka = replace(settings.kafka, partitions=2, bars_topic=f"bars-{tag}",
                    news_topic=f"news-{tag}", signals_topic=f"signals-{tag}",
                    deadletter_topic=f"deadletter-{tag}")
    fields: dict[str, object] = {"app_id": f"gnosis-{tag}", "web_port": free_port(),
                                 "commit_interval": 0.1, "log_level": "warning", **worker}
    return replace(settings, kafka=kafka, worker=replace(settings.worker, **fields))


def small_sample(directory: Path, per_ticker: int = 150) -> tuple[Path, Path, int]:
    """The first ``per_ticker`` bars of each sample ticker and the headlines up to them."""
    bars_csv, news_csv = write_sample(directory / "full")
    bars = pd.read_csv(bars_csv).groupby("ticker").head(per_ticker)
    last = pd.to_datetime(bars["timestamp"]).max()
    news = pd.read_csv(news_csv)
    news = news[pd.to_datetime(news["timestamp"], format="ISO8601") <= last]
    bars_path, news_path = directory / "bars.csv", directory / "news.csv"
    bars.to_csv(bars_path, index=False)
    news.to_csv(news_path, index=False)
    return bars_path, news_path, len(bars)


def health(port: int) -> tuple[int, dict[str, object]] | None:
    """(HTTP status, JSON body) of the worker's ``/health``; ``None`` while nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=3) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except (urllib.error.URLError, OSError):
        return None


def wait_health(worker: WorkerProcess, until: Callable[[int, dict[str, object]], bool],
                timeout: float = 180.0) -> tuple[int, dict[str, object]]:
    """Poll ``/health`` of a live ``worker`` until ``until(status, body)``; its answer."""
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        assert worker.alive(), worker.log.read_text()[-3000:]
        seen = health(worker.settings.worker.web_port)
        if seen is not None and until(*seen):
            return seen
        time.sleep(0.3)
    raise AssertionError(f"/health never matched; last {seen}; "
                         f"log: {worker.log.read_text()[-3000:]}")


def wait_healthy(worker: WorkerProcess, timeout: float = 180.0) -> dict[str, object]:
    """Wait until the worker's ``/health`` answers 200; its body."""
    return wait_health(worker, lambda status, _: status == 200, timeout)[1]


_ACL_OPERATIONS = {"ALL": 2, "READ": 3, "WRITE": 4, "CREATE": 5, "DESCRIBE": 8}


def grant_acls(bootstrap_servers: str, user: str, topics: Sequence[str] = (),
               groups: Sequence[str] = (), operations: tuple[str, ...] = ("ALL",)) -> None:
    """Allow ``User:<user>`` ``operations`` on each literal topic and consumer group name.

    Sent over the PLAINTEXT listener, whose ``ANONYMOUS`` principal is a super user of a
    broker started with ``SecureListener(authorizer=True)``.
    """
    topic, group, literal, any_host, allow = 2, 3, 3, "*", 3
    resources = [(topic, name) for name in topics] + [(group, name) for name in groups]

    async def run() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
        await admin.start()
        try:
            for kind, name in resources:
                for op in operations:
                    response = await admin._send_to_controller(CreateAclsRequest(
                        kind, name, literal, f"User:{user}", any_host,
                        _ACL_OPERATIONS[op], allow))
                    for code, message in response.creation_responses:
                        if code:
                            raise KafkaError(f"ACL {op} on {name} for {user}: "
                                             f"{for_code(code).__name__} {message}")
        finally:
            await admin.close()

    asyncio.run(run())
