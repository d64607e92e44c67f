"""Configuration precedence and errors."""

from __future__ import annotations

import pytest

from gnosis.config import ConfigError, Settings


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
