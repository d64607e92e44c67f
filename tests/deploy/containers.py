"""A container engine for the image and Compose tests, and stand-ins for unreachable images.

The engine is Docker when its daemon answers, else Podman. Podman is driven through a
``containers.conf`` of our own (``CONTAINERS_CONF``) that selects ``runc`` (crun refuses
hybrid cgroups) and sets explicit ulimits (the engine's defaults cannot be set on every
kernel), so ``build``, ``run`` and ``podman-compose`` all get them.

Where the images the Dockerfile and Compose file name cannot be pulled (no registry is
reachable), :func:`ensure_image` builds a stand-in under the official name from Debian
packages: a ``debootstrap`` root file system imported as a base, then the Containerfiles in
``deploy/standins/``. The engine's image store is the cache: a stand-in already there is
reused, so only the first run on a machine pays for it.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from gnosis.config import Settings
from gnosis.engine import run_events
from gnosis.replay.kafka import collect_signals, publish
from gnosis.replay.synthetic import bars_to_events, news_to_events, synthetic_bars, synthetic_news
from gnosis.streams.kafka.broker import KAFKA_VERSION, fetch_jars, kafka_home

ROOT = Path(__file__).resolve().parents[2]
STANDINS = ROOT / "deploy" / "standins"

PYTHON_IMAGE = "docker.io/library/python:3.11-slim"
KAFKA_IMAGE = f"docker.io/apache/kafka:{KAFKA_VERSION}"
PROMETHEUS_IMAGE = "docker.io/prom/prometheus:v2.55.1"
DEBIAN_IMAGE = "localhost/gnosis-standin/debian:bookworm"

_CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1000:1000"]

[engine]
runtime = "runc"
"""


class EngineError(RuntimeError):
    """A container engine command failed."""


@dataclass
class Engine:
    """One container engine CLI (``docker`` or ``podman``) and the environment it needs."""

    name: str
    env: dict[str, str] = field(default_factory=dict)

    def run(self, *args: str, timeout: float = 600, check: bool = True,
            input: bytes | None = None) -> subprocess.CompletedProcess[str]:
        """``<engine> args…``; raises :class:`EngineError` with its output when it fails."""
        result = subprocess.run([self.name, *args], capture_output=True, timeout=timeout,
                                input=input, env={**os.environ, **self.env},
                                text=input is None)
        if check and result.returncode != 0:
            out = result.stdout + result.stderr
            out = out.decode(errors="replace") if isinstance(out, bytes) else out
            raise EngineError(f"{self.name} {' '.join(args)} failed:\n{out[-3000:]}")
        return result

    def build(self, tag: str, context: Path) -> None:
        """Build ``context`` (its Dockerfile or Containerfile) as ``tag``."""
        # Podman 4.3's buildah cannot bind-mount from a stage it took from its layer cache
        # (the Dockerfile's runtime stage mounts the builder's wheels), so it builds afresh.
        flags = ["--layers=false"] if self.name == "podman" else []
        self.run("build", *flags, "-t", tag, str(context), timeout=1500)

    def has_image(self, ref: str) -> bool:
        return self.run("image", "inspect", ref, check=False).returncode == 0

    def image_size(self, ref: str) -> int:
        """Bytes of the image, as the engine counts them (all layers)."""
        return int(self.run("image", "inspect", "--format", "{{.Size}}", ref).stdout)


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        result = subprocess.run(["docker", "info"], capture_output=True, timeout=10)
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


def find_engine(conf_dir: Path) -> Engine | None:
    """Docker if its daemon answers, else Podman (with our ``containers.conf``), else None."""
    if _docker_answers():
        return Engine("docker")
    if shutil.which("podman") is None:
        return None
    conf = conf_dir / "containers.conf"
    conf.write_text(_CONTAINERS_CONF)
    # Docker's image format keeps HEALTHCHECK, which the OCI format has no field for.
    return Engine("podman", {"CONTAINERS_CONF": str(conf), "BUILDAH_FORMAT": "docker"})


def host_ca_bundle() -> str:
    """The CA bundle pip on this host uses."""
    return os.environ.get("PIP_CERT") or ssl.get_default_verify_paths().cafile


