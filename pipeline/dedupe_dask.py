"""Near-duplicate search of the dedupe stage on a Dask cluster (``dedupe.engine: dask``).

The same decisions as ``pipeline.dedupe_core.find_duplicates``, with the heavy parts on the workers:

1. **Hash and band** (``hash_and_band``, one task per block of row groups): exact keys, MinHash
   signatures and each near-eligible row's LSH band keys, cut at once into the LSH pieces (piece =
   band x ``r`` + key mod ``r``, so a bucket, same band and same key, lands in one piece). The
   signatures are not kept: what stays on the workers is the band records (12 bytes per row and
   band) until the LSH tasks have read them. The bands are done in rounds of at most
   ``ROUND_BYTES_PER_THREAD`` records per worker thread (each round after the first hashes the
   text again), so the records held at once do not grow with the corpus. Small per-document
   columns (doc_id, posted_at, exact key, source code, long-enough flag) come back to the stage
   process from the first round.
2. **Rank and exact pass** in the stage process (``rank_of``, ``exact_pass``): they need every
   document's (posted_at, doc_id) and exact key. The candidates' ranks (-1 for the rest) go to
   the workers once, as one task's result.
3. **LSH** (``lsh_pairs``, one task per piece): the piece's candidates are paired by
   ``minhash.bucket_pairs``, as every engine pairs (sorted by rank within a bucket,
   ``bucket_window`` back), and
   the pair keys cut by hash into pair pieces; ``count_pairs`` keeps the pairs met in
   ``min_shared_bands`` bands.
4. **Verify**: the pairs are cut into chunks of ``VERIFY_PAIRS``; ``gather_signatures`` (one task per
   hash block) recomputes the signatures of only the rows some pair needs and hands each chunk its
   rows; ``verify`` (one task per chunk) estimates the pairs' Jaccard similarity. The survivor rule
   (``apply_near_pairs``) runs in the stage process over the verified pairs.

Sizes: hash blocks hold ``max(batch_rows, rows / MAX_HASH_TASKS)`` rows (fewer, bigger blocks keep
the shuffles' task count down: blocks x pieces small ``getitem`` tasks), capped so that a block's
band records stay under ``TASK_BYTES``; the LSH pieces are as many as keep one LSH task's records
under ``TASK_BYTES`` / ``WORKING_COPIES`` (``dask.lsh_partitions`` > 0 asks for at least that many).
The stage process holds about 60 bytes per document and 16 per candidate pair; every task holds a
bounded slice. What does grow with the corpus on the workers is the pair keys of every round,
waiting to be counted over all bands (8 bytes per pair met in a band), which Dask spills past its
memory target. The client keeps only the futures of the pieces other tasks will read (never a
task's whole result beside its pieces), so every array is held, counted and spilled once. A worker
killed mid-stage loses its pieces; Dask recomputes them from the graph.
"""

from __future__ import annotations

import logging
import math
import operator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from contracts.schemas import check_columns
from pipeline import dask_engine, minhash
from pipeline.dask_engine import DaskEngine
from pipeline.dedupe_core import COLUMNS, apply_near_pairs, empty_docs, exact_pass, hash_batch, rank_of, row_group_tasks

log = logging.getLogger(__name__)

TASK_BYTES = 64 << 20  # band records one hash block produces, or one LSH task reads
WORKING_COPIES = 4  # an LSH task's sort and pairing copies on top of its records
MAX_HASH_TASKS = 64  # hash blocks grow past batch_rows rather than outnumber this
VERIFY_PAIRS = 1 << 16  # candidate pairs per verify task (two signature rows each)
ROUND_BYTES_PER_THREAD = 384 << 20  # band records held at once, per worker thread: more bands, more rounds


def band_record(n_docs: int) -> np.dtype:
    """A band key and a global row (4 bytes while rows fit)."""
    return np.dtype([("key", "<u8"), ("row", "<u4" if n_docs < 2**32 else "<u8")])


