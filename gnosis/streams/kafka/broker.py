"""A local single-node Apache Kafka broker (KRaft mode) for development and tests.

:class:`LocalKafka` fetches the broker's jars from Maven Central with ``mvn`` (once, into
a cache folder), writes ``server.properties``, formats the storage and runs
``kafka.Kafka`` as a child process listening on ``127.0.0.1:<port>``. Its pid and ports
go to a state file in the data folder so ``gnosis kafka status|down`` work from another
process. Needs ``java`` (17+) and, for the first fetch only, ``mvn``.

With a :class:`SecureListener` the broker also serves SASL_SSL on a second port: a
throwaway CA and a broker certificate are made with ``openssl`` under the data folder,
SCRAM-SHA-512 users (each with a random password written to ``sasl/<user>.password``) are
created when the storage is formatted, and SASL/PLAIN accepts the same users for clients
whose SCRAM does not work against Kafka 4 (librdkafka before 2.6.1). With ``authorizer``
on, the StandardAuthorizer denies every user that is neither a super user nor granted
ACLs; the PLAINTEXT listener (loopback only) stays open as the ``ANONYMOUS`` super user.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

KAFKA_VERSION = "4.1.1"
_LOG4J_VERSION = "2.24.3"
_SLF4J_VERSION = "2.0.16"
_STATE_FILE = "gnosis-kafka.json"

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>gnosis</groupId><artifactId>kafka-broker-jars</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{kafka}</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId>
      <version>{slf4j}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j2-impl</artifactId><version>{log4j}</version></dependency>
  </dependencies>
</project>
"""

_LOG4J2 = """Configuration:
  status: warn
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        Pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: WARN
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka.server.KafkaRaftServer
        level: INFO
"""


class KafkaError(RuntimeError):
    """The broker could not be fetched, started or reached."""


def kafka_home(version: str = KAFKA_VERSION) -> Path:
    """Folder holding ``libs/`` for ``version``: ``$GNOSIS_KAFKA_HOME`` or ``.cache/kafka/<v>``."""
    base = os.environ.get("GNOSIS_KAFKA_HOME")
    return Path(base) if base else Path(".cache") / "kafka" / version


