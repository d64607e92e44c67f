"""Kafka connection security: settings in, client options out, refusals explained.

The one place where ``[kafka]`` settings (protocol, SASL, TLS) become aiokafka options, for
every producer, consumer and admin client of every shell, and where a refused connection
or request becomes one line that names the cause and the setting to change. Nothing here
ever puts a password into a message: :func:`describe_failure` names the user, never the
secret, and scrubs the configured password from any text it quotes.

aiokafka logs the cause of a failed bootstrap (a wrong password, an untrusted certificate)
and then raises a bare ``KafkaConnectionError("Unable to bootstrap ...")``. A
:class:`CauseRecorder` on the ``aiokafka`` logger keeps that cause; :func:`explained` uses
one for a block of client calls, and a long-running process can keep one installed.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gnosis.config import ConfigError, KafkaConfig, Settings

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
SECRET_SETTINGS = frozenset({("kafka", "sasl_password")})
"""``(section, key)`` of settings whose values are never shown."""
MASK = "********"


class KafkaAccessError(RuntimeError):
    """A Kafka connection or request was refused; the message is one line: cause and fix."""


def is_secret(section: str, key: str) -> bool:
    """Whether the setting ``section.key`` holds a secret (shown masked)."""
    return (section, key) in SECRET_SETTINGS


def shown_value(section: str, key: str, value: Any) -> Any:
    """``value`` as it may be displayed: a secret that is set becomes :data:`MASK`."""
    return MASK if is_secret(section, key) and value else value


def sasl_password(kafka: KafkaConfig) -> str:
    """The SASL password: the content of ``sasl_password_file`` when set, else
    ``sasl_password``. Read on every call so a rotated secret file is picked up."""
    if not kafka.sasl_password_file:
        return kafka.sasl_password
    path = Path(kafka.sasl_password_file)
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"kafka.sasl_password_file: cannot read {path}: "
                          f"{exc.strerror or exc}") from None


def check(kafka: KafkaConfig) -> None:
    """Raise :class:`ConfigError` for settings no broker could accept (before connecting)."""
    if kafka.security_protocol not in PROTOCOLS:
        raise ConfigError(f"kafka.security_protocol {kafka.security_protocol!r}: use one of "
                          f"{', '.join(PROTOCOLS)}")
    sasl = kafka.security_protocol.startswith("SASL_")
    if sasl and kafka.sasl_mechanism not in MECHANISMS:
        raise ConfigError(f"kafka.sasl_mechanism {kafka.sasl_mechanism!r}: with "
                          f"{kafka.security_protocol} use one of {', '.join(MECHANISMS)}")
    if not sasl and (kafka.sasl_mechanism or kafka.sasl_username):
        raise ConfigError(f"kafka.sasl_mechanism/sasl_username are set but "
                          f"kafka.security_protocol is {kafka.security_protocol}, which sends "
                          "no credentials: use SASL_SSL (or clear them)")
    if sasl and not kafka.sasl_username:
        raise ConfigError(f"kafka.sasl_username is empty but kafka.security_protocol is "
                          f"{kafka.security_protocol}")
    if sasl and not (kafka.sasl_password or kafka.sasl_password_file):
        raise ConfigError("kafka.sasl_password and kafka.sasl_password_file are both empty "
                          f"but kafka.security_protocol is {kafka.security_protocol}")
    if kafka.ssl_cafile and not Path(kafka.ssl_cafile).is_file():
        raise ConfigError(f"kafka.ssl_cafile: no such file {kafka.ssl_cafile}")


def ssl_context(kafka: KafkaConfig) -> ssl.SSLContext:
    """A verifying TLS context: ``ssl_cafile`` when set, else the system's CA store."""
    from aiokafka.helpers import create_ssl_context

    try:
        return create_ssl_context(cafile=kafka.ssl_cafile or None)
    except ssl.SSLError as exc:
        raise ConfigError(f"kafka.ssl_cafile {kafka.ssl_cafile}: not a PEM CA bundle "
                          f"({exc.reason or exc})") from None


