"""Stage ``split``: assign every document of the corpus to train, val or test, by thread.

Reads ``data/dedup/corpus.parquet`` (``CLEAN_SCHEMA``); writes ``data/split/{train,val,test}.parquet``
(same schema, rows in corpus order) and ``metrics/split.json`` (documents, threads and characters per
split and per source).

Rule: a thread's position in [0, 1) is the first 8 bytes of
``sha256(f"{salt}\\x1f{source}\\x1f{thread_id}")`` read as a big-endian integer over 2**64. Cumulative
fractions in the order train, val, test cut [0, 1) into three intervals. All posts of a thread share
one hash, so a thread never straddles splits; the rule depends on nothing but the thread's key, so
adding threads to the corpus never moves existing ones. Shares are therefore approximate (by thread,
not by document); ``metrics/split.json`` shows the realised shares.

Params (``split`` section): ``fractions`` (train/val/test, each in [0, 1], summing to 1; every split
must end up non-empty), ``salt`` (string; change it to draw another split).

Hashing with hashlib (standard library) rather than Python's ``hash()``: ``hash()`` is salted per
process, so it would not be reproducible.

Bounded memory: one pass over the corpus, a row group at a time (the rule needs nothing but each
row's own thread key, so no pass needs the whole corpus); each split's rows are buffered up to
``ROW_GROUP_ROWS`` and written as one row group. The metrics are counted on the way; distinct threads
are counted by their 64-bit hash (the position's first 8 bytes), 8 bytes per thread.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from contracts.schemas import CLEAN_SCHEMA, check_columns
from pipeline.common import (
    ParamsError,
    atomic_path,
    load_params,
    parquet_reader,
    parquet_writer,
    setup_logging,
    write_json_atomic,
)
from pipeline.config import section

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SplitConfig:
    """The ``split`` section of params.yaml."""

    fractions: dict[str, Any]  # checked by check_fractions
    salt: str

    def __post_init__(self) -> None:
        check_fractions(self.fractions)


class SplitError(ValueError):
    """The corpus cannot be split as asked (a split would be empty, a column is missing...)."""


def check_fractions(fractions: Mapping[str, Any]) -> dict[str, float]:
    """Validated ``{train, val, test}`` fractions: each a number in [0, 1], summing to 1."""
    if not isinstance(fractions, Mapping):
        raise ParamsError(f"split.fractions must be a mapping of {', '.join(SPLITS)}; got {fractions!r}")
    unknown = sorted(set(fractions) - set(SPLITS))
    missing = [s for s in SPLITS if s not in fractions]
    if unknown or missing:
        raise ParamsError(f"split.fractions needs exactly the keys {', '.join(SPLITS)}; "
                          f"missing {missing or 'none'}, unknown {unknown or 'none'}")
    out: dict[str, float] = {}
    for name in SPLITS:
        value = fractions[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
            raise ParamsError(f"split.fractions.{name} must be a number in [0, 1], got {value!r}")
        out[name] = float(value)
    total = sum(out.values())
    if not math.isclose(total, 1.0, abs_tol=1e-9):
        raise ParamsError(f"split.fractions must sum to 1, got {total:g} "
                          f"({' + '.join(f'{s}={out[s]:g}' for s in SPLITS)}); "
                          f"{'documents would be assigned twice' if total > 1 else 'documents would be lost'}")
    return out


ROW_GROUP_ROWS = 65_536  # rows of one split buffered before they are written as a row group


def thread_position(source: str, thread_id: str, salt: str) -> float:
    """The thread's deterministic position in [0, 1)."""
    return thread_hash(source, thread_id, salt) / 2.0**64


def thread_hash(source: str, thread_id: str, salt: str) -> int:
    """First 8 bytes of ``sha256(f"{salt}\\x1f{source}\\x1f{thread_id}")``, big-endian."""
    return int.from_bytes(hashlib.sha256(f"{salt}\x1f{source}\x1f{thread_id}".encode("utf-8")).digest()[:8], "big")


def thread_hashes(sources: list[str], thread_ids: list[str], salt: str) -> np.ndarray:
    """``thread_hash`` of every row (uint64), each thread hashed once."""
    cache: dict[tuple[str, str], int] = {}
    out = np.empty(len(sources), dtype=np.uint64)
    for i, key in enumerate(zip(sources, thread_ids)):
        h = cache.get(key)
        if h is None:
            h = cache[key] = thread_hash(key[0], key[1], salt)
        out[i] = h
    return out


