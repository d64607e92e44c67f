"""``gnosis.security`` without a broker: options, password files, checks, redaction."""

from __future__ import annotations

import logging
import ssl
import string
from dataclasses import replace

import pytest
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    SaslAuthenticationFailed,
)
from hypothesis import given
from hypothesis import strategies as st

from gnosis.config import ConfigError, Settings
from gnosis.security import (
    MASK,
    CauseRecorder,
    client_options,
    describe_failure,
    refusal,
    sasl_password,
    shown_value,
)


def _sasl(**kafka: str) -> Settings:
    base = Settings()
    k = replace(base.kafka, bootstrap_servers="broker.example:9096",
                security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
                sasl_username="gnosis", sasl_password="from-setting")
    return replace(base, kafka=replace(k, **kafka))


def test_password_file_wins_is_stripped_and_reread(tmp_path) -> None:
    secret = tmp_path / "password"
    secret.write_text("  first-secret\n")
    settings = _sasl(sasl_password_file=str(secret))
    opts = client_options(settings)
    assert opts["sasl_plain_password"] == "first-secret"
    assert opts["sasl_plain_username"] == "gnosis"
    secret.write_text("rotated\n")  # a Kubernetes Secret update
    assert sasl_password(settings.kafka) == "rotated"


def test_tls_options_verify_the_broker(tmp_path) -> None:
    context = client_options(_sasl())["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname


def test_plaintext_options_carry_no_credentials() -> None:
    assert client_options(Settings()) == {"bootstrap_servers": "127.0.0.1:9092",
                                          "security_protocol": "PLAINTEXT"}


@pytest.mark.parametrize(("change", "named"), [
    ({"security_protocol": "TLS"}, "kafka.security_protocol"),
    ({"sasl_mechanism": "SCRAM"}, "kafka.sasl_mechanism"),
    ({"security_protocol": "PLAINTEXT"}, "kafka.security_protocol is PLAINTEXT"),
    ({"sasl_username": ""}, "kafka.sasl_username"),
    ({"sasl_password": ""}, "kafka.sasl_password_file"),
    ({"sasl_password_file": "/nonexistent/password"}, "kafka.sasl_password_file"),
    ({"ssl_cafile": "/nonexistent/ca.pem"}, "kafka.ssl_cafile"),
])
def test_unusable_settings_are_named_before_connecting(change, named) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        client_options(_sasl(**change))


def test_a_cafile_that_is_not_pem_is_named(tmp_path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    with pytest.raises(ConfigError, match=r"kafka\.ssl_cafile"):
        client_options(_sasl(ssl_cafile=str(bad)))


def test_only_secrets_are_masked() -> None:
    assert shown_value("kafka", "sasl_password", "hunter2") == MASK
    assert shown_value("kafka", "sasl_password", "") == ""
    assert shown_value("kafka", "sasl_username", "gnosis") == "gnosis"
    assert "from-setting" not in repr(_sasl())


def test_recorder_keeps_the_cause_aiokafka_only_logs() -> None:
    recorder = CauseRecorder()
    logger = logging.getLogger("aiokafka")
    logger.addHandler(recorder)
    try:
        cause = SaslAuthenticationFailed("invalid credentials")
        logging.getLogger("aiokafka.client").error('Unable connect to "%s:%s": %s',
                                                   "broker.example", 9096, cause)
    finally:
        logger.removeHandler(recorder)
    assert recorder.last is cause
    line = describe_failure(KafkaConnectionError("Unable to bootstrap"), _sasl(),
                            recorder.last)
    assert "refused the credentials of user 'gnosis'" in line
    assert "kafka.sasl_password" in line


@given(st.text(string.ascii_letters + string.digits + "!#$%&+-./:;<=>?@^_~", min_size=4))
def test_no_message_shows_the_password(password: str) -> None:
    settings = _sasl(sasl_password=password)
    for exc in (KafkaConnectionError(f"auth with {password} failed"),
                RuntimeError(f"odd: {password}"), OSError(f"no route {password}")):
        line = describe_failure(exc, settings)
        assert password not in line
        assert "\n" not in line


@pytest.mark.parametrize(("exc", "cause", "settings"), [
    (SaslAuthenticationFailed("invalid credentials"), "authentication",
     ["kafka.sasl_username", "kafka.sasl_password"]),
    (ssl.SSLCertVerificationError("unable to get local issuer certificate"), "tls",
     ["kafka.ssl_cafile"]),
    (GroupAuthorizationFailedError("gnosis"), "authorization", ["kafka.sasl_username"]),
    (ConnectionRefusedError(111, "Connect call failed"), "unreachable",
     ["kafka.bootstrap_servers"]),
    (ConfigError("kafka.sasl_password_file: cannot read /run/secrets/p"), "config",
     ["kafka.sasl_password_file"]),
    (RuntimeError("something else"), "other", []),
])
def test_refusal_names_its_kind_of_cause_and_the_settings(exc, cause, settings) -> None:
    found = refusal(exc, _sasl())
    assert (found.cause, found.settings) == (cause, settings)
    assert found.line == describe_failure(exc, _sasl())
