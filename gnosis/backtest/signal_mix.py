"""What a strategy's signals were, and why its HOLDs held: the reports' "signal mix".

A quiet strategy should explain itself. Every HOLD's ``reasons`` say whether the features
were still warming up, a rule fired below ``min_confidence``, or no rule's conditions all
held; for the last kind, :func:`signal_mix` counts which of the BUY and SELL conditions of
:func:`gnosis.models.rules.decide` failed, from the values the reasons state (sentiment,
Hurst exponent and its standard error, volatility clustering) and the rules' thresholds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from gnosis.config import RuleConfig

_LEADS = {"warming_up": "HOLD: warming up",
          "hold: a rule fired below min_confidence": "HOLD: below min_confidence",
          "hold: no rule's conditions all met": "HOLD: no rule met"}


def hold_kind(reasons: Sequence[str]) -> str:
    """The row of the signal mix a HOLD's ``reasons`` put it in."""
    lead = reasons[0] if len(reasons) else ""
    for prefix, kind in _LEADS.items():
        if lead.startswith(prefix):
            return kind
    return "HOLD: no rule met"


_RULES = {"warming_up": "HOLD: warming up", "below_min_confidence": "HOLD: below min_confidence"}


def hold_kinds(holds: pd.DataFrame) -> list[str]:
    """The row of the signal mix of each HOLD: from its ``reasons`` (a signals file), or
    from its ``rule`` (a replay's signal frame, which has no reasons yet)."""
    if "reasons" in holds.columns:
        return [hold_kind(r) for r in holds["reasons"]]
    return [_RULES.get(str(r), "HOLD: no rule met") for r in holds["rule"]]


def condition_failures(signals: pd.DataFrame, rules: RuleConfig) -> dict[str, np.ndarray]:
    """Per BUY / SELL condition, a mask of the signals that failed it."""
    count = signals["sentiment_count"].to_numpy()
    mean = signals["sentiment_mean"].to_numpy(dtype=np.float64)
    hurst = signals["hurst_exponent"].to_numpy(dtype=np.float64)
    margin = rules.hurst_significance * signals["hurst_se"].to_numpy(dtype=np.float64)
    clustering = signals["volatility_clustering"].to_numpy(dtype=np.float64)
    k = f"{rules.hurst_significance:g}"
    return {
        f"BUY blocked: no news, or sentiment < {rules.positive_sentiment:+g}":
            ~((count > 0) & (mean >= rules.positive_sentiment)),
        f"BUY blocked: Hurst < {rules.trending_hurst:g}": hurst < rules.trending_hurst,
        f"BUY blocked: Hurst ≥ {rules.trending_hurst:g} but within {k} se of 0.5":
            (hurst >= rules.trending_hurst) & ~(hurst - 0.5 > margin),
        f"BUY blocked: vol clustering > {rules.low_clustering:g}":
            clustering > rules.low_clustering,
        f"SELL blocked: no news, or sentiment > {rules.negative_sentiment:+g}":
            ~((count > 0) & (mean <= rules.negative_sentiment)),
        f"SELL blocked: Hurst > {rules.mean_reverting_hurst:g}":
            hurst > rules.mean_reverting_hurst,
        f"SELL blocked: Hurst ≤ {rules.mean_reverting_hurst:g} but within {k} se of 0.5":
            (hurst <= rules.mean_reverting_hurst) & ~(0.5 - hurst > margin),
        f"SELL blocked: vol clustering < {rules.high_clustering:g}":
            clustering < rules.high_clustering,
    }


NEEDED = frozenset({"ticker", "signal_type", "sentiment_count", "sentiment_mean",
                    "hurst_exponent", "hurst_se", "volatility_clustering"})
"""The columns :func:`signal_mix` reads (and ``reasons`` or ``rule``)."""


def has_mix(signals: pd.DataFrame) -> bool:
    """Whether ``signals`` have what :func:`signal_mix` reads."""
    columns = set(signals.columns)
    return columns >= NEEDED and bool({"reasons", "rule"} & columns)


def signal_mix(signals: pd.DataFrame, rules: RuleConfig) -> pd.DataFrame:
    """Counts per ticker (columns): BUY, SELL, HOLD; the HOLDs by kind; and, over the
    HOLDs where no rule's conditions all held, how many failed each BUY and SELL
    condition (a HOLD usually fails several)."""
    rows: dict[str, pd.Series] = {}
    for ticker, group in signals.groupby("ticker", sort=True):
        kinds = group["signal_type"].value_counts()
        holds = group[group["signal_type"] == "HOLD"]
        of_each = pd.Series(hold_kinds(holds), index=holds.index, dtype=object)
        tally = of_each.value_counts()
        counts = {k: int(kinds.get(k, 0)) for k in ("BUY", "SELL", "HOLD")}
        counts.update({kind: int(tally.get(kind, 0)) for kind in _LEADS.values()})
        quiet = holds[of_each == "HOLD: no rule met"]
        counts.update({name: int(mask.sum())
                       for name, mask in condition_failures(quiet, rules).items()})
        rows[str(ticker)] = pd.Series(counts)
    return pd.DataFrame(rows)


def format_mix(mix: pd.DataFrame) -> pd.DataFrame:
    """The counts as text, each with its share of the ticker's signals."""
    totals = mix.loc[["BUY", "SELL", "HOLD"]].sum()
    return mix.apply(lambda column: [f"{n:,} ({n / max(totals[column.name], 1):.1%})"
                                     for n in column])
