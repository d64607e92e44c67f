"""One secured broker for the session: PLAINTEXT plus SASL_SSL, StandardAuthorizer on.

Users: ``gnosis`` (super user) and ``mallory`` (no rights until a test grants some ACLs).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from gnosis.config import Settings
from gnosis.streams.kafka.broker import SecureFiles


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
