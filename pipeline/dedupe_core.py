"""Dedupe's engine-free core, shared by the local stage (``pipeline.dedupe``) and the Dask engine
(``pipeline.dedupe_dask``): the per-document keys (exact hash, MinHash signature, visit rank), the
exact pass and the survivor rule over verified near pairs. Neither engine imports the other.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import dask_engine, minhash

NULL_TIME = np.iinfo(np.int64).max


def exact_key(text: str) -> int:
    norm = " ".join(text.casefold().split())
    return int.from_bytes(hashlib.blake2b(norm.encode(), digest_size=8).digest(), "little")


def hash_batch(batch: pa.RecordBatch | pa.Table, cfg: dict[str, Any]) -> dict[str, np.ndarray]:
    """Per-document keys for one batch of posts (runs in a worker)."""
    texts = batch.column("text").to_pylist()
    long_enough = np.fromiter((len(t) >= cfg["near_min_chars"] for t in texts), dtype=bool, count=len(texts))
    near_texts = [t if ok else "" for t, ok in zip(texts, long_enough)]
    posted = batch.column("posted_at").cast(pa.int64()).fill_null(NULL_TIME).to_numpy()
    return {
        "doc_id": np.array(batch.column("doc_id").to_pylist(), dtype="S16"),
        "source": np.array(batch.column("source").to_pylist(), dtype=object),
        "posted": posted,
        "exact": np.fromiter((exact_key(t) for t in texts), dtype=np.uint64, count=len(texts)),
        "near": long_enough,
        "sig": minhash.signatures(near_texts, shingle=cfg["shingle"], num_perm=cfg["num_perm"], seed=cfg["seed"]),
        "bytes": np.array([sum(len(t.encode()) for t in texts)]),
    }


def rank_of(docs: dict[str, np.ndarray]) -> np.ndarray:
    """Visit order of every document: by (posted_at, doc_id), null times last."""
    order = np.lexsort((docs["doc_id"], docs["posted"]))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank


def exact_pass(exact: np.ndarray, rank: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """-> (dup_of, kind, sim) after exact dedupe: within equal keys, the lowest rank survives."""
    n = len(exact)
    dup_of = np.full(n, -1, dtype=np.int64)
    kind = np.zeros(n, dtype=np.int8)
    sim = np.zeros(n, dtype=np.float32)
    by_key = np.lexsort((rank, exact))
    keys = exact[by_key]
    head = np.ones(n, dtype=bool)
    head[1:] = keys[1:] != keys[:-1]
    head_idx = by_key[np.maximum.accumulate(np.where(head, np.arange(n), 0))]
    is_dup = ~head
    dup_of[by_key[is_dup]] = head_idx[is_dup]
    kind[by_key[is_dup]] = 1
    sim[by_key[is_dup]] = 1.0
    return dup_of, kind, sim


def apply_near_pairs(a: np.ndarray, b: np.ndarray, s: np.ndarray, rank: np.ndarray, dup_of: np.ndarray,
                     kind: np.ndarray, sim: np.ndarray) -> None:
    """The survivor rule over verified pairs (a earlier than b): greedy in rank order of b, then a;
    b becomes a near duplicate of the first a that is still kept. The result does not depend on the
    order of the pairs given, only on the set."""
    visit = np.lexsort((rank[a], rank[b]))
    for i in visit:  # only verified pairs: few
        ai, bi = a[i], b[i]
        if kind[bi] == 0 and kind[ai] == 0:
            dup_of[bi], kind[bi], sim[bi] = ai, 2, s[i]


def find_duplicates(docs: dict[str, np.ndarray], cfg: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """-> (dup_of index or -1 per document, kind 0 kept / 1 exact / 2 near, similarity)."""
    rank = rank_of(docs)
    dup_of, kind, sim = exact_pass(docs["exact"], rank)
    # near: LSH candidates among exact-unique documents long enough, verified, then greedy in rank order
    cand = np.flatnonzero((kind == 0) & docs["near"])
    if len(cand) > 1:
        keys = minhash.band_keys(docs["sig"], cfg["bands"])[cand]  # n x bands x 8 B, not a copy of sig
        pairs = cand[minhash.candidate_pairs(keys, rank[cand], cfg["bucket_window"], cfg["min_shared_bands"])]
        del keys
        s = minhash.similarity(docs["sig"], pairs[:, 0], pairs[:, 1])
        ok = s >= cfg["threshold"]
        apply_near_pairs(pairs[ok, 0], pairs[ok, 1], s[ok], rank, dup_of, kind, sim)
    return dup_of, kind, sim


COLUMNS = ["doc_id", "source", "posted_at", "text"]


def hash_row_groups(path: Path | str, groups: list[int], cfg: dict[str, Any]) -> dict[str, np.ndarray]:
    """Read some row groups of ``path`` (or an fsspec URL) and hash them (in a worker: no text crosses
    processes)."""
    with dask_engine.open_parquet(str(path)) as pf:
        table = pf.read_row_groups(groups, columns=COLUMNS)
    return hash_batch(table, cfg)


def row_group_tasks(pf: pq.ParquetFile, batch_rows: int) -> list[list[int]]:
    """Consecutive row groups, about ``batch_rows`` rows per task, in file order."""
    tasks, current, rows = [], [], 0
    for i in range(pf.metadata.num_row_groups):
        current.append(i)
        rows += pf.metadata.row_group(i).num_rows
        if rows >= batch_rows:
            tasks.append(current)
            current, rows = [], 0
    return tasks + ([current] if current else [])


def empty_docs(num_perm: int) -> dict[str, np.ndarray]:
    return {"doc_id": np.zeros(0, "S16"), "source": np.zeros(0, object), "posted": np.zeros(0, np.int64),
            "exact": np.zeros(0, np.uint64), "near": np.zeros(0, bool),
            "sig": np.zeros((0, num_perm), np.uint32), "bytes": np.zeros(1, np.int64)}
