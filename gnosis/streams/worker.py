"""Run a live worker from code or the ``gnosis worker`` command."""

from __future__ import annotations

import asyncio
import logging

from gnosis.config import Settings
from gnosis.streams.topics import ensure_topics

_LEVELS = {"debug": "debug", "info": "info", "warning": "warn", "warn": "warn",
           "error": "error", "critical": "crit"}


def run_worker(settings: Settings, scorer: object | None = None) -> None:
    """Create missing topics, then run the Faust worker until SIGINT/SIGTERM (blocking)."""
    import faust

    from gnosis.streams.app import make_app

    asyncio.run(ensure_topics(settings))
    app = make_app(settings, scorer)
    level = _LEVELS.get(settings.worker.log_level.lower(), "info")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    worker = faust.Worker(app, loglevel=level, quiet=True)
    worker.execute_from_commandline()


if __name__ == "__main__":
    run_worker(Settings.load())
