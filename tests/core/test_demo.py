"""The main job, as a user runs it: ``gnosis demo`` end to end on a real broker."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from gnosis.streams.kafka.broker import free_port

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def test_demo_runs_end_to_end_and_cleans_up(tmp_path):
    out = subprocess.run([sys.executable, "-m", "gnosis.cli", "demo", "--workdir",
                          str(tmp_path), "--port", str(free_port())], capture_output=True,
                         text=True, timeout=600, env={**os.environ, "COLUMNS": "200"},
                         check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "7,148 of 7,148 signals identical" in out.stderr
    for name in ("report.txt", "report.html", "report-GOOG.html", "report-EURUSD.html"):
        assert (tmp_path / "report" / name).stat().st_size > 0
    lines = (tmp_path / "signals.jsonl").read_text().splitlines()
    assert len(lines) == 7_148
    # Nothing it started is left running.
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True)
    assert str(tmp_path) not in ps.stdout
