"""Accuracy of the Hurst and Hawkes features at the live window, with their standard errors.

Run: .venv/bin/python bench/bench_accuracy.py [--seeds 200] [--before 83f7cee]

Prints three Markdown tables (recorded in BENCHMARKS.md):

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
   known ratio and a kernel shorter and longer than a bar, turned into volume bars (a bar
   with k events has k spikes of volume; the feature reads a bar as an event when its
   volume exceeds the threshold), estimated at window 512: bias, rmse, mean standard
   error and its coverage; next to it the multi-scale Fano fit that was tried as a
   correction, and that fit alone on longer windows (``--fit-window``).
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
from tests.features.simulate import fgn, fgn_exact_mle, hawkes_bars  # noqa: E402

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


def hawkes_table(windows: int, rate: float) -> None:
    config = FeatureConfig()
    print(f"\n### Hawkes branching ratio at bar resolution: window {WINDOW}, "
          f"{rate:g} events per bar, {windows} disjoint windows per row\n")
    print_head(["kernel mean delay (bars)", "true n", "event bars per window", "bias", "rmse",
                "sd of the estimate", "mean se", "95 % coverage of n",
                "multi-scale fit: bias", "fit: rmse", "fit: sd"])
    bars = WINDOW * (windows + 2)
    for tau in (0.25, 5.0):
        for n in (0.0, 0.3, 0.5, 0.7, 0.85):
            rng = np.random.default_rng(int(100 * n + tau))
            volume = hawkes_bars(n, tau, rate, bars, rng)
            close = np.full(bars, 100.0)
            f = compute_features(np.arange(bars), close, close, close, close, volume, config)
            pick = np.flatnonzero(f.ready)[::WINDOW]
            est, se = f.hawkes_branching[pick], f.hawkes_se[pick]
            err = est - n
            # Calm volume stays below 1.4, a bar with an event above 3.5: these are the
            # bars the feature reads as events.
            marks = (volume > 2.5)[: windows * WINDOW].reshape(windows, WINDOW)
            fit = multiscale_fit(marks.astype(np.float64)) - n
            print(f"| {tau:g} | {n:g} | {marks.sum() / windows:.0f} | {err.mean():+.3f} "
                  f"| {np.sqrt((err ** 2).mean()):.3f} | {est.std():.3f} | {se.mean():.3f} "
                  f"| {np.mean(np.abs(err) <= 1.96 * se):.2f} | {fit.mean():+.3f} "
                  f"| {np.sqrt((fit ** 2).mean()):.3f} | {fit.std():.3f} |")


def long_window_fit(width: int, windows: int, rate: float) -> None:
    """The multi-scale fit alone on longer windows: where the data would allow it."""
    print(f"\n### Multi-scale Fano fit on windows of {width:,} bars, {rate:g} events per bar, "
          f"{windows} windows per row\n")
    print_head(["kernel mean delay (bars)", "true n", "bias", "rmse"])
    for tau in (1.0, 5.0):
        for n in (0.0, 0.3, 0.5, 0.7, 0.85):
            volume = hawkes_bars(n, tau, rate, width * windows, np.random.default_rng(3))
            fit = multiscale_fit((volume > 2.5).reshape(windows, width).astype(np.float64)) - n
            print(f"| {tau:g} | {n:g} | {fit.mean():+.3f} | {np.sqrt((fit ** 2).mean()):.3f} |")


def multiscale_fit(marks: np.ndarray) -> np.ndarray:
    """Branching ratio of each row of 0/1 event bars by the finite-bin Fano curve.

    The correction tried for the rolling feature (and not adopted: see BENCHMARKS.md).
    For ``B`` bins of ``D`` bars in a window of ``W``, an exponential kernel with
    ``k = beta (1 - n)`` and ``A = 1 / (1 - n)**2``, one event bit per bar (rate ``p``,
    ``lam = -log(1 - p)`` events) and the window mean removed, the measured Fano factor
    obeys ``(F(D) - (1 - p)(1 - D/W)) p / lam = (A - 1) m_k(D)`` with
    ``m_k(D) = s(kD) - s(k) - (D/W)(s(kW) - s(k))``, ``s(x) = 1 - (1 - e**-x) / x``:
    linear in ``A - 1``, so a weighted least-squares fit over a grid of ``k`` is two
    matrix products.
    """
    rows, width = marks.shape
    sizes = np.array([1, 2, 4, 8, 16, 32, 64])
    rates = np.geomspace(0.002, 5.0, 80)[:, None]

    def s(x: np.ndarray) -> np.ndarray:
        return 1.0 - (-np.expm1(-x)) / x

    shape = s(rates * sizes) - s(rates) - sizes / width * (s(rates * width) - s(rates))
    p = np.clip(marks.mean(axis=1), 1e-9, 0.99)[:, None]
    fano = np.stack([marks.reshape(rows, -1, d).sum(axis=2).var(axis=1) for d in sizes],
                    axis=1) / (p * sizes)
    y = (fano - (1.0 - p) * (1.0 - sizes / width)) * p / -np.log1p(-p)
    weight = (width // sizes - 1) / np.maximum(fano, 0.5) ** 2
    num = (weight * y) @ shape.T
    den = weight @ (shape * shape).T
    best = np.where(num > 0.0, num * num / den, 0.0).argmax(axis=1)
    excess = np.maximum(num[np.arange(rows), best] / den[np.arange(rows), best], 0.0)
    return np.clip(1.0 - 1.0 / np.sqrt(1.0 + excess), 0.0, 0.99)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=200, help="fGn series per H")
    parser.add_argument("--mle-seeds", type=int, default=20,
                        help="of those, how many also get the (slow) exact MLE")
    parser.add_argument("--bars", type=int, default=20_000, help="bars per regime series")
    parser.add_argument("--runs", type=int, default=3, help="regime series per kind")
    parser.add_argument("--hawkes-windows", type=int, default=200)
    parser.add_argument("--rate", type=float, default=0.1, help="Hawkes events per bar")
    parser.add_argument("--fit-window", type=int, default=4096,
                        help="bars per window of the long-window fit table")
    parser.add_argument("--before", metavar="REF",
                        help="git revision whose DFA Hurst estimator to compare with")
    args = parser.parse_args()
    before = old_estimator(args.before) if args.before else None
    hurst_table(args.seeds, args.mle_seeds, before)
    shares_table(args.bars, args.runs, before)
    hawkes_table(args.hawkes_windows, args.rate)
    long_window_fit(args.fit_window, 40, args.rate)


if __name__ == "__main__":
    main()
