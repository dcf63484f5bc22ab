"""The ``dask`` engine of the clean and dedupe stages: the same pure task functions as the local
process pool (pipeline.pool), run on a Dask ``distributed`` cluster.

Why Dask: an existing, well-kept distributed engine that data teams already run on Kubernetes,
Slurm/PBS (dask-jobqueue), YARN and the cloud; a scheduler and two workers start in seconds, every
listener can be kept on 127.0.0.1, and ``Client.submit`` / futures give exactly what the stages
need (tasks on any worker, results fetched in the order we ask, lost work recomputed when a worker
dies). A home-made dispatcher would have to re-implement all of that.

``DaskEngine(cfg)`` is a context manager over the ``dask`` section of params.yaml: ``scheduler: ""``
starts a LocalCluster (worker processes; every listener on 127.0.0.1, free ports) for the stage and stops it after;
``tcp://HOST:PORT`` joins a running scheduler (an unreachable one is a ``DaskSchedulerError`` naming
``dask.scheduler``). ``engine.ordered_map(fn, tasks)`` keeps the pipeline.pool contract: ``fn(*task)``
for every task, results in task order, at most ``window`` tasks in flight, an exception raised at its
task's position. ``engine.tasks_by_worker`` counts the tasks each worker finished (from Dask's task
stream), logged when the engine closes.

Workers must import this project (``pipeline``): a LocalCluster's workers inherit ``sys.path``; the
workers of an external cluster need the package installed (``pip install -e '.[dask]'`` in their
environment, started from the repository root). Tasks name their input files; every worker must
reach them at the same path or fsspec URL.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, TypeVar

import pyarrow.parquet as pq

from pipeline.config import check_section, setting

log = logging.getLogger(__name__)
R = TypeVar("R")

ENGINES = ("local", "dask")  # the values of clean.engine and dedupe.engine


def _scheduler_problem(value: str) -> str | None:
    return None if not value or "://" in value else 'expected "" or an address like tcp://HOST:PORT'


@dataclass(frozen=True)
class DaskConfig:
    """The ``dask`` section of params.yaml (values and their meanings are there)."""

    scheduler: str = setting(check=_scheduler_problem)
    n_workers: int = setting(ge=0)
    memory_limit: str | int = setting(ge=0)
    connect_timeout: float = setting(gt=0)
    window: int = setting(ge=0)
    lsh_partitions: int = setting(ge=0)


class DaskSchedulerError(RuntimeError):
    """``dask.scheduler`` cannot be reached (or Dask is not installed)."""


@contextlib.contextmanager
def open_parquet(location: str) -> Iterator[pq.ParquetFile]:
    """A Parquet file at a local path or an fsspec URL (``s3://...``, ``gcs://...``; fsspec is a DVC
    dependency, the protocol's own package, s3fs say, must be installed on the workers)."""
    if "://" in location:
        import fsspec

        with fsspec.open(location, "rb") as fh:
            yield pq.ParquetFile(fh, pre_buffer=False)
    else:
        with contextlib.closing(pq.ParquetFile(location, pre_buffer=False)) as pf:
            yield pf


def check_config(cfg: dict[str, Any], where: str = "params.yaml") -> None:
    """A ``dask`` section built in code checked like the file's (a ParamsError naming ``dask.KEY``)."""
    check_section(DaskConfig, cfg, where=where, prefix="dask")


def check_engine(stage: str, engine: str) -> None:
    if engine not in ENGINES:
        raise ValueError(f"params.yaml: {stage}.engine must be {' or '.join(ENGINES)}, got {engine!r}")


class DaskEngine:
    """A Dask client for one stage (see the module docstring)."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        check_config(cfg)
        self.cfg = cfg
        self.client = None
        self.cluster = None
        self.tasks_by_worker: dict[str, int] = {}
        self._stream = None

    def __enter__(self) -> "DaskEngine":
        try:
            from distributed import Client, LocalCluster, get_task_stream
        except ImportError as exc:
            raise DaskSchedulerError(f"engine dask needs the `distributed` package: pip install -e '.[dask]' "
                                     f"({exc})") from None
        address = self.cfg["scheduler"]
        if address:
            try:
                self.client = Client(address, timeout=self.cfg["connect_timeout"], set_as_default=False)
            except (OSError, TimeoutError) as exc:
                raise DaskSchedulerError(
                    f"dask.scheduler = {address!r}: no Dask scheduler answered within "
                    f"{self.cfg['connect_timeout']} s ({type(exc).__name__}: {exc}). Start one "
                    f"(`dask scheduler --host 127.0.0.1 --port PORT`) or set dask.scheduler to \"\" for a "
                    f"local cluster") from None
        else:
            self.cluster = LocalCluster(n_workers=self.cfg["n_workers"] or os.cpu_count() or 1,
                                        threads_per_worker=1, processes=True, host="127.0.0.1",
                                        # the scheduler's HTTP server runs even with the dashboard off, on
                                        # :8787 unless told: a free port on loopback, like every listener
                                        dashboard_address="127.0.0.1:0", memory_limit=self.cfg["memory_limit"])
            self.client = Client(self.cluster, set_as_default=False)
        self._stream = get_task_stream(self.client)
        self._stream.__enter__()
        log.info("dask: %s, %d worker thread(s)", address or "local cluster", self.threads())
        return self

    def __exit__(self, *exc_info) -> None:
        try:
            if self._stream is not None:
                self._stream.__exit__(None, None, None)
                counts = collections.Counter(t["worker"] for t in self._stream.data)
                self.tasks_by_worker = dict(sorted(counts.items()))
                log.info("dask: tasks finished per worker: %s", self.tasks_by_worker)
        except Exception as exc:  # the counts are diagnostics: never mask the stage's own error
            log.warning("dask: could not read the task stream (%s)", exc)
        finally:
            if self.client is not None:
                self.client.close()
            if self.cluster is not None:
                self.cluster.close()

    def threads(self) -> int:
        """Worker threads in the cluster now (at least 1)."""
        workers = self.client.scheduler_info(n_workers=-1)["workers"]
        return max(1, sum(w["nthreads"] for w in workers.values()))

    def window(self) -> int:
        return self.cfg["window"] or 2 * self.threads()

    def submit(self, fn: Callable[..., R], *args: Any):
        """One task on any worker (a future); ``pure=False``: every call runs, keys never collide."""
        return self.client.submit(fn, *args, pure=False)

    def wait(self, futures: list) -> None:
        """Until every future is done (an error surfaces when its result is gathered)."""
        from distributed import wait

        with self.client.as_current():  # the engine's client need not be the process's default one
            wait(futures)

    def gather(self, futures: list) -> list:
        return self.client.gather(futures)

    def ordered_map(self, fn: Callable[..., R], tasks: Iterable[tuple[Any, ...]]) -> Iterator[R]:
        """``fn(*task)`` for each task on the cluster; results in task order, ``window`` in flight."""
        limit = self.window()
        pending: collections.deque = collections.deque()
        try:
            for task in tasks:
                pending.append(self.submit(fn, *task))
                if len(pending) >= limit:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:  # stopped early: do not leave work queued on the cluster
                future.cancel()
