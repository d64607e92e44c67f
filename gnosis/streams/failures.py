"""Whether a live worker process is stuck failing: what ``/health`` says after restarts.

:func:`~gnosis.streams.service.serve` replaces a worker that fails (other than by a
refusal of Kafka, see :mod:`gnosis.streams.access`) with a fresh one, which resumes from
the committed offsets. When the cause is in the input or the state, the fresh worker meets
it again at the same offset and fails the same way: a crash loop that emits nothing. A
:class:`FailureLog` counts the failures since a worker last committed progress; from
``worker.failing_after`` of them on, ``/health`` answers 503 ``failing`` with the cause
and the restart count, and ``gnosis_worker_failing`` is 1 (the alert
``GnosisWorkerCrashLooping`` fires on it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gnosis.sinks import metrics

_CAUSE_CHARS = 300


def cause_of(exc: BaseException) -> str:
    """One line naming a failure: the exception's type and the first line of its message."""
    text = str(exc).strip().splitlines()
    line = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
    return line[:_CAUSE_CHARS]


def progressed(committed: Mapping[Any, int], started: Mapping[Any, int]) -> bool:
    """Whether a worker committed an offset past where its assignment started it."""
    return any(offset > started.get(tp, offset) for tp, offset in committed.items())


class FailureLog:
    """Failures of one process's workers since one last committed progress."""

    def __init__(self, failing_after: int) -> None:
        self.failing_after = max(1, failing_after)
        self.in_a_row = 0
        """Failures since a worker last committed progress."""
        self.restarts = 0
        """Workers replaced since the process started."""
        self.cause: str | None = None
        """The latest failure, in one line."""
        metrics.WORKER_FAILING.set(0)

    @property
    def failing(self) -> bool:
        """Whether the process counts as stuck (``failing_after`` failures in a row)."""
        return self.in_a_row >= self.failing_after

    def failed(self, exc: BaseException) -> None:
        """A worker failed and is about to be replaced."""
        self.in_a_row += 1
        self.restarts += 1
        self.cause = cause_of(exc)
        metrics.WORKER_RESTARTS.inc()
        metrics.WORKER_FAILING.set(int(self.failing))

    def progress(self) -> None:
        """The running worker committed progress: whatever failed before is behind it."""
        if self.in_a_row:
            self.in_a_row = 0
            metrics.WORKER_FAILING.set(0)

    def health(self) -> dict[str, Any] | None:
        """The ``/health`` body while failing (``None`` when not)."""
        if not self.failing:
            return None
        return {"status": "failing", "cause": self.cause, "restarts": self.restarts,
                "failures_in_a_row": self.in_a_row}
