"""One secured broker for the session: PLAINTEXT plus SASL_SSL, StandardAuthorizer on.

Users: ``gnosis`` (super user) and ``mallory`` (no rights until a test grants some ACLs).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from gnosis.config import Settings
from gnosis.streams.kafka.broker import LocalKafka, SecureFiles, SecureListener


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
    kafka = LocalKafka(port=0, data_dir=tmp_path_factory.mktemp("secured-kafka"),
                       secure=SecureListener(port=0, users=("gnosis",),
                                             restricted=("mallory",), authorizer=True))
    kafka.start(timeout=120)
    try:
        yield SecuredKafka(kafka.bootstrap_servers, kafka.sasl_ssl_bootstrap_servers,
                           kafka.secure_files)
    finally:
        kafka.stop()


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
