"""Walk-forward evaluation: choose on a training window, judge on the next, never peek.

The history (the union of bar times) is cut into ``folds + 1`` consecutive blocks of equal
bar count. Fold ``k`` (1 … folds) tests on block ``k`` and trains on block ``k - 1``
(``rolling``, or the ``train_blocks`` blocks before it) or on every block before it
(``anchored``). Signals are computed once on the whole history: every feature is causal,
so the signal at a bar is the same whether or not earlier bars belong to the fold, and the
test block's first bars are not lost to warm-up. Each window is its own backtest,
starting flat with the initial capital.

Only out-of-sample figures are reported: per fold, the configuration chosen on its
training window and its test-window statistics; and the stitched out-of-sample equity
curve, each test window's returns compounded onto the end of the previous one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from gnosis.config import Settings
from gnosis.research.evaluate import part_stats
from gnosis.research.grid import Grid, config_id
from gnosis.research.parameter_sweep import (
    Market,
    Progress,
    SweepError,
    check_metric,
    evaluate,
    prepare_market,
)

if TYPE_CHECKING:
    from gnosis.models.sentiment import SentimentScorer


@dataclass
class WalkForwardResult:
    """Out-of-sample results of a walk-forward run."""

    folds: pd.DataFrame
    """One row per fold: ``fold``, ``train_start``/``train_end``/``test_start``/
    ``test_end`` (times), ``config_id`` and the varied settings of the configuration chosen
    on the training window, its ``train_<metric>``, and its test-window statistics."""
    equity: pd.Series = field(repr=False)
    """Stitched out-of-sample equity over every test window."""
    metric: str = "sharpe_ratio"
    initial_capital: float = 100_000.0

    @property
    def total_return(self) -> float:
        """Out-of-sample total return: the stitched curve's end over the initial capital."""
        return float(self.equity.iloc[-1] / self.initial_capital - 1.0) if len(self.equity) \
            else 0.0


def fold_windows(bars: np.ndarray, folds: int, mode: Literal["rolling", "anchored"],
                 train_blocks: int = 1) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """``[(train, test), …]`` windows (``[start, end)`` in ns) over sorted bar times."""
    if folds < 1 or train_blocks < 1:
        raise SweepError("folds and train_blocks must be at least 1")
    if mode not in ("rolling", "anchored"):
        raise SweepError(f"mode must be 'rolling' or 'anchored', not {mode!r}")
    if len(bars) < 2 * (folds + 1):
        raise SweepError(f"{len(bars)} bars are too few for {folds} folds")
    edges = np.linspace(0, len(bars), folds + 2).round().astype(np.int64)
    starts = [int(bars[e]) for e in edges[:-1]] + [int(bars[-1]) + 1]
    out = []
    for k in range(1, folds + 1):
        first = 0 if mode == "anchored" else max(0, k - train_blocks)
        out.append(((starts[first], starts[k]), (starts[k], starts[k + 1])))
    return out


def walk_forward(bars: pd.DataFrame | Market, news: pd.DataFrame | None = None,
                 grid: Grid | None = None, settings: Settings | None = None, *,
                 folds: int = 4, mode: Literal["rolling", "anchored"] = "rolling",
                 train_blocks: int = 1, metric: str = "sharpe_ratio",
                 scorer: SentimentScorer | None = None, client: Any = None,
                 batch_size: int = 100, progress: Progress | None = None
                 ) -> WalkForwardResult:
    """Choose the best configuration of ``grid`` by ``metric`` on each training window and
    report it on the following test window only (see the module docs). ``progress`` is
    called with (configurations done, total) as batches finish."""
    settings = settings or Settings()
    grid = grid or Grid({})
    check_metric(metric)
    market = bars if isinstance(bars, Market) else prepare_market(bars, news, settings, scorer)
    configs = grid.configurations()
    applied = [grid.apply(settings, c) for c in configs]
    pairs = fold_windows(market.bars, folds, mode, train_blocks)
    windows = [w for pair in pairs for w in pair]
    done = [0]

    def on_batch(numbers: list[int], _parts: object) -> None:
        done[0] += len(numbers)
        if progress is not None:
            progress(done[0], len(applied))

    parts = evaluate(market, applied, windows, client=client, batch_size=batch_size,
                     on_batch=on_batch)
    window_bars = [market.bars[(market.bars >= a) & (market.bars < b)] for a, b in windows]

    rows, pieces = [], []
    level = settings.backtest.initial_capital
    for k, (train, test) in enumerate(pairs):
        scores = np.array([part_stats(p[2 * k], window_bars[2 * k], s)[metric]
                           for p, s in zip(parts, applied, strict=True)], dtype=np.float64)
        best = int(np.nanargmax(np.where(np.isnan(scores), -np.inf, scores)))
        tested = parts[best][2 * k + 1]
        stats = part_stats(tested, window_bars[2 * k + 1], applied[best])
        stamp = pd.to_datetime([*train, *test], unit="ns", utc=True)
        rows.append({"fold": k + 1, "train_start": stamp[0], "train_end": stamp[1],
                     "test_start": stamp[2], "test_end": stamp[3],
                     "config_id": config_id(configs[best]), **configs[best],
                     f"train_{metric}": scores[best], **stats})
        curve = tested.equity / applied[best].backtest.initial_capital * level
        level = float(curve[-1]) if len(curve) else level
        pieces.append(pd.Series(curve, index=pd.to_datetime(window_bars[2 * k + 1], unit="ns",
                                                            utc=True)))
    equity = pd.concat(pieces) if pieces else pd.Series(dtype=np.float64)
    return WalkForwardResult(pd.DataFrame(rows), equity.rename("oos_equity"), metric,
                             settings.backtest.initial_capital)