def fetch_jars(home: Path | None = None, version: str = KAFKA_VERSION) -> Path:
    """Resolve the broker's runtime jars with Maven into ``home/libs``; returns that folder.

    Does nothing when the folder already holds the jars, so it is cheap to call always.
    """
    home = Path(home or kafka_home(version)).resolve()
    libs = home / "libs"
    if (libs / f"kafka_2.13-{version}.jar").exists():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaError("Kafka jars are missing and `mvn` is not installed to fetch them")
    home.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=home) as work:
        pom = Path(work) / "pom.xml"
        pom.write_text(_POM.format(kafka=version, slf4j=_SLF4J_VERSION, log4j=_LOG4J_VERSION))
        staging = Path(work) / "libs"
        result = subprocess.run(
            [mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
             f"-DoutputDirectory={staging}", "-DincludeScope=runtime"],
            capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise KafkaError(f"mvn could not fetch Kafka {version}:\n"
                             f"{(result.stdout + result.stderr)[-2000:]}")
        # Rename into place last so an interrupted fetch never looks complete.
        if libs.exists():
            shutil.rmtree(libs)
        staging.rename(libs)
    return libs


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class BrokerState:
    """What ``gnosis kafka up`` leaves behind for ``status`` and ``down``."""

    pid: int
    port: int
    controller_port: int
    data_dir: str
    sasl_ssl_port: int = 0

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass(frozen=True)
class SecureListener:
    """A SASL_SSL listener next to PLAINTEXT.

    Args:
        port: listener port on 127.0.0.1 (``0`` picks a free one).
        users: SCRAM-SHA-512 (and PLAIN) users; the first is a super user.
        restricted: further users with no rights at all unless ACLs grant them some
            (only meaningful with ``authorizer``).
        authorizer: turn on the StandardAuthorizer (deny when no ACL matches).
    """

    port: int = 9094
    users: tuple[str, ...] = ("gnosis",)
    restricted: tuple[str, ...] = ()
    authorizer: bool = False
    extra: dict[str, str] = field(default_factory=dict)
    """More ``server.properties`` lines, e.g. ``{"sasl.enabled.mechanisms": "PLAIN"}``."""

    @property
    def all_users(self) -> tuple[str, ...]:
        return (*self.users, *self.restricted)


@dataclass(frozen=True)
class SecureFiles:
    """Where a secured broker keeps what clients need: the CA and one password per user."""

    directory: Path

    @property
    def cafile(self) -> Path:
        return self.directory / "ca.pem"

    def password_file(self, user: str) -> Path:
        return self.directory / "sasl" / f"{user}.password"

    def password(self, user: str) -> str:
        return self.password_file(user).read_text().strip()


def make_certificates(directory: Path, hosts: tuple[str, ...] = ("localhost",),
                      ips: tuple[str, ...] = ("127.0.0.1",)) -> SecureFiles:
    """A throwaway CA and a broker key+certificate it signed, made with ``openssl``.

    Writes ``ca.pem``, ``ca.key`` and ``broker.pem`` (PKCS#8 key, then certificate: the PEM
    keystore Kafka reads). Existing files are kept, so clients keep trusting the CA.
    """
    openssl = shutil.which("openssl")
    if openssl is None:
        raise KafkaError("`openssl` is needed to make the SASL_SSL listener's certificates")
    directory.mkdir(parents=True, exist_ok=True)
    files = SecureFiles(directory)
    if (directory / "broker.pem").exists():
        return files
    sans = ",".join([*(f"DNS:{h}" for h in hosts), *(f"IP:{ip}" for ip in ips)])

    def run(*args: str) -> None:
        done = subprocess.run([openssl, *args], cwd=directory, capture_output=True, text=True,
                              check=False)
        if done.returncode != 0:
            raise KafkaError(f"openssl {args[0]} failed: {done.stderr.strip()[-500:]}")

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
        "ca.pem", "-days", "3650", "-subj", "/CN=gnosis local CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "broker.key", "-out", "broker.csr",
        "-subj", f"/CN={hosts[0]}")
    (directory / "broker.ext").write_text(
        f"subjectAltName={sans}\nextendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "broker.crt", "-days", "825", "-extfile", "broker.ext")
    key, cert = (directory / "broker.key").read_text(), (directory / "broker.crt").read_text()
    (directory / "broker.pem").write_text(key + cert)
    for private in ("ca.key", "broker.key", "broker.pem"):
        (directory / private).chmod(0o600)
    return files


def _ensure_passwords(files: SecureFiles, users: tuple[str, ...]) -> dict[str, str]:
    import secrets

    out = {}
    for user in users:
        path = files.password_file(user)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(18) + "\n")
        out[user] = files.password(user)
    return out


