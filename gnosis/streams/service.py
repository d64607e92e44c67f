"""The worker process: ``gnosis worker`` or ``python -m gnosis.streams.service``.

Serves ``/health`` and ``/metrics`` on ``worker.web_port``, creates missing topics, and
runs :class:`~gnosis.streams.runtime.Worker` (the loop; a fresh one replaces one that
fails) until SIGINT or SIGTERM, which commit what was processed and leave the consumer
group so the partitions move on at once. While Kafka refuses it, the process stays up, says
why and tries again (:mod:`gnosis.streams.access`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from gnosis.config import Settings
from gnosis.sinks import metrics
from gnosis.streams.access import KafkaAccess, is_refusal
from gnosis.streams.failures import FailureLog, progressed
from gnosis.streams.runtime import Worker
from gnosis.streams.topics import ensure_topics

log = logging.getLogger("gnosis.worker")


def web_app(health: Callable[[], tuple[dict[str, Any], bool]]) -> web.Application:
    """The worker's HTTP endpoints: ``/health`` (503 until ready, and while Kafka refuses
    the worker) and ``/metrics``; ``health`` returns the body and whether ready."""

    async def health_page(request: web.Request) -> web.Response:
        body, ready = health()
        return web.json_response(body, status=200 if ready else 503)

    async def metrics_page(request: web.Request) -> web.Response:
        body, content_type = metrics.render()
        return web.Response(body=body, content_type=content_type.split(";")[0])

    app = web.Application()
    app.router.add_get("/health", health_page)
    app.router.add_get("/metrics", metrics_page)
    return app


async def serve(settings: Settings, scorer: Any = None) -> None:
    """Run a worker and its web endpoints until SIGINT/SIGTERM.

    The endpoints come up first. A worker that Kafka refuses, at start or later, is tried
    again after a growing wait, the reason in ``/health`` and the metrics (see
    :mod:`gnosis.streams.access`); a worker that fails otherwise (e.g. a Kafka error in
    the middle of a rebalance) is replaced by a fresh one, which rejoins the group and
    resumes from what was committed: the same recovery as a process restart, without
    losing the process. Failures in a row without progress turn ``/health`` to 503 (see
    :mod:`gnosis.streams.failures`).
    """
    from gnosis.models.sentiment import load_scorer
    from gnosis.models.sentiment.cache import ScoreCache
    from gnosis.models.sentiment.store import warm_cache

    scorer = scorer if scorer is not None else load_scorer(settings.sentiment)
    if settings.sentiment.store_dir and isinstance(scorer, ScoreCache):
        # Headlines scored before (a bulk run, a replay) cost no model call here.
        loaded = warm_cache(scorer, settings.sentiment.store_dir)
        log.info("%d headline scores loaded from %s", loaded, settings.sentiment.store_dir)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    access = KafkaAccess(settings)
    failures = FailureLog(settings.worker.failing_after)
    current: Worker | None = None

    def health() -> tuple[dict[str, Any], bool]:
        refused = access.health()
        if refused is not None:
            return refused, False
        failing = failures.health()
        if failing is not None:
            return failing, False
        if current is None:
            return {"status": "starting"}, False
        return current.health()

    runner = web.AppRunner(web_app(health), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", settings.worker.web_port).start()
    log.info("worker %s: %s, sentiment %s, /health and /metrics on port %d",
             settings.worker.app_id, settings.worker.processing_guarantee,
             scorer.model_id, settings.worker.web_port)
    try:
        with access.watching():
            while not stop.is_set():
                access.attempt()
                try:
                    if not await _unless_stopped(stop, ensure_topics(settings)):
                        return
                    current = Worker(settings, scorer)
                    await _run(current, stop, access, failures)
                    return
                except Exception as exc:
                    if stop.is_set():
                        return
                    if is_refusal(exc):
                        delay = await access.refused(exc)
                    else:
                        failures.failed(exc)
                        delay = access.failed(exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
    finally:
        await runner.cleanup()


async def _unless_stopped(stop: asyncio.Event, work: Awaitable[Any]) -> bool:
    """Await ``work`` unless ``stop`` is set first (then cancel it and return ``False``)."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return False
    task.result()
    return True


async def _run(worker: Worker, stop: asyncio.Event, access: KafkaAccess,
               failures: FailureLog) -> None:
    """Run ``worker`` until ``stop``; Kafka has let it in once it has joined its group."""
    helpers = [asyncio.create_task(_forward(stop, worker.stopping)),
               asyncio.create_task(_granted_when_ready(worker, access)),
               asyncio.create_task(_progress_when_committed(worker, failures))]
    try:
        await worker.run()
    except Exception:
        # A start refused half-way (e.g. no rights on the group) leaves its clients open;
        # after a failure while running they are closed already.
        try:
            await worker.close()
        except Exception:
            log.debug("closing the failed worker's clients failed", exc_info=True)
        raise
    finally:
        for helper in helpers:
            helper.cancel()


async def _granted_when_ready(worker: Worker, access: KafkaAccess) -> None:
    while not worker.assignment.ready:  # set by its first assignment, even an empty one
        await asyncio.sleep(0.2)
    access.granted()


async def _progress_when_committed(worker: Worker, failures: FailureLog) -> None:
    while not progressed(worker.committer.committed, worker.assignment.restart_at):
        await asyncio.sleep(0.5)
    failures.progress()


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
