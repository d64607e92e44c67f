"""Accuracy of the Hurst and Hawkes features at the live window, with their standard errors.

Run: .venv/bin/python bench/bench_accuracy.py [--seeds 200] [--before 83f7cee]

Prints four Markdown tables (recorded in BENCHMARKS.md):

1. Hurst at window 512 on fractional Gaussian noise (Davies-Harte, exact): bias, rmse,
   mean standard error and coverage of the 95 % interval ``H +- 1.96 se``. Baselines in
   the same run: the exact time-domain Gaussian MLE on the first ``--mle-seeds`` series
   (mean |Whittle - MLE|: an independent implementation of the efficient estimator) and
   the ``hurst`` package's R/S estimate (bias, rmse). With ``--before REF`` also the DFA
   estimator of that git revision (its ``gnosis/features/hurst.py``).
2. Share of ready bars classified trending / mean reverting by the rules' definitions
   (:func:`gnosis.models.rules.regime_arrays`) on random walks (Gaussian and GARCH) and
   fGn with H = 0.3 / 0.7: raw thresholds (k = 0) and with the significance test (the
   configured k); with ``--before`` also the DFA estimate with raw thresholds.
3. The Hawkes branching-ratio feature at bar resolution: Hawkes event streams with a
   known ratio and kernels shorter and longer than a bar, turned into volume bars (a bar
   with k events has k spikes of volume; the feature reads a bar as an event when its
   volume exceeds the threshold), estimated on disjoint windows of the default
   ``hawkes_window``: bias, rmse, sd, mean standard error and its coverage, and the share
   of windows at or above the risk rule's ``high_risk_hawkes``. Baselines on the same
   windows: the binned Fano gauge the feature used before (8-bar bins over the last 512
   bars, re-implemented here) and the continuous-time maximum-likelihood estimate on the
   raw event times of the first ``--mle-windows`` windows (an independent implementation
   that sees what the bars hide).
4. The feature's bias / rmse against the length of its window (``hawkes_window``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import types
from dataclasses import replace
from pathlib import Path

import hurst as hurst_package
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gnosis.config import FeatureConfig, RuleConfig  # noqa: E402
from gnosis.features import compute_features  # noqa: E402
from gnosis.features.hurst import whittle_rows  # noqa: E402
from gnosis.models.rules import regime_arrays  # noqa: E402
from tests.features.simulate import (  # noqa: E402
    fgn,
    fgn_exact_mle,
    hawkes_mle,
    hawkes_stream,
)

WINDOW = 512


def print_head(columns: list[str], label: bool = False) -> None:
    """A Markdown table head: numbers right-aligned, a ``label`` first column left."""
    print("| " + " | ".join(columns) + " |")
    print("|" + "|".join(["---" if label and i == 0 else "---:"
                          for i in range(len(columns))]) + "|")


def old_estimator(ref: str) -> types.ModuleType:
    """The Hurst module of git revision ``ref`` (to measure the estimator it replaced)."""
    source = subprocess.run(["git", "show", f"{ref}:gnosis/features/hurst.py"], cwd=ROOT,
                            check=True, capture_output=True, text=True).stdout
    module = types.ModuleType(f"hurst_{ref}")
    exec(compile(source, f"{ref}:gnosis/features/hurst.py", "exec"), module.__dict__)
    return module


def hurst_table(seeds: int, mle_seeds: int, before: types.ModuleType | None) -> None:
    print(f"\n### Hurst at window {WINDOW}: fGn, {seeds} series per H\n")
    print_head(["H", "bias", "rmse", "mean se", "95 % coverage",
                "mean abs(Whittle - exact MLE)", "R/S (`hurst`) bias", "R/S rmse"]
               + (["DFA (before) bias", "DFA rmse"] if before is not None else []))
    for h in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
        rng = np.random.default_rng(int(h * 100))
        x = np.array([fgn(WINDOW, h, rng) for _ in range(seeds)])
        est, se = whittle_rows(x)
        err = est - h
        mle = np.array([fgn_exact_mle(row, step=0.01) for row in x[:mle_seeds]])
        rs = np.array([hurst_package.compute_Hc(row, kind="change")[0] for row in x]) - h
        line = (f"| {h:.1f} | {err.mean():+.4f} | {np.sqrt((err ** 2).mean()):.4f} "
                f"| {se.mean():.4f} | {np.mean(np.abs(err) <= 1.96 * se):.3f} "
                f"| {np.abs(est[:mle_seeds] - mle).mean():.4f} "
                f"| {rs.mean():+.4f} | {np.sqrt((rs ** 2).mean()):.4f} |")
        if before is not None:
            dfa = before.hurst_rows(x) - h
            line += f" {dfa.mean():+.4f} | {np.sqrt((dfa ** 2).mean()):.4f} |"
        print(line)


def garch_returns(n: int, rng: np.random.Generator) -> np.ndarray:
    """GARCH(1,1) returns (alpha 0.1, beta 0.85): uncorrelated, volatility clustered."""
    z = rng.standard_normal(n)
    out = np.empty(n)
    var = 1.0
    for i in range(n):
        out[i] = z[i] * np.sqrt(var)
        var = 0.05 + 0.1 * out[i] * out[i] + 0.85 * var
    return out


def shares_table(bars: int, runs: int, before: types.ModuleType | None) -> None:
    config = FeatureConfig()
    rules = RuleConfig()
    raw = replace(rules, hurst_significance=0.0)
    print(f"\n### Regime shares: {runs} series of {bars:,} bars, window {WINDOW}, "
          f"thresholds {rules.mean_reverting_hurst} / {rules.trending_hurst}, "
          f"k = {rules.hurst_significance}\n")
    print_head(["series", "Whittle, raw thresholds: trending / reverting",
                f"Whittle, significance (k = {rules.hurst_significance:g}): trending / "
                "reverting"]
               + (["DFA (before), raw thresholds: trending / reverting"]
                  if before is not None else []), label=True)
    makers = {
        "random walk (Gaussian)": lambda rng: rng.standard_normal(bars),
        "random walk (GARCH 0.1 / 0.85)": lambda rng: garch_returns(bars, rng),
        "fGn H = 0.3": lambda rng: fgn(bars, 0.3, rng),
        "fGn H = 0.7": lambda rng: fgn(bars, 0.7, rng),
    }
    for name, make in makers.items():
        counts = np.zeros(6)
        total = 0
        for seed in range(runs):
            ret = 0.002 * make(np.random.default_rng(seed))
            close = 100.0 * np.exp(np.cumsum(ret))
            f = compute_features(np.arange(bars), close, close, close, close,
                                 np.ones(bars), config)
            ok = f.ready
            h, se = f.hurst_exponent[ok], f.hurst_se[ok]
            for j, cfg in enumerate((raw, rules)):
                up, down = regime_arrays(h, se, cfg)
                counts[2 * j:2 * j + 2] += up.sum(), down.sum()
            if before is not None:
                r = np.zeros(bars)
                r[1:] = np.diff(np.log(close))
                stride = config.hurst_stride
                ends = np.arange(WINDOW + stride, bars + 1, stride)
                old = before.hurst_series(r, ends, WINDOW)
                up, down = regime_arrays(old, np.zeros_like(old), raw)
                counts[4:] += up.sum() * ok.sum() / old.size, down.sum() * ok.sum() / old.size
            total += ok.sum()
        share = counts / total
        line = (f"| {name} | {share[0]:.1%} / {share[1]:.1%} | {share[2]:.1%} / "
                f"{share[3]:.1%} |")
        if before is not None:
            line += f" {share[4]:.1%} / {share[5]:.1%} |"
        print(line)


KERNELS = (0.05, 0.25, 1.0, 5.0)
RATIOS = (0.0, 0.3, 0.5, 0.7, 0.85)


def hawkes_windows(n: float, tau: float, rate: float, windows: int,
                   config: FeatureConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                   np.ndarray, np.ndarray]:
    """One simulated stream cut into disjoint windows of ``config.hawkes_window`` bars.

    Returns the event times, the event bits, the last bar of each window, and the
    feature's estimate and standard error computed on exactly that window.
    """
    width = config.hawkes_window
    lead = -(-config.vol_long // config.hawkes_stride) * config.hawkes_stride
    bars = lead + width * windows
    times, volume = hawkes_stream(n, tau, rate, bars, np.random.default_rng(int(100 * n
                                                                                 + 20 * tau)))
    close = np.full(bars, 100.0)
    f = compute_features(np.arange(bars), close, close, close, close, volume, config)
    ends = lead + width * np.arange(1, windows + 1) - 1
    # Calm volume stays below 1.4, a bar with an event above 3.5.
    return times, volume > 2.5, ends, f.hawkes_branching[ends], f.hawkes_se[ends]


def fano_gauge(bits: np.ndarray, ends: np.ndarray, window: int = WINDOW,
               width: int = 8) -> np.ndarray:
    """The feature before: ``1 - sqrt(mean / var)`` of event counts in ``width``-bar bins
    over the last ``window`` bars (0 unless over-dispersed, at most 0.99)."""
    counts = np.array([bits[e + 1 - window:e + 1].reshape(-1, width).sum(axis=1)
                       for e in ends], dtype=np.float64)
    mean, var = counts.mean(axis=1), counts.var(axis=1)
    over = (mean > 0.0) & (var > mean)
    return np.where(over, np.minimum(1.0 - np.sqrt(mean / np.where(over, var, 1.0)), 0.99),
                    0.0)


def hawkes_table(windows: int, mle_windows: int, rate: float) -> None:
    config, rules = FeatureConfig(), RuleConfig()
    width = config.hawkes_window
    print(f"\n### Hawkes branching ratio at bar resolution: window {width:,} bars, "
          f"{rate:g} events per bar, {windows} disjoint windows per row "
          f"({mle_windows} for the continuous-time MLE)\n")
    print_head(["kernel mean delay (bars)", "true n", "event bars per window",
                "gauge before: bias", "gauge rmse", "bias", "rmse", "sd", "mean se",
                "95 % coverage", f"share >= {rules.high_risk_hawkes:g}",
                "continuous-time MLE: bias", "MLE rmse"])
    for tau in KERNELS:
        for n in RATIOS:
            times, bits, ends, est, se = hawkes_windows(n, tau, rate, windows, config)
            err, old = est - n, fano_gauge(bits, ends) - n
            mle = np.array([hawkes_mle(times[(times > e + 1 - width) & (times < e + 1)]
                                       - (e + 1 - width), float(width))
                            for e in ends[:mle_windows]]) - n
            print(f"| {tau:g} | {n:g} | {bits[ends[0] + 1 - width:].sum() / windows:.0f} "
                  f"| {old.mean():+.3f} | {rms(old):.3f} | {err.mean():+.3f} | {rms(err):.3f} "
                  f"| {est.std():.3f} | {se.mean():.3f} "
                  f"| {np.mean(np.abs(err) <= 1.96 * se):.2f} "
                  f"| {np.mean(est >= rules.high_risk_hawkes):.2f} "
                  f"| {mle.mean():+.3f} | {rms(mle):.3f} |")


def window_table(windows: int, rate: float) -> None:
    """Bias / rmse of the feature against the length of its window."""
    widths = (512, 1024, 2048, 4096)
    print(f"\n### Hawkes feature against `hawkes_window`: bias / rmse, {rate:g} events per bar, "
          f"{windows} disjoint windows per cell\n")
    print_head(["kernel mean delay (bars)", "true n"] + [f"{w:,} bars" for w in widths])
    for tau in KERNELS[1:]:
        for n in RATIOS:
            cells = []
            for width in widths:
                config = replace(FeatureConfig(), hawkes_window=width)
                err = hawkes_windows(n, tau, rate, windows, config)[3] - n
                cells.append(f"{err.mean():+.3f} / {rms(err):.3f}")
            print(f"| {tau:g} | {n:g} | " + " | ".join(cells) + " |")


def rms(x: np.ndarray) -> float:
    return float(np.sqrt((x ** 2).mean()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=200, help="fGn series per H")
    parser.add_argument("--mle-seeds", type=int, default=20,
                        help="of those, how many also get the (slow) exact MLE")
    parser.add_argument("--bars", type=int, default=20_000, help="bars per regime series")
    parser.add_argument("--runs", type=int, default=3, help="regime series per kind")
    parser.add_argument("--hawkes-windows", type=int, default=100,
                        help="disjoint Hawkes windows per row")
    parser.add_argument("--mle-windows", type=int, default=30,
                        help="of those, how many also get the (slow) continuous-time MLE")
    parser.add_argument("--rate", type=float, default=0.1, help="Hawkes events per bar")
    parser.add_argument("--skip-hurst", action="store_true",
                        help="only the Hawkes tables")
    parser.add_argument("--before", metavar="REF",
                        help="git revision whose DFA Hurst estimator to compare with")
    args = parser.parse_args()
    before = old_estimator(args.before) if args.before else None
    if not args.skip_hurst:
        hurst_table(args.seeds, args.mle_seeds, before)
        shares_table(args.bars, args.runs, before)
    hawkes_table(args.hawkes_windows, args.mle_windows, args.rate)
    window_table(args.hawkes_windows, args.rate)


if __name__ == "__main__":
    main()
