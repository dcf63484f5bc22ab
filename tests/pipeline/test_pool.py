"""The process pool (pipeline/pool.py): results in input order through a bounded window, inline or not."""

from __future__ import annotations

import multiprocessing as mp
import os
import time

import pytest

from pipeline.pool import ordered_map, resolve_workers


def square_with_pid(x: int, delay: float) -> tuple[int, int]:
    time.sleep(delay)  # later tasks finish first when delays shrink: order must still hold
    return x * x, os.getpid()


def fail_on(x: int, bad: int) -> int:
    if x == bad:
        raise ValueError(f"task {x} is bad")
    return x


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_results_come_back_in_input_order(workers):
    tasks = [(x, 0.02 * (5 - x) if x < 5 else 0.0) for x in range(12)]
    out = list(ordered_map(square_with_pid, iter(tasks), workers=workers))
    assert [r for r, _ in out] == [x * x for x in range(12)]
    pids = {p for _, p in out}
    if workers == 1:
        assert pids == {os.getpid()}  # inline: no pool
    else:
        assert os.getpid() not in pids


def test_window_bounds_tasks_read_ahead():
    read = []

    def tasks():
        for x in range(20):
            read.append(x)
            yield (x, 0.0)

    results = ordered_map(square_with_pid, tasks(), workers=2, window=3)
    first = next(results)
    assert first[0] == 0
    assert len(read) == 3  # three submitted before the first result was handed out
    assert [r for r, _ in results] == [x * x for x in range(1, 20)]
    assert len(read) == 20


def test_worker_exception_raised_at_its_task():
    got = []
    with pytest.raises(ValueError, match="task 4 is bad"):
        for value in ordered_map(fail_on, ((x, 4) for x in range(10)), workers=2):
            got.append(value)
    assert got == [0, 1, 2, 3]


def test_resolve_workers():
    assert resolve_workers(0) == (os.cpu_count() or 1)
    assert resolve_workers(4, n_tasks=2) == 2
    assert resolve_workers(3, n_tasks=0) == 1
    with pytest.raises(ValueError, match="workers must be >= 1"):
        list(ordered_map(fail_on, [(1, 0)], workers=0))


def test_closing_early_stops_the_workers():
    results = ordered_map(square_with_pid, ((x, 0.0) for x in range(50)), workers=2)
    assert next(results)[0] == 0
    assert mp.active_children()  # the pool's workers
    results.close()
    assert not mp.active_children()
