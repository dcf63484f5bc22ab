"""Reading the corpus files (``data/split/*.parquet`` and the other CLEAN_SCHEMA-like files) in
bounded passes: the model-side stages' one way in, so that none of them holds a split in memory.

Every reader streams the file one record batch at a time (pyarrow ``iter_batches``, ``BATCH_ROWS``
rows) and keeps only what it returns:

- ``text_chunks``: the ``text`` column as lists of about ``chunk_chars`` characters, optionally only
  the first documents up to ``max_chars`` (the rule of ``evaluate.max_test_chars``);
- ``sample_texts``: a bounded, seeded sample of whole documents (the baselines' train text): every
  document gets a uniform random key, drawn in file order from NumPy's PCG64 seeded with ``seed``;
  the sample is the documents of smallest key, taken in key order until the next one does not fit
  in ``max_chars`` characters (a document longer than ``max_chars`` alone is passed over). That is
  a simple random sample of documents, the same for the same file and seed, returned in file order,
  and the whole file when it fits. One pass: a max-heap holds the documents taken so far and drops
  the largest key whenever the characters overflow; a dropped key bars every larger one. Memory is
  the sample itself plus one batch. (Samplers in NumPy and pyarrow draw a number of rows from data
  in memory; none bounds a sample by characters while streaming, hence these few lines);
- ``column_totals``, ``column_max``, ``value_counts``, ``histogram``: the report's corpus
  statistics, each one pass over a single column.

A null ``text`` is read as an empty document and counted (the file is named in a warning).
"""

from __future__ import annotations

import heapq
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from contracts.schemas import check_columns

log = logging.getLogger(__name__)
BATCH_ROWS = 8192  # rows per record batch: a few MB of text at forum post lengths


def open_split(path: str | Path, columns: Sequence[str] = ("text",)) -> pq.ParquetFile:
    """The Parquet file at ``path``, checked to hold ``columns`` (a clear error names what is missing)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `dvc repro split` first")
    pf = pq.ParquetFile(path)
    check_columns(pf.schema_arrow, list(columns), origin=str(path), expected="CLEAN_SCHEMA (a split file)")
    return pf


def _batches(path: str | Path, column: str, batch_rows: int):
    pf = open_split(path, (column,))
    nulls = 0
    for batch in pf.iter_batches(batch_size=batch_rows, columns=[column]):
        col = batch.column(0)
        nulls += col.null_count
        yield col
    if nulls and column == "text":
        log.warning("%s: %d documents with a null text, read as empty documents", path, nulls)


def iter_texts(path: str | Path, batch_rows: int = BATCH_ROWS) -> Iterator[str]:
    """Every ``text`` of the file, in file order (None as '')."""
    for col in _batches(path, "text", batch_rows):
        for t in col.to_pylist():
            yield t or ""


def text_chunks(path: str | Path, chunk_chars: int, max_chars: int = 0,
                batch_rows: int = BATCH_ROWS) -> Iterator[list[str]]:
    """The file's texts in order, as lists of whole documents of at least ``chunk_chars`` characters
    (the last one shorter); with ``max_chars`` > 0 only the first documents holding at most that
    many characters (at least one document)."""
    chunk: list[str] = []
    size = total = taken = 0
    for text in iter_texts(path, batch_rows):
        if max_chars > 0 and taken and total + len(text) > max_chars:
            break
        chunk.append(text)
        taken += 1
        size += len(text)
        total += len(text)
        if size >= chunk_chars:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


@dataclass(frozen=True)
class Sample:
    """What a bounded sample saw of its file."""

    documents: int
    characters: int
    split_documents: int
    split_characters: int
    max_chars: int
    seed: int

    @property
    def whole(self) -> bool:
        return self.documents == self.split_documents

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "sampled": not self.whole}


def sample_texts(path: str | Path, max_chars: int, seed: int,
                 batch_rows: int = BATCH_ROWS) -> tuple[list[str], Sample]:
    """A seeded sample of the file's whole documents holding at most ``max_chars`` characters (0 =
    every document), in file order; the module docstring gives the rule."""
    rng = np.random.default_rng(seed)
    heap: list[tuple[float, int, int, str]] = []  # (-key, index, length, text): the largest key on top
    barrier = 2.0  # the least key of a document left out for want of room: no larger key gets in
    held = n_docs = n_chars = 0
    for col in _batches(path, "text", batch_rows):
        lengths = pc.fill_null(pc.utf8_length(col), 0).to_numpy(zero_copy_only=False).tolist()
        keys = rng.random(len(lengths)).tolist()
        for i, (key, length) in enumerate(zip(keys, lengths)):
            if max_chars > 0 and (key >= barrier or length > max_chars):
                continue
            heapq.heappush(heap, (-key, n_docs + i, length, col[i].as_py() or ""))
            held += length
            while max_chars > 0 and held > max_chars:
                top, _, size, _ = heapq.heappop(heap)
                held -= size
                barrier = -top
        n_docs += len(lengths)
        n_chars += sum(lengths)
    kept = sorted(heap, key=lambda item: item[1])
    return [t for _, _, _, t in kept], Sample(len(kept), held, n_docs, n_chars, max_chars, seed)


# -- column statistics (the report) ----------------------------------------------------------------
def column_totals(path: str | Path, column: str = "n_chars") -> tuple[int, int]:
    """(rows, sum of the integer ``column``; nulls as 0)."""
    rows = total = 0
    for col in _batches(path, column, BATCH_ROWS):
        rows += len(col)
        total += int(pc.sum(col).as_py() or 0)
    return rows, total


def value_counts(path: str | Path, column: str) -> dict[Any, int]:
    """How many rows hold each value of ``column`` (a null counted as None)."""
    counts: dict[Any, int] = {}
    for col in _batches(path, column, BATCH_ROWS):
        for item in pc.value_counts(col).to_pylist():
            counts[item["values"]] = counts.get(item["values"], 0) + int(item["counts"])
    return counts


def column_max(path: str | Path, column: str = "n_chars") -> int:
    """The largest value of the integer ``column`` (0 for an empty file; nulls as 0)."""
    top = 0
    for col in _batches(path, column, BATCH_ROWS):
        if len(col):
            top = max(top, int(pc.max(pc.fill_null(col, 0)).as_py()))
    return top


def histogram(path: str | Path, edges: Sequence[float], column: str = "n_chars") -> np.ndarray:
    """Counts of ``column`` (nulls as 0) in the bins ``edges`` (``np.histogram``'s rule)."""
    counts = np.zeros(len(edges) - 1, dtype=np.int64)
    for col in _batches(path, column, BATCH_ROWS):
        counts += np.histogram(pc.fill_null(col, 0).to_numpy(zero_copy_only=False), bins=edges)[0]
    return counts
