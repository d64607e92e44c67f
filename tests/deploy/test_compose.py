"""docker-compose.yml against the Compose specification, and the Prometheus/Grafana wiring.

The Compose schema is the compose-spec project's (Apache-2.0), as vendored by the
check-jsonschema package; there is no Docker engine here, so nothing is started.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from gnosis.config import Settings

ROOT = Path(__file__).resolve().parents[2]
_VARIABLE = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def compose_schema() -> dict[str, Any]:
    path = resources.files("check_jsonschema") / "builtin_schemas/vendor/compose-spec.json"
    return json.loads(path.read_text())


def interpolate(value: str) -> str:
    """What Compose substitutes when the variable is unset: its default, else empty."""
    return _VARIABLE.sub(lambda m: m.group(2) or "", value)


def test_compose_file_matches_the_compose_specification() -> None:
    schema = compose_schema()
    jsonschema.Draft202012Validator(schema).validate(compose())
    unknown_key = compose()
    unknown_key["services"]["worker"]["restart_policy"] = "always"
    bad_value = compose()
    bad_value["services"]["worker"]["depends_on"]["topics"]["condition"] = "service_ready"
    for broken in (unknown_key, bad_value):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.Draft202012Validator(schema).validate(broken)


def test_worker_can_be_scaled() -> None:
    worker = compose()["services"]["worker"]
    # A fixed container name or a published host port would make --scale fail.
    assert "container_name" not in worker
    assert "ports" not in worker
    assert worker["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    assert worker["read_only"] is True
    # tmpfs, so replicas share nothing; mode 1777 so uid 10001 writes them on Podman too
    assert worker["tmpfs"] == ["/tmp:mode=1777"]


def test_one_shot_topics_service_waits_for_a_healthy_broker() -> None:
    services = compose()["services"]
    assert services["kafka"]["image"] == "apache/kafka:4.1.1"
    assert "healthcheck" in services["kafka"]
    topics = services["topics"]
    assert topics["command"] == ["kafka", "topics"]
    assert topics["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert topics["restart"] == "no"
    assert topics["image"] == services["worker"]["image"]


def test_gnosis_environment_is_valid_configuration() -> None:
    services = compose()["services"]
    for name in ("topics", "worker"):
        env = {k: interpolate(str(v)) for k, v in services[name]["environment"].items()}
        settings = Settings.load(env=env)
        assert settings.kafka.bootstrap_servers == "kafka:9092"
        assert settings.worker.web_port == 6066
    # the broker advertises the address the services are told to use
    assert "INTERNAL://kafka:9092" in services["kafka"]["environment"][
        "KAFKA_ADVERTISED_LISTENERS"]


def test_bind_mounts_exist_in_the_repository() -> None:
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith(("./", "../")):
                assert (ROOT / source).exists(), f"{name}: {source} is missing"


def prometheus_config() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())


def test_prometheus_discovers_every_worker_replica() -> None:
    (job,) = [j for j in prometheus_config()["scrape_configs"]
              if j["job_name"] == "gnosis-worker"]
    (dns,) = job["dns_sd_configs"]
    assert dns["names"] == ["worker"]  # the compose service name: one A record per replica
    assert dns["type"] == "A"
    worker_env = compose()["services"]["worker"]["environment"]
    assert dns["port"] == int(worker_env["GNOSIS_WORKER__WEB_PORT"])
    assert str(dns["port"]) in compose()["services"]["worker"]["expose"]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
@pytest.mark.parametrize("check", [("check", "config", "deploy/prometheus/prometheus.yml"),
                                   ("test", "rules", "deploy/prometheus/alerts_test.yml")],
                         ids=["config is valid", "alert rules pass their unit tests"])
def test_promtool(check: tuple[str, str, str]) -> None:
    *command, path = check
    result = subprocess.run(["promtool", *command, str(ROOT / path)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_provisioning_matches_mounts_and_dashboards() -> None:
    grafana = compose()["services"]["grafana"]
    mounts = dict(v.rsplit(":", 1)[0].split(":", 1) for v in grafana["volumes"]
                  if v.startswith("./"))
    provisioning = ROOT / "deploy/grafana/provisioning"
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    (provider,) = yaml.safe_load((provisioning / "dashboards/gnosis.yml").read_text())[
        "providers"]
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    (datasource,) = yaml.safe_load((provisioning / "datasources/prometheus.yml").read_text())[
        "datasources"]
    assert datasource["url"] == "http://prometheus:9090"
    assert "prometheus" in compose()["services"]
    dashboards = sorted((ROOT / "deploy/grafana/dashboards").glob("*.json"))
    assert len(dashboards) == 4
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert Path(home).name in {d.name for d in dashboards}
    for path in dashboards:
        text = path.read_text()
        uids = set(re.findall(r'"uid":\s*"([^"]+)"', text))
        assert uids - {json.loads(text)["uid"]} == {datasource["uid"]}, path.name

