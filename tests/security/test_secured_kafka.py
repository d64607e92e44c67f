"""Gnosis against a SASL_SSL broker (SCRAM-SHA-512, a local CA, StandardAuthorizer on).

Settings come only from ``GNOSIS_KAFKA__*`` variables, the password from a file, as a user
would run it; every refusal must be one line naming the cause and the setting to fix.
"""

from __future__ import annotations

import asyncio
import io
import re
import shutil
import subprocess
from dataclasses import replace

import pytest
from aiokafka.conn import AIOKafkaConnection, ScramAuthenticator
from aiokafka.errors import SaslAuthenticationFailed
from conftest import WorkerProcess
from rich.console import Console

from gnosis.security import MASK, client_options
from gnosis.sinks.files import read_signals
from gnosis.streams.kafka.broker import free_port, make_certificates

from .conftest import SecuredKafka, gnosis, grant_acls, small_sample, unique, wait_healthy

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


@pytest.fixture(scope="module")
def secured_run(secured_kafka: SecuredKafka, tmp_path_factory: pytest.TempPathFactory):
    """Topics, a worker and ``gnosis replay --via kafka``, all over SASL_SSL."""
    tmp = tmp_path_factory.mktemp("secured-run")
    settings = unique(secured_kafka.settings())
    bars, news, n_bars = small_sample(tmp)
    topics = gnosis(settings, "kafka", "topics")
    inprocess = gnosis(settings, "replay", str(bars), str(news), "-o", str(tmp / "in.jsonl"))
    assert inprocess.returncode == 0, inprocess.stderr
    password = secured_kafka.files.password("gnosis")
    worker = WorkerProcess(settings, tmp / "worker.log").start()
    try:
        wait_healthy(worker)
        via_kafka = gnosis(settings, "replay", str(bars), str(news), "--via", "kafka",
                           "-o", str(tmp / "kafka.jsonl"))
    finally:
        worker.stop()
    return {"settings": settings, "topics": topics, "kafka": via_kafka, "tmp": tmp,
            "bars": n_bars, "password": password, "worker_log": worker.log}


def test_topics_are_created_over_sasl_ssl(secured_run) -> None:
    topics = secured_run["topics"]
    assert topics.returncode == 0, topics.stderr
    settings = secured_run["settings"]
    for name in (settings.kafka.bars_topic, settings.kafka.signals_topic):
        assert re.search(rf"^created\s+{name}\s", topics.stdout, re.M)


def test_replay_via_kafka_over_sasl_ssl_equals_in_process(secured_run) -> None:
    assert secured_run["kafka"].returncode == 0, secured_run["kafka"].stderr
    tmp = secured_run["tmp"]
    expected = read_signals(tmp / "in.jsonl").sort_values("signal_id").reset_index(drop=True)
    got = read_signals(tmp / "kafka.jsonl").sort_values("signal_id").reset_index(drop=True)
    assert len(expected) == secured_run["bars"]
    assert list(got["signal_id"]) == list(expected["signal_id"])
    assert list(got["signal_type"]) == list(expected["signal_type"])
    assert got["confidence"].to_numpy() == pytest.approx(expected["confidence"].to_numpy(),
                                                         abs=1e-9)


def test_no_secret_in_outputs_or_worker_log(secured_run) -> None:
    password = secured_run["password"]
    for result in (secured_run["topics"], secured_run["kafka"]):
        assert password not in result.stdout + result.stderr
    assert password not in secured_run["worker_log"].read_text()
    shown = gnosis(secured_run["settings"], "config").stdout
    assert secured_run["settings"].kafka.sasl_password_file in shown
    assert password not in shown


def test_config_masks_a_password_given_directly(secured_kafka: SecuredKafka) -> None:
    password = secured_kafka.files.password("gnosis")
    settings = secured_kafka.settings(sasl_password=password, sasl_password_file="")
    shown = gnosis(settings, "config")
    assert shown.returncode == 0
    assert password not in shown.stdout
    assert re.search(rf"^kafka\.sasl_password\s+'{re.escape(MASK)}'", shown.stdout, re.M)


