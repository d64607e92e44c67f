"""Grafana dashboards refer only to metrics the engine exports, in valid PromQL.

Every expression of every dashboard (panel targets and variable queries) is parsed for
metric names and label matchers, which must exist in what :func:`gnosis.sinks.metrics.render`
serves, and is sent to a real Prometheus, which must accept it. So a renamed metric or a
typo breaks this test instead of silently emptying a panel.
"""

from __future__ import annotations

import json
import re
import urllib.error
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gnosis.sinks import metrics

DASHBOARDS = sorted((Path(__file__).resolve().parents[2] / "deploy/grafana/dashboards")
                    .glob("*.json"))
TARGET_LABELS = {"instance", "job"}  # added by Prometheus to every scraped series
SYNTHETIC = {"up"}  # series Prometheus itself writes per target
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool",
             "offset", "and", "or", "unless"}
_NAME = re.compile(r"(?<![\w.$:])[A-Za-z_:][\w:]*")
_SELECTOR = re.compile(r"([A-Za-z_:][\w:]*)\s*\{([^}]*)\}")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)")
_LABEL_VALUES = re.compile(r"label_values\(\s*([A-Za-z_:][\w:]*)\s*,\s*(\w+)\s*\)")
_VARIABLES = {"$__rate_interval": "1m", "$instance": ".*", "$strategy": ".*"}


def expressions(dashboard: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs += [v["query"]["query"] for v in dashboard["templating"]["list"]]
    return exprs


def exported() -> dict[str, set[str]]:
    """Sample name -> label names, from the rendered registry with every labelled metric
    touched (unlabelled children of labelled metrics have no series until first used)."""
    metrics.SIGNALS_EMITTED.labels("BUY")
    metrics.SIGNAL_CONFIDENCE.labels("BUY")
    metrics.DEADLETTER_EVENTS.labels("invalid_price", "bars")
    metrics.LATE_NEWS.labels("news")
    metrics.CONSUMER_LAG.labels("bars", "0")
    metrics.OPERATION_SECONDS.labels("dashboard_test")
    metrics.OPERATION_ERRORS.labels("dashboard_test")
    metrics.ALERTS.labels("dashboard_test", "duration_ms")
    metrics.publish_backtest("dashboard_test", {"total_return": 0.1, "sharpe_ratio": 1.0,
                                                "max_drawdown": -0.05, "win_rate": 0.5,
                                                "num_trades": 10, "mcpt_p_value": 0.2})
    body, _ = metrics.render()
    out: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out.setdefault(s.name, set()).update(s.labels)
    return out


def references(expr: str) -> tuple[set[str], dict[str, set[str]], set[str]]:
    """(metric names, {metric: matcher label names}, grouping label names) of a PromQL
    expression or a Grafana label_values() query."""
    names: set[str] = set()
    matchers: dict[str, set[str]] = {}
    grouping: set[str] = set()
    for metric, label in _LABEL_VALUES.findall(expr):
        names.add(metric)
        matchers.setdefault(metric, set()).add(label)
    expr = _LABEL_VALUES.sub("", expr)
    for metric, body in _SELECTOR.findall(expr):
        matchers.setdefault(metric, set()).update(
            re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", re.sub(r'"[^"]*"', "", body)))
    for labels in _GROUPING.findall(expr):
        grouping.update(x.strip() for x in labels.split(",") if x.strip())
    stripped = re.sub(r'"[^"]*"', "", expr)
    stripped = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", stripped)
    stripped = _GROUPING.sub("", stripped)
    for match in _NAME.finditer(stripped):
        if stripped[match.end():].lstrip().startswith("(") or match.group() in _KEYWORDS:
            continue  # a function call or an operator keyword
        names.add(match.group())
    return names, matchers, grouping


def test_reference_parser_on_a_known_expression() -> None:
    names, matchers, grouping = references(
        'histogram_quantile(0.99, sum by (le, signal_type) (rate(gnosis_signal_confidence_'
        'bucket{instance=~"$instance", signal_type!="HOLD"}[5m]))) / on (instance) up '
        "* 1e3")
    assert names == {"gnosis_signal_confidence_bucket", "up"}
    assert matchers == {"gnosis_signal_confidence_bucket": {"instance", "signal_type"}}
    assert grouping == {"le", "signal_type", "instance"}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_metrics_exist(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    samples = exported()
    used: set[str] = set()
    for expr in expressions(dashboard):
        names, matchers, grouping = references(expr)
        assert names, f"no metric in {expr!r}"
        unknown = names - samples.keys() - SYNTHETIC
        assert not unknown, f"{path.name}: {sorted(unknown)} not exported ({expr!r})"
        for metric, labels in matchers.items():
            allowed = samples.get(metric, set()) | TARGET_LABELS
            assert labels <= allowed, f"{path.name}: {metric} has no label {labels - allowed}"
        available = set().union(*(samples.get(n, set()) for n in names)) | TARGET_LABELS
        assert grouping <= available, f"{path.name}: no label {grouping - available} in {expr!r}"
        used |= names
    assert any(name.startswith("gnosis_") for name in used)


def test_dashboards_are_well_formed() -> None:
    uids = set()
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        uids.add(dashboard["uid"])
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids)), path.name
        for panel in dashboard["panels"]:
            grid = panel["gridPos"]
            where = (path.name, panel["title"])
            assert grid["x"] >= 0, where
            assert grid["x"] + grid["w"] <= 24, where
            refs = [t["refId"] for t in panel["targets"]]
            assert refs, where
            assert len(refs) == len(set(refs)), where
    assert len(uids) == len(DASHBOARDS)
    assert {json.loads(p.read_text())["title"].split(" / ")[1] for p in DASHBOARDS} == {
        "System overview", "Engine performance", "Trading signals", "Backtest results"}


def test_prometheus_accepts_every_expression(prometheus) -> None:
    prom = prometheus({})
    for path in DASHBOARDS:
        for expr in expressions(json.loads(path.read_text())):
            if _LABEL_VALUES.fullmatch(expr.strip()):
                continue  # a Grafana function, not PromQL
            for variable, value in _VARIABLES.items():
                expr = expr.replace(variable, value)
            assert "$" not in expr, f"unsubstituted Grafana variable in {expr!r}"
            try:
                prom.api("query", query=expr)
            except urllib.error.HTTPError as exc:
                pytest.fail(f"{path.name}: Prometheus rejects {expr!r}: {exc.read().decode()}")
