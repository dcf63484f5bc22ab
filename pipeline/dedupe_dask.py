"""Near-duplicate search of the dedupe stage on a Dask cluster (``dedupe.engine: dask``).

The same decisions as ``pipeline.dedupe_core.find_duplicates``, with the heavy parts on the workers:

1. **Hash** (one task per ``batch_rows`` of row groups, ``dedupe_core.hash_row_groups``): exact keys and
   MinHash signatures. Signatures stay on the workers; only small per-document columns (doc_id,
   posted_at, exact key, source, long-enough flag) come back to the stage process.
2. **Rank and exact pass** in the stage process (``rank_of``, ``exact_pass``): they need every
   document's (posted_at, doc_id) and exact key, nothing else.
3. **LSH shuffle**: each hash partition cuts its candidates' band keys into ``lsh_partitions`` pieces
   by band (and, with more partitions than bands, by key range too), so one LSH task sees every
   member of its buckets and nothing else; it pairs bucket members exactly as
   ``minhash.candidate_pairs`` does (sorted by rank, ``bucket_window`` back) and cuts the pair keys
   into pieces by hash; a count task per piece keeps pairs seen in ``min_shared_bands`` bands.
4. **Verify** candidate pairs in parallel, one task per (partition of a, partition of b), reading
   the two signature blocks on a worker; the survivor rule (``apply_near_pairs``) runs in the stage
   process over the verified pairs only.

What grows with what: the stage process holds about 60 bytes per document (step 2's columns, a
source code, the result columns) plus 16 bytes per candidate pair; the workers together hold the
signatures (``num_perm`` x 4 bytes per document, spread over the workers and spillable to disk by
Dask); an LSH task holds candidates x bands / ``lsh_partitions`` entries of 26 bytes (raise
``lsh_partitions`` with the corpus).
A worker killed mid-stage loses its blocks; Dask recomputes them from the task graph.
"""

from __future__ import annotations

import logging
import operator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from contracts.schemas import check_columns
from pipeline import minhash
from pipeline.dask_engine import DaskEngine
from pipeline.dedupe_core import (
    COLUMNS,
    apply_near_pairs,
    empty_docs,
    exact_pass,
    hash_row_groups,
    rank_of,
    row_group_tasks,
)

log = logging.getLogger(__name__)


