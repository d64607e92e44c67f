"""Run a live worker: ``gnosis worker`` or ``python -m gnosis.streams.worker``.

Creates missing topics, serves ``/health`` and ``/metrics`` on ``worker.web_port``, and
runs :class:`~gnosis.streams.runtime.Worker` until SIGINT or SIGTERM, which commit what
was processed and leave the consumer group so the partitions move on at once.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from typing import Any

from aiohttp import web

from gnosis.config import Settings
from gnosis.sinks import metrics
from gnosis.streams.runtime import Worker
from gnosis.streams.topics import ensure_topics

log = logging.getLogger("gnosis.worker")


def web_app(worker: Callable[[], Worker]) -> web.Application:
    """The worker's HTTP endpoints: ``/health`` (503 until ready) and ``/metrics``;
    ``worker`` returns the worker currently running."""

    async def health(request: web.Request) -> web.Response:
        body, ready = worker().health()
        return web.json_response(body, status=200 if ready else 503)

    async def metrics_page(request: web.Request) -> web.Response:
        body, content_type = metrics.render()
        return web.Response(body=body, content_type=content_type.split(";")[0])

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics_page)
    return app


async def serve(settings: Settings, scorer: Any = None) -> None:
    """Run a worker and its web endpoints until SIGINT/SIGTERM.

    A worker that fails (e.g. a Kafka error in the middle of a rebalance) is replaced by a
    fresh one, which rejoins the group and resumes from what was committed: the same
    recovery as a process restart, without losing the process.
    """
    from gnosis.models.sentiment import load_scorer
    from gnosis.models.sentiment.cache import ScoreCache
    from gnosis.models.sentiment.store import warm_cache

    await ensure_topics(settings)
    scorer = scorer if scorer is not None else load_scorer(settings.sentiment)
    if settings.sentiment.store_dir and isinstance(scorer, ScoreCache):
        # Headlines scored before (a bulk run, a replay) cost no model call here.
        loaded = warm_cache(scorer, settings.sentiment.store_dir)
        log.info("%d headline scores loaded from %s", loaded, settings.sentiment.store_dir)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    current = Worker(settings, scorer)
    runner = web.AppRunner(web_app(lambda: current), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", settings.worker.web_port).start()
    log.info("worker %s: %s, sentiment %s, /health and /metrics on port %d",
             settings.worker.app_id, settings.worker.processing_guarantee,
             scorer.model_id, settings.worker.web_port)
    try:
        while True:
            watch = asyncio.create_task(_forward(stop, current.stopping))
            try:
                await current.run()
                return
            except Exception:
                if stop.is_set():
                    return
                log.exception("worker failed; starting afresh from the committed state")
                await asyncio.sleep(1.0)
                current = Worker(settings, scorer)
            finally:
                watch.cancel()
    finally:
        await runner.cleanup()


async def _forward(source: asyncio.Event, target: asyncio.Event) -> None:
    await source.wait()
    target.set()


def run_worker(settings: Settings, scorer: Any = None) -> None:
    """Blocking :func:`serve` with logging set from ``worker.log_level``."""
    logging.basicConfig(level=settings.worker.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    asyncio.run(serve(settings, scorer))


if __name__ == "__main__":
    run_worker(Settings.load())