def _debian_base(engine: Engine, log: list[str]) -> None:
    """Import a minimal Debian (debootstrap minbase) as :data:`DEBIAN_IMAGE`."""
    if engine.has_image(DEBIAN_IMAGE):
        return
    if shutil.which("debootstrap") is None:
        raise EngineError("debootstrap is needed to build image stand-ins "
                          "(scripts/setup-system.sh installs it)")
    log.append(f"building {DEBIAN_IMAGE} with debootstrap (once per machine)")
    with tempfile.TemporaryDirectory(prefix="gnosis-rootfs-") as rootfs:
        done = subprocess.run(["debootstrap", "--variant=minbase", "--include=ca-certificates",
                               "bookworm", rootfs], capture_output=True, text=True,
                              timeout=1200)
        if done.returncode != 0:
            raise EngineError(f"debootstrap failed:\n{done.stdout[-2000:]}{done.stderr}")
        # Trust what the host trusts (e.g. a TLS-inspecting proxy's CA), so pip inside a
        # build reaches the package index as pip on the host does.
        shutil.copy(host_ca_bundle(), Path(rootfs, "usr/local/share/ca-certificates/host.crt"))
        subprocess.run(["chroot", rootfs, "update-ca-certificates"], capture_output=True,
                       check=True)
        tar = subprocess.run(["tar", "-C", rootfs, "-c", "."], capture_output=True,
                             check=True).stdout
    engine.run("import", "--change", "CMD [\"bash\"]", "--change",
               "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "-", DEBIAN_IMAGE, input=tar)


def _build_standin(engine: Engine, ref: str, name: str, log: list[str]) -> None:
    _debian_base(engine, log)
    log.append(f"{ref} cannot be pulled: built a stand-in from Debian packages "
               f"(deploy/standins/{name})")
    with tempfile.TemporaryDirectory(prefix=f"gnosis-standin-{name}-") as tmp:
        context = Path(tmp) / "context"
        shutil.copytree(STANDINS / name, context)
        if name == "kafka":  # the broker's jars, as `gnosis kafka fetch` gets them
            shutil.copytree(fetch_jars(kafka_home()), context / "libs")
        engine.build(ref, context)


def ensure_image(engine: Engine, ref: str, log: list[str]) -> None:
    """Make ``ref`` available: already there, pulled, or else built as a stand-in.

    What happened is appended to ``log`` (the tests print it).
    """
    if engine.has_image(ref):
        label = engine.run("image", "inspect", "--format",
                           '{{index .Config.Labels "io.gnosis.standin"}}', ref).stdout.strip()
        if label and label != "<no value>":
            log.append(f"{ref} is the stand-in built earlier from Debian packages ({label})")
        return
    if engine.run("pull", "-q", ref, check=False, timeout=300).returncode == 0:
        log.append(f"pulled {ref}")
        return
    standins = {PYTHON_IMAGE: "python", KAFKA_IMAGE: "kafka", PROMETHEUS_IMAGE: "prometheus"}
    if ref not in standins:
        raise EngineError(f"{ref} cannot be pulled and has no stand-in")
    _build_standin(engine, ref, standins[ref], log)


def compose_file() -> dict[str, Any]:
    """docker-compose.yml, parsed."""
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def run_flags(service: dict[str, Any]) -> list[str]:
    """``run`` flags for a Compose service's isolation: read-only root, tmpfs mounts (with
    their options), dropped capabilities, security options and user."""
    flags = ["--read-only"] if service.get("read_only") else []
    for mount in service.get("tmpfs", []):
        flags += ["--tmpfs", mount]
    for cap in service.get("cap_drop", []):
        flags += ["--cap-drop", cap]
    for option in service.get("security_opt", []):
        flags += ["--security-opt", option]
    if "user" in service:
        flags += ["--user", str(service["user"])]
    return flags


_BAR_FIELDS = ("ticker", "ts", "price", "interval")


def replay_market(settings: Settings, tickers: int, bars_per_ticker: int,
                  seed: int) -> tuple[int, list[str]]:
    """Publish a synthetic market to the settings' broker and collect what the worker(s)
    emit. Asserts that every signal the in-process engine gives arrived exactly once, for
    the same bar; returns the bar count and the fields that differ from the engine's."""
    frame = synthetic_bars(tickers, bars_per_ticker, seed=seed)
    bars, news = bars_to_events(frame), news_to_events(synthetic_news(frame, per_bar=0.3))
    expected = run_events(bars, news, settings)
    publish(bars, news, settings, progress=False)
    got = collect_signals(settings, expected=len(expected), timeout=180)
    by_id = {s.signal_id: s for s in got}
    assert len(by_id) == len(got), "a signal was emitted twice"
    assert len(got) == len(expected) == len(bars)
    assert set(by_id) == {s.signal_id for s in expected}
    differ = []
    for ref in expected:
        live = by_id[ref.signal_id]
        for name, value in asdict(ref).items():
            same = (getattr(live, name) == pytest.approx(value, abs=1e-9, nan_ok=True)
                    if isinstance(value, float) else getattr(live, name) == value)
            if not same:
                assert name not in _BAR_FIELDS, f"{ref.signal_id}: {name} differs"
                differ.append(f"{ref.ticker} {ref.ts} {name}: {getattr(live, name)} != {value}")
    return len(bars), differ


def differences(differ: list[str], signals: int) -> str:
    """A readable summary of :func:`replay_market`'s differences."""
    return f"{len(differ)} fields of {signals} signals differ:\n" + "\n".join(differ[:20])


def wait_until_serving(engine: Engine, name: str, url: str, timeout: float = 120) -> bytes:
    """Poll ``url`` until it answers 200; fail at once, with its log, if ``name`` exits."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=3) as response:
                return response.read()
        except (OSError, urllib.error.URLError):
            pass
        running = engine.run("inspect", "--format", "{{.State.Running}}", name,
                             check=False).stdout.strip()
        if running != "true" or time.monotonic() > deadline:
            log = engine.run("logs", name, check=False)
            raise AssertionError(f"{name} does not serve {url} (running: {running}):\n"
                                 f"{(log.stdout + log.stderr)[-3000:]}")
        time.sleep(1)
