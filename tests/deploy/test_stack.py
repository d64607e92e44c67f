"""docker-compose.yml brought up for real: broker, topics, two workers and Prometheus.

``docker compose`` when a Docker daemon answers, else podman-compose. Grafana is left out
(its Compose profile is not enabled). Images no registry serves are stand-ins built from
Debian packages (see containers.py).

The services come up in the order their ``depends_on`` conditions ask for, one ``up
--no-deps`` at a time, with the test checking each condition itself: Podman 4.3 runs no
health checks on its own (they need systemd timers), podman-compose skips
``service_healthy`` before Podman 4.6, and Podman 4.3 cannot start a container whose
``--requires`` chain passes through an exited one (the one-shot ``topics``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from gnosis.config import Settings
from gnosis.streams.kafka.broker import free_port

from .containers import (
    KAFKA_IMAGE,
    PROMETHEUS_IMAGE,
    ROOT,
    Engine,
    EngineError,
    differences,
    ensure_image,
    replay_market,
)

pytestmark = [pytest.mark.container, pytest.mark.slow]


def compose_command(engine: Engine) -> list[str]:
    if engine.name == "docker":
        return ["docker", "compose"]
    # The dev dependency (1.6+: --scale, --no-deps) before an older one on PATH.
    found = shutil.which("podman-compose", path=str(Path(sys.executable).parent)) or shutil.which(
        "podman-compose")
    if found is None:
        pytest.skip("podman-compose is not installed (pip: podman-compose)")
    return [found]


class Stack:
    """One Compose project, named uniquely, on free host ports."""

    def __init__(self, engine: Engine, image: str, models: Path) -> None:
        self.engine = engine
        self.project = f"gnosis-test-{uuid.uuid4().hex[:8]}"
        self.kafka_port = free_port()
        self.prometheus_port = free_port()
        # The gnosis-batch scrape job (a process on the host) is not under test.
        self.env = {**engine.env, "GNOSIS_IMAGE": image, "GNOSIS_HOST_GATEWAY": "127.0.0.1",
                    "GNOSIS_MODELS_DIR": str(models),
                    "GNOSIS_KAFKA_PORT": str(self.kafka_port),
                    "GNOSIS_PROMETHEUS_PORT": str(self.prometheus_port),
                    "GNOSIS_KAFKA__PARTITIONS": "4"}
        self.base = [*compose_command(engine), "-p", self.project, "-f",
                     str(ROOT / "docker-compose.yml")]

    def compose(self, *args: str, timeout: float = 600) -> str:
        result = subprocess.run([*self.base, *args], capture_output=True, text=True,
                                timeout=timeout, cwd=ROOT, env={**os.environ, **self.env})
        if result.returncode != 0:
            raise EngineError(f"compose {' '.join(args)} failed:\n"
                              f"{(result.stdout + result.stderr)[-3000:]}")
        return result.stdout + result.stderr

    def containers(self, service: str | None = None) -> list[str]:
        labels = [f"label=com.docker.compose.project={self.project}"]
        if service is not None:
            labels.append(f"label=com.docker.compose.service={service}")
        out = self.engine.run("ps", "-a", "--format", "{{.Names}}",
                              *(part for label in labels for part in ("--filter", label))).stdout
        return sorted(out.split())

    def remove(self) -> None:
        """Containers (with their anonymous volumes), named volumes and the network."""
        if names := self.containers():
            quick = ["-t", "5"] if self.engine.name == "podman" else []  # docker rm kills
            self.engine.run("rm", "-f", "-v", *quick, *names, check=False)
        label = f"label=com.docker.compose.project={self.project}"
        if volumes := self.engine.run("volume", "ls", "-q", "--filter", label).stdout.split():
            self.engine.run("volume", "rm", "-f", *volumes, check=False)
        self.engine.run("network", "rm", f"{self.project}_default", check=False)

    def healthy(self, container: str) -> bool:
        """Run the container's own health check (the Compose file's or the image's)."""
        if self.engine.name == "docker":
            state = self.engine.run("inspect", "--format", "{{.State.Health.Status}}",
                                    container).stdout.strip()
            return state == "healthy"
        return self.engine.run("healthcheck", "run", container, check=False).returncode == 0

    def wait(self, what: str, ready: Callable[[], bool], timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} not ready after {timeout:.0f} s:\n{self.logs()}")
            time.sleep(2)

    def logs(self) -> str:
        out = []
        for name in self.containers():
            log = self.engine.run("logs", "--tail", "30", name, check=False)
            out.append(f"--- {name}\n{log.stdout}{log.stderr}")
        return "\n".join(out)[-6000:]


