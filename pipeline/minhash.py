"""Vectorised MinHash over character shingles, LSH banding and candidate pairs, in NumPy.

Why not datasketch: datasketch's ``MinHash`` hashes shingles one ``update()`` call at a time in
Python, and even its ``bulk``/``update_batch`` path computes ``num_perm`` permutations per shingle
(an m x num_perm matrix per document). Measured side by side on this shared 2-core machine
(synthetic 1 KB forum posts, 5-char shingles, 128 permutations): datasketch ``update_batch``
0.2-0.5 MB/s, this module 8-20 MB/s, 30-60x faster in the same run (bench/pipeline.py reports the
ratio every time); the estimates agree with exact Jaccard (mean error < 0.01, sd ~0.03).

How: a whole record batch is hashed at once. Texts are joined (``shingle - 1`` NUL code points
between them, so no shingle spans two documents; each document of n code points yields n shingles,
its last ones padded, so even 1-character texts get a signature). Shingle hashes are a polynomial
over UTF-32 code points finished by the splitmix64 mixer. Instead of ``num_perm`` permutations we
use one-permutation hashing with rotation densification (Li, Owen & Zhang 2012; Shrivastava & Li
2014): the hash's high bits pick one of ``num_perm`` bins, the low 32 bits are the value, each bin
keeps its minimum, and empty bins borrow from the next non-empty bin. The fraction of equal bins
estimates Jaccard similarity like classic MinHash, at one hash per shingle instead of ``num_perm``.
"""

from __future__ import annotations

import numpy as np

EMPTY = np.uint32(0xFFFFFFFF)
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_PRIME = np.uint64(0x100000001B3)


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser (uint64 in, uint64 out, wrapping arithmetic); works in place on ``x``."""
    x ^= x >> np.uint64(30)
    x *= _M1
    x ^= x >> np.uint64(27)
    x *= _M2
    x ^= x >> np.uint64(31)
    return x


def signatures(texts: list[str], *, shingle: int = 5, num_perm: int = 128, seed: int = 0) -> np.ndarray:
    """MinHash signatures (len(texts) x num_perm, uint32). Empty texts get all-EMPTY rows."""
    if shingle < 1 or num_perm < 1:
        raise ValueError(f"shingle and num_perm must be >= 1, got {shingle}, {num_perm}")
    n = len(texts)
    sig = np.full(n * num_perm, EMPTY, dtype=np.uint32)
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=n)
    if n == 0 or lengths.sum() == 0:
        return sig.reshape(n, num_perm)
    gap = "\x00" * (shingle - 1)
    cps = np.frombuffer((gap.join(texts) + gap).encode("utf-32-le"), dtype=np.uint32)
    windows = len(cps) - shingle + 1
    h = cps[:windows].astype(np.uint64)
    for j in range(1, shingle):  # polynomial hash of each window, in place
        h *= _PRIME
        h += cps[j:j + windows]
    keep = np.ones(windows, dtype=bool)  # windows starting inside a gap belong to no document
    ends = np.cumsum(lengths + (shingle - 1))[:-1]
    for g in range(1, shingle):
        keep[ends - g] = False
    h = h[keep]
    owner = np.repeat(np.arange(n, dtype=np.int64), lengths)
    h ^= mix64(np.full(1, seed, dtype=np.uint64))
    mix64(h)
    flat = ((h >> np.uint64(32)) * np.uint64(num_perm)) >> np.uint64(32)  # bin in [0, num_perm)
    flat = flat.view(np.int64)
    flat += owner * num_perm
    np.minimum.at(sig, flat, h.astype(np.uint32))  # low 32 bits are the value
    sig = sig.reshape(n, num_perm)
    return densify(sig, lengths > 0)


def densify(sig: np.ndarray, nonempty_docs: np.ndarray) -> np.ndarray:
    """Fill empty bins from the next non-empty bin to the right (circular), offset by distance."""
    empty = sig == EMPTY
    rows = np.flatnonzero(empty.any(axis=1) & nonempty_docs)
    if len(rows) == 0:
        return sig
    k = sig.shape[1]
    sub = sig[rows]
    twice = np.concatenate([sub, sub], axis=1)
    pos = np.where(twice != EMPTY, np.arange(2 * k), 2 * k)
    nxt = np.minimum.accumulate(pos[:, ::-1], axis=1)[:, ::-1][:, :k]  # next non-empty index
    dist = (nxt - np.arange(k)).astype(np.uint64)
    borrowed = np.take_along_axis(twice, nxt, axis=1).astype(np.uint64)
    filled = (mix64(borrowed + dist * np.uint64(0x9E3779B97F4A7C15)) & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    sig[rows] = np.where(sub == EMPTY, filled, sub)
    return sig


def band_keys(sig: np.ndarray, bands: int) -> np.ndarray:
    """One uint64 key per (document, band): n x bands."""
    n, k = sig.shape
    if bands < 1 or k % bands:
        raise ValueError(f"num_perm {k} must be a multiple of bands {bands}")
    rows = sig.reshape(n, bands, k // bands)  # stays uint32: one n x bands column is widened at a time
    key = np.zeros((n, bands), dtype=np.uint64)
    for r in range(rows.shape[2]):
        key *= _PRIME
        key += rows[:, :, r]
        mix64(key)
    return key


def candidate_pairs(keys: np.ndarray, rank: np.ndarray, window: int = 8, min_bands: int = 1) -> np.ndarray:
    """(earlier, later) index pairs sharing at least ``min_bands`` band keys; unique, m x 2.

    ``earlier`` is by ``rank``. Within a bucket each member is paired with up to ``window`` members
    ranked just before it, which bounds the work on huge buckets. ``min_bands = 2`` drops most
    chance collisions (a pair at Jaccard 0.8 shares ~13 of 32 four-row bands, one at 0.3 rarely 2).
    """
    n, bands = keys.shape
    ids = np.arange(n, dtype=np.int64)
    out = [bucket_pairs(keys[:, b], rank, ids, window, n) for b in range(bands)]
    pair_keys = met_at_least(np.concatenate(out) if out else np.zeros(0, np.int64), min_bands)
    return np.stack([pair_keys // n, pair_keys % n], axis=1)


def part_of(keys: np.ndarray, n_parts: int) -> np.ndarray:
    """Partition ``[0, n_parts)`` of each int64 key, from the high half of its splitmix64 hash
    (multiply-shift: a tenth of the cost of ``%`` on uint64; ``n_parts`` < 2**32)."""
    h = mix64(keys.astype(np.uint64))
    return (((h >> np.uint64(32)) * np.uint64(n_parts)) >> np.uint64(32)).astype(np.int64)


def met_at_least(keys: np.ndarray, times: int) -> np.ndarray:
    """The distinct values of ``keys`` that occur at least ``times`` times, ascending. One sort and
    a comparison: in sorted order a value occurs ``times`` times where it equals the value
    ``times - 1`` places on (``numpy.unique`` with counts costs four sorts' time)."""
    ordered = np.sort(keys)
    t = max(int(times), 1)
    if len(ordered) < t:
        return ordered[:0]
    if t > 1:
        head = ordered[:len(ordered) - t + 1]
        ordered = head[ordered[t - 1:] == head]
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]] if len(ordered) else ordered


