"""Writing the files stages exchange: atomically (a reader never sees half a file), with stable
bytes (DVC hashes them), and Parquet through one writer (pyarrow, zstd) so every Parquet output of
the crawler and the stages is encoded the same way.

JSON and JSON lines: indented, key-sorted JSON for metrics and state; one compact value per line
for JSON lines, read back with ``iter_jsonl`` (errors name the file and line).

Files of fixed-size rows (the batches' shards, dedupe's signature file) are read by row numbers
with ``pread_rows``: one ``os.pread`` per run of consecutive rows, straight into the caller's array.
Not memory-mapped: mapped pages count in the reader's resident memory, and with the page cache's
large folios one touched row can map megabytes.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

PARQUET_COMPRESSION = "zstd"  # every Parquet file of the project: small, fast to read


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it over ``path``, else delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.is_file():
            os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Write indented, key-sorted JSON atomically (stable bytes for stable DVC hashes)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, ensure_ascii=False, indent=2, sort_keys=True)
            fh.write("\n")


def write_jsonl_atomic(path: str | os.PathLike, rows: Iterable[Any], *, sort_keys: bool = True) -> None:
    """Write one compact JSON value per line, atomically (non-ASCII kept as is)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False, sort_keys=sort_keys) + "\n")


def iter_jsonl(path: str | os.PathLike,
               on_error: Callable[[int, str], None] | None = None) -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` for every non-blank line. A line that is not JSON is an error naming
    the file and the line, or, with ``on_error``, reported as ``on_error(line number, message)`` and
    skipped (for readers that count bad lines and go on)."""
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                if on_error is None:
                    raise ValueError(f"{path}:{number}: not JSON ({exc.msg})") from None
                on_error(number, exc.msg)
                continue
            yield number, value


def read_jsonl(path: str | os.PathLike) -> list[Any]:
    """Every value of a JSON-lines file, in file order (see ``iter_jsonl`` for errors)."""
    return [value for _, value in iter_jsonl(path)]


def pread_rows(fd: int, rows: np.ndarray, out: np.ndarray, *, offset: int = 0) -> bool:
    """Fill ``out`` (C-contiguous, one row per entry of ``rows``) with the rows ``rows`` of the open
    file ``fd``, whose rows have ``out``'s row size and start at byte ``offset``. Each run of
    consecutive row numbers, in the order given, is one read; sort ``rows`` first for the fewest.
    False when the file ends before a row does (a truncated file): callers name the file."""
    if len(rows) == 0:
        return True
    if not out.flags.c_contiguous or len(out) != len(rows):
        raise ValueError(f"pread_rows: out must be C-contiguous with {len(rows)} rows, got {out.shape}")
    size = out.nbytes // len(out)
    starts = np.flatnonzero(np.r_[True, np.diff(rows) != 1])
    stops = np.r_[starts[1:], len(rows)]
    buffer = memoryview(out).cast("B")
    for row, start, stop in zip(rows[starts].tolist(), starts.tolist(), stops.tolist()):
        wanted = (stop - start) * size
        raw = os.pread(fd, wanted, offset + row * size)
        if len(raw) != wanted:
            return False
        buffer[start * size:stop * size] = raw
    return True


def parquet_reader(source: str | os.PathLike | IO[bytes]) -> pq.ParquetFile:
    """A Parquet file opened for streaming (record batches, row groups): without pre-buffering,
    which keeps every column chunk read until the reader is closed, so memory would grow with the
    part of the file read so far (about 100 MB per million forum posts)."""
    return pq.ParquetFile(source, pre_buffer=False)


def parquet_writer(where: str | os.PathLike | IO[bytes], schema: pa.Schema) -> pq.ParquetWriter:
    """The project's Parquet writer for ``where`` (a path or an open binary file): zstd, one row
    group per ``write_table``/``write_batch`` call. Use it as a context manager."""
    return pq.ParquetWriter(where, schema, compression=PARQUET_COMPRESSION)


def write_parquet(table: pa.Table, path: str | os.PathLike) -> None:
    """Write ``table`` to ``path`` as one Parquet file (not atomic: pass an ``atomic_path``)."""
    pq.write_table(table, path, compression=PARQUET_COMPRESSION)
