"""scripts/setup-system.sh --demo, as make demo runs it: the Java check and what it needs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_setup(tmp_path: Path, java_version: str) -> subprocess.CompletedProcess[str]:
    """The script with a ``java`` first on PATH that reports ``java_version``, and the
    Kafka jars already fetched (so that it needs no Maven and installs nothing)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    java = bin_dir / "java"
    java.write_text(f'#!/bin/sh\necho \'openjdk version "{java_version}" 2025-04-15\' >&2\n')
    java.chmod(0o755)
    libs = tmp_path / "kafka" / "libs"
    libs.mkdir(parents=True, exist_ok=True)
    (libs / "kafka_2.13-4.1.1.jar").write_bytes(b"")
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHON": sys.executable,
           "GNOSIS_KAFKA_HOME": str(tmp_path / "kafka")}
    return subprocess.run([str(ROOT / "scripts" / "setup-system.sh"), "--demo"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("version", ["17.0.15", "21.0.2", "25"])
def test_java_17_or_later_passes(tmp_path, version):
    out = run_setup(tmp_path, version)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""


@pytest.mark.parametrize(("version", "major"), [("1.8.0_392", "8"), ("11.0.2", "11")])
def test_older_java_is_refused_in_one_line(tmp_path, version, major):
    out = run_setup(tmp_path, version)
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1
    assert out.stderr.startswith(f"error: the local Kafka broker needs Java 17 or later; "
                                 f"`java -version` says {major}:")
