"""Near-duplicate candidates of the dedupe stage out of core: MinHash signatures, LSH band keys and
candidate pairs on disk, in partitions that each fit in memory (the local engine; on Dask the same
search runs through pipeline.dedupe_dask).

Technique: on-disk hash partitions (a one-level external sort). The result is exactly that of
``minhash.candidate_pairs`` + ``minhash.similarity`` over the whole corpus in memory (the same pairs,
the same float32 similarities), so ``dedupe_core.apply_near_pairs`` picks the same survivors:

1. ``SigWriter``: the hash pass appends each batch's signatures (``num_perm`` uint32 per document,
   row order) to one file, instead of keeping them (512 bytes per document at 128 permutations).
2. Band keys: the signature file is read in blocks of rows; each candidate's key in each band
   (``minhash.band_keys``) goes, with the candidate's index, to the file of its (band, key modulo P)
   partition. All members of an LSH bucket (same band, same key) land in one partition.
3. Pairs: each band partition is sorted by (key, rank) and paired exactly as ``candidate_pairs``
   does (each member with up to ``bucket_window`` members ranked just before it in its bucket; a
   window distance with no pair anywhere in the partition has none at larger distances either, so
   partitions may stop early on their own); pair keys (earlier x candidates + later) go to Q pair
   partitions by a hash of the key. Each pair partition counts its keys (``minhash.met_at_least``; one that
   outgrew the budget is split again by another hash) and keeps those met in ``min_shared_bands``
   bands.
4. Verify: the pairs' signature rows are read back with ``os.pread`` (a chunk of pairs at a time,
   consecutive rows at once), and the estimated Jaccard similarity computed as
   ``minhash.similarity`` does.

Partitions are sized for ``SORT_BYTES`` (8 MB) so each sort stays in the CPU caches and the time per
document stays flat as the corpus grows; a pair partition that outgrows ``PARTITION_BYTES`` is split
again.
Memory: a block of signature rows, one partition (``PARTITION_BYTES`` at most), the candidate pairs (16
bytes each), and the per-document arrays of the caller (index and rank of each candidate). Disk:
the signatures (512 bytes per document) and about 12 bytes per candidate and band, deleted after.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from contracts.files import pread_rows
from pipeline import minhash

PARTITION_BYTES = 64 << 20  # most bytes of one partition loaded at once (band keys or pair keys)
# What a partition is sized for: its sort stays about this big however large the corpus, so the time
# per document stays flat (sorts of tens of MB fall out of the CPU caches: 4x the corpus cost 13x
# the pairing time at 64 MB partitions).
SORT_BYTES = 8 << 20
BLOCK_ROWS = 32_768  # signature rows read at once
BAND_RECORD = np.dtype([("key", "<u8"), ("cand", "<i4")])


class SigWriter:
    """Appends signature blocks (rows in document order) to one file."""

    def __init__(self, path: Path, num_perm: int) -> None:
        self.path, self.num_perm = Path(path), num_perm
        self.fh = open(self.path, "wb")
        self.rows = 0

    def write(self, sig: np.ndarray) -> None:
        if sig.shape[1:] != (self.num_perm,):
            raise ValueError(f"signature block of shape {sig.shape}, expected (n, {self.num_perm})")
        self.fh.write(np.ascontiguousarray(sig, dtype=np.uint32).tobytes())
        self.rows += len(sig)

    def close(self) -> None:
        self.fh.close()


class SigReader:
    """Signature rows of a ``SigWriter`` file, read by blocks or by row numbers (``os.pread``)."""

    def __init__(self, path: Path, num_perm: int) -> None:
        self.path, self.num_perm = Path(path), num_perm
        self.row_bytes = num_perm * 4
        self.n = self.path.stat().st_size // self.row_bytes
        self.fd = os.open(self.path, os.O_RDONLY)

    def block(self, lo: int, hi: int) -> np.ndarray:
        raw = os.pread(self.fd, (hi - lo) * self.row_bytes, lo * self.row_bytes)
        if len(raw) != (hi - lo) * self.row_bytes:
            raise self._truncated(lo, hi)
        return np.frombuffer(raw, dtype=np.uint32).reshape(-1, self.num_perm)

    def take(self, rows: np.ndarray) -> np.ndarray:
        """The rows ``rows`` (any order; runs of consecutive row numbers are read at once)."""
        out = np.empty((len(rows), self.num_perm), dtype=np.uint32)
        if not pread_rows(self.fd, rows, out):
            raise self._truncated(int(rows.min()), int(rows.max()) + 1)
        return out

    def _truncated(self, lo: int, hi: int) -> OSError:
        return OSError(f"{self.path}: signature file truncated (rows {lo}-{hi} asked, {self.n} held); "
                       f"it is dedupe's own temporary: rerun `dvc repro dedupe`")

    def close(self) -> None:
        os.close(self.fd)


def _append(path: Path, array: np.ndarray) -> None:
    with open(path, "ab") as fh:
        fh.write(array.tobytes())


def _scatter(array: np.ndarray, part: np.ndarray, n_parts: int, path_of) -> None:
    """Append each element of ``array`` to the file of its partition ``part`` (in array order within
    a partition). One stable sort, not a mask per partition: the cost stays linear as partitions
    multiply with the corpus."""
    order, bounds = minhash.by_partition(part, n_parts)
    for p in np.flatnonzero(np.diff(bounds)).tolist():
        _append(path_of(p), array[order[bounds[p]:bounds[p + 1]]])


def band_partitions(sig: SigReader, cand: np.ndarray, bands: int, work: Path) -> int:
    """Pass 2: every candidate's band keys into (band, key mod P) partition files; returns P."""
    parts = max(1, math.ceil(len(cand) * BAND_RECORD.itemsize / SORT_BYTES))
    for lo in range(0, sig.n, BLOCK_ROWS):
        hi = min(lo + BLOCK_ROWS, sig.n)
        first, last = np.searchsorted(cand, [lo, hi])  # ``cand`` is sorted: its rows in [lo, hi)
        if first == last:
            continue
        keys = minhash.band_keys(sig.block(lo, hi)[cand[first:last] - lo], bands)
        records = np.empty(last - first, dtype=BAND_RECORD)
        records["cand"] = np.arange(first, last)
        for b in range(bands):
            records["key"] = keys[:, b]
            part = (keys[:, b] % np.uint64(parts)).astype(np.int64)
            _scatter(records, part, parts, lambda p, b=b: work / f"band{b:03d}.part{p:04d}")
    return parts


