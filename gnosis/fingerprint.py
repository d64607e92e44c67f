"""The settings a saved ticker state's numbers depend on, recorded in every snapshot.

Every ``[features]`` setting (the windows, strides and thresholds the feature buffers and
estimates are built with) and ``rules.sentiment_window`` (how far back the headlines held
reach). The other settings only read the state: a change to a rule threshold applies
from the next bar, as in a replay. :func:`recorded` gives the values as a snapshot stores
them, :func:`fingerprint` their digest; :mod:`gnosis.carryover` compares them on restore.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

from gnosis.config import FeatureConfig, Settings, duration_ns

SENTIMENT_WINDOW = "rules.sentiment_window"
FEATURES = tuple(f"features.{f.name}" for f in dataclasses.fields(FeatureConfig))
"""The recorded names of the feature settings, ``features.window`` and so on."""


def recorded(settings: Settings) -> dict[str, Any]:
    """``{"features.window": 512, ..., "rules.sentiment_window": "1h"}`` of ``settings``."""
    values: dict[str, Any] = {name: getattr(settings.features, name.split(".", 1)[1])
                              for name in FEATURES}
    values[SENTIMENT_WINDOW] = settings.rules.sentiment_window
    return values


def _normal(name: str, value: Any) -> Any:
    # "60m" and "1h" are one window.
    return duration_ns(value) if name == SENTIMENT_WINDOW else value


def fingerprint(values: Mapping[str, Any]) -> str:
    """A short digest of recorded values: equal digests, equal settings."""
    normal = {name: _normal(name, value) for name, value in values.items()}
    return hashlib.sha256(orjson.dumps(normal, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(name, old value, new value)`` of each recorded setting that changed (a setting
    the old record lacks counts as changed from ``None``)."""
    return [(name, old.get(name), value) for name, value in new.items()
            if old.get(name) is None or _normal(name, old[name]) != _normal(name, value)]
