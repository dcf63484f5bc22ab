"""Ordered fan-out for data stages: a pure function over a stream of tasks, results in input order.

The clean and dedupe stages both map a pure function over record batches (or row-group lists) and
must write results in input order, so outputs are byte-identical whatever the worker count. This
module is the one place that does it: ``ordered_map(fn, tasks, workers=...)`` submits ``fn(*task)``
for each task to a process pool, keeps at most ``window`` tasks in flight (default two per worker,
so memory stays flat however long the input) and yields each result in the order the tasks came.
``workers == 1`` runs inline in this process (no pool, easy to debug and profile).

The contract a caller relies on, and that the Dask engine (pipeline.dask_engine) keeps too:
``fn`` is a picklable top-level function without side effects, tasks are tuples of picklable
arguments read lazily from an iterator, results come back in input order, and an exception raised
by ``fn`` is raised here, at the position of its task. A caller that may stop early wraps the
iterator in ``contextlib.closing`` so the workers stop at once.

Built on ``multiprocessing.Pool`` with the ``fork`` start method (workers inherit imported modules,
no re-import per worker) rather than ``concurrent.futures``: ``Pool.apply_async`` plus a deque is
all a bounded ordered window needs, and it is what the stages were measured with (docs/benchmarks.md#latest-numbers).
"""

from __future__ import annotations

import collections
import multiprocessing as mp
import os
from typing import Any, Callable, Iterable, Iterator, TypeVar

R = TypeVar("R")


def resolve_workers(workers: int, n_tasks: int | None = None) -> int:
    """``workers`` from params (0 = every core), capped at ``n_tasks`` when that is known."""
    n = workers or os.cpu_count() or 1
    return n if n_tasks is None else min(n, max(n_tasks, 1))


def ordered_map(fn: Callable[..., R], tasks: Iterable[tuple[Any, ...]], *, workers: int,
                window: int | None = None) -> Iterator[R]:
    """Yield ``fn(*task)`` for every task, in task order, at most ``window`` in flight at once.

    ``window`` defaults to ``2 * workers``: every worker has a task queued behind the one it runs.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1 (resolve 0 with resolve_workers first), got {workers}")
    if workers == 1:
        for task in tasks:
            yield fn(*task)
        return
    limit = window or 2 * workers
    with mp.get_context("fork").Pool(workers) as pool:
        pending: collections.deque = collections.deque()
        for task in tasks:
            pending.append(pool.apply_async(fn, task))
            if len(pending) >= limit:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()