def client_options(settings: Settings) -> dict[str, Any]:
    """Connection keyword arguments for ``AIOKafkaProducer``, ``AIOKafkaConsumer`` and
    ``AIOKafkaAdminClient``: bootstrap servers, protocol, SASL and TLS from ``[kafka]``."""
    k = settings.kafka
    check(k)
    opts: dict[str, Any] = {"bootstrap_servers": k.bootstrap_servers,
                            "security_protocol": k.security_protocol}
    if k.security_protocol.startswith("SASL_"):
        opts.update(sasl_mechanism=k.sasl_mechanism, sasl_plain_username=k.sasl_username,
                    sasl_plain_password=sasl_password(k))
    if k.security_protocol in {"SSL", "SASL_SSL"}:
        opts["ssl_context"] = ssl_context(k)
    return opts


class CauseRecorder(logging.Handler):
    """Keeps the last exception aiokafka logged (the real cause of "Unable to bootstrap").

    Attach it to the ``aiokafka`` logger; :attr:`last` is then the newest connection error
    (``None`` when there was none) to pass to :func:`describe_failure`.
    """

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.last: BaseException | None = None

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        for arg in args:
            if isinstance(arg, BaseException):
                self.last = arg


CAUSES = ("authentication", "tls", "authorization", "unreachable", "config", "other")
"""Kinds of refusal, as :attr:`Refusal.cause` (and the ``cause`` label of the metrics)."""


@dataclass(frozen=True)
class Refusal:
    """Why Kafka refused a connection or request."""

    cause: str
    """One of :data:`CAUSES`."""
    line: str
    """One line naming the cause and what to set; never the password."""

    @property
    def settings(self) -> list[str]:
        """The settings the line names (``kafka.sasl_password_file``, ...), in order."""
        return list(dict.fromkeys(re.findall(r"\bkafka\.[a-z_]+[a-z]", self.line)))


def describe_failure(exc: BaseException, settings: Settings,
                     cause: BaseException | None = None, *, probe: bool = False) -> str:
    """One line naming why Kafka refused ``exc``'s connection or request, and what to set.

    ``cause`` is what a :class:`CauseRecorder` saw (aiokafka raises a bare bootstrap error
    and only logs the reason). With ``probe`` a connection that the broker closed is
    checked for speaking TLS (a blocking handshake of up to a few seconds: in an event
    loop, run it in a thread). The line never contains the password.
    """
    return refusal(exc, settings, cause, probe=probe).line


def refusal(exc: BaseException, settings: Settings, cause: BaseException | None = None, *,
            probe: bool = False) -> Refusal:
    """:func:`describe_failure`'s line with the kind of cause it names."""
    kind, line = _describe(exc, settings, cause, probe)
    return Refusal(kind, _redact(line, settings))


def _chain(exc: BaseException, cause: BaseException | None) -> list[BaseException]:
    # The recorded cause first: it is the specific error behind a generic one.
    seen: list[BaseException] = []
    for start in (cause, exc):
        current = start
        while current is not None and all(current is not s for s in seen):
            seen.append(current)
            current = current.__cause__ or current.__context__
    return seen


def _first(chain: list[BaseException], *names: str) -> BaseException | None:
    """The first exception whose class (or a base class) has one of ``names``."""
    for item in chain:
        if {c.__name__ for c in type(item).__mro__} & set(names):
            return item
    return None


