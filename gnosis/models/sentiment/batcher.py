"""Micro-batching: many concurrent ``await score(text)`` calls, few model calls."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from concurrent.futures import Executor, ThreadPoolExecutor

from gnosis.models.sentiment.score import SentimentScore, SentimentScorer
from gnosis.sinks.metrics import SENTIMENT_BATCH_SECONDS, SENTIMENT_BATCH_SIZE

_Request = tuple[str, asyncio.Future[SentimentScore]]


class MicroBatcher:
    """Gathers headlines from concurrent callers into batches for one scorer call.

    A batch closes when it holds ``batch_size`` headlines or ``max_wait_ms`` after its
    first headline arrived, whichever is first, and is scored in a worker thread so the
    event loop keeps running. One batch is scored at a time; headlines that arrive
    meanwhile form the next batch (so under load batches fill without waiting). Each
    batch is observed in ``gnosis_sentiment_batch_seconds`` and ``_batch_size``.

    Use inside a running event loop::

        async with MicroBatcher(scorer, batch_size=16, max_wait_ms=10) as batcher:
            score = await batcher.score("Acme beats estimates")
    """

    def __init__(self, scorer: SentimentScorer, batch_size: int = 16,
                 max_wait_ms: float = 10.0, executor: Executor | None = None) -> None:
        self.scorer = scorer
        self.batch_size = max(1, batch_size)
        self.max_wait = max(0.0, max_wait_ms) / 1000.0
        self.batch_sizes: deque[int] = deque(maxlen=1_000)
        """Sizes of the last 1,000 batches scored, oldest first."""
        self._own_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(1, thread_name_prefix="sentiment")
        self._queue: asyncio.Queue[_Request] | None = None
        self._worker: asyncio.Task[None] | None = None

    async def score(self, text: str) -> SentimentScore:
        """The score of one headline, computed in a batch with concurrent callers."""
        loop = asyncio.get_running_loop()
        if self._worker is None or self._worker.done() or self._worker.get_loop() is not loop:
            self._queue = asyncio.Queue()
            self._worker = loop.create_task(self._run())
        assert self._queue is not None
        future: asyncio.Future[SentimentScore] = loop.create_future()
        self._queue.put_nowait((text, future))
        return await future

    async def close(self) -> None:
        """Stop the worker (pending callers get ``CancelledError``) and its own thread."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        if self._queue is not None:
            while not self._queue.empty():
                self._queue.get_nowait()[1].cancel()
        if self._own_executor:
            self._executor.shutdown(wait=False)

    async def __aenter__(self) -> MicroBatcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _run(self) -> None:
        assert self._queue is not None
        queue, loop = self._queue, asyncio.get_running_loop()
        while True:
            batch = [await queue.get()]
            deadline = loop.time() + self.max_wait
            while len(batch) < self.batch_size:
                if not queue.empty():
                    batch.append(queue.get_nowait())
                    continue
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(queue.get(), remaining))
                except TimeoutError:
                    break
            await self._score(batch, loop)

    async def _score(self, batch: list[_Request], loop: asyncio.AbstractEventLoop) -> None:
        live = [(text, future) for text, future in batch if not future.done()]
        if not live:
            return
        started = time.perf_counter()
        try:
            scores = await loop.run_in_executor(
                self._executor, self.scorer.score_batch, [text for text, _ in live])
        except Exception as exc:  # a scorer bug fails its callers, not the worker
            for _, future in live:
                if not future.done():
                    future.set_exception(exc)
            return
        SENTIMENT_BATCH_SECONDS.observe(time.perf_counter() - started)
        SENTIMENT_BATCH_SIZE.observe(len(live))
        self.batch_sizes.append(len(live))
        for (_, future), score in zip(live, scores, strict=True):
            if not future.done():
                future.set_result(score)
