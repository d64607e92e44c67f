"""``gnosis kafka``: run a local single-node broker and create the project's topics."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Annotated

import typer

from gnosis.streams.kafka.broker import (
    KafkaError,
    LocalKafka,
    SecureListener,
    fetch_jars,
    read_state,
    stop_pid,
)

app = typer.Typer(no_args_is_help=True)

DEFAULT_DATA_DIR = Path(".cache/kafka/data")
DataDir = Annotated[Path, typer.Option("--data-dir", help="Broker log and state folder.")]


@app.command()
def up(
    port: Annotated[int, typer.Option(help="Client port on 127.0.0.1.")] = 9092,
    controller_port: Annotated[int, typer.Option(help="KRaft controller port.")] = 9093,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    foreground: Annotated[bool, typer.Option(help="Stay attached; Ctrl-C stops it.")] = False,
    sasl_ssl: Annotated[bool, typer.Option(
        "--sasl-ssl", help="Also serve SASL_SSL (SCRAM-SHA-512 and PLAIN over TLS): a local "
                           "CA, a broker certificate and one password file per user are "
                           "made under the data folder.")] = False,
    sasl_port: Annotated[int, typer.Option(help="SASL_SSL port.")] = 9094,
    user: Annotated[list[str] | None, typer.Option(
        help="SASL user with every right (repeatable); default: gnosis.")] = None,
    restricted_user: Annotated[list[str] | None, typer.Option(
        help="SASL user with no rights until ACLs grant some (repeatable; "
             "needs --authorizer).")] = None,
    authorizer: Annotated[bool, typer.Option(
        help="Turn on the StandardAuthorizer: users other than --user need ACLs.")] = False,
) -> None:
    """Start a KRaft broker on 127.0.0.1 (jars are fetched with Maven on first use)."""
    running = read_state(data_dir)
    if running is not None:
        typer.echo(f"already running: pid {running.pid} on {running.bootstrap_servers}")
        return
    secure = None
    if sasl_ssl:
        secure = SecureListener(port=sasl_port, users=tuple(user or ["gnosis"]),
                                restricted=tuple(restricted_user or ()), authorizer=authorizer)
    elif user or restricted_user or authorizer:
        typer.echo("error: --user, --restricted-user and --authorizer need --sasl-ssl", err=True)
        raise typer.Exit(2)
    try:
        kafka = LocalKafka(port=port, controller_port=controller_port, data_dir=data_dir,
                           secure=secure)
        kafka.start()
    except KafkaError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"Kafka up on {kafka.bootstrap_servers} (pid {kafka.process.pid}, "  # type: ignore[union-attr]
               f"data {kafka.data_dir})")
    if secure is not None:
        typer.echo(secure_settings(kafka, secure.users[0]))
    if foreground:
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
        try:
            while kafka.process is not None and kafka.process.poll() is None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            kafka.stop()


def secure_settings(kafka: LocalKafka, user: str) -> str:
    """The ``GNOSIS_KAFKA__*`` lines that connect as ``user`` over SASL_SSL (no secret:
    the password stays in its file)."""
    files = kafka.secure_files
    values = {"BOOTSTRAP_SERVERS": kafka.sasl_ssl_bootstrap_servers,
              "SECURITY_PROTOCOL": "SASL_SSL", "SASL_MECHANISM": "SCRAM-SHA-512",
              "SASL_USERNAME": user, "SASL_PASSWORD_FILE": str(files.password_file(user)),
              "SSL_CAFILE": str(files.cafile)}
    lines = [f"SASL_SSL on {kafka.sasl_ssl_bootstrap_servers}; connect with:"]
    lines += [f"  export GNOSIS_KAFKA__{k}={v}" for k, v in values.items()]
    return "\n".join(lines)


@app.command()
def down(data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Stop the broker started with ``up`` (SIGTERM, then SIGKILL)."""
    state = read_state(data_dir)
    if state is None:
        typer.echo("not running")
        return
    stop_pid(state.pid)
    (Path(data_dir) / "gnosis-kafka.json").unlink(missing_ok=True)
    typer.echo(f"stopped pid {state.pid}")


@app.command()
def status(data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Show whether the local broker runs; exit code 1 when it does not."""
    state = read_state(data_dir)
    if state is None:
        typer.echo("not running")
        raise typer.Exit(1)
    secured = f", SASL_SSL on localhost:{state.sasl_ssl_port}" if state.sasl_ssl_port else ""
    typer.echo(f"running: pid {state.pid}, bootstrap {state.bootstrap_servers}{secured}, "
               f"data {state.data_dir}")


@app.command()
def topics(
    config: Annotated[Path | None, typer.Option("--config", "-c", envvar="GNOSIS_CONFIG",
                                                help="TOML configuration file.")] = None,
) -> None:
    """Create the project's topics (partitions, retention, compaction) if missing."""
    from gnosis.config import Settings
    from gnosis.security import explained
    from gnosis.streams.topics import create_topics, topic_specs

    settings = Settings.load(config)
    with explained(settings):
        created = set(create_topics(settings))
    for spec in topic_specs(settings):
        mark = "created" if spec.name in created else "exists "
        typer.echo(f"{mark}  {spec.name}  partitions={spec.partitions}  "
                   f"cleanup.policy={spec.config.get('cleanup.policy')}")


@app.command()
def fetch() -> None:
    """Download the broker's jars into the cache (``$GNOSIS_KAFKA_HOME`` or .cache/kafka)."""
    typer.echo(str(fetch_jars()))


def main() -> None:
    """Entry point of ``python -m gnosis.streams.kafka.cli``."""
    app()


if __name__ == "__main__":
    main()
