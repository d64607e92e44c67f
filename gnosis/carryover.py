"""Restoring a saved ticker state under other settings or from another state version.

A snapshot records the settings its numbers depend on (:mod:`gnosis.fingerprint`). When a
worker restarts with some of them changed, :func:`restore_engine` does not fail: per
changed setting it

* **rebuilds** the ticker's features from what the state keeps, when that suffices (a
  shorter ``window``, ``vsa_window`` or ``hawkes_window``, another stride, ``vol_short``,
  ``trend_lookback``: see :mod:`gnosis.features.reconfigure`), equal from then on to a
  replay of the whole history under the new settings (an estimate whose stride changed
  may be held until the new stride's next point, and the line says so);
* **keeps** the headlines for a new ``rules.sentiment_window``: a shorter one is covered;
  a longer one lacks the headlines that fell out of the old window, so sentiment counts
  may be short for one window's time after the restart;
* starts the ticker **afresh** (it warms up again) when the state does not keep enough,
  and for a snapshot of another state version.

Each change comes back as a :class:`Change`, which the live worker logs in one line and
counts in ``gnosis_state_changes_total{setting, action}``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import orjson

from gnosis.config import FeatureConfig, Settings, duration_ns
from gnosis.engine import (
    _STATE_VERSION,
    TickerEngine,
    _saved_from_json,
    _saved_to_json,
)
from gnosis.features import ticker_phase
from gnosis.features.reconfigure import CannotCarry, reconfigure
from gnosis.fingerprint import FEATURES, SENTIMENT_WINDOW, differences, fingerprint, recorded


@dataclass(frozen=True, slots=True)
class Change:
    """One setting (or the state version) a saved state was restored across."""

    setting: str
    old: Any
    new: Any
    action: str
    """``rebuilt``, ``kept`` or ``afresh``."""
    detail: str
    """What was done, in words."""

    def line(self, ticker: str) -> str:
        """The log line: ticker, setting, old and new value, and what was done."""
        return f"{ticker}: {self.setting} {self.old} -> {self.new}: {self.detail}"


def _old_features(current: FeatureConfig, values: dict[str, Any]) -> FeatureConfig:
    known = {name.split(".", 1)[1]: values[name] for name in FEATURES if name in values}
    return dataclasses.replace(current, **known)


def _carry_features(ticker: str, settings: Settings, obj: dict[str, Any],
                    old: FeatureConfig) -> tuple[str, str]:
    """Rebuild every bar interval's features of ``obj`` under ``settings`` in place;
    ``(action, detail)``. An interval that cannot be rebuilt is dropped (it starts
    afresh), and the detail says why."""
    phase = ticker_phase(ticker)
    notes, refused = [], []
    for interval, saved_json in list(obj["series"].items()):
        saved = _saved_from_json(saved_json)
        try:
            carried = reconfigure(saved, old, settings.features, phase)
        except CannotCarry as exc:
            del obj["series"][interval]
            refused.append(f"{interval}: {exc}")
            continue
        notes.extend(f"{interval}: {note}" for note in carried.held)
        obj["series"][interval] = {"last_ts": saved_json["last_ts"],
                                   **_saved_to_json(carried.features.history())}
    if refused:
        return "afresh", "started afresh, the state does not keep enough (" + "; ".join(
            refused) + ")"
    detail = "rebuilt from the bars its state keeps"
    return "rebuilt", "; ".join([detail, *notes])


def _sentiment_detail(old: Any, new: Any) -> str:
    if old is not None and duration_ns(new) <= duration_ns(old):
        return "kept the headlines held, which cover the shorter window"
    return ("kept the headlines held; those older than the old window were not, so for "
            f"up to {new} after the last bar the counts may be short of a replay's")


def restore_engine(ticker: str, settings: Settings, data: bytes,
                   model_id: str = "lexicon") -> tuple[TickerEngine, list[Change]]:
    """The engine of a saved state under ``settings``, and the changes it was restored
    across (empty when it was saved under the same settings and state version)."""
    obj = orjson.loads(data)
    version = obj.get("v")
    if version != _STATE_VERSION:
        detail = "started afresh: this version cannot read what that one kept"
        return TickerEngine(ticker, settings, model_id), [
            Change("state version", version, _STATE_VERSION, "afresh", detail)]
    now = recorded(settings)
    then = obj.get("settings")
    if then is None:  # saved before snapshots recorded their settings
        try:
            return TickerEngine.from_state(ticker, settings, data, model_id), []
        except ValueError as exc:
            return TickerEngine(ticker, settings, model_id), [Change(
                "settings", "unrecorded", fingerprint(now), "afresh",
                f"started afresh: the state does not fit these settings ({exc})")]
    if obj.get("fingerprint") == fingerprint(now):
        return TickerEngine.from_state(ticker, settings, data, model_id), []
    changed = differences(then, now)
    features = [c for c in changed if c[0] in FEATURES]
    action, detail = "rebuilt", ""
    if features:
        action, detail = _carry_features(ticker, settings, obj, _old_features(
            settings.features, then))
    changes = [Change(name, old, new, action, detail) for name, old, new in features]
    changes += [Change(name, old, new, "kept", _sentiment_detail(old, new))
                for name, old, new in changed if name == SENTIMENT_WINDOW]
    obj["settings"] = now
    engine = TickerEngine.from_state(ticker, settings, orjson.dumps(
        obj, option=orjson.OPT_SERIALIZE_NUMPY), model_id)
    return engine, changes