def count_pairs(path: Path, min_bands: int, depth: int = 0) -> np.ndarray:
    """Pair keys of one pair partition met at least ``min_bands`` times; a partition bigger than the
    budget is split in 16 by another hash first (its keys never meet keys of other partitions)."""
    if path.stat().st_size <= PARTITION_BYTES or depth >= 6:
        keys = minhash.met_at_least(np.fromfile(path, dtype=np.int64), min_bands)
        path.unlink()
        return keys
    subs = [path.with_name(f"{path.name}.{depth}.{i:02d}") for i in range(16)]
    with open(path, "rb") as fh:
        while block := fh.read(max(1, PARTITION_BYTES // 32) * 8):  # whole int64 keys
            keys = np.frombuffer(block, dtype=np.int64)
            sub = ((minhash.mix64(keys.astype(np.uint64)) >> np.uint64(8 + 4 * depth)) & np.uint64(15)).astype(np.int64)
            _scatter(keys, sub, 16, subs.__getitem__)
    path.unlink()
    kept = [count_pairs(s, min_bands, depth + 1) for s in subs if s.exists()]
    return np.sort(np.concatenate(kept)) if kept else np.zeros(0, dtype=np.int64)


def candidate_pairs(sig: SigReader, cand: np.ndarray, rank: np.ndarray, cfg: dict[str, Any],
                    work: Path) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) rows of the candidate pairs (a ranked before b) sharing ``min_shared_bands`` bands;
    ``cand``: the candidates' rows, ascending; ``rank``: every row's visit rank."""
    n_cand = len(cand)
    parts = band_partitions(sig, cand, cfg["bands"], work)
    cand_rank = rank[cand]
    pair_parts = max(1, math.ceil(n_cand * cfg["bands"] * 8 / SORT_BYTES))  # about one pair key per candidate and band
    for b in range(cfg["bands"]):
        for p in range(parts):
            path = work / f"band{b:03d}.part{p:04d}"
            if not path.exists():
                continue
            records = np.fromfile(path, dtype=BAND_RECORD)
            path.unlink()
            keys = minhash.bucket_pairs(records["key"], cand_rank[records["cand"]], records["cand"].astype(np.int64),
                                        cfg["bucket_window"], n_cand)
            del records
            _scatter(keys, minhash.part_of(keys, pair_parts), pair_parts, lambda i: work / f"pairs.part{i:04d}")
    kept = [count_pairs(work / f"pairs.part{i:04d}", cfg["min_shared_bands"]) for i in range(pair_parts)
            if (work / f"pairs.part{i:04d}").exists()]
    keys = np.sort(np.concatenate(kept)) if kept else np.zeros(0, dtype=np.int64)
    return cand[keys // n_cand], cand[keys % n_cand]


def similarity(sig: SigReader, a: np.ndarray, b: np.ndarray, chunk: int = 16_384) -> np.ndarray:
    """``minhash.similarity`` of rows a[i] and b[i], rows read from the signature file."""
    out = np.empty(len(a), dtype=np.float32)
    for i in range(0, len(a), chunk):
        ai, bi = a[i:i + chunk], b[i:i + chunk]
        rows, inverse = np.unique(np.concatenate([ai, bi]), return_inverse=True)
        block = sig.take(rows)
        out[i:i + chunk] = (block[inverse[:len(ai)]] == block[inverse[len(ai):]]).mean(axis=1)
    return out
