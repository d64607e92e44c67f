"""Scoring an archive: bulk scoring across threads and processes, per precision.

The BERT-base-shaped model of ``bench_sentiment.py`` (built and cached there, in
``.cache/bench-sentiment/``; fp16 is converted here from its fp32 export) scores
``--headlines`` distinct synthetic headlines through ``score_parallel`` (what ``gnosis
news score`` runs: texts sorted by length, chunks on a process pool) as threads ×
processes. The baseline, measured in the same run, is the live scorer as
``bench_sentiment.py`` times it: int8, batches of 16 in arrival order, one process on all
threads. The headlines are scored in rounds, every engine in turn with the order rotated,
so that load from other work on the machine falls on all of them alike.

    .venv/bin/python bench/bench_archive.py [--headlines 1500] [--rounds 5] [--providers cpu]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sentiment import CACHE, build_models

from gnosis.models.export import convert_fp16
from gnosis.models.sentiment import ModelManifest, OnnxSentimentScorer
from gnosis.models.sentiment.bulk import ScorerSpec, score_parallel
from gnosis.models.sentiment.synthetic import synthetic_headlines

TARGET_RATE = 260.0
"""int8 headlines/s on this machine with all cores (1.2x the 219/s of 2026-11-27)."""


def live_scorer(model_dir: Path, threads: int) -> Callable[[list[str]], object]:
    """The baseline: the live scorer, batches of 16 in arrival order, one process."""
    scorer = OnnxSentimentScorer(model_dir, batch_size=16, intra_op_threads=threads)

    def score(texts: list[str]) -> object:
        return [scorer.score_batch(texts[i:i + 16]) for i in range(0, len(texts), 16)]

    return score


def bulk_scorer(spec: ScorerSpec, processes: int,
                executor: Executor | None) -> Callable[[list[str]], object]:
    """``score_parallel`` on a pool kept for the whole run (models loaded once)."""
    def score(texts: list[str]) -> object:
        return list(score_parallel(spec, texts, processes=processes, executor=executor))

    return score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--headlines", type=int, default=1_500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--providers", default="cpu")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    cores = os.cpu_count() or 1

    _, fp32, int8 = build_models(cores)
    fp16 = CACHE / "onnx-fp16"
    if not (fp16 / "manifest.json").exists():
        convert_fp16(fp32, fp16)
    headlines = list(dict.fromkeys(synthetic_headlines(args.headlines * 2, seed=7)))
    headlines = headlines[:args.headlines]
    print(f"{len(headlines)} distinct headlines in {args.rounds} rounds; {cores} cores; "
          f"providers {args.providers}; bulk batch {args.batch_size}")

    engines: dict[str, Callable[[list[str]], object]] = {
        f"baseline int8 {cores} x 1": live_scorer(int8, cores)}
    pools = []
    layouts = [(cores, 1), (1, cores)] if cores > 1 else [(1, 1)]
    for precision, directory in (("int8", int8), ("fp32", fp32), ("fp16", fp16)):
        for threads, processes in (layouts if precision == "int8" else layouts[-1:]):
            spec = ScorerSpec(str(directory), 64, args.batch_size, threads, args.providers)
            pool = None
            if processes > 1:
                pool = ProcessPoolExecutor(processes,
                                           mp_context=multiprocessing.get_context("spawn"))
                pools.append(pool)
            engines[f"{precision} {threads} x {processes}"] = bulk_scorer(spec, processes, pool)
    try:
        for score in engines.values():  # warm-up: every process loads its model
            score(headlines[:2 * cores * 8])
        # Rounds with the order rotated, so that load from other work on the shared machine
        # falls on every engine alike.
        seconds = dict.fromkeys(engines, 0.0)
        size = -(-len(headlines) // args.rounds)
        for r in range(args.rounds):
            part = headlines[r * size:(r + 1) * size]
            names = list(engines)
            for name in names[r % len(names):] + names[:r % len(names)]:
                started = time.perf_counter()
                engines[name](part)
                seconds[name] += time.perf_counter() - started
    finally:
        for pool in pools:
            pool.shutdown()
    rates = {name: len(headlines) / s for name, s in seconds.items()}
    base = rates[next(iter(rates))]
    print(f"{'engine (threads x processes)':<30} {'headlines/s':>12} {'x baseline':>11}")
    for name, rate in rates.items():
        print(f"{name:<30} {rate:>12.1f} {rate / base:>10.2f}x")
    best_int8 = max(r for n, r in rates.items() if n.startswith("int8"))
    print(f"best int8 bulk {best_int8:.0f} headlines/s (target >= {TARGET_RATE:.0f} on an idle "
          f"machine; {best_int8 / base:.2f}x the baseline, target >= 1.2x)")
    print("models:", ", ".join(ModelManifest.read(d).model_id for d in (int8, fp32, fp16)))


if __name__ == "__main__":
    main()