def _describe(exc: BaseException, settings: Settings, cause: BaseException | None,
              probe: bool) -> tuple[str, str]:
    """(kind of cause, line): see :func:`refusal`."""
    k = settings.kafka
    chain = _chain(exc, cause)
    where = k.bootstrap_servers
    user = f"user {k.sasl_username!r}"
    password_setting = ("kafka.sasl_password_file" if k.sasl_password_file
                        else "kafka.sasl_password")

    if (found := _first(chain, "ConfigError")) is not None:
        return "config", str(found)
    if _first(chain, "SaslAuthenticationFailed") is not None:
        return "authentication", (
            f"Kafka at {where} refused the credentials of {user} "
            f"({k.sasl_mechanism}): check kafka.sasl_username and {password_setting}, "
            f"and that the user has {k.sasl_mechanism} credentials on the cluster")
    if (found := _first(chain, "UnsupportedSaslMechanismError")) is not None:
        detail = _tail(found)  # names the enabled ones only when the client checked them
        enabled = (f" ({detail.rpartition('are: ')[2]})" if "Enabled mechanisms" in detail
                   else "")
        return "authentication", (
            f"Kafka at {where} does not accept SASL mechanism {k.sasl_mechanism}: "
            f"set kafka.sasl_mechanism to one it enables{enabled}")
    if (found := _first(chain, "SSLCertVerificationError")) is not None:
        reason = getattr(found, "verify_message", "") or _tail(found)
        if "hostname" in reason.lower() or "ip address mismatch" in reason.lower():
            return "tls", (
                f"the TLS certificate of the broker does not name the host in "
                f"kafka.bootstrap_servers ({where}): {reason}; connect by a name the "
                "certificate lists")
        fix = ("set kafka.ssl_cafile to the CA that signed the brokers' certificate"
               if not k.ssl_cafile else
               f"kafka.ssl_cafile ({k.ssl_cafile}) is not the CA that signed it")
        return "tls", (
            f"the TLS certificate of Kafka at {where} is not trusted "
            f"(CERTIFICATE_VERIFY_FAILED: {reason}): {fix}")
    if (found := _first(chain, "SSLError")) is not None:
        return "tls", (
            f"TLS handshake with Kafka at {where} failed ({_tail(found)}): the port does "
            f"not seem to speak TLS; check kafka.bootstrap_servers and "
            f"kafka.security_protocol ({k.security_protocol})")
    auth = _first(chain, "TopicAuthorizationFailedError", "GroupAuthorizationFailedError",
                  "ClusterAuthorizationFailedError", "TransactionalIdAuthorizationFailed")
    if auth is not None:
        return "authorization", _authorization(auth, k, user)
    if cause is None and _first(chain, "KafkaError") is None and isinstance(exc, TimeoutError):
        # Connected fine, then an answer never came: with SASL, typically missing rights
        # (a broker hides the topics a user may not DESCRIBE and refuses their creation).
        hint = (f"; with the authorizer on, check the ACLs of {user}"
                if k.security_protocol.startswith("SASL_") else "")
        return "other", f"Kafka at {where} did not complete the request ({_tail(exc)}){hint}"
    if (found := _first(chain, "gaierror")) is not None:
        return "unreachable", (
            f"cannot resolve the host in kafka.bootstrap_servers ({where}): "
            f"{_tail(found)}")
    if (found := _first(chain, "ConnectionRefusedError")) is not None:
        return "unreachable", (
            f"no Kafka broker listens at {where} ({_tail(found)}): check "
            "kafka.bootstrap_servers and that the broker runs")
    silent = _first(chain, "KafkaConnectionError", "TimeoutError", "ConnectionResetError")
    if silent is not None:
        # A listener spoken to in the wrong protocol closes, resets or says nothing.
        reason = _tail(silent) or type(silent).__name__
        tls = k.security_protocol in {"SSL", "SASL_SSL"}
        host, port = _first_server(where)
        if probe and not tls and _speaks_tls(host, port):
            return "tls", (
                f"Kafka at {where} speaks TLS but kafka.security_protocol is "
                f"{k.security_protocol}: set it to SASL_SSL (or SSL) and kafka.ssl_cafile")
        if probe and tls and _port_open(host, port) and not _speaks_tls(host, port):
            return "tls", (
                f"Kafka at {where} does not speak TLS (a PLAINTEXT listener?) but "
                f"kafka.security_protocol is {k.security_protocol}: point "
                "kafka.bootstrap_servers at the TLS listener")
        if not tls:
            return "tls", (
                f"Kafka at {where} did not answer the handshake ({reason}): is it a TLS "
                f"port? kafka.security_protocol is {k.security_protocol}")
    if (found := _first(chain, "OSError", "TimeoutError", "KafkaConnectionError")) is not None:
        reason = _tail(found) or type(found).__name__
        return "unreachable", (
            f"no Kafka broker reachable at {where} ({reason}): check "
            "kafka.bootstrap_servers and that the broker runs")
    return "other", f"Kafka request failed: {type(exc).__name__}: {_tail(exc)}"


