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


def run_tasks(fn: Callable[..., Any], shared: Sequence[Any],
              groups: Sequence[Sequence[tuple[int, Any]]], reduce: Callable[..., Any], *,
              client: Any = None,
              on_done: Callable[[int, Any], None] | None = None) -> list[Any]:
    """``reduce(*[fn(shared[i], arg) for (i, arg) in group])`` for every group, in order.

    ``shared`` holds the large inputs (chunks of tickers): on a cluster each is sent to the
    workers once, not once per task. On a cluster the reduction runs on a worker too, so
    only one result per group comes back. ``on_done(g, result)`` is called as group ``g``
    finishes (in completion order), e.g. to advance a progress bar or save results.
    """
    if client is None:
        out = []
        for g, group in enumerate(groups):
            out.append(reduce(*[fn(shared[i], arg) for i, arg in group]))
            if on_done is not None:
                on_done(g, out[-1])
        return out
    from dask.distributed import as_completed

    remote = client.scatter(list(shared))
    futures = [client.submit(reduce, *[client.submit(fn, remote[i], arg, pure=False)
                                       for i, arg in group], pure=False)
               for group in groups]
    position = {f.key: g for g, f in enumerate(futures)}
    results: list[Any] = [None] * len(futures)
    for future, result in as_completed(futures, with_results=True):
        g = position[future.key]
        results[g] = result
        future.release()  # the group's chunk results can go from the workers' memory
        if on_done is not None:
            on_done(g, result)
    return results
