"""Session fixtures for the container tests: one engine, one image build per run."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

import pytest

from .containers import PYTHON_IMAGE, ROOT, Engine, ensure_image, find_engine

IMAGE = "localhost/gnosis:test"


@pytest.fixture(scope="session")
def say(pytestconfig: pytest.Config) -> Callable[[str], None]:
    """Write a line to the terminal even while output is captured."""
    reporter = pytestconfig.pluginmanager.getplugin("terminalreporter")
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")

    def write(line: str) -> None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"[containers] {line}")

    return write


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory, say: Callable[[str], None]) -> Engine:
    """Docker if its daemon answers, else Podman; skips when neither is installed."""
    found = find_engine(tmp_path_factory.mktemp("engine"))
    if found is None:
        pytest.skip("no container engine (scripts/setup-system.sh installs podman)")
    say(f"engine: {found.name}")
    return found


def context_digest(base_id: str) -> str:
    """A digest of what the image is built from: the base image and the files the
    Dockerfile copies (pyproject.toml, README.md, gnosis/), and the Dockerfile itself."""
    digest = hashlib.sha256(base_id.encode())
    files = [ROOT / "Dockerfile", ROOT / "pyproject.toml", ROOT / "README.md",
             *sorted(p for p in (ROOT / "gnosis").rglob("*")
                     if p.is_file() and "__pycache__" not in p.parts)]
    for path in files:
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="session")
def gnosis_image(engine: Engine, say: Callable[[str], None]) -> str:
    """The Dockerfile built at most once per change: tagged with a digest of its inputs,
    an image already built from the same inputs is reused."""
    log: list[str] = []
    ensure_image(engine, PYTHON_IMAGE, log)
    for line in log:
        say(line)
    base_id = engine.run("image", "inspect", "--format", "{{.Id}}", PYTHON_IMAGE).stdout
    image = f"{IMAGE}-{context_digest(base_id.strip())}"
    if engine.has_image(image):
        say(f"reusing {image} (built from the same files)")
        return image
    started = time.monotonic()
    engine.build(image, ROOT)
    # Images of earlier inputs would pile up (~0.9 GB each): keep only this one.
    listed = engine.run("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    stale = [ref for ref in listed if ref.startswith(f"{IMAGE}-") and ref != image]
    if stale:
        engine.run("rmi", *stale, check=False)
    say(f"built {image} in {time.monotonic() - started:.0f} s, "
        f"{engine.image_size(image) / 1e6:.0f} MB ({PYTHON_IMAGE}: "
        f"{engine.image_size(PYTHON_IMAGE) / 1e6:.0f} MB)")
    return image
