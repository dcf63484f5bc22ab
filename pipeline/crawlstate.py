"""Per-source crawl state under ``<jobs_dir>/<source>/`` (git-ignored ``.jobs/``): resumable and
incremental crawls for the crawl stage.

Layout of ``.jobs/<source>/``:

- ``scrapy/``: Scrapy's ``JOBDIR`` (pending requests, seen-request fingerprints, spider state).
  A crawl interrupted gracefully (Ctrl-C / SIGINT / SIGTERM: Scrapy finishes the requests in
  flight and saves its queue) continues from there on the next run: ``dvc repro`` again.
- ``parts/run-NNNN.parquet``: the posts of each run (the feed of that run, written atomically
  when it closes). An interrupted run keeps its part, so nothing already fetched is lost.
- ``RUNNING``: present while a crawl runs (it holds the Scrapy process id: a second crawl of the
  same source is refused while that process lives). Found at start, it means the last run died without
  closing (SIGKILL, power loss): its seen-fingerprints may name pages whose posts never reached a
  part, so ``scrapy/`` is discarded and the crawl starts over (parts and store are kept; the
  incremental index below then skips the threads they hold completely). No gaps, at the price of
  re-fetching.
- ``SOURCE``: a fingerprint of the spider and its arguments; when they change, the state is
  discarded (other arguments, other crawl).
- ``store.parquet``: every post of the source so far (incremental mode), merged by ``post_id``
  (the newest fetch wins: edited posts are updated, never duplicated).
- ``threads.json``: the incremental index handed to spiders (crawler/incremental.py): per thread
  the last post (id, time) and whether its positions are contiguous (``complete``).

``commit`` (after a run that finished) merges store + parts into ``data/raw/<source>.parquet``,
makes that the new store, and clears ``scrapy/``, ``parts/`` and ``RUNNING``. pyarrow does all
table work (group-by, sort, dedupe by index), as everywhere else in the pipeline.

Bounded memory: a store bigger than ``MERGE_BYTES`` (64 MB uncompressed) is merged out of core
(``merge_files``: hash partitions by post_id, each deduplicated and sorted into a run, the runs
merged; one partition, one batch per run and one output row group in memory), and the thread index
is computed in one streamed pass over the merged file (it is sorted by thread): memory per thread,
not per post. Smaller stores are merged in memory (``merge_posts``), with the same rows.
"""

from __future__ import annotations

import heapq
import json
import logging
import math
import shutil
import zlib
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from contracts import keys, markup
from contracts.schemas import RAW_SCHEMA
from pipeline.common import atomic_path, parquet_reader, parquet_writer, write_json_atomic, write_parquet

log = logging.getLogger(__name__)


def merge_posts(tables: list[pa.Table]) -> pa.Table:
    """Concatenate raw tables; keep the last row per post_id; sort by thread, position, post. The
    engine markup records the inputs carry (contracts.markup) are kept in the result's metadata."""
    records = [r for t in tables for r in markup.from_metadata(t.schema.metadata, origin="crawl state")]
    schema = RAW_SCHEMA.with_metadata(markup.to_metadata(records)) if records else RAW_SCHEMA
    tables = [t.select(RAW_SCHEMA.names).cast(schema) for t in tables if t.num_rows]
    if not tables:
        return schema.empty_table()
    table = pa.concat_tables(tables)
    table = table.append_column("_row", pa.array(range(table.num_rows), pa.int64()))
    last = table.group_by("post_id", use_threads=False).aggregate([("_row", "max")])
    table = table.take(last["_row_max"])
    table = table.sort_by([("thread_id", "ascending"), ("position", "ascending"), ("post_id", "ascending")])
    return table.drop_columns(["_row"])


MERGE_BYTES = 64 << 20  # stores up to this many bytes (uncompressed) merge in memory; partitions hold about as much
MERGE_ROWS = 65_536  # rows per row group (and per output chunk) of an out-of-core merge
SORT_KEYS = [("thread_id", "ascending"), ("position", "ascending"), ("post_id", "ascending")]


def thread_index(table: pa.Table) -> dict[str, dict[str, Any]]:
    """Per thread: last post (highest position), its page and time, count, contiguity of positions."""
    if table.num_rows == 0:
        return {}
    stats = table.group_by("thread_id", use_threads=False).aggregate(
        [("position", "min"), ("position", "max"), ("position", "count_distinct"), ("posted_at", "max")])
    ordered = table.sort_by([("thread_id", "ascending"), ("position", "descending")])
    last: dict[str, tuple[str, int | None]] = {}
    for thread, post, page in zip(ordered["thread_id"].to_pylist(), ordered["post_id"].to_pylist(),
                                  ordered["page"].to_pylist()):
        last.setdefault(thread, (post, page))
    index = {}
    for row in stats.to_pylist():
        span = row["position_max"] - row["position_min"] + 1
        when = row["posted_at_max"]
        index[row["thread_id"]] = {
            "last_post_id": last[row["thread_id"]][0], "last_page": last[row["thread_id"]][1],
            "last_posted_at": when.isoformat() if when else None,
            "posts": row["position_count_distinct"], "complete": row["position_count_distinct"] == span}
    return index