def by_partition(part: np.ndarray, n_parts: int) -> tuple[np.ndarray, np.ndarray]:
    """``(order, bounds)``: the rows in a stable order by partition id, partition p's rows at
    ``order[bounds[p]:bounds[p + 1]]``. Ids in ``[0, n_parts)`` are sorted as the narrowest unsigned
    type, for which NumPy's stable sort is a radix sort (linear: 8x faster than on int64 for the
    pair scatter), up to 65,536 partitions."""
    narrow = np.uint8 if n_parts <= 1 << 8 else np.uint16 if n_parts <= 1 << 16 else None
    order = np.argsort(part.astype(narrow) if narrow else part, kind="stable")
    bounds = np.zeros(n_parts + 1, dtype=np.int64)
    np.cumsum(np.bincount(part, minlength=n_parts), out=bounds[1:])
    return order, bounds


def bucket_pairs(keys: np.ndarray, rank: np.ndarray, ids: np.ndarray, window: int, n: int) -> np.ndarray:
    """The pairing rule of one band, as pair keys ``earlier * n + later`` (of ``ids``, int64): rows
    sorted by (band key, rank), each bucket member paired with up to ``window`` members ranked just
    before it. Every engine's LSH (in memory, on disk, on Dask) pairs through this."""
    order = np.lexsort((rank, keys))
    k, g = keys[order], ids[order]
    out = []
    for s in range(1, window + 1):
        if s >= len(k):
            break
        same = np.flatnonzero(k[s:] == k[:-s])
        if len(same) == 0:
            break
        out.append(g[same] * n + g[same + s])
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def similarity(sig: np.ndarray, a: np.ndarray, b: np.ndarray, chunk: int = 16384) -> np.ndarray:
    """Estimated Jaccard similarity of rows a[i] and b[i] (fraction of equal bins), float32."""
    out = np.empty(len(a), dtype=np.float32)
    for i in range(0, len(a), chunk):
        out[i:i + chunk] = (sig[a[i:i + chunk]] == sig[b[i:i + chunk]]).mean(axis=1)
    return out
