"""Signal-driven backtests: vectorised execution, statistics, permutation test, reports.

    from gnosis.backtest import BacktestRunner
    result = BacktestRunner().run(signals, prices)
    print(result.as_series())
"""

from gnosis.backtest.inputs import BacktestInputError
from gnosis.backtest.permutation import PermutationTest, permutation_test
from gnosis.backtest.report import generate_report, write_html_report
from gnosis.backtest.result import BacktestResult
from gnosis.backtest.runner import BacktestRunner

__all__ = [
    "BacktestInputError",
    "BacktestResult",
    "BacktestRunner",
    "PermutationTest",
    "generate_report",
    "permutation_test",
    "write_html_report",
]