def thread_index_of_file(path: Path) -> dict[str, dict[str, Any]]:
    """``thread_index`` of a merged file (sorted by thread, position, post), in one streamed pass."""
    index: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    columns = ["thread_id", "position", "post_id", "page", "posted_at"]
    for batch in parquet_reader(path).iter_batches(batch_size=MERGE_ROWS, columns=columns):
        for thread, position, post, page, when in zip(*(batch.column(c).to_pylist() for c in columns)):
            if current is None or current["thread"] != thread:
                if current is not None:
                    index[current["thread"]] = _thread_entry(current)
                current = {"thread": thread, "first": position, "last": position, "distinct": 0, "post": post,
                           "page": page, "when": None}
            if current["distinct"] == 0 or position != current["last"]:
                current["distinct"] += 1
                current["last"], current["post"], current["page"] = position, post, page
            if when is not None and (current["when"] is None or when > current["when"]):
                current["when"] = when
    if current is not None:
        index[current["thread"]] = _thread_entry(current)
    return index


def _thread_entry(t: dict[str, Any]) -> dict[str, Any]:
    return {"last_post_id": t["post"], "last_page": t["page"],
            "last_posted_at": t["when"].isoformat() if t["when"] else None, "posts": t["distinct"],
            "complete": t["distinct"] == t["last"] - t["first"] + 1}


def _schema_of(paths: list[Path]) -> pa.Schema:
    """RAW_SCHEMA with the engine markup records the files carry (contracts.markup)."""
    records = [r for p in paths for r in markup.from_metadata(pq.read_schema(p).metadata, origin=str(p))]
    return RAW_SCHEMA.with_metadata(markup.to_metadata(records)) if records else RAW_SCHEMA


def _uncompressed_bytes(path: Path) -> int:
    meta = pq.ParquetFile(path).metadata
    return sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))


def merge_files(paths: list[Path], out: Path, work: Path) -> int:
    """``merge_posts`` of the files ``paths`` (in this order) written to ``out``; returns its rows.

    Up to ``MERGE_BYTES`` in memory; beyond, out of core: (1) rows, numbered in input order, go to
    K hash partitions by post_id (Arrow IPC files); (2) each partition keeps the last row of each
    post_id and is sorted by (thread, position, post) into a run; (3) the runs are merged (a heap
    over their current rows) into ``out`` in row groups of ``MERGE_ROWS``.
    """
    paths = [p for p in paths if p.exists()]
    total = sum(_uncompressed_bytes(p) for p in paths)
    if total <= MERGE_BYTES:
        table = merge_posts([pq.read_table(p) for p in paths])
        write_parquet(table, out)
        return table.num_rows
    schema = _schema_of(paths)
    work.mkdir(parents=True, exist_ok=True)
    runs = [_sorted_run(part, schema) for part in _partition(paths, schema, math.ceil(total / MERGE_BYTES), work)]
    rows = 0
    with parquet_writer(out, schema) as writer:
        for chunk in _merge_runs(runs, schema):
            writer.write_table(chunk)
            rows += chunk.num_rows
    for run in runs:
        run.unlink()
    return rows


