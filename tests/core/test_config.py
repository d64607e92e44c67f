"""Configuration precedence and errors."""

from __future__ import annotations

import dataclasses

import pytest

from gnosis.config import ConfigError, Settings, WorkerConfig, duration_ns


def test_file_then_environment_override(tmp_path):
    path = tmp_path / "gnosis.toml"
    path.write_text('[kafka]\nbootstrap_servers = "broker:9092"\npartitions = 6\n'
                    '[rules]\nmin_confidence = 0.5\n')
    settings = Settings.load(path, env={"GNOSIS_KAFKA__PARTITIONS": "12"})
    assert settings.kafka.bootstrap_servers == "broker:9092"
    assert settings.kafka.partitions == 12
    assert settings.rules.min_confidence == 0.5
    assert settings.features.window == 512


def test_config_path_from_environment(tmp_path):
    path = tmp_path / "g.toml"
    path.write_text("[worker]\nweb_port = 7001\n")
    assert Settings.load(env={"GNOSIS_CONFIG": str(path)}).worker.web_port == 7001


def test_features_config_path(tmp_path):
    path = tmp_path / "features.toml"
    path.write_text("window = 256\nhurst_stride = 4\n")
    settings = Settings.load(features_config_path=path, env={})
    assert (settings.features.window, settings.features.hurst_stride) == (256, 4)


@pytest.mark.parametrize(("text", "message"), [
    ("[kafka]\npartitions = 'many'\n", "partitions"),
    ("[nope]\nx = 1\n", "unknown section [nope]"),
    ("[kafka]\ncolour = 'red'\n", "unknown key 'colour'"),
    ("[kafka\n", "g.toml"),
])
def test_errors_name_file_and_key(tmp_path, text, message):
    path = tmp_path / "g.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"g\.toml") as err:
        Settings.load(path, env={})
    assert message in str(err.value)


def test_bad_environment_value_is_named():
    with pytest.raises(ConfigError, match=r"environment.*web_port"):
        Settings.load(env={"GNOSIS_WORKER__WEB_PORT": "eighty"})


def test_shipped_defaults_file_matches_code():
    from importlib.resources import files

    shipped = files("gnosis").joinpath("config/defaults.toml")
    loaded = Settings.load(str(shipped), env={})
    assert loaded == Settings()


@pytest.mark.parametrize(("name", "raw", "setting", "allowed"), [
    ("GNOSIS_WORKER__PROCESSING_GUARANTEE", "exactly-once", "worker.processing_guarantee",
     "'at_least_once', 'exactly_once'"),
    ("GNOSIS_BACKTEST__HOLD", "close", "backtest.hold", "'keep', 'flat'"),
    ("GNOSIS_WORKER__LOG_LEVEL", "loud", "worker.log_level", "'debug', 'info'"),
    ("GNOSIS_KAFKA__SECURITY_PROTOCOL", "TLS", "kafka.security_protocol", "'SASL_SSL'"),
    ("GNOSIS_KAFKA__SASL_MECHANISM", "GSSAPI", "kafka.sasl_mechanism", "'SCRAM-SHA-512'"),
    ("GNOSIS_RULES__SENTIMENT_WINDOW", "1", "rules.sentiment_window", "a duration like"),
    ("GNOSIS_REPLAY__NEWS_LATENCY", "5 minutes", "replay.news_latency", "a duration like"),
    ("GNOSIS_WORKER__MAX_FUTURE", "-1d", "worker.max_future", "a duration like"),
])
def test_choices_and_durations_are_checked_when_read(tmp_path, name, raw, setting, allowed):
    with pytest.raises(ConfigError) as err:
        Settings.load(env={name: raw})
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"environment {name}: {setting} = {raw!r}: allowed: ")
    assert allowed in message
    section, key = setting.split(".")
    path = tmp_path / "g.toml"
    path.write_text(f'[{section}]\n{key} = "{raw}"\n')
    with pytest.raises(ConfigError) as err:
        Settings.load(path, env={})
    assert f"g.toml: [{section}] {key} = {raw!r}: allowed: " in str(err.value)


def test_sections_built_in_code_are_checked_too():
    with pytest.raises(ConfigError, match=r"rules\.sentiment_window = '90': allowed"):
        dataclasses.replace(Settings().rules, sentiment_window="90")
    with pytest.raises(ConfigError, match=r"worker\.processing_guarantee"):
        WorkerConfig(processing_guarantee="exactly-once")  # type: ignore[arg-type]


def test_durations():
    assert [duration_ns(t) for t in ("0", "0s", " 30s", "5m", "1h", "2d")] == [
        0, 0, 30 * 10**9, 300 * 10**9, 3_600 * 10**9, 2 * 86_400 * 10**9]
    for bad in ("1", "1.5m", "m", "-1s", "1w", ""):
        with pytest.raises(ValueError, match="not a duration"):
            duration_ns(bad)
    settings = Settings.load(env={"GNOSIS_WORKER__MAX_FUTURE": "12h",
                                  "GNOSIS_RULES__SENTIMENT_WINDOW": "0"})
    assert (settings.worker.max_future, settings.rules.sentiment_window) == ("12h", "0")
    assert duration_ns(Settings().worker.max_future) == 86_400 * 10**9


def test_a_retired_setting_is_named_and_ignored(tmp_path, caplog) -> None:
    """A configuration written for an earlier version still loads: the retired key is
    named with why it went, and changes nothing."""
    path = tmp_path / "old.toml"
    path.write_text('[worker]\nallowed_lateness = "5m"\napp_id = "old"\n')
    with caplog.at_level("WARNING", logger="gnosis.config"):
        settings = Settings.load(path, env={})
    assert settings.worker.app_id == "old"
    assert not hasattr(settings.worker, "allowed_lateness")
    assert "worker.allowed_lateness is retired" in caplog.text
    assert "no longer dropped for lateness" in caplog.text