def split_index(hashes: np.ndarray, fractions: Mapping[str, float]) -> np.ndarray:
    """Split index per row (0 train, 1 val, 2 test) from its thread hash."""
    cuts = np.cumsum([fractions[s] for s in SPLITS])
    positions = hashes.astype(np.float64) / 2.0**64
    return np.minimum(np.searchsorted(cuts, positions, side="right"), len(SPLITS) - 1).astype(np.int8)


def assign_splits(sources: list[str], thread_ids: list[str], fractions: Mapping[str, float], salt: str) -> np.ndarray:
    """Split index per row (0 train, 1 val, 2 test); rows of one (source, thread) always agree."""
    return split_index(thread_hashes(sources, thread_ids, salt), fractions)


class SplitCounts:
    """Documents, characters and distinct threads per split and source, counted part by part."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, int]] = {s: {} for s in SPLITS}
        self.chars: dict[str, dict[str, int]] = {s: {} for s in SPLITS}
        self.threads: dict[str, dict[str, list[np.ndarray]]] = {s: {} for s in SPLITS}
        self.text_bytes = 0

    def add(self, split: str, part: pa.Table, hashes: np.ndarray) -> None:
        if part.num_rows == 0:
            return
        self.text_bytes += int(pc.sum(pc.binary_length(part.column("text"))).as_py() or 0)
        sources = np.asarray(part.column("source").to_pylist(), dtype=object)
        n_chars = part.column("n_chars").to_numpy()
        for source in sorted(set(sources.tolist())):
            mine = sources == source
            self.docs[split][source] = self.docs[split].get(source, 0) + int(mine.sum())
            self.chars[split][source] = self.chars[split].get(source, 0) + int(n_chars[mine].sum())
            kept = self.threads[split].setdefault(source, [])
            kept.append(np.unique(hashes[mine]))
            if len(kept) > 64:  # keep the distinct hashes compact
                kept[:] = [np.unique(np.concatenate(kept))]

    def documents(self, split: str) -> int:
        return sum(self.docs[split].values())

    def n_threads(self, split: str, source: str) -> int:
        return len(np.unique(np.concatenate(self.threads[split][source])))

    def metrics(self) -> dict[str, Any]:
        """Documents, threads and characters per split (and per source within each split)."""
        total_docs = sum(self.documents(s) for s in SPLITS)
        out: dict[str, Any] = {"documents": total_docs, "splits": {}}
        for name in SPLITS:
            per_source = {src: {"documents": self.docs[name][src], "characters": self.chars[name][src],
                                "threads": self.n_threads(name, src)} for src in sorted(self.docs[name])}
            out["splits"][name] = {"documents": self.documents(name),
                                   "threads": sum(s["threads"] for s in per_source.values()),
                                   "characters": sum(s["characters"] for s in per_source.values()),
                                   "share": round(self.documents(name) / total_docs, 6) if total_docs else 0.0,
                                   "sources": per_source}
        return out

    def check(self, fractions: Mapping[str, float], origin: str) -> None:
        """A clear error when the corpus or a split is empty."""
        total = sum(self.documents(s) for s in SPLITS)
        if total == 0:
            raise SplitError(f"{origin}: the corpus is empty (0 documents): nothing to split; "
                             "check the clean/dedupe metrics")
        empty = [name for name in SPLITS if self.documents(name) == 0]
        if empty:
            n_threads = sum(self.n_threads(s, src) for s in SPLITS for src in self.docs[s])
            raise SplitError(f"{origin}: split(s) {', '.join(empty)} would be empty ({total} documents in "
                             f"{n_threads} threads, fractions {dict(fractions)}): every split needs at least one "
                             "thread; crawl more threads, raise the empty split's fraction or change split.salt")


def split_part(table: pa.Table, fractions: Mapping[str, float], salt: str, counts: SplitCounts, *,
               origin: str = "corpus") -> dict[str, pa.Table]:
    """One part of the corpus (corpus order kept) cut into ``{split: rows}``, counted into ``counts``."""
    check_columns(table.schema, CLEAN_SCHEMA, origin=origin, error=SplitError,
                  expected=f"CLEAN_SCHEMA ({', '.join(CLEAN_SCHEMA.names)}): is it the dedupe stage's output?")
    table = table.select(CLEAN_SCHEMA.names).cast(CLEAN_SCHEMA)
    hashes = thread_hashes(table.column("source").to_pylist(), table.column("thread_id").to_pylist(), salt)
    index = split_index(hashes, fractions)
    parts = {}
    for i, name in enumerate(SPLITS):
        mine = index == i
        parts[name] = table.filter(pa.array(mine))
        counts.add(name, parts[name], hashes[mine])
    return parts


def split_table(table: pa.Table, fractions: Mapping[str, float], salt: str, *,
                origin: str = "corpus") -> dict[str, pa.Table]:
    """The corpus cut into ``{split: table}`` (corpus order kept). Raises when a split is empty."""
    counts = SplitCounts()
    parts = split_part(table, fractions, salt, counts, origin=origin)
    counts.check(fractions, origin)
    return parts


def split_metrics(parts: Mapping[str, pa.Table], salt: str = "") -> dict[str, Any]:
    """Documents, threads and characters per split (and per source within each split)."""
    counts = SplitCounts()
    for name, t in parts.items():
        counts.add(name, t, thread_hashes(t.column("source").to_pylist(), t.column("thread_id").to_pylist(), salt))
    return counts.metrics()


def split_file(corpus: Path, out_dir: Path, fractions: Mapping[str, float], salt: str) -> dict[str, Any]:
    """Stream ``corpus`` into ``out_dir/<split>.parquet`` (atomically, all or none); the metrics."""
    pf = parquet_reader(corpus)
    check_columns(pf.schema_arrow, CLEAN_SCHEMA, origin=str(corpus), error=SplitError,
                  expected=f"CLEAN_SCHEMA ({', '.join(CLEAN_SCHEMA.names)}): is it the dedupe stage's output?")
    counts = SplitCounts()
    with contextlib.ExitStack() as stack:
        writers, buffers = {}, {name: [] for name in SPLITS}
        for name in SPLITS:
            tmp = stack.enter_context(atomic_path(out_dir / f"{name}.parquet"))
            writers[name] = stack.enter_context(parquet_writer(tmp, CLEAN_SCHEMA))
        for group in range(pf.metadata.num_row_groups):
            parts = split_part(pf.read_row_group(group), fractions, salt, counts, origin=str(corpus))
            for name, part in parts.items():
                buffers[name].append(part)
                if sum(t.num_rows for t in buffers[name]) >= ROW_GROUP_ROWS:
                    writers[name].write_table(pa.concat_tables(buffers[name]))
                    buffers[name] = []
        counts.check(fractions, str(corpus))  # before the files replace the old ones
        for name in SPLITS:
            if buffers[name]:
                writers[name].write_table(pa.concat_tables(buffers[name]))
    return {**counts.metrics(), "text_bytes": counts.text_bytes}


def load_config(params: Mapping[str, Any]) -> dict[str, Any]:
    """Every params value the stage reads: the ``split`` section."""
    return section("split", SplitConfig, params)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default="data/dedup/corpus.parquet")
    parser.add_argument("--out-dir", default="data/split")
    parser.add_argument("--metrics", default="metrics/split.json")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    setup_logging()
    params = load_config(load_params(args.params))
    fractions = check_fractions(params["fractions"])
    corpus = Path(args.corpus)
    if not corpus.exists():
        raise FileNotFoundError(f"{corpus} not found: run `dvc repro dedupe` first")
    started = time.perf_counter()
    metrics = split_file(corpus, Path(args.out_dir), fractions, str(params["salt"]))
    seconds = time.perf_counter() - started
    metrics.update(seconds=round(seconds, 3), posts_per_s=round(metrics["documents"] / max(seconds, 1e-9), 1),
                   mb_per_s=round(metrics.pop("text_bytes") / 1e6 / max(seconds, 1e-9), 3))
    write_json_atomic(args.metrics, metrics)
    log.info("split %d documents: %s; %.1f s (%.0f posts/s, %.2f MB/s)", metrics["documents"],
             ", ".join(f"{n} {m['documents']} docs / {m['threads']} threads" for n, m in metrics["splits"].items()),
             seconds, metrics["posts_per_s"], metrics["mb_per_s"])


if __name__ == "__main__":
    from pipeline.common import run_main  # user errors: one line, exit 2
    run_main(main)
