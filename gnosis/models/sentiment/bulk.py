"""Bulk scoring of an archive across processes and threads.

A :class:`ScorerSpec` says how to build the scorer (picklable, so it travels to other
processes); :func:`score_parallel` splits the texts into chunks of similar length (less
padding than arrival order), scores them on an executor where each worker process builds
its scorer once, and yields the chunks as they finish. The executor is a local process
pool by default; any :class:`concurrent.futures.Executor` serves, e.g. a Dask cluster's
``client.get_executor()``.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass

import numpy as np

from gnosis.config import SentimentConfig
from gnosis.models.sentiment.score import SentimentScorer

CHUNK = 512
"""Texts per task: big enough to amortise the hand-over, small enough to resume often."""


@dataclass(frozen=True)
class ScorerSpec:
    """How to build a scorer: the lexicon when ``model_dir`` is empty, else the model."""

    model_dir: str = ""
    max_length: int = 64
    batch_size: int = 32
    threads: int = 1
    providers: str = "cpu"

    @classmethod
    def from_config(cls, config: SentimentConfig, *, threads: int | None = None) -> ScorerSpec:
        """The configured scorer, with ``bulk_threads`` threads per process (0: a thread
        per core)."""
        return cls(config.model_dir, config.max_length, config.bulk_batch_size,
                   threads or config.bulk_threads or os.cpu_count() or 1, config.providers)

    def build(self) -> SentimentScorer:
        """A new scorer of this kind."""
        from gnosis.models.sentiment import LexiconScorer, OnnxSentimentScorer

        if not self.model_dir:
            return LexiconScorer()
        return OnnxSentimentScorer(self.model_dir, max_length=self.max_length,
                                   batch_size=self.batch_size, intra_op_threads=self.threads,
                                   providers=self.providers)


_SCORERS: dict[ScorerSpec, SentimentScorer] = {}


def scorer_for(spec: ScorerSpec) -> SentimentScorer:
    """The scorer of ``spec`` in this process, built on first use and then kept."""
    if spec not in _SCORERS:
        _SCORERS[spec] = spec.build()
    return _SCORERS[spec]


def score_chunk(spec: ScorerSpec, texts: list[str]) -> np.ndarray:
    """Rows of (positive, negative, neutral, score) for ``texts``; runs in a worker."""
    from gnosis.models.sentiment.store import score_texts

    return score_texts(scorer_for(spec), texts)


def default_processes(spec: ScorerSpec) -> int:
    """One process per core on the CPU (each with ``spec.threads`` threads); one process
    on an accelerator, which batches for itself."""
    if spec.model_dir and spec.providers.split(",")[0].strip().lower() not in (
            "cpu", "cpuexecutionprovider"):
        return 1
    return max(1, (os.cpu_count() or 1) // max(1, spec.threads))


def score_parallel(spec: ScorerSpec, texts: Sequence[str], *, processes: int = 0,
                   executor: Executor | None = None,
                   chunk: int = CHUNK) -> Iterator[tuple[list[str], np.ndarray]]:
    """Score ``texts``, yielding (texts, values) per finished chunk, in no fixed order.

    ``processes`` 0 picks :func:`default_processes`; 1 scores in this process. With an
    ``executor`` (e.g. a Dask client's), chunks go there instead. At most two chunks per
    process are in flight, so an interrupted run has little scored and unwritten.
    """
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    chunks = [[texts[i] for i in order[start:start + chunk]]
              for start in range(0, len(order), chunk)]
    processes = processes or default_processes(spec)
    if executor is None and processes <= 1:
        for part in chunks:
            yield part, score_chunk(spec, part)
        return
    own = executor is None
    pool = executor or ProcessPoolExecutor(
        processes, mp_context=multiprocessing.get_context("spawn"))
    try:
        pending: dict[Future[np.ndarray], list[str]] = {}
        queue = iter(chunks)
        limit = 2 * processes
        while True:
            while len(pending) < limit and (part := next(queue, None)) is not None:
                pending[pool.submit(score_chunk, spec, part)] = part
            if not pending:
                return
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield pending.pop(future), future.result()
    finally:
        if own:
            pool.shutdown(wait=True, cancel_futures=True)