def layout(n_docs: int, bands: int, batch_rows: int, min_pieces: int, threads: int) -> tuple[int, int, int]:
    """-> (rows per hash block, key ranges per band ``r``: pieces = bands x r, bands per round)."""
    record = band_record(n_docs).itemsize
    block = max(batch_rows, min(math.ceil(n_docs / MAX_HASH_TASKS), TASK_BYTES // (bands * record)))
    r = max(1, math.ceil(min_pieces / bands), math.ceil(n_docs * record * WORKING_COPIES / TASK_BYTES))
    rounds = min(bands, max(1, math.ceil(n_docs * bands * record / (ROUND_BYTES_PER_THREAD * threads))))
    return block, r, math.ceil(bands / rounds)


def _read_texts(location: str, groups: list[int], batch_rows: int):
    """The posts of ``groups`` in tables of about ``batch_rows`` rows (one MinHash batch at a time)."""
    with dask_engine.open_parquet(location) as pf:
        chunk, rows = [], 0
        for g in groups:
            chunk.append(g)
            rows += pf.metadata.row_group(g).num_rows
            if rows >= batch_rows or g == groups[-1]:
                yield pf.read_row_groups(chunk, columns=COLUMNS)
                chunk, rows = [], 0


def hash_and_band(location: str, groups: list[int], first_row: int, n_docs: int, r: int, band_lo: int,
                  band_hi: int, cfg: dict[str, Any]) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
    """Small columns of one hash block and its near-eligible rows' band records for bands
    ``band_lo:band_hi``, one array per LSH piece (``r`` per band; rows are global: ``first_row`` is
    the block's first)."""
    dtype = band_record(n_docs)
    small, pieces = [], [[] for _ in range((band_hi - band_lo) * r)]
    row = first_row
    for table in _read_texts(location, groups, cfg["batch_rows"]):
        part = hash_batch(table, cfg)
        sig = part.pop("sig")
        near = np.flatnonzero(part["near"])
        keys = minhash.band_keys(sig[near], cfg["bands"])
        for i, b in enumerate(range(band_lo, band_hi)):
            rec = np.empty(len(near), dtype=dtype)
            rec["key"], rec["row"] = keys[:, b], near + row
            sub = (keys[:, b] % np.uint64(r)).astype(np.int64)
            order, bounds = minhash.by_partition(sub, r)
            for j in range(r):
                pieces[i * r + j].append(rec[order[bounds[j]:bounds[j + 1]]])
        small.append(part)
        row += table.num_rows
    cols = {k: np.concatenate([p[k] for p in small]) for k in small[0] if k != "bytes"}
    cols["bytes"] = np.array([sum(int(p["bytes"][0]) for p in small)])
    names, codes = np.unique(cols["source"].astype(str), return_inverse=True)
    cols["source"], cols["source_names"] = codes.astype(np.int32), names
    return cols, [np.concatenate(p) for p in pieces]


def _small(result: tuple) -> dict[str, np.ndarray]:
    return result[0]


def _piece(result: tuple, j: int) -> np.ndarray:
    return result[1][j]


def merge_sources(smalls: list[dict[str, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """The blocks' source codes as codes into one list of names."""
    names = sorted({str(n) for p in smalls for n in p["source_names"]})
    code_of = {n: i for i, n in enumerate(names)}
    codes = [np.array([code_of[str(n)] for n in p["source_names"]], dtype=np.int32)[p["source"]]
             if len(p["source"]) else np.zeros(0, np.int32) for p in smalls]
    return (np.concatenate(codes) if codes else np.zeros(0, np.int32)), np.array(names or [""], dtype=object)


def lsh_pairs(window: int, cand_rank: np.ndarray, n_parts: int, *pieces: np.ndarray) -> list[np.ndarray]:
    """Candidate pair keys (earlier x n_docs + later, global rows) of one LSH piece (one band),
    cut into ``n_parts`` pieces by a hash of the key; ``minhash.bucket_pairs`` over the candidates
    (``cand_rank`` >= 0) only."""
    rec = np.concatenate(pieces)
    rows = rec["row"].astype(np.int64)
    rank = cand_rank[rows]
    keep = rank >= 0
    key, rows, rank = rec["key"][keep], rows[keep], rank[keep]
    del rec
    keys = minhash.bucket_pairs(key, rank, rows, window, len(cand_rank))
    order, bounds = minhash.by_partition(minhash.part_of(keys, n_parts), n_parts)  # one sort, not a mask per piece
    return [keys[order[bounds[q]:bounds[q + 1]]] for q in range(n_parts)]


def count_pairs(min_bands: int, *pieces: np.ndarray) -> np.ndarray:
    """Pair keys met in at least ``min_bands`` bands (one piece of the pair shuffle)."""
    return minhash.met_at_least(np.concatenate(pieces), min_bands)


def gather_signatures(location: str, groups: list[int], first_row: int, rows: np.ndarray,
                      chunk_rows: list[np.ndarray], cfg: dict[str, Any]) -> list[np.ndarray]:
    """Signatures of the block's rows ``rows`` (global, sorted, distinct), recomputed from the text;
    one array per entry of ``chunk_rows`` (the rows one verify chunk needs, a subset of ``rows``)."""
    sig = np.empty((len(rows), cfg["num_perm"]), dtype=np.uint32)
    start = first_row
    for table in _read_texts(location, groups, cfg["batch_rows"]):
        lo, hi = np.searchsorted(rows, [start, start + table.num_rows])
        if hi > lo:
            texts = table.column("text").take(rows[lo:hi] - start).to_pylist()
            sig[lo:hi] = minhash.signatures(texts, shingle=cfg["shingle"], num_perm=cfg["num_perm"], seed=cfg["seed"])
        start += table.num_rows
    return [sig[np.searchsorted(rows, need)] for need in chunk_rows]


def verify(a: np.ndarray, b: np.ndarray, rows: np.ndarray, *blocks: np.ndarray) -> np.ndarray:
    """Estimated Jaccard of rows a[i] and b[i] (``minhash.similarity``): ``rows`` are the sorted
    global rows whose signatures ``blocks`` hold, in that order."""
    sig = np.concatenate(blocks)
    return (sig[np.searchsorted(rows, a)] == sig[np.searchsorted(rows, b)]).mean(axis=1).astype(np.float32)


def find_duplicates_dask(engine: DaskEngine, path: Path, cfg: dict[str, Any]):
    """-> (docs without signatures, dup_of, kind, sim): ``dedupe_core.find_duplicates``' result, on Dask."""
    pf = pq.ParquetFile(path)
    check_columns(pf.schema_arrow, COLUMNS, origin=str(path), expected="CLEAN_SCHEMA (the clean stage's posts)")
    location, n = str(Path(path).resolve()), pf.metadata.num_rows
    threads = engine.threads()
    block_rows, r, per_round = layout(n, cfg["bands"], cfg["batch_rows"], engine.cfg["lsh_partitions"] or 2 * threads,
                                      threads)
    blocks = row_group_tasks(pf, block_rows)
    sizes = [sum(pf.metadata.row_group(g).num_rows for g in groups) for groups in blocks]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    rounds = [(lo, min(lo + per_round, cfg["bands"])) for lo in range(0, cfg["bands"], per_round)]

    def hashed(band_lo: int, band_hi: int, keep_small: bool = False) -> tuple[list, list]:
        """The round's band records as futures per LSH piece (one per hash block), and the hash
        blocks' small columns (first round only). Only the pieces are kept: a hash block's result
        goes as soon as its pieces are taken, so each record is held (and spilled) once."""
        futures = [engine.submit(hash_and_band, location, groups, int(offsets[i]), n, r, band_lo, band_hi, cfg)
                   for i, groups in enumerate(blocks)]
        pieces = [[engine.submit(_piece, f, j) for f in futures] for j in range((band_hi - band_lo) * r)]
        return pieces, [engine.submit(_small, f) for f in futures] if keep_small else []

    first, small_futures = hashed(*rounds[0], keep_small=True)
    smalls = engine.gather(small_futures)
    del small_futures
    empty = {k: v for k, v in empty_docs(cfg["num_perm"]).items() if k not in ("sig", "source", "bytes")}
    docs = {k: np.concatenate([p[k] for p in smalls]) for k in empty} if smalls else empty
    docs["bytes"] = np.array([sum(int(p["bytes"][0]) for p in smalls)])
    docs["source"], docs["source_names"] = merge_sources(smalls)
    del smalls
    if len(docs["doc_id"]) != n:
        raise RuntimeError(f"{path}: read {len(docs['doc_id'])} rows, metadata says {n}")
    rank = rank_of(docs)
    dup_of, kind, sim = exact_pass(docs["exact"], rank)
    cand = (kind == 0) & docs["near"]
    if cand.sum() > 1:
        # a task, not scattered data: if the worker holding it dies, Dask can compute it again
        ranks = engine.submit(np.asarray, np.where(cand, rank, -1))
        n_pair_parts = max(2 * threads, math.ceil(cfg["bands"] * r / 8))
        parts: list[list] = [[] for _ in range(n_pair_parts)]  # per pair piece: every LSH task's keys for it
        for k, (lo, hi) in enumerate(rounds):
            pieces = first if k == 0 else hashed(lo, hi)[0]
            first = None
            for q, got in enumerate(_lsh_round(engine, pieces, ranks, cfg, n_pair_parts)):
                parts[q] += got
            del pieces  # the round's band records go before the next round is hashed
        counted = [engine.submit(count_pairs, cfg["min_shared_bands"], *part) for part in parts]
        del parts
        keys = np.sort(np.concatenate(engine.gather(counted)))
        del counted
        log.info("dedupe (dask): %d candidate pairs from %d LSH pieces x %d hash blocks in %d round(s)",
                 len(keys), cfg["bands"] * r, len(blocks), len(rounds))
        a, b = keys // n, keys % n
        s = _verify(engine, location, blocks, offsets, a, b, cfg)
        ok = s >= cfg["threshold"]
        apply_near_pairs(a[ok], b[ok], s[ok], rank, dup_of, kind, sim)
    return docs, dup_of, kind, sim


def _lsh_round(engine: DaskEngine, pieces: list[list], ranks, cfg: dict[str, Any], n_pair_parts: int) -> list[list]:
    """The LSH tasks of one round's band records (``pieces``: per LSH piece, its futures from every
    hash block), waited for, so the records can go before the next round is hashed. Returns, per
    pair piece, the futures of every LSH task's keys for it (the LSH results themselves are not
    kept: each key array is held, and spilled, once)."""
    lsh = [engine.submit(lsh_pairs, cfg["bucket_window"], ranks, n_pair_parts, *piece) for piece in pieces]
    parts = [[engine.submit(operator.getitem, f, q) for f in lsh] for q in range(n_pair_parts)]
    del lsh
    engine.wait([f for part in parts for f in part])
    return parts


def _verify(engine: DaskEngine, location: str, blocks: list[list[int]], offsets: np.ndarray, a: np.ndarray,
            b: np.ndarray, cfg: dict[str, Any]) -> np.ndarray:
    """Similarity of each pair (a[i], b[i]): chunks of VERIFY_PAIRS pairs, their rows' signatures
    recomputed by the hash block holding them."""
    n_chunks = math.ceil(len(a) / VERIFY_PAIRS)
    ends = np.concatenate([a, b])
    chunk = np.tile(np.arange(len(a)) // VERIFY_PAIRS, 2)
    block = np.searchsorted(offsets, ends, side="right") - 1
    order = np.lexsort((ends, chunk, block))
    ends, chunk, block = ends[order], chunk[order], block[order]
    parts: list[list] = [[] for _ in range(n_chunks)]  # per chunk: (rows, future of their signatures)
    for p in np.unique(block).tolist():
        lo, hi = np.searchsorted(block, [p, p + 1])
        rows = np.unique(ends[lo:hi])
        cuts = np.flatnonzero(np.r_[True, chunk[lo + 1:hi] != chunk[lo:hi - 1]]) + lo
        needs = [np.unique(ends[c:d]) for c, d in zip(cuts, np.r_[cuts[1:], hi])]
        got = engine.submit(gather_signatures, location, blocks[p], int(offsets[p]), rows, needs, cfg)
        for k, c in enumerate(cuts.tolist()):
            parts[int(chunk[c])].append((needs[k], engine.submit(operator.getitem, got, k)))
    futures = []
    for j in range(n_chunks):
        rows = np.concatenate([need for need, _ in parts[j]])  # blocks ascend, so rows stay sorted
        futures.append(engine.submit(verify, a[j * VERIFY_PAIRS:(j + 1) * VERIFY_PAIRS],
                                     b[j * VERIFY_PAIRS:(j + 1) * VERIFY_PAIRS], rows, *[f for _, f in parts[j]]))
    s = np.concatenate(engine.gather(futures)) if futures else np.zeros(0, np.float32)
    log.info("dedupe (dask): %d pairs verified in %d tasks", len(a), len(futures))
    return s
