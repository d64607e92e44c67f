"""Research loop: parameter sweeps, walk-forward and significance after many tries.

Built on the vectorised replay's public pieces (features, as-of sentiment, rules) and the
backtester's execution and statistics, so a configuration here scores exactly what
``replay_frame`` + ``BacktestRunner.run_portfolio`` would. Work runs in this process or
on a Dask cluster (:mod:`gnosis.research.cluster`).

    from gnosis.research import Grid, sweep, walk_forward
    grid = Grid.from_dict({"rules": {"trending_hurst": [0.5, 0.55, 0.6]}})
    result = sweep(bars, news, grid, permutations=200)
    print(result.chosen[["config_id", "sharpe_ratio", "max_p_value", "deflated_sharpe"]])
"""

from gnosis.research.grid import Grid, config_id
from gnosis.research.parameter_sweep import Market, SweepError, SweepResult, prepare_market, sweep
from gnosis.research.significance import (
    deflated_sharpe_ratio,
    max_statistic_p_values,
    permuted_statistics,
)
from gnosis.research.walkforward import WalkForwardResult, walk_forward

__all__ = [
    "Grid",
    "Market",
    "SweepError",
    "SweepResult",
    "WalkForwardResult",
    "config_id",
    "deflated_sharpe_ratio",
    "max_statistic_p_values",
    "permuted_statistics",
    "prepare_market",
    "sweep",
    "walk_forward",
]