class LocalKafka:
    """One KRaft broker+controller on 127.0.0.1, run as a child process.

    Example::

        with LocalKafka(port=9092, data_dir="/tmp/kafka") as kafka:
            print(kafka.bootstrap_servers)

    Args:
        port: client listener port (``0`` picks a free one).
        controller_port: KRaft controller port (``0`` picks a free one).
        data_dir: log and state folder; a fresh temporary folder when ``None``.
        home: folder with (or to receive) ``libs/``; see :func:`kafka_home`.
        heap: JVM maximum heap, e.g. ``"512m"``.
        secure: also serve SASL_SSL (see :class:`SecureListener`); ``None`` for PLAINTEXT
            only.
    """

    def __init__(self, port: int = 9092, controller_port: int = 0,
                 data_dir: str | os.PathLike[str] | None = None,
                 home: str | os.PathLike[str] | None = None, heap: str = "512m",
                 secure: SecureListener | None = None) -> None:
        self.port = port or free_port()
        self.controller_port = controller_port or free_port()
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="gnosis-kafka-")).resolve()
        self.home = Path(home).resolve() if home else kafka_home().resolve()
        self.heap = heap
        self.secure = secure
        self.sasl_ssl_port = (secure.port or free_port()) if secure else 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def sasl_ssl_bootstrap_servers(self) -> str:
        """``host:port`` of the SASL_SSL listener (``localhost``, as its certificate says)."""
        return f"localhost:{self.sasl_ssl_port}"

    @property
    def secure_files(self) -> SecureFiles:
        """The CA file and the users' password files of the SASL_SSL listener."""
        return SecureFiles(self.data_dir / "tls")

    @property
    def state_file(self) -> Path:
        return self.data_dir / _STATE_FILE

    def _properties(self) -> str:
        logs = self.data_dir / "logs"
        listeners = [f"PLAINTEXT://127.0.0.1:{self.port}"]
        advertised = list(listeners)
        if self.secure:
            listeners.append(f"SASL_SSL://127.0.0.1:{self.sasl_ssl_port}")
            advertised.append(f"SASL_SSL://{self.sasl_ssl_bootstrap_servers}")
        return "\n".join([
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
            f"listeners={','.join(listeners)},CONTROLLER://127.0.0.1:{self.controller_port}",
            f"advertised.listeners={','.join(advertised)}",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,"
            "SASL_SSL:SASL_SSL",
            "inter.broker.listener.name=PLAINTEXT",
            *self._secure_properties(),
            f"log.dirs={logs}",
            "num.partitions=1",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=4",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "transaction.state.log.num.partitions=4",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=false",
            "",
        ])

    def _secure_properties(self) -> list[str]:
        if not self.secure:
            return []
        files = self.secure_files
        passwords = _ensure_passwords(files, self.secure.all_users)
        # PLAIN checks passwords against this JAAS line; the SCRAM ones live in the metadata.
        plain_users = " ".join(f'user_{u}="{p}"' for u, p in passwords.items())
        lines = {
            "sasl.enabled.mechanisms": "SCRAM-SHA-512,PLAIN",
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config":
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            "listener.name.sasl_ssl.plain.sasl.jaas.config":
                f"org.apache.kafka.common.security.plain.PlainLoginModule required "
                f"{plain_users};",
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(files.directory / "broker.pem"),
            "ssl.client.auth": "none",
        }
        if self.secure.authorizer:
            supers = ";".join(f"User:{u}" for u in ("ANONYMOUS", *self.secure.users))
            lines.update({
                "authorizer.class.name":
                    "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                "super.users": supers,
                "allow.everyone.if.no.acl.found": "false",
            })
        lines.update(self.secure.extra)
        return [f"{k}={v}" for k, v in lines.items()]

    def _format_args(self) -> list[str]:
        """``--add-scram`` arguments: SCRAM users exist only if created at format time."""
        if not self.secure:
            return []
        files = self.secure_files
        args = []
        for user in self.secure.all_users:
            args += ["--add-scram",
                     f"SCRAM-SHA-512=[name={user},password={files.password(user)}]"]
        return args

    def _java(self, *args: str) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise KafkaError("`java` (17 or newer) is needed to run the Kafka broker")
        return [java, f"-Xmx{self.heap}", "-Xms128m", "-XX:+UseG1GC",
                f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.yaml'}",
                "-cp", str(self.libs / "*"), *args]

    @property
    def libs(self) -> Path:
        return self.home / "libs"

    def start(self, timeout: float = 60.0, log_file: str | os.PathLike[str] | None = None
              ) -> LocalKafka:
        """Fetch jars if needed, format storage on first use, start and wait until ready."""
        fetch_jars(self.home)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.secure:
            make_certificates(self.secure_files.directory)
        props = self.data_dir / "server.properties"
        props.touch(mode=0o600)  # holds the PLAIN users' passwords when secured
        props.write_text(self._properties())
        (self.data_dir / "log4j2.yaml").write_text(_LOG4J2)
        formatted_marker = self.data_dir / "logs" / "meta.properties"
        users_marker = self.data_dir / "scram-users.json"
        if not formatted_marker.exists():
            formatted = subprocess.run(
                self._java("kafka.tools.StorageTool", "format", "-t", str(uuid.uuid4()),
                           "-c", str(props), "--ignore-formatted", *self._format_args()),
                capture_output=True, text=True, check=False)
            if formatted.returncode != 0:
                raise KafkaError(f"formatting Kafka storage failed:\n{formatted.stderr[-2000:]}")
            users_marker.write_text(json.dumps(
                sorted(self.secure.all_users) if self.secure else []))
        elif self.secure:
            known = set(json.loads(users_marker.read_text())) if users_marker.exists() else set()
            if missing := sorted(set(self.secure.all_users) - known):
                raise KafkaError(f"{self.data_dir} was formatted without the SCRAM users "
                                 f"{missing} (they are only created at format time); "
                                 "use a fresh --data-dir")
        log_path = Path(log_file) if log_file else self.data_dir / "broker.log"
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(self._java("kafka.Kafka", str(props)),
                                            stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        self.state_file.write_text(json.dumps({
            "pid": self.process.pid, "port": self.port,
            "controller_port": self.controller_port, "data_dir": str(self.data_dir),
            "sasl_ssl_port": self.sasl_ssl_port}))
        try:
            wait_ready(self.bootstrap_servers, timeout, self.process)
        except KafkaError:
            self.stop()
            raise KafkaError(f"Kafka did not start; see {log_path}") from None
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; removes the state file."""
        if self.process is not None:
            stop_pid(self.process.pid, timeout, self.process)
            self.process = None
        with contextlib.suppress(FileNotFoundError):
            self.state_file.unlink()

    def __enter__(self) -> LocalKafka:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_ready(bootstrap_servers: str, timeout: float = 60.0,
               process: subprocess.Popen[bytes] | None = None) -> None:
    """Block until the broker answers a metadata request (raises :class:`KafkaError`)."""
    import asyncio

    from aiokafka.admin import AIOKafkaAdminClient

    async def probe() -> bool:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers,
                                    request_timeout_ms=2000)
        try:
            await asyncio.wait_for(admin.start(), 3)
            await asyncio.wait_for(admin.list_topics(), 3)
            return True
        except Exception:
            return False
        finally:
            with contextlib.suppress(Exception):
                await admin.close()

    host, _, port = bootstrap_servers.split(",")[0].rpartition(":")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise KafkaError(f"broker exited with code {process.returncode}")
        # A plain TCP connect first keeps aiokafka from logging every refused attempt.
        if _port_open(host, int(port)) and asyncio.run(probe()):
            return
        time.sleep(0.3)
    raise KafkaError(f"no Kafka broker answered on {bootstrap_servers} within {timeout:.0f}s")


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, port)) == 0


def stop_pid(pid: int, timeout: float = 15.0,
             process: subprocess.Popen[bytes] | None = None) -> None:
    """Terminate one broker process: SIGTERM, then SIGKILL if it outlives ``timeout``."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None:
            if process.poll() is not None:
                return
        elif not _alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if process is not None:
        process.wait(5)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); treat it as gone.
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    return True


def read_state(data_dir: str | os.PathLike[str]) -> BrokerState | None:
    """The state file of a broker started with ``data_dir``, if it is still running."""
    path = Path(data_dir) / _STATE_FILE
    try:
        state = BrokerState(**json.loads(path.read_text()))
    except (FileNotFoundError, ValueError, TypeError):
        return None
    return state if _alive(state.pid) else None
