"""Writing the files stages exchange: atomically (a reader never sees half a file), with stable
bytes (DVC hashes them), and Parquet through one writer (pyarrow, zstd) so every Parquet output of
the crawler and the stages is encoded the same way.

JSON and JSON lines: indented, key-sorted JSON for metrics and state; one compact value per line
for JSON lines, read back with ``iter_jsonl`` (errors name the file and line).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator

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
