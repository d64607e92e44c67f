"""A real Prometheus server on loopback, for scrape tests."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], Any], *, timeout: float, what: str) -> Any:
    """Poll ``check`` until it returns something truthy, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except OSError as exc:  # server not listening yet
            last = exc
        else:
            if last:
                return last
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


class Prometheus:
    """A running Prometheus, queried over its HTTP API."""

    def __init__(self, url: str, process: subprocess.Popen[bytes], log: Path) -> None:
        self.url = url
        self.process = process
        self.log = log

    def api(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=5) as resp:
            doc = json.load(resp)
        assert doc["status"] == "success", doc
        return doc["data"]

    def query(self, promql: str) -> dict[frozenset[tuple[str, str]], float]:
        """Instant query: {label set: value} for every series in the result vector."""
        data = self.api("query", query=promql)
        return {frozenset(r["metric"].items()): float(r["value"][1]) for r in data["result"]}

    def scalar(self, promql: str) -> float | None:
        """The single value of an instant query, or None while it has no result."""
        result = self.query(promql)
        assert len(result) <= 1, result
        return next(iter(result.values()), None)

    def wait_until_up(self, job: str, count: int = 1, timeout: float = 30.0) -> list[dict]:
        """Wait until ``count`` targets of ``job`` are healthy; return them."""
        def healthy() -> list[dict]:
            targets = [t for t in self.api("targets")["activeTargets"]
                       if t["labels"].get("job") == job and t["health"] == "up"]
            return targets if len(targets) >= count else []

        return wait_for(healthy, timeout=timeout, what=f"{count} healthy '{job}' target(s)")

    def wait_for_value(self, promql: str, expected: float, timeout: float = 30.0) -> float:
        """Wait until ``promql`` evaluates to ``expected`` (a scrape after the last update)."""
        return wait_for(lambda: self.scalar(promql) == expected, timeout=timeout,
                        what=f"{promql} == {expected}")


@pytest.fixture
def unused_port() -> int:
    """A TCP port free on loopback right now."""
    return free_port()


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[[dict[str, list[str]]], Prometheus]]:
    """Start a real Prometheus scraping ``{job: [host:port, ...]}`` every second."""
    binary = shutil.which("prometheus")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("the prometheus binary is missing (apt-get install prometheus)")
        pytest.skip("the prometheus binary is not installed (apt-get install prometheus)")
    started: list[Prometheus] = []

    def start(jobs: dict[str, list[str]]) -> Prometheus:
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s",
                       "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": job, "static_configs": [{"targets": targets}]}
                               for job, targets in jobs.items()],
        }
        workdir = tmp_path / f"prometheus-{len(started)}"
        workdir.mkdir()
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        port = free_port()
        log = workdir / "prometheus.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [binary, f"--config.file={workdir / 'prometheus.yml'}",
                 f"--storage.tsdb.path={workdir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                stdout=out, stderr=subprocess.STDOUT)
        server = Prometheus(f"http://127.0.0.1:{port}", process, log)
        started.append(server)

        def ready() -> bool:
            if process.poll() is not None:
                pytest.fail(f"prometheus exited with {process.returncode}:\n{log.read_text()}")
            with urllib.request.urlopen(f"{server.url}/-/ready", timeout=2) as resp:
                return resp.status == 200

        wait_for(ready, timeout=30, what="prometheus to be ready")
        return server

    yield start
    for server in started:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
