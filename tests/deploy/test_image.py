"""The worker image, built from the Dockerfile and run as Compose and Kubernetes run it.

Read-only root file system, non-root uid 10001, every capability dropped, ``/tmp``
mounted as docker-compose.yml mounts them; the container joins the host network to
reach the session's test broker on loopback. A market replayed through it must give every
signal the in-process engine gives.
"""

from __future__ import annotations

import urllib.request
import uuid

import orjson
import pytest
import yaml
from conftest import settings_env

from gnosis.streams.kafka.broker import free_port

from .containers import (
    ROOT,
    compose_file,
    differences,
    replay_market,
    run_flags,
    wait_until_serving,
)

pytestmark = [pytest.mark.container, pytest.mark.kafka, pytest.mark.slow]


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200
        return response.read()


def test_k8s_runs_the_worker_as_compose_does() -> None:
    """The isolation the container test exercises is also what the Deployment asks for."""
    worker = compose_file()["services"]["worker"]
    deployment = next(d for d in yaml.safe_load_all((ROOT / "k8s/deployment.yaml").read_text())
                      if d and d.get("kind") == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = [c for c in pod["containers"] if c["name"] == "worker"]
    security = container["securityContext"]
    assert worker["read_only"] and security["readOnlyRootFilesystem"]
    assert worker["cap_drop"] == ["ALL"] == security["capabilities"]["drop"]
    assert pod["securityContext"]["runAsUser"] == 10001
    mounted = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    empty_dirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    assert [m.split(":")[0] for m in worker["tmpfs"]] == ["/tmp"]
    assert mounted["/tmp"] in empty_dirs


def test_worker_image_replays_a_market_like_the_engine(engine, gnosis_image, kafka_settings,
                                                       kafka_topics) -> None:
    settings = kafka_settings(partitions=3, web_port=free_port())
    kafka_topics(settings)
    env = settings_env(settings)
    name = f"gnosis-worker-{uuid.uuid4().hex[:8]}"
    flags = run_flags(compose_file()["services"]["worker"])
    env_flags = [part for key, value in env.items() for part in ("-e", f"{key}={value}")]
    engine.run("run", "-d", "--name", name, "--network", "host", *flags, *env_flags,
               gnosis_image)
    port = settings.worker.web_port
    try:
        wait_until_serving(engine, name, f"http://127.0.0.1:{port}/health")
        n_bars, differ = replay_market(settings, tickers=4, bars_per_ticker=400, seed=18)
        assert not differ, differences(differ, n_bars)

        health = orjson.loads(_get(f"http://127.0.0.1:{port}/health"))
        assert health["status"] == "ok"
        metrics = _get(f"http://127.0.0.1:{port}/metrics").decode()
        consumed = next(line for line in metrics.splitlines()
                        if line.startswith("gnosis_bars_consumed_total "))
        assert float(consumed.split()[1]) == n_bars

        # The worker process: uid/gid 10001, no capabilities at all.
        status = dict(line.split(":\t", 1) for line in engine.run(
            "exec", name, "cat", "/proc/1/status").stdout.splitlines() if ":\t" in line)
        assert status["Uid"].split() == ["10001"] * 4
        assert status["Gid"].split() == ["10001"] * 4
        assert int(status["CapEff"], 16) == int(status["CapPrm"], 16) == 0
        # Nothing but /tmp is writable.
        denied = engine.run("exec", name, "touch", "/gnosis-probe", check=False)
        assert denied.returncode != 0 and "Read-only file system" in denied.stderr
    finally:
        engine.run("rm", "-f", "-v", name, check=False)
