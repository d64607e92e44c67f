"""The topics the worker creates carry the configuration it relies on, as Kafka's own
``ConfigCommand`` (what ``kafka-configs.sh`` runs: an independent client) reads it back."""

from __future__ import annotations

import re
import subprocess

import pytest

from gnosis.streams.kafka.broker import fetch_jars
from gnosis.streams.topics import topic_names

pytestmark = pytest.mark.kafka


def described(bootstrap: str, topic: str) -> dict[str, str]:
    out = subprocess.run(
        ["java", "-cp", str(fetch_jars() / "*"), "kafka.admin.ConfigCommand",
         "--bootstrap-server", bootstrap, "--describe", "--entity-type", "topics",
         "--entity-name", topic], capture_output=True, text=True, timeout=120, check=True)
    return dict(re.findall(r"^\s+([\w.]+)=(\S*) sensitive", out.stdout, re.MULTILINE))


def test_changelogs_are_compacted_in_segments_a_take_over_reads_quickly(
        kafka_settings, kafka_topics) -> None:
    settings = kafka_settings(partitions=2)
    kafka_topics(settings)
    names = topic_names(settings)
    for changelog in (names.snapshots_changelog, names.journal_changelog):
        config = described(settings.kafka.bootstrap_servers, changelog)
        assert config["cleanup.policy"] == "compact"
        # The active segment is never compacted and a new owner reads all of it
        # (bench/bench_restore.py: ~35 MB/s): Kafka's 1 GiB default would take ~30 s.
        assert int(config["segment.bytes"]) <= 64 * 2**20
    bars = described(settings.kafka.bootstrap_servers, names.bars)
    assert bars["cleanup.policy"] == "delete"
    assert int(bars["retention.ms"]) == settings.kafka.retention_days * 86_400_000