def _json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def standins(engine: Engine, say: Callable[[str], None]) -> None:
    """The broker and Prometheus images: pulled, or stand-ins built once per machine."""
    log: list[str] = []
    for ref in (KAFKA_IMAGE, PROMETHEUS_IMAGE):
        ensure_image(engine, ref, log)
    for line in log:
        say(line)


def test_compose_stack_with_two_workers(engine, gnosis_image, standins, tmp_path) -> None:
    (tmp_path / "models").mkdir()
    stack = Stack(engine, gnosis_image, tmp_path / "models")
    try:
        stack.compose("up", "-d", "--no-deps", "kafka")
        (kafka,) = stack.containers("kafka")
        stack.wait("the broker's health check", lambda: stack.healthy(kafka))
        stack.compose("up", "-d", "--no-deps", "topics")
        (topics,) = stack.containers("topics")
        # service_completed_successfully: the one-shot created the topics and exited 0
        assert engine.run("wait", topics, timeout=180).stdout.strip() == "0", stack.logs()
        scaled = stack.compose("up", "-d", "--no-deps", "--scale", "worker=2", "worker")
        workers = stack.containers("worker")
        if len(workers) < 2:
            # podman-compose sometimes creates one replica and then fails to name the
            # second ("already in use"); asking again is what a user would do.
            scaled += stack.compose("up", "-d", "--no-deps", "--scale", "worker=2", "worker")
            workers = stack.containers("worker")
        if len(workers) < 2 and "already in use" in scaled:
            # A podman-compose fault, not ours: it names the second replica like the first.
            pytest.skip("podman-compose could not create a second worker replica (container "
                        "name already in use); the stack was not tested")
        assert len(workers) == 2, scaled
        stack.compose("up", "-d", "--no-deps", "prometheus")
        for worker in workers:  # the image's HEALTHCHECK: /health answers
            stack.wait(f"{worker}'s health check", lambda w=worker: stack.healthy(w))

        # A replay from the host through the published port gives every signal.
        base = Settings()
        settings = replace(base, kafka=replace(
            base.kafka, bootstrap_servers=f"127.0.0.1:{stack.kafka_port}", partitions=4))
        n_bars, differ = replay_market(settings, tickers=6, bars_per_ticker=200, seed=33)

        # Prometheus finds both replicas by DNS and scrapes their /metrics.
        prometheus = f"http://127.0.0.1:{stack.prometheus_port}/api/v1"

        def scraped() -> bool:
            try:
                targets = _json(f"{prometheus}/targets")["data"]["activeTargets"]
                query = urllib.parse.quote("sum(gnosis_bars_consumed_total)")
                result = _json(f"{prometheus}/query?query={query}")["data"]["result"]
            except OSError:
                return False
            up = {t["labels"]["instance"] for t in targets
                  if t["labels"]["job"] == "gnosis-worker" and t["health"] == "up"}
            return len(up) == 2 and bool(result) and float(result[0]["value"][1]) == n_bars

        stack.wait("Prometheus scraping both workers", scraped, timeout=120)
        assert not differ, f"two workers: {differences(differ, n_bars)}\n{stack.logs()}"
    finally:
        stack.remove()
