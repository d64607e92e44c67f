"""Where research tasks run: this process, a local Dask cluster, or a remote one.

Sweeps and walk-forward runs are many independent tasks (a chunk of tickers × a batch of
configurations). :func:`open_client` gives a ``dask.distributed`` client: a
``LocalCluster`` of worker *processes* by default (one per core, one thread each, so numpy
work does not fight over the GIL), or the scheduler at ``tcp://host:8786`` of a real
cluster (started with ``dask scheduler`` and ``dask worker tcp://host:8786`` on each
machine, each with Gnosis installed; set ``DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False``
there too, see :func:`open_client`). :func:`run_tasks` runs tasks on a client or, given
none, in this process; either way results come back in task order.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any


@contextlib.contextmanager
def open_client(scheduler: str | None = None, workers: int | None = None) -> Iterator[Any]:
    """A ``dask.distributed.Client``: to ``scheduler`` if given, else to a new
    ``LocalCluster`` of ``workers`` processes (default: the CPU count, at most 4),
    closed on exit."""
    import dask
    from dask.distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    n = workers or min(os.cpu_count() or 1, 4)
    # The workers' statistical profiler samples the busy thread every 10 ms and contends
    # for the GIL with it: off, the same tasks take about a quarter less CPU.
    with dask.config.set({"distributed.worker.profile.enabled": False}), LocalCluster(
            n_workers=n, threads_per_worker=1, processes=True,
            dashboard_address=None) as cluster, Client(cluster) as client:
        yield client


def run_tasks(fn: Callable[..., Any], shared: Sequence[Any], tasks: Sequence[tuple[int, Any]],
              *, client: Any = None,
              on_done: Callable[[int, Any], None] | None = None) -> list[Any]:
    """``fn(shared[i], arg)`` for every ``(i, arg)`` in ``tasks``, results in task order.

    ``shared`` holds the large inputs (chunks of tickers): on a cluster each is sent to the
    workers once, not once per task. ``on_done(k, result)`` is called as task ``k``
    finishes (in completion order), e.g. to advance a progress bar or save results.
    """
    if client is None:
        out = []
        for k, (i, arg) in enumerate(tasks):
            out.append(fn(shared[i], arg))
            if on_done is not None:
                on_done(k, out[-1])
        return out
    from dask.distributed import as_completed

    remote = client.scatter(list(shared))
    futures = [client.submit(fn, remote[i], arg, pure=False) for i, arg in tasks]
    position = {f.key: k for k, f in enumerate(futures)}
    results: list[Any] = [None] * len(futures)
    for future, result in as_completed(futures, with_results=True):
        k = position[future.key]
        results[k] = result
        if on_done is not None:
            on_done(k, result)
    return results