def test_demo_signal_reader_over_sasl_ssl(secured_run) -> None:
    from gnosis.demo import _watch

    settings, tmp = secured_run["settings"], secured_run["tmp"]
    console = Console(file=io.StringIO(), force_terminal=False)
    got = asyncio.run(_watch(settings, secured_run["bars"], console, timeout=60.0))
    expected = read_signals(tmp / "in.jsonl")
    assert sorted(s.signal_id for s in got) == sorted(expected["signal_id"])


def _librdkafka_version() -> tuple[int, ...]:
    banner = subprocess.run(["kcat", "-V"], capture_output=True, text=True).stdout
    found = re.search(r"librdkafka (\d+)\.(\d+)\.(\d+)", banner)
    assert found, banner
    return tuple(int(part) for part in found.groups())


def _kcat(secured_kafka: SecuredKafka, mechanism: str, *args: str
          ) -> subprocess.CompletedProcess[str]:
    files = secured_kafka.files
    return subprocess.run(
        ["kcat", "-b", secured_kafka.sasl_ssl, "-X", "security.protocol=SASL_SSL",
         "-X", f"sasl.mechanisms={mechanism}", "-X", "sasl.username=gnosis",
         "-X", f"sasl.password={files.password('gnosis')}",
         "-X", f"ssl.ca.location={files.cafile}", *args],
        capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat is not installed")
def test_kcat_reads_the_signals_over_sasl_ssl(secured_run, secured_kafka) -> None:
    settings = secured_run["settings"]
    # librdkafka's SCRAM works against Kafka 4 only from 2.6.1 (see docs/operations.md);
    # PLAIN over TLS takes the same user and password on the same listener.
    read = _kcat(secured_kafka, "PLAIN", "-C", "-t", settings.kafka.signals_topic, "-e",
                 "-q", "-X", "isolation.level=read_committed", "-f", "%k\n")
    assert read.returncode == 0, read.stderr
    keys = read.stdout.split()
    assert len(keys) == secured_run["bars"]
    assert set(keys) == {"GOOG", "EURUSD"}


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat is not installed")
def test_kcat_scram_against_kafka_4_needs_librdkafka_2_6_1(secured_kafka) -> None:
    listed = _kcat(secured_kafka, "SCRAM-SHA-512", "-L", "-m", "5")
    if _librdkafka_version() >= (2, 6, 1):
        assert listed.returncode == 0, listed.stderr
    else:
        # Before 2.6.1 librdkafka repeats the client nonce in its final SCRAM message;
        # Kafka 4 checks the nonce and answers "invalid credentials".
        assert listed.returncode != 0
        assert "invalid credentials with SASL mechanism SCRAM-SHA-512" in listed.stderr


class _NonceTwice(ScramAuthenticator):
    """SCRAM as librdkafka before 2.6.1 does it: the client nonce prepended once more to the
    server's nonce (which already starts with it), in the final message and in what the
    proof signs, so only the nonce check can tell it from a correct login."""

    def process_server_first_message(self, server_first: str) -> None:
        client_nonce = self._nonce
        super().process_server_first_message(server_first)
        self._nonce = client_nonce + self._nonce
        self._auth_message = f"{self._auth_message.rsplit(',r=', 1)[0]},r={self._nonce}"
        signed = self._auth_message.encode()
        self._client_signature = self.hmac(self._stored_key, signed)
        self._client_proof = self._xor_bytes(self._client_key, self._client_signature)
        self._server_signature = self.hmac(self._server_key, signed)


class _LibrdkafkaStyleConnection(AIOKafkaConnection):
    def authenticator_scram(self) -> _NonceTwice:
        return _NonceTwice(loop=self._loop, sasl_plain_password=self._sasl_plain_password,
                           sasl_plain_username=self._sasl_plain_username,
                           sasl_mechanism=self._sasl_mechanism)


@pytest.mark.parametrize("connection", [AIOKafkaConnection, _LibrdkafkaStyleConnection])
def test_kafka_4_refuses_scram_that_repeats_the_client_nonce(secured_kafka, connection
                                                             ) -> None:
    """Why kcat's SCRAM is refused with the right password: the nonce, nothing else."""
    options = client_options(secured_kafka.settings())
    host, _, port = secured_kafka.sasl_ssl.rpartition(":")

    async def login() -> None:
        conn = connection(host, int(port), ssl_context=options["ssl_context"],
                          security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
                          sasl_plain_username="gnosis",
                          sasl_plain_password=options["sasl_plain_password"])
        try:
            await conn.connect()
        finally:
            conn.close()

    if connection is AIOKafkaConnection:
        asyncio.run(login())
    else:
        with pytest.raises(SaslAuthenticationFailed, match="invalid credentials"):
            asyncio.run(login())


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def _plaintext_port(secured_kafka: SecuredKafka) -> str:
    return secured_kafka.plaintext.replace("127.0.0.1", "localhost")


REFUSALS = {
    "wrong password": (
        lambda sk, tmp: sk.settings(sasl_password="not-the-password", sasl_password_file=""),
        ["refused the credentials of user 'gnosis'", "kafka.sasl_password"]),
    "wrong password file": (
        lambda sk, tmp: sk.settings(sasl_password_file=str(sk.files.password_file("mallory"))),
        ["refused the credentials", "kafka.sasl_password_file"]),
    "unknown CA": (
        lambda sk, tmp: sk.settings(ssl_cafile=""),
        ["CERTIFICATE_VERIFY_FAILED", "kafka.ssl_cafile"]),
    "another CA": (
        lambda sk, tmp: sk.settings(ssl_cafile=str(make_certificates(tmp / "other").cafile)),
        ["CERTIFICATE_VERIFY_FAILED", "is not the CA that signed it"]),
    "mechanism not enabled": (
        lambda sk, tmp: sk.settings(sasl_mechanism="SCRAM-SHA-256"),
        ["does not accept SASL mechanism SCRAM-SHA-256", "kafka.sasl_mechanism"]),
    "plaintext client on the TLS port": (
        lambda sk, tmp: sk.settings(security_protocol="PLAINTEXT", sasl_mechanism="",
                                    sasl_username=""),
        ["speaks TLS", "kafka.security_protocol is PLAINTEXT"]),
    "TLS client on the plaintext port": (
        lambda sk, tmp: sk.settings(bootstrap_servers=_plaintext_port(sk)),
        ["does not speak TLS", "kafka.bootstrap_servers"]),
    "unreachable broker": (
        lambda sk, tmp: sk.settings(bootstrap_servers=f"localhost:{free_port()}"),
        ["no Kafka broker listens", "kafka.bootstrap_servers"]),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refusal_is_one_line_naming_cause_and_setting(case: str, secured_kafka, tmp_path
                                                      ) -> None:
    make, phrases = REFUSALS[case]
    settings = make(secured_kafka, tmp_path)
    line = _one_line_error(gnosis(settings, "kafka", "topics"))
    for phrase in phrases:
        assert phrase in line
    for user in ("gnosis", "mallory"):
        assert secured_kafka.files.password(user) not in line
    assert "not-the-password" not in line


def test_user_without_rights_on_signals_is_told_so(secured_kafka, tmp_path) -> None:
    settings = unique(secured_kafka.settings())
    assert gnosis(settings, "kafka", "topics").returncode == 0
    grant_acls(secured_kafka.plaintext, "mallory",
                     [settings.kafka.bars_topic, settings.kafka.news_topic])
    mallory = replace(settings, kafka=replace(
        settings.kafka, sasl_username="mallory",
        sasl_password_file=str(secured_kafka.files.password_file("mallory"))))
    bars, news, _ = small_sample(tmp_path)
    line = _one_line_error(gnosis(mallory, "replay", str(bars), str(news), "--via", "kafka",
                                  "-o", str(tmp_path / "out.jsonl")))
    assert f"denied user 'mallory' access to topic {settings.kafka.signals_topic}" in line
    assert "TOPIC_AUTHORIZATION_FAILED" in line
    assert "kafka.sasl_username" in line
    assert secured_kafka.files.password("mallory") not in line