def small_columns(part: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A hash partition without its signatures (what the stage process needs), its sources as
    codes into ``source_names`` (one string per source, not per document)."""
    out = {k: v for k, v in part.items() if k not in ("sig", "source")}
    names, codes = np.unique(part["source"].astype(str), return_inverse=True)
    return {**out, "source": codes.astype(np.int32), "source_names": names}


def merge_sources(smalls: list[dict[str, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """The partitions' source codes as codes into one list of names."""
    names = sorted({str(n) for p in smalls for n in p["source_names"]})
    code_of = {n: i for i, n in enumerate(names)}
    codes = [np.array([code_of[str(n)] for n in p["source_names"]], dtype=np.int32)[p["source"]]
             if len(p["source"]) else np.zeros(0, np.int32) for p in smalls]
    return (np.concatenate(codes) if codes else np.zeros(0, np.int32)), np.array(names or [""], dtype=object)


def band_pieces(sig: np.ndarray, rank: np.ndarray, cand: np.ndarray, offset: int, bands: int,
                n_parts: int) -> list[dict[str, np.ndarray]]:
    """Band keys of one hash partition's candidate rows, cut into ``n_parts`` LSH pieces.

    ``rank`` is the partition's slice of the global rank, ``cand`` the local rows taking part,
    ``offset`` the partition's first global row. Piece of (band b, key k): (b + bands * (k % r)) %
    n_parts with r = ceil(n_parts / bands), so each bucket (same band, same key) lands in one piece.
    """
    keys = minhash.band_keys(sig[cand], bands)  # n_cand x bands
    n = len(cand)
    band = np.tile(np.arange(bands, dtype=np.int64), n)
    key = keys.reshape(-1)
    r = -(-n_parts // bands)
    piece = (band + bands * (key % np.uint64(r)).astype(np.int64)) % n_parts
    order = np.argsort(piece, kind="stable")
    bounds = np.searchsorted(piece[order], np.arange(n_parts + 1))
    rows = np.repeat(np.arange(n, dtype=np.int64), bands)
    out = []
    for j in range(n_parts):
        sel = order[bounds[j]:bounds[j + 1]]
        out.append({"band": band[sel].astype(np.int16), "key": key[sel], "rank": rank[cand][rows[sel]],
                    "gidx": (cand[rows[sel]] + offset).astype(np.int64)})
    return out


def lsh_pairs(window: int, n_docs: int, n_parts: int, *pieces: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Candidate pair keys (earlier * n_docs + later, global rows) of one LSH piece, one per shared
    band, cut into ``n_parts`` pieces by pair key; the pairing rule of ``minhash.candidate_pairs``."""
    cols = {c: np.concatenate([p[c] for p in pieces]) for c in ("band", "key", "rank", "gidx")}
    out = []
    for b in np.unique(cols["band"]):
        sel = np.flatnonzero(cols["band"] == b)
        key, rank, gidx = cols["key"][sel], cols["rank"][sel], cols["gidx"][sel]
        order = np.lexsort((rank, key))
        k = key[order]
        for s in range(1, window + 1):
            if s >= len(k):
                break
            same = np.flatnonzero(k[s:] == k[:-s])
            if len(same) == 0:
                break
            out.append(gidx[order[same]] * n_docs + gidx[order[same + s]])
    keys = np.concatenate(out) if out else np.zeros(0, np.int64)
    piece = (minhash.mix64(keys.astype(np.uint64)) % np.uint64(n_parts)).astype(np.int64)
    return [keys[piece == q] for q in range(n_parts)]


def count_pairs(min_bands: int, *pieces: np.ndarray) -> np.ndarray:
    """Pair keys met in at least ``min_bands`` bands (one piece of the pair shuffle)."""
    keys, counts = np.unique(np.concatenate(pieces), return_counts=True)
    return keys[counts >= min_bands]


def verify(sig_a: np.ndarray, sig_b: np.ndarray, a: np.ndarray, b: np.ndarray, same: bool) -> np.ndarray:
    """Estimated Jaccard of rows a[i] of ``sig_a`` and b[i] of ``sig_b`` (``minhash.similarity``)."""
    if same:
        return minhash.similarity(sig_a, a, b)
    return minhash.similarity(np.concatenate([sig_a, sig_b]), a, b + len(sig_a))


def find_duplicates_dask(engine: DaskEngine, path: Path, cfg: dict[str, Any]):
    """-> (docs without signatures, dup_of, kind, sim): ``dedupe_core.find_duplicates``' result, on Dask.

    ``dask.lsh_partitions`` (``engine.cfg``) 0 = two per worker thread. Each shuffle costs partitions x pieces small
    ``getitem`` tasks, so more pieces than the memory of one LSH task needs only adds overhead.
    """
    pf = pq.ParquetFile(path)
    check_columns(pf.schema_arrow, COLUMNS, origin=str(path), expected="CLEAN_SCHEMA (the clean stage's posts)")
    location = str(Path(path).resolve())
    hashed = [engine.submit(hash_row_groups, location, groups, cfg)
              for groups in row_group_tasks(pf, cfg["batch_rows"])]
    smalls = engine.gather([engine.submit(small_columns, f) for f in hashed])
    sigs = [engine.submit(operator.getitem, f, "sig") for f in hashed]
    del hashed  # the signature futures keep what they need; Dask recomputes from the graph if a worker dies
    empty = {k: v for k, v in empty_docs(cfg["num_perm"]).items() if k not in ("sig", "source")}
    docs = {k: np.concatenate([p[k] for p in smalls]) for k in empty} if smalls else empty
    docs["source"], docs["source_names"] = merge_sources(smalls)
    sizes = np.array([len(p["doc_id"]) for p in smalls], dtype=np.int64)
    if sizes.sum() != pf.metadata.num_rows:
        raise RuntimeError(f"{path}: read {sizes.sum()} rows, metadata says {pf.metadata.num_rows}")
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    rank = rank_of(docs)
    dup_of, kind, sim = exact_pass(docs["exact"], rank)
    cand = (kind == 0) & docs["near"]
    if cand.sum() > 1:
        n_parts = engine.cfg["lsh_partitions"] or 2 * engine.threads()
        a, b, s = _near_pairs(engine, sigs, rank, cand, offsets, cfg, n_parts)
        ok = s >= cfg["threshold"]
        apply_near_pairs(a[ok], b[ok], s[ok], rank, dup_of, kind, sim)
    return docs, dup_of, kind, sim


def _near_pairs(engine: DaskEngine, sigs: list, rank: np.ndarray, cand: np.ndarray, offsets: np.ndarray,
                cfg: dict[str, Any], n_parts: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Verified-or-not candidate pairs (a, b, similarity) through the LSH and pair shuffles."""
    n = int(offsets[-1])
    banded = []
    for p, sig in enumerate(sigs):
        lo, hi = offsets[p], offsets[p + 1]
        banded.append(engine.submit(band_pieces, sig, rank[lo:hi], np.flatnonzero(cand[lo:hi]), int(lo),
                                    cfg["bands"], n_parts))
    lsh = [engine.submit(lsh_pairs, cfg["bucket_window"], n, n_parts,
                         *[engine.submit(operator.getitem, f, j) for f in banded]) for j in range(n_parts)]
    counted = [engine.submit(count_pairs, cfg["min_shared_bands"],
                             *[engine.submit(operator.getitem, f, q) for f in lsh]) for q in range(n_parts)]
    keys = np.concatenate(engine.gather(counted))
    a, b = keys // n, keys % n
    if len(keys) == 0:
        return a, b, np.zeros(0, np.float32)
    pa = np.searchsorted(offsets, a, side="right") - 1
    pb = np.searchsorted(offsets, b, side="right") - 1
    order = np.lexsort((pb, pa))
    a, b, pa, pb = a[order], b[order], pa[order], pb[order]
    starts = np.flatnonzero(np.r_[True, (pa[1:] != pa[:-1]) | (pb[1:] != pb[:-1])])
    ends = np.r_[starts[1:], len(a)]
    futures = [engine.submit(verify, sigs[pa[i]], sigs[pb[i]], a[i:j] - offsets[pa[i]], b[i:j] - offsets[pb[i]],
                             bool(pa[i] == pb[i])) for i, j in zip(starts, ends)]
    s = np.concatenate(engine.gather(futures)) if futures else np.zeros(0, np.float32)
    log.info("dedupe (dask): %d candidate pairs from %d LSH pieces, verified in %d tasks",
             len(a), n_parts, len(futures))
    return a, b, s
