"""Kubernetes manifests: API schemas (kubernetes-validate, strict) and how the parts fit."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from gnosis.config import Settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
KUBE_VERSION = "1.30"  # oldest Kubernetes release the manifests must keep working on


def load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def kustomization() -> dict[str, Any]:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text())


def resources() -> dict[str, dict[str, Any]]:
    """Every resource of the base, by kind."""
    out = {}
    for name in kustomization()["resources"]:
        for doc in load_all(K8S / name):
            out[doc["kind"]] = doc
    return out


def test_kustomization_lists_every_manifest() -> None:
    listed = set(kustomization()["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present
    component = yaml.safe_load((K8S / "servicemonitor" / "kustomization.yaml").read_text())
    assert component["kind"] == "Component"
    assert component["resources"] == ["servicemonitor.yaml"]


@pytest.mark.parametrize("name", sorted(p.name for p in K8S.glob("*.yaml")
                                        if p.name != "kustomization.yaml"))
def test_manifest_matches_api_schema(name: str) -> None:
    for doc in load_all(K8S / name):
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


def test_schema_validation_rejects_a_misspelt_field() -> None:
    deployment = copy.deepcopy(resources()["Deployment"])
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["livenesProbe"] = container.pop("livenessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBE_VERSION, strict=True)


def test_selectors_and_names_connect() -> None:
    r = resources()
    deployment, service = r["Deployment"], r["Service"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    for selector in (deployment["spec"]["selector"]["matchLabels"], service["spec"]["selector"],
                     r["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"]):
        assert selector.items() <= pod_labels.items()
    target = r["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert kustomization()["namespace"] == r["Namespace"]["metadata"]["name"]


def test_worker_pod_is_probed_scraped_and_locked_down() -> None:
    r = resources()
    config = r["ConfigMap"]["data"]
    pod = r["Deployment"]["spec"]["template"]
    spec = pod["spec"]
    (worker,) = spec["containers"]
    port = int(config["GNOSIS_WORKER__WEB_PORT"])
    ports = {p["name"]: p["containerPort"] for p in worker["ports"]}
    assert ports["http"] == port
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(port)
    assert r["Service"]["spec"]["ports"][0]["targetPort"] == "http"
    # readiness follows /health (503 while unassigned or rebalancing); liveness must not,
    # or standby replicas and long rebalances would be restarted in a loop
    assert worker["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    for probe in ("startupProbe", "livenessProbe"):
        assert worker[probe]["tcpSocket"] == {"port": "http"}
    assert r["Service"]["spec"]["publishNotReadyAddresses"] is True

    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    volumes = {v["name"]: v for v in spec["volumes"]}
    for container in [*spec["initContainers"], worker]:
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert {"requests", "limits"} <= container["resources"].keys()
        for mount in container.get("volumeMounts", []):
            volume = volumes[mount["name"]]
            # scratch space, or a secret mounted read-only
            assert "emptyDir" in volume or ("secret" in volume and mount["readOnly"] is True)
    # With a read-only root, /tmp must be a writable mount (the worker writes nothing else).
    assert "/tmp" in {m["mountPath"] for m in worker["volumeMounts"]}


def test_autoscaling_respects_partitions() -> None:
    r = resources()
    hpa = r["HorizontalPodAutoscaler"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 10)
    assert hpa["maxReplicas"] <= int(r["ConfigMap"]["data"]["GNOSIS_KAFKA__PARTITIONS"])
    assert r["Deployment"]["spec"]["replicas"] >= hpa["minReplicas"]


def test_configmap_is_valid_gnosis_configuration() -> None:
    data = resources()["ConfigMap"]["data"]
    settings = Settings.load(env=data)
    assert settings.worker.web_port == int(data["GNOSIS_WORKER__WEB_PORT"])
    assert settings.kafka.partitions == int(data["GNOSIS_KAFKA__PARTITIONS"])


def test_kafka_credentials_come_from_the_secret_as_files(tmp_path: Path) -> None:
    """The example Secret, mounted as the Deployment says, gives a working SASL_SSL login."""
    from gnosis.security import client_options

    r = resources()
    config = r["ConfigMap"]["data"]
    spec = r["Deployment"]["spec"]["template"]["spec"]
    (secret,) = load_all(K8S / "examples" / "kafka-credentials.yaml")
    kubernetes_validate.validate(secret, KUBE_VERSION, strict=True)
    name = secret["metadata"]["name"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert not any("PASSWORD" in key and "FILE" not in key for key in config)
    for container in [*spec["initContainers"], *spec["containers"]]:
        assert all("secretRef" not in source for source in container["envFrom"])
        (user_env,) = [e for e in container["env"] if e["name"].endswith("SASL_USERNAME")]
        assert user_env["valueFrom"]["secretKeyRef"] == {"name": name, "key": "username",
                                                         "optional": True}
        (mount,) = [m for m in container["volumeMounts"]
                    if volumes[m["name"]].get("secret", {}).get("secretName") == name]
        # Kubernetes writes each key of the Secret as a file under the mount path.
        pod_root = tmp_path / container["name"]
        mounted = pod_root / mount["mountPath"].lstrip("/")
        mounted.mkdir(parents=True)
        for key, value in secret["stringData"].items():
            (mounted / key).write_text(value)
        env = {**config, "GNOSIS_KAFKA__SASL_USERNAME": secret["stringData"]["username"],
               "GNOSIS_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
               "GNOSIS_KAFKA__SASL_MECHANISM": "SCRAM-SHA-512",
               "GNOSIS_KAFKA__SASL_PASSWORD_FILE": str(
                   pod_root / config["GNOSIS_KAFKA__SASL_PASSWORD_FILE"].lstrip("/"))}
        options = client_options(Settings.load(env=env))
        assert options["sasl_plain_password"] == secret["stringData"]["password"]
        assert options["sasl_plain_username"] == secret["stringData"]["username"]


def test_servicemonitor_selects_the_service_port() -> None:
    (monitor,) = load_all(K8S / "servicemonitor" / "servicemonitor.yaml")
    service = resources()["Service"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["kind"] == "ServiceMonitor"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= (
        service["metadata"]["labels"].items())
    port_names = {p["name"] for p in service["spec"]["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["port"] in port_names
        assert endpoint["path"] == "/metrics"
