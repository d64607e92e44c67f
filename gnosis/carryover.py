"""Restoring a saved ticker state under other settings or from another state version.

A snapshot records the settings its numbers depend on (:mod:`gnosis.fingerprint`). The
live worker restores a ticker under the settings it was saved with (:func:`saved_engine`),
applies the events journaled since, and then carries it over to its own settings
(:func:`carry`). That does not fail: per changed setting it

* **rebuilds** the ticker's features from what the state keeps, when that suffices (a
  shorter ``window``, ``vsa_window`` or ``hawkes_window``, another stride, ``vol_short``,
  ``trend_lookback``: see :mod:`gnosis.features.reconfigure`), equal from then on to a
  replay of the whole history under the new settings (an estimate whose stride changed
  may be held until the new stride's next point, and the line says so);
* **keeps** the headlines for a new ``rules.sentiment_window``: a shorter one is covered;
  a longer one lacks the headlines that fell out of the old window, so sentiment counts
  may be short for one window's time after the restart;
* starts the ticker's features **afresh** (they warm up again from the next bar; the
  headlines held still count) when the state does not keep enough; for a snapshot of
  another state version the whole engine starts afresh. ``gnosis state warm --replace``
  then rebuilds it from an archive (:mod:`gnosis.warm`).

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


def _saved_settings(settings: Settings, values: dict[str, Any]) -> Settings:
    """``settings`` with the recorded values of a snapshot."""
    rules = settings.rules
    if SENTIMENT_WINDOW in values:
        rules = dataclasses.replace(rules, sentiment_window=values[SENTIMENT_WINDOW])
    return dataclasses.replace(settings, features=_old_features(settings.features, values),
                               rules=rules)


def saved_engine(ticker: str, settings: Settings, data: bytes, model_id: str = "lexicon"
                 ) -> tuple[TickerEngine | None, list[Change]]:
    """The engine of a snapshot under the settings it was saved with (``settings`` with
    its recorded values), ready for the events journaled after it; ``None`` and the change
    when it cannot be read: another state version, or a snapshot that records no settings
    and does not fit these."""
    obj = orjson.loads(data)
    version = obj.get("v")
    if version != _STATE_VERSION:
        return None, [Change("state version", version, _STATE_VERSION, "afresh",
                             "started afresh: this version cannot read what that one kept")]
    then = obj.get("settings")
    saved_under = settings if then is None else _saved_settings(settings, then)
    try:
        return TickerEngine.from_state(ticker, saved_under, data, model_id), []
    except ValueError as exc:  # saved before snapshots recorded their settings
        return None, [Change("settings", "unrecorded", fingerprint(recorded(settings)),
                             "afresh", f"started afresh: the state does not fit these "
                             f"settings ({exc})")]


def carry(engine: TickerEngine, settings: Settings) -> tuple[TickerEngine, list[Change]]:
    """``engine`` under ``settings``, and the changes it was carried across (none, and the
    same engine, when its settings record the same values)."""
    then, now = recorded(engine.settings), recorded(settings)
    if fingerprint(then) == fingerprint(now):
        return engine, []
    ticker, obj = engine.ticker, orjson.loads(engine.to_state())
    changed = differences(then, now)
    features = [c for c in changed if c[0] in FEATURES]
    action, detail = "rebuilt", ""
    if features:
        action, detail = _carry_features(ticker, settings, obj, engine.settings.features)
    changes = [Change(name, old, new, action, detail) for name, old, new in features]
    changes += [Change(name, old, new, "kept", _sentiment_detail(old, new))
                for name, old, new in changed if name == SENTIMENT_WINDOW]
    obj["settings"], obj["fingerprint"] = now, fingerprint(now)
    carried = TickerEngine.from_state(ticker, settings, orjson.dumps(
        obj, option=orjson.OPT_SERIALIZE_NUMPY), engine.model_id)
    return carried, changes
