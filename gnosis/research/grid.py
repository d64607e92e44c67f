"""Parameter grids: which settings to vary and over which values.

A grid file is TOML with one table per settings section and a list of values per key::

    [rules]
    trending_hurst = [0.5, 0.55, 0.6]
    min_confidence = [0.0, 0.3]

    [backtest]
    hold = ["keep", "flat"]

Every combination is one configuration (the cartesian product, in file order). Keys are
checked against :class:`gnosis.config.Settings`; each value is coerced like the same key
in a configuration file, so a typo or a wrong type is an error naming ``section.key``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gnosis.config import ConfigError, Settings
from gnosis.features.state import check_config

SWEEPABLE_SECTIONS: tuple[str, ...] = ("features", "rules", "backtest")
"""Sections a grid may vary: the ones replay and the backtester read."""


@dataclass(frozen=True)
class Grid:
    """Values to try per setting, ``"section.key" -> values`` in a fixed order."""

    axes: Mapping[str, tuple[Any, ...]]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], origin: str = "grid") -> Grid:
        """A grid from ``{"rules": {"trending_hurst": [0.5, 0.6]}}`` or flat
        ``{"rules.trending_hurst": [0.5, 0.6]}`` keys; checked against the settings."""
        flat: dict[str, Any] = {}
        for key, value in data.items():
            if isinstance(value, Mapping):
                flat.update({f"{key}.{k}": v for k, v in value.items()})
            else:
                flat[key] = value
        axes: dict[str, tuple[Any, ...]] = {}
        for key, values in flat.items():
            section = key.split(".", 1)[0]
            if "." not in key or section not in SWEEPABLE_SECTIONS:
                raise ConfigError(f"{origin}: {key!r} is not a setting a sweep can vary "
                                  f"(sections: {', '.join(SWEEPABLE_SECTIONS)})")
            if isinstance(values, str) or not isinstance(values, Sequence) or not values:
                raise ConfigError(f"{origin}: {key} must be a non-empty list of values")
            axes[key] = tuple(values)
        grid = cls(axes)
        for overrides in grid.configurations():  # coerce and validate every value once
            settings = grid.apply(Settings(), overrides, origin)
            try:
                check_config(settings.features)
            except ValueError as exc:
                raise ConfigError(f"{origin}: {exc} (at {overrides})") from None
        return grid

    @classmethod
    def load(cls, path: str | Path) -> Grid:
        """Read a grid TOML file."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        return cls.from_dict(data, str(path))

    @property
    def names(self) -> list[str]:
        """The varied settings, ``section.key``."""
        return list(self.axes)

    def __len__(self) -> int:
        count = 1
        for values in self.axes.values():
            count *= len(values)
        return count

    def configurations(self) -> list[dict[str, Any]]:
        """Every combination as ``{"section.key": value}``, in grid order."""
        keys = list(self.axes)
        return [dict(zip(keys, combo, strict=True))
                for combo in itertools.product(*self.axes.values())]

    @staticmethod
    def apply(base: Settings, overrides: Mapping[str, Any], origin: str = "grid") -> Settings:
        """``base`` with ``overrides`` applied (coerced and checked like a config file)."""
        nested: dict[str, dict[str, Any]] = {}
        for key, value in overrides.items():
            section, name = key.split(".", 1)
            nested.setdefault(section, {})[name] = value
        return base.merged(nested, origin)


def config_id(overrides: Mapping[str, Any]) -> str:
    """A short stable id of a configuration (its overrides), for resuming and file names."""
    text = json.dumps(dict(overrides), sort_keys=True, default=str)
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:12]
