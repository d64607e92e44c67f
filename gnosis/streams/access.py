"""Whether Kafka lets a live worker in: refusals described, published and retried.

A worker that Kafka refuses (a wrong password, an untrusted CA, missing ACLs, no broker)
does not exit: :func:`~gnosis.streams.service.serve` keeps ``/health`` and ``/metrics`` up
and tries again, waiting 1 s, then twice as long each time up to
``worker.retry_backoff_max``. Meanwhile :class:`KafkaAccess` holds the refusal: ``/health``
answers 503 with the one line of :func:`gnosis.security.refusal` (never the password) and
the settings it names, ``gnosis_kafka_refused{cause}`` is 1 and
``gnosis_kafka_refusals_total{cause}`` counts the attempts. The worker proceeds by itself
once access is granted (a password file rewritten, an ACL added), since every attempt
builds its clients afresh and so reads the password file again.

aiokafka logs every refused connection, with tracebacks; until the worker is in, those
lines go only to a :class:`~gnosis.security.CauseRecorder` (the cause the one line names),
and to the log only at DEBUG.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from gnosis.config import ConfigError, Settings
from gnosis.security import CAUSES, CauseRecorder, Refusal, is_kafka_failure, refusal
from gnosis.sinks import metrics

log = logging.getLogger("gnosis.worker")

_FIRST_WAIT = 1.0
_LEAST_WAIT = 0.1  # even with a cap of 0, never a busy loop of attempts


def is_refusal(exc: BaseException) -> bool:
    """Whether a failed attempt is Kafka's doing (or a setting's), not a fault of the worker."""
    return isinstance(exc, ConfigError) or is_kafka_failure(exc)


class KafkaAccess:
    """The refusal state of one worker process, between attempts to start its worker."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.settings = settings
        self.clock = clock
        self.recorder = CauseRecorder()
        self.refusal: Refusal | None = None
        """The latest refusal, until the worker is in again."""
        self.attempts = 0
        """Attempts that failed since the worker was last in."""
        self.retry_at: float | None = None
        for cause in CAUSES:  # every series exists from the start, at 0
            metrics.KAFKA_REFUSED.labels(cause).set(0)
            metrics.KAFKA_REFUSALS.labels(cause)

    @contextlib.contextmanager
    def watching(self) -> Iterator[KafkaAccess]:
        """Keep the cause recorder on the ``aiokafka`` logger for the block."""
        logger = logging.getLogger("aiokafka")
        propagate = logger.propagate
        logger.addHandler(self.recorder)
        self._quiet(True)
        try:
            yield self
        finally:
            logger.removeHandler(self.recorder)
            logger.propagate = propagate

    def attempt(self) -> None:
        """A new attempt starts: causes recorded before belong to earlier ones."""
        self.recorder.last = None
        self.retry_at = None

    def wait(self) -> float:
        """Seconds before the next attempt, after :attr:`attempts` failed ones."""
        cap = self.settings.worker.retry_backoff_max
        return max(_LEAST_WAIT, min(cap, _FIRST_WAIT * 2 ** (self.attempts - 1)))

    async def refused(self, exc: BaseException) -> float:
        """Describe and publish the refusal ``exc``; returns the seconds to wait."""
        # The description may probe the port with a TLS handshake: blocking, so in a thread.
        found = await asyncio.to_thread(refusal, exc, self.settings, self.recorder.last,
                                        probe=True)
        if self.refusal is not None and self.refusal.cause != found.cause:
            metrics.KAFKA_REFUSED.labels(self.refusal.cause).set(0)
        self.refusal = found
        metrics.KAFKA_REFUSED.labels(found.cause).set(1)
        metrics.KAFKA_REFUSALS.labels(found.cause).inc()
        delay = self._failed()
        log.warning("Kafka refused the worker (%s, attempt %d, next in %.1f s): %s",
                    found.cause, self.attempts, delay, found.line)
        log.debug("the refused attempt's exception", exc_info=exc)
        self._quiet(True)
        return delay

    def failed(self, exc: BaseException) -> float:
        """Log a failure that is not a refusal (a fault of the worker); returns the wait."""
        delay = self._failed()
        log.error("worker failed; starting afresh from the committed state in %.1f s",
                  delay, exc_info=exc)
        return delay

    def granted(self) -> None:
        """The worker is in (it joined its group): clear the refusal."""
        if self.refusal is not None:
            log.info("Kafka lets the worker in after %d refused attempt(s)", self.attempts)
            metrics.KAFKA_REFUSED.labels(self.refusal.cause).set(0)
        self.refusal, self.attempts, self.retry_at = None, 0, None
        self.recorder.last = None
        self._quiet(False)

    def health(self) -> dict[str, Any] | None:
        """The ``/health`` body while refused (``None`` when not)."""
        if self.refusal is None:
            return None
        retrying_in = 0.0 if self.retry_at is None else max(0.0, self.retry_at - self.clock())
        return {"status": "refused", "reason": self.refusal.line, "cause": self.refusal.cause,
                "settings": self.refusal.settings, "attempts": self.attempts,
                "retrying_in": round(retrying_in, 1)}

    def _failed(self) -> float:
        self.attempts += 1
        delay = self.wait()
        self.retry_at = self.clock() + delay
        return delay

    def _quiet(self, quiet: bool) -> None:
        # Refused connections are retried by aiokafka and logged each time; the one line
        # of refused() replaces them, except for someone debugging.
        logging.getLogger("aiokafka").propagate = not quiet or log.isEnabledFor(logging.DEBUG)