def _authorization(auth: BaseException, k: KafkaConfig, user: str) -> str:
    kind = type(auth).__name__
    code = getattr(auth, "message", kind)
    names = sorted(_names(auth.args))
    if kind.startswith("Topic"):
        what = f"topic {', '.join(names)}" if names else "a topic"
        need = "READ for consumers, WRITE for producers, DESCRIBE for both"
    elif kind.startswith("Group"):
        what = f"consumer group {', '.join(names)}" if names else "its consumer group"
        need = "READ on the group (worker.app_id)"
    elif kind.startswith("Transactional"):
        what = "its transactional id"
        need = "WRITE on the transactional id (prefix worker.app_id)"
    else:
        what = "the cluster"
        need = ("the cluster operation it asked for, e.g. IDEMPOTENT_WRITE for a producer, "
                "implied by WRITE on any topic")
    who = user if k.sasl_username else "the anonymous user"
    return (f"Kafka at {k.bootstrap_servers} denied {who} access to {what} ({code}): grant "
            f"ACLs ({need}) or set kafka.sasl_username to a user that has them")


def _names(args: tuple[Any, ...]) -> set[str]:
    out: set[str] = set()
    for arg in args:
        if isinstance(arg, str) and " " not in arg:
            out.add(arg)
        elif isinstance(arg, set | frozenset | list | tuple):
            out |= {str(a) for a in arg}
    return out


def _tail(exc: BaseException) -> str:
    """The exception's own message on one line, without aiokafka's ``[Error n]`` prefix."""
    text = " ".join(str(exc).split())
    return text.split(": ", 1)[1] if text.startswith("[Error ") and ": " in text else text


def _redact(text: str, settings: Settings) -> str:
    k = settings.kafka
    secrets = {k.sasl_password}
    with contextlib.suppress(ConfigError):
        secrets.add(sasl_password(k))
    for secret in sorted(s for s in secrets if s):
        text = text.replace(secret, MASK)
    return text


def _first_server(servers: str) -> tuple[str, int]:
    host, _, port = servers.split(",")[0].strip().rpartition(":")
    return host.strip("[]"), int(port or 9092)


def _port_open(host: str, port: int, timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _speaks_tls(host: str, port: int, timeout: float = 3.0) -> bool:
    """Whether ``host:port`` completes a TLS handshake (certificate not checked)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw, \
                context.wrap_socket(raw, server_hostname=host):
            return True
    except (OSError, ssl.SSLError):
        return False


@contextlib.contextmanager
def explained(settings: Settings, *, probe: bool = True) -> Iterator[CauseRecorder]:
    """Run Kafka client calls; a refusal inside becomes :class:`KafkaAccessError` (one line).

    While the block runs, aiokafka's own log lines are kept by a :class:`CauseRecorder`
    instead of printed, so a command shows the one line and not a page of retries.
    """
    recorder = CauseRecorder()
    logger = logging.getLogger("aiokafka")
    propagate = logger.propagate
    logger.addHandler(recorder)
    logger.propagate = False
    try:
        yield recorder
    except (KafkaAccessError, ConfigError):
        raise
    except Exception as exc:
        if not is_kafka_failure(exc):
            raise
        raise KafkaAccessError(describe_failure(exc, settings, recorder.last,
                                                probe=probe)) from None
    finally:
        logger.removeHandler(recorder)
        logger.propagate = propagate


def is_kafka_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is what a refused or failed Kafka connection or request raises."""
    from aiokafka.errors import KafkaError

    return isinstance(exc, KafkaError | OSError | TimeoutError)