def _partition(paths: list[Path], schema: pa.Schema, k: int, work: Path) -> list[Path]:
    """Rows of ``paths`` with their input order (``_row``) into ``k`` partition files by post_id."""
    with_row = schema.append(pa.field("_row", pa.int64(), nullable=False))
    parts = [work / f"partition-{i:04d}.arrow" for i in range(k)]
    writers = [pa.ipc.new_file(p, with_row) for p in parts]
    row = 0
    try:
        for path in paths:
            for batch in parquet_reader(path).iter_batches(batch_size=MERGE_ROWS // 4):
                table = pa.Table.from_batches([batch]).select(RAW_SCHEMA.names).cast(schema)
                numbers = pa.array(range(row, row + table.num_rows), pa.int64())
                table = table.append_column(with_row.field("_row"), numbers)
                row += table.num_rows
                part = np.array([zlib.crc32(p.encode()) % k for p in table.column("post_id").to_pylist()])
                for i in np.unique(part).tolist():
                    writers[i].write_table(table.filter(pa.array(part == i)))
    finally:
        for w in writers:
            w.close()
    return parts


def _sorted_run(part: Path, schema: pa.Schema) -> Path:
    """One partition, the last row of each post_id kept, sorted by (thread, position, post)."""
    with pa.memory_map(str(part)) as source:
        table = pa.ipc.open_file(source).read_all()
    last = table.group_by("post_id", use_threads=False).aggregate([("_row", "max")])
    table = table.take(_positions(table["_row"], last["_row_max"])).sort_by(SORT_KEYS).drop_columns(["_row"])
    run = part.with_suffix(".run")
    with pa.ipc.new_file(run, schema) as writer:
        writer.write_table(table, max_chunksize=MERGE_ROWS // 4)
    part.unlink()
    return run


def _positions(rows: pa.ChunkedArray, wanted: pa.ChunkedArray) -> np.ndarray:
    """Indices in ``rows`` of the values ``wanted`` (all present, ``rows`` distinct)."""
    rows_np = rows.to_numpy()
    order = np.argsort(rows_np)
    return order[np.searchsorted(rows_np, wanted.to_numpy(), sorter=order)]


def _merge_runs(runs: list[Path], schema: pa.Schema) -> Iterator[pa.Table]:
    """The runs' rows in (thread, position, post) order, a chunk at a time."""
    readers = [pa.ipc.open_file(r) for r in runs]
    batches = [None] * len(runs)
    next_batch = [0] * len(runs)
    keys: list[list[tuple]] = [[] for _ in runs]

    def load(i: int) -> bool:
        if next_batch[i] >= readers[i].num_record_batches:
            return False
        batches[i] = readers[i].get_batch(next_batch[i])
        next_batch[i] += 1
        keys[i] = list(zip(*(batches[i].column(c).to_pylist() for c in ("thread_id", "position", "post_id"))))
        return True

    heap = [(keys[i][0], i, 0) for i in range(len(runs)) if load(i) and keys[i]]
    heapq.heapify(heap)
    picks: list[tuple[int, int]] = []
    while heap:
        _, i, j = heapq.heappop(heap)
        picks.append((i, j))
        if j + 1 < len(keys[i]):
            heapq.heappush(heap, (keys[i][j + 1], i, j + 1))
        else:  # this run's batch is used up: emit what refers to it, then read its next one
            yield _take(picks, batches, schema)
            picks = []
            while load(i):
                if keys[i]:
                    heapq.heappush(heap, (keys[i][0], i, 0))
                    break
        if len(picks) >= MERGE_ROWS:
            yield _take(picks, batches, schema)
            picks = []
    if picks:
        yield _take(picks, batches, schema)


def _take(picks: list[tuple[int, int]], batches: list, schema: pa.Schema) -> pa.Table:
    """The rows ``picks`` ((batch, row) pairs) in that order, as one table."""
    runs = np.array([i for i, _ in picks])
    rows = np.array([j for _, j in picks])
    parts, order = [], np.empty(len(picks), dtype=np.int64)
    start = 0
    for i in np.unique(runs).tolist():
        mine = np.flatnonzero(runs == i)
        parts.append(pa.Table.from_batches([batches[i]]).take(rows[mine]))
        order[mine] = np.arange(start, start + len(mine))
        start += len(mine)
    return pa.concat_tables(parts).cast(schema).take(order)


class CrawlJob:
    """The state folder of one source (see the module docstring)."""

    def __init__(self, jobs_dir: Path, source: str, *, resume: bool = True, incremental: bool = False,
                 fingerprint: str = "") -> None:
        self.dir = Path(jobs_dir) / source
        self.source, self.resume, self.incremental = source, resume, incremental
        self.fingerprint = fingerprint  # what is crawled (spider + args): other args, other state
        self.fingerprint_file = self.dir / "SOURCE"
        self.jobdir, self.parts = self.dir / "scrapy", self.dir / "parts"
        self.store, self.index = self.dir / "store.parquet", self.dir / "threads.json"
        self.running = self.dir / "RUNNING"

    def _part_files(self) -> list[Path]:
        return sorted(self.parts.glob("run-*.parquet")) if self.parts.is_dir() else []

    def begin(self) -> dict[str, str]:
        """Prepare a run; return the Scrapy settings it needs (JOBDIR, incremental index path)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        owner = self._running_pid()
        if owner is not None and _alive(owner):
            raise RuntimeError(f"source {self.source}: a crawl of it is still running (pid {owner}, "
                               f"{self.running}); stop it or wait for it before starting another")
        self._forget_if_changed()
        if self.running.exists():
            log.warning("source %s: the previous crawl did not close (killed?); its Scrapy job state "
                        "is discarded and the crawl starts over (posts already saved are kept)", self.source)
            shutil.rmtree(self.jobdir, ignore_errors=True)
        if not self.resume:
            shutil.rmtree(self.jobdir, ignore_errors=True)
            shutil.rmtree(self.parts, ignore_errors=True)
        elif self.jobdir.exists():
            log.info("source %s: resuming the interrupted crawl from %s (%d saved part(s))",
                     self.source, self.jobdir, len(self._part_files()))
        if not self.incremental and self.store.exists():
            self.store.unlink()
        self.running.touch()
        settings: dict[str, str] = {}
        if self.resume:
            settings["JOBDIR"] = str(self.jobdir)
        if self.incremental:
            known = self.dir / "known.parquet"
            merge_files([self.store, *self._part_files()], known, self.dir / "merge")
            write_json_atomic(self.index, thread_index_of_file(known))
            known.unlink()
            settings[keys.INCREMENTAL_STATE] = str(self.index)
        return settings

    def _forget_if_changed(self) -> None:
        """Drop all saved state when the spider or its arguments changed since it was saved."""
        previous = self.fingerprint_file.read_text() if self.fingerprint_file.exists() else None
        if previous is not None and previous != self.fingerprint:
            log.warning("source %s: its spider or arguments changed since the state in %s was saved; "
                        "starting over", self.source, self.dir)
            for path in (self.jobdir, self.parts):
                shutil.rmtree(path, ignore_errors=True)
            for path in (self.store, self.index, self.running):
                path.unlink(missing_ok=True)
        self.fingerprint_file.write_text(self.fingerprint)

    def _running_pid(self) -> int | None:
        try:
            text = self.running.read_text().strip()
        except FileNotFoundError:
            return None
        return int(text) if text.isdigit() else None

    def run(self, cmd: list[str], **popen_kwargs: Any) -> int:
        """Run the crawl (``run_graceful``), recording its pid in ``RUNNING`` while it lives."""
        return run_graceful(cmd, on_start=lambda pid: self.running.write_text(str(pid)), **popen_kwargs)

    def part_path(self) -> Path:
        """Where this run's feed goes: the next ``parts/run-NNNN.parquet``."""
        self.parts.mkdir(parents=True, exist_ok=True)
        files = self._part_files()
        number = int(files[-1].stem.split("-")[1]) + 1 if files else 1
        return self.parts / f"run-{number:04d}.parquet"

    def interrupted(self) -> None:
        """The run stopped gracefully before finishing: keep the job state and parts for resuming."""
        self.running.unlink(missing_ok=True)

    def commit(self, out: Path) -> int:
        """Merge store + parts into ``out`` (atomically); it becomes the store; clear the run state."""
        parts = self._part_files()
        with atomic_path(out) as tmp:
            rows = merge_files(([self.store] if self.incremental else []) + parts, tmp, self.dir / "merge")
        if self.incremental:
            with atomic_path(self.store) as tmp:
                shutil.copyfile(out, tmp)
        shutil.rmtree(self.jobdir, ignore_errors=True)
        shutil.rmtree(self.parts, ignore_errors=True)
        self.running.unlink(missing_ok=True)
        if not self.incremental:  # nothing to keep for the next run
            shutil.rmtree(self.dir, ignore_errors=True)
        log.info("source %s: %d posts after merging %d run part(s)%s", self.source, rows,
                 len(parts), " into the store" if self.incremental else "")
        return rows


def fingerprint(entry: Any) -> str:
    """A stable digest of a source entry (spider, args, demo forum, settings)."""
    import hashlib

    return hashlib.sha256(json.dumps(entry, sort_keys=True, default=str).encode()).hexdigest()[:16]


def describe(job: CrawlJob) -> dict[str, Any]:
    """A short JSON-able summary for the crawl metrics."""
    return {"resume": job.resume, "incremental": job.incremental, "state_dir": str(job.dir),
            "threads_known": len(json.loads(job.index.read_text())) if job.index.exists() else 0}


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_graceful(cmd: list[str], on_start: Any = None, **popen_kwargs: Any) -> int:
    """Run a crawl subprocess that an interruption stops cleanly, so it can be resumed.

    The child runs in its own session, so a terminal's Ctrl-C reaches only this process; the
    first Ctrl-C (or SIGTERM) is forwarded once as SIGINT, and Scrapy then finishes the requests
    in flight, writes its feed and saves its JOBDIR before exiting; a second one is forwarded
    again and forces Scrapy to stop. (``subprocess.run`` would kill the child 0.25 s after Ctrl-C,
    leaving a job folder that cannot be trusted.)
    """
    import signal
    import subprocess

    proc = subprocess.Popen(cmd, start_new_session=True, **popen_kwargs)
    if on_start is not None:
        on_start(proc.pid)
    interrupts = 0

    def forward(signum: int, frame: Any) -> None:
        nonlocal interrupts
        interrupts += 1
        log.warning("interrupted (%d): asking the crawl to stop%s", interrupts,
                    " cleanly and save its state; interrupt again to force" if interrupts == 1 else " now")
        proc.send_signal(signal.SIGINT)

    old_int, old_term = signal.signal(signal.SIGINT, forward), signal.signal(signal.SIGTERM, forward)
    try:
        return proc.wait()
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
