"""Sweeps: the same figures as a from-scratch replay and backtest, resumable, checked grids,
and the ``gnosis sweep`` command end to end."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from gnosis.cli import app
from gnosis.config import ConfigError
from gnosis.replay.inprocess import replay_frame
from gnosis.research import Grid, SweepError, sweep
from gnosis.research.report import identical_trades, write_sweep_html

from .conftest import GRID, SETTINGS, from_scratch, write_files

STATS = ("total_return", "sharpe_ratio", "max_drawdown", "num_trades", "num_round_trips",
         "win_rate", "expectancy", "exposure", "profit_factor")


@pytest.fixture(scope="module")
def swept(market):
    return sweep(market, grid=GRID, settings=SETTINGS, permutations=50)


def test_every_configuration_matches_replay_then_backtest(swept, bars, news, scorer):
    configs = GRID.configurations()
    assert len(swept.table) == len(configs) == 16
    assert swept.table["num_trades"].nunique() > 4  # the grid changes what is traded
    for k in (0, 5, 10, 15):  # both hold policies, both feature windows
        settings = GRID.apply(SETTINGS, configs[k])
        reference = from_scratch(bars, news, settings, scorer)
        row = swept.table.iloc[k]
        for stat in STATS:
            assert row[stat] == pytest.approx(reference.stats[stat], rel=1e-9, nan_ok=True)
        curve = swept.curves[row["config_id"]]
        assert curve.index.equals(reference.equity_curve.index)
        assert np.allclose(curve.to_numpy(), reference.equity_curve.to_numpy(), rtol=1e-12)


def test_corrected_p_values_are_never_below_single_ones(swept):
    table = swept.table
    assert (table["max_p_value"] >= table["p_value"] - 1e-12).all()
    assert table["deflated_sharpe"].between(0, 1).all()
    assert swept.chosen["sharpe_ratio"] == table["sharpe_ratio"].max()


def test_resuming_computes_only_what_is_missing(market, tmp_path):
    small = Grid.from_dict({"rules": {"trending_hurst": [0.5, 0.6]}})
    first = sweep(market, grid=small, settings=SETTINGS, permutations=20, out_dir=tmp_path)
    bigger = Grid.from_dict({"rules": {"trending_hurst": [0.5, 0.6, 0.7]}})
    calls = []
    second = sweep(market, grid=bigger, settings=SETTINGS, permutations=20, out_dir=tmp_path,
                   progress=lambda done, total: calls.append((done, total)))
    assert calls[0] == (2, 3)  # two found on disk, one left to run
    assert calls[-1] == (3, 3)
    pd.testing.assert_frame_equal(second.table.iloc[:2].drop(columns=["max_p_value",
                                                                       "deflated_sharpe"]),
                                  first.table.drop(columns=["max_p_value", "deflated_sharpe"]))
    assert (tmp_path / "results.csv").exists()
    with pytest.raises(SweepError, match="other data or settings"):
        sweep(market, grid=small, settings=SETTINGS, permutations=21, out_dir=tmp_path)


def test_grid_errors_name_the_setting(tmp_path):
    with pytest.raises(ConfigError, match=r"\[rules\]: unknown key 'no_such'"):
        Grid.from_dict({"rules": {"no_such": [1]}})
    with pytest.raises(ConfigError, match="min_confidence"):
        Grid.from_dict({"rules": {"min_confidence": ["high"]}})
    with pytest.raises(ConfigError, match="non-empty list"):
        Grid.from_dict({"rules": {"min_confidence": 0.3}})
    with pytest.raises(ConfigError, match="window must be"):
        Grid.from_dict({"features": {"window": [20]}})
    bad = tmp_path / "grid.toml"
    bad.write_text("[kafka]\nbootstrap_servers = ['x']\n")
    with pytest.raises(ConfigError, match=re.escape(f"{bad}: 'kafka.bootstrap_servers'")):
        Grid.load(bad)
    with pytest.raises(SweepError, match="unknown metric"):
        sweep(pd.DataFrame(), grid=Grid.from_dict({}), metric="sharpe")


def test_html_page_has_heatmap_and_best_curves(swept, tmp_path):
    page = write_sweep_html(swept, tmp_path / "sweep.html", x="rules.trending_hurst",
                            y="rules.min_confidence", top=3).read_text()
    assert page.count('class="cell"') == 4  # 2 × 2 values of the two settings
    assert page.count("<polyline") == 3
    assert "<script" not in page
    same = identical_trades(swept)
    table = swept.table.set_index("config_id")
    for ids in same:  # what traded alike has alike statistics, and the page says so
        assert table.loc[ids, list(STATS)].nunique(dropna=False).max() == 1
        assert ", ".join(ids) in page
    with pytest.raises(ValueError, match="not a setting"):
        write_sweep_html(swept, tmp_path / "x.html", x="rules.nope", y="rules.min_confidence")


def test_page_names_configurations_that_traded_identically(market, bars, news, tmp_path):
    # With the significance test at k = 2 nothing on these bars is trending, so the
    # trending threshold changes no trade: the two configurations are one.
    strict = dataclasses.replace(SETTINGS, rules=dataclasses.replace(
        SETTINGS.rules, hurst_significance=50.0))
    grid = Grid.from_dict({"rules": {"trending_hurst": [0.5, 0.6]}})
    result = sweep(market, grid=grid, settings=strict, permutations=0)
    ids = list(result.table["config_id"])
    assert identical_trades(result) == [ids]
    signals = replay_frame(bars, news, strict)
    page = write_sweep_html(result, tmp_path / "sweep.html", signals=signals,
                            rules=strict.rules).read_text()
    assert "Identical trades" in page and ", ".join(ids) in page
    assert 'id="mix"' in page and "within 50 se of 0.5" in page


def test_cli_sweep_writes_table_and_page(bars, news, tmp_path):
    bars_path, news_path, grid = write_files(bars, news, tmp_path)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["sweep", str(bars_path), str(news_path), "--grid",
                                      str(grid), "--out", str(out), "--workers", "0",
                                      "--permutations", "20"])
    assert result.exit_code == 0, result.output
    assert "max-statistic p-value" in result.output
    table = pd.read_csv(out / "results.csv")
    assert len(table) == 4
    assert {"sharpe_ratio", "max_p_value", "deflated_sharpe"} <= set(table.columns)
    assert 'class="cell"' in (out / "sweep.html").read_text()


def test_features_are_computed_once_per_ticker_and_feature_setting(market, monkeypatch):
    import gnosis.research.evaluate as evaluate

    calls = []
    real = evaluate.compute_features

    def counting(*args, **kwargs):
        calls.append(args[-1])
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluate, "compute_features", counting)
    sweep(market, grid=Grid.from_dict({"rules": {"trending_hurst": [0.5, 0.6],
                                                 "min_confidence": [0.0, 0.4]}}),
          settings=SETTINGS)
    assert len(calls) == market.count == 4
    calls.clear()
    sweep(market, grid=Grid.from_dict({"rules": {"trending_hurst": [0.5, 0.6]},
                                       "features": {"vol_short": [8, 16]}}),
          settings=SETTINGS)
    assert len(calls) == 2 * market.count
