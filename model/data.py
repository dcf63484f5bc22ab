"""The loader: ``data/batches/<split>/`` shards -> ``(inputs, targets, mask)`` batches, streamed.

Shards are written by ``pipeline/batches.py`` (format in its docstring): per bucket length T, a
``[N, T + 1]`` token array whose rows are windows of a document's ``[END, c1..cn, END]`` sequence,
right-padded with END, and the number of real targets per row.

Per batch of one bucket: ``inputs = window[:, :-1]``, ``targets = window[:, 1:]`` (int32 [B, T]) and
``mask[b, t] = 1.0 if t < real_targets[b] else 0.0`` (float32 [B, T]). Mask rule: the first END after
a document's last character is a real target (mask 1: the model learns to stop); the padding ENDs
after it carry no loss (mask 0). A chunk that does not end its document has no END target at all.

Carried state. A split built with ``batches.carry_state`` has a *stream* (manifest entry ``"carry":
true``): batches of long documents' chunks where row r of one stream batch continues row r of the
previous stream batch. ``make_dataset(carry=True)`` yields ``({"tokens", "carry", "stream"}, targets,
mask)``: ``carry`` (float32 [B]) is 1 where a row starts from the state the same row ended with in
the previous stream batch, ``stream`` (float32 [B]) is 1 in every row of a stream batch (whose final
state is kept for the next one) and 0 elsewhere. Stream batches keep their stored order even when a
seed reshuffles everything else, and always hold ``batch_size`` rows.

Streaming (memory does not grow with the split). Shards are read a batch, or a block of batches, at
a time with ``os.pread`` at offsets taken from their ``.npy`` headers; a stored batch is one
contiguous read, reshuffled rows are read in runs (``contracts.files.pread_rows``; not
memory-mapped: it says why). What stays in memory: the batch
order (4 bytes per batch), one block per bucket being dealt, and the prefetched batches.

Seeded order (training). ``seed=None`` is the stored order (fixed by the batches stage's seed). With
a seed, pass p over the dataset (each iteration reshuffles: p = 0, 1, ...) draws from
``numpy.random.default_rng([seed, p])`` a permutation of the stored batch order (stream batches keep
their order among themselves), and each bucket's rows are reshuffled in blocks with
``default_rng([seed, p, bucket index])``: the bucket's stored batches are cut into blocks of
``block_batches`` batches, the blocks are visited in a random order, and the rows of a block are
permuted and dealt into batches of the sizes stored there. The batches stage stored every bucket as
a uniform random permutation, so a block is a random sample of its bucket, and batches change from
pass to pass; per bucket, the batch sizes and the rows (each exactly once per pass) are the shards'.

Shares (``multi_worker`` training). With ``share=(index, count)`` a reader gets only rows
``share_rows(n, index, count)`` of every batch of n rows (contiguous, in batch order), and reads
only those rows from the shards: the rows of a reshuffled block are fetched by index, sorted and
read in runs of neighbours. Every worker draws the same permutations, so the ``count`` shares of a
batch, stacked in index order, are exactly the batch a single reader gets, and every worker yields
the same number of batches (collectives stay in step); a batch of fewer than ``count`` rows leaves
some shares empty.

``make_dataset`` wraps this in tf.data (``from_generator``: one Python step per batch, not per
example; prefetched). ``iter_numpy_batches`` gives the batches in the stored order without
TensorFlow (for evaluation and tests). TensorFlow is imported lazily.
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from contracts.files import pread_rows

MANIFEST = "manifest.json"
BLOCK_BATCHES = 64  # batches of one bucket whose rows are reshuffled together in a seeded pass
Share = tuple[int, int]  # (index, count): this reader's part of every batch


def share_rows(n: int, index: int, count: int) -> slice:
    """The contiguous rows of a batch of ``n`` rows that part ``index`` of ``count`` takes."""
    return slice(index * n // count, (index + 1) * n // count)


def check_share(share: Share | None) -> None:
    if share is not None and not (len(share) == 2 and share[1] >= 1 and 0 <= share[0] < share[1]):
        raise ValueError(f"share must be (index, count) with 0 <= index < count, got {share!r}")


class BatchesError(FileNotFoundError):
    """A split's shards are missing or incomplete."""


def load_manifest(batches_dir: str | os.PathLike, split: str) -> dict[str, Any]:
    """The manifest of ``<batches_dir>/<split>/`` (batch size, buckets, counts, vocabulary hash)."""
    path = Path(batches_dir) / split / MANIFEST
    if not path.exists():
        have = sorted(p.name for p in Path(batches_dir).iterdir()) if Path(batches_dir).is_dir() else []
        raise BatchesError(f"{path} not found (splits present: {have or 'none'}): run `dvc repro batches` first")
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def dataset_stats(batches_dir: str | os.PathLike, split: str) -> dict[str, Any]:
    """Counts of a split for callers sizing epochs: batches, sequences, documents, real and pad
    tokens, batch size, bucket lengths and the vocabulary hash the ids belong to."""
    m = load_manifest(batches_dir, split)
    keys = ("batches", "sequences", "documents", "real_tokens", "pad_tokens", "batch_size", "max_len", "vocab_hash",
            "vocab_size")
    return {**{k: m[k] for k in keys}, "bucket_lengths": [b["length"] for b in m["buckets"]],
            "carry_state": bool(m.get("carry_state", False)), "stream_batches": int(m.get("stream_batches", 0))}


class Shard:
    """One ``.npy`` shard read by rows with ``os.pread`` (its header gives dtype, shape, offset)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            with open(path, "rb") as fh:
                version = np.lib.format.read_magic(fh)
                read = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
                if version not in read:
                    raise BatchesError(f"{path}: npy format {version} is not read here; rerun `dvc repro batches`")
                shape, fortran, dtype = read[version](fh)
                self.offset = fh.tell()
        except FileNotFoundError:
            raise BatchesError(f"{path.parent}: shard {path} listed in {MANIFEST} is missing; "
                               f"rerun `dvc repro batches`") from None
        if fortran or len(shape) != 2:
            raise BatchesError(f"{path}: expected a C-ordered 2-D array, got shape {shape}; rerun `dvc repro batches`")
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        self.row_bytes = self.shape[1] * self.dtype.itemsize
        self.fd: int | None = None

    def rows(self, lo: int, hi: int) -> np.ndarray:
        """Rows ``[lo, hi)`` (clipped to the shard)."""
        if self.fd is None:
            self.fd = os.open(self.path, os.O_RDONLY)
        hi = min(hi, self.shape[0])
        n = max(hi - lo, 0)
        raw = os.pread(self.fd, n * self.row_bytes, self.offset + lo * self.row_bytes)
        if len(raw) != n * self.row_bytes:
            raise BatchesError(f"{self.path}: truncated (rows {lo}-{hi} of {self.shape[0]}); rerun `dvc repro batches`")
        return np.frombuffer(raw, dtype=self.dtype).reshape(n, self.shape[1])

    def take(self, index: np.ndarray) -> np.ndarray:
        """Rows ``index`` (in that order), read in runs of consecutive row numbers."""
        order = np.argsort(index, kind="stable")
        wanted = index[order]
        if self.fd is None:
            self.fd = os.open(self.path, os.O_RDONLY)
        got = np.empty((len(index), self.shape[1]), dtype=self.dtype)
        if not pread_rows(self.fd, wanted, got, offset=self.offset):
            raise BatchesError(f"{self.path}: truncated (rows up to {int(wanted[-1])} of {self.shape[0]} asked); "
                               f"rerun `dvc repro batches`")
        out = np.empty_like(got)
        out[order] = got
        return out

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class Bucket:
    """A bucket's token and row shards, checked against the manifest entry."""

    def __init__(self, folder: Path, entry: dict[str, Any], index: int) -> None:
        self.entry, self.index = entry, index
        self.carry = bool(entry.get("carry"))
        self.tokens, self.table = Shard(folder / entry["tokens"]), Shard(folder / entry["rows"])
        columns = 4 if self.carry else 3
        if self.tokens.shape != (entry["sequences"], entry["length"] + 1) or \
                self.table.shape != (entry["sequences"], columns):
            raise BatchesError(f"{folder / entry['tokens']}: shape {self.tokens.shape} (rows {self.table.shape}) does "
                               f"not match {MANIFEST} ({entry['sequences']} x {entry['length'] + 1}, {columns} row "
                               f"columns); rerun `dvc repro batches`")
        self.n = entry["sequences"]

    def read(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(tokens, real targets int32, carry flags float32) of rows ``[lo, hi)``."""
        table = self.table.rows(lo, hi)
        carry = table[:, 3] if self.carry else np.zeros(len(table), dtype=np.int32)
        return self.tokens.rows(lo, hi), table[:, 0].astype(np.int32), carry.astype(np.float32)

    def take(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(tokens, real targets, carry flags) of rows ``index``, in that order."""
        table = self.table.take(index)
        carry = table[:, 3] if self.carry else np.zeros(len(table), dtype=np.int32)
        return self.tokens.take(index), table[:, 0].astype(np.int32), carry.astype(np.float32)

    def close(self) -> None:
        self.tokens.close()
        self.table.close()


def open_split(batches_dir: str | os.PathLike, split: str) -> tuple[dict[str, Any], list[Bucket], np.ndarray]:
    """Manifest, buckets (shards opened lazily) and the stored batch order of a split."""
    m = load_manifest(batches_dir, split)
    folder = Path(batches_dir) / split
    buckets = [Bucket(folder, entry, i) for i, entry in enumerate(m["buckets"])]
    try:
        order = np.load(folder / m["order"], allow_pickle=False).astype(np.int64)
    except FileNotFoundError:
        raise BatchesError(f"{folder}: {m['order']} listed in {MANIFEST} is missing; "
                           f"rerun `dvc repro batches`") from None
    return m, buckets, order


def stored_batches(bucket: Bucket, batch_size: int,
                   share: Share | None = None) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """A bucket's batches in stored order: rows ``[k*B, (k+1)*B)`` for batch k (``share``: its part)."""
    for lo in range(0, bucket.n, batch_size):
        hi = min(lo + batch_size, bucket.n)
        part = share_rows(hi - lo, *share) if share else slice(0, hi - lo)
        yield bucket.read(lo + part.start, lo + part.stop)


def reshuffled_batches(bucket: Bucket, batch_size: int, rng: np.random.Generator, block_batches: int,
                       share: Share | None = None) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """A bucket's batches for one seeded pass: blocks of ``block_batches`` stored batches in a random
    order, each block's rows permuted and dealt into batches of its stored sizes (``share``: the
    part of each, and only its rows read)."""
    block_rows = block_batches * batch_size
    n_blocks = -(-bucket.n // block_rows)
    for block in rng.permutation(n_blocks).tolist():
        lo = block * block_rows
        size = min(block_rows, bucket.n - lo)
        perm = rng.permutation(size)
        if share is None:
            tokens, n_targets, carry = bucket.read(lo, lo + size)
            tokens, n_targets, carry = tokens[perm], n_targets[perm], carry[perm]
            for b in range(0, size, batch_size):
                yield tokens[b:b + batch_size], n_targets[b:b + batch_size], carry[b:b + batch_size]
            continue
        parts = [perm[b:b + batch_size][share_rows(min(batch_size, size - b), *share)]
                 for b in range(0, size, batch_size)]
        tokens, n_targets, carry = bucket.take(lo + np.concatenate(parts))
        at = 0
        for part in parts:
            yield tokens[at:at + len(part)], n_targets[at:at + len(part)], carry[at:at + len(part)]
            at += len(part)


def pass_batches(batches_dir: str | os.PathLike, split: str, seed: int | None = None, pass_index: int = 0,
                 block_batches: int = BLOCK_BATCHES,
                 share: Share | None = None) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """One pass over a split: ``(tokens, real targets, carry, in_stream)`` per batch, in the stored
    order (``seed=None``) or in the seeded order of pass ``pass_index``; ``share``: only that part
    of every batch (module docstring)."""
    check_share(share)
    m, buckets, order = open_split(batches_dir, split)
    bs = m["batch_size"]
    try:
        if seed is None:
            streams = [stored_batches(b, bs, share) for b in buckets]
        else:
            order = np.random.default_rng([seed, pass_index]).permutation(order)
            streams = [stored_batches(b, bs, share) if b.carry else
                       reshuffled_batches(b, bs, np.random.default_rng([seed, pass_index, b.index]), block_batches,
                                          share)
                       for b in buckets]
        flags = [np.float32(1.0 if b.carry else 0.0) for b in buckets]
        for label in order.tolist():
            tokens, n_targets, carry = next(streams[label])
            yield tokens, n_targets, carry, np.full(len(tokens), flags[label], dtype=np.float32)
    finally:
        for b in buckets:
            b.close()


def split_window(tokens: np.ndarray, n_targets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(inputs, targets, mask)`` of padded windows ``[B, T + 1]`` with ``n_targets`` real targets each."""
    tokens = tokens.astype(np.int32)
    t = tokens.shape[1] - 1
    mask = (np.arange(t)[None, :] < n_targets[:, None]).astype(np.float32)
    return tokens[:, :-1], tokens[:, 1:], mask


def iter_numpy_batches(batches_dir: str | os.PathLike,
                       split: str) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The split's batches in stored order as numpy arrays, exactly as ``make_dataset(seed=None)``."""
    for tokens, n_targets, _, _ in pass_batches(batches_dir, split):
        yield split_window(tokens, n_targets)


def make_dataset(batches_dir: str | os.PathLike, split: str, *, seed: int | None = None, repeat: bool = False,
                 carry: bool = False, block_batches: int = BLOCK_BATCHES, share: Share | None = None):
    """A ``tf.data.Dataset`` of ``(inputs int32 [B, T], targets int32 [B, T], mask float32 [B, T])``
    (with ``carry``: inputs are ``{"tokens", "carry", "stream"}``, see the module docstring).

    ``seed=None``: the stored order (fixed by the batches stage's seed). With a seed, every pass
    over the dataset is reshuffled (module docstring), deterministic for a given seed.
    ``repeat=True`` repeats forever (pass ``steps_per_epoch`` to ``model.fit``; the ``batches``
    count of ``dataset_stats`` is one epoch). ``share=(index, count)``: only that part of every
    batch is read and yielded (``multi_worker``: each worker its own).
    """
    import tensorflow as tf

    check_share(share)
    m, buckets, order = open_split(batches_dir, split)  # checks every shard before training starts
    for b in buckets:
        b.close()
    if len(order) == 0:
        raise BatchesError(f"{Path(batches_dir) / split}: no batches in this split")
    passes = itertools.count()  # every iteration over the dataset is the next pass

    def batches():
        while True:
            yield from pass_batches(batches_dir, split, seed, next(passes), block_batches, share)
            if not repeat:
                return

    token_dtype = tf.as_dtype(np.dtype(m["dtype"]))
    ds = tf.data.Dataset.from_generator(batches, output_signature=(
        tf.TensorSpec([None, None], token_dtype), tf.TensorSpec([None], tf.int32),
        tf.TensorSpec([None], tf.float32), tf.TensorSpec([None], tf.float32)))
    if not repeat:  # a known length lets Keras size epochs and progress bars
        ds = ds.apply(tf.data.experimental.assert_cardinality(len(order)))

    def to_triplet(tokens, n_targets, carried, in_stream):
        tokens = tf.cast(tokens, tf.int32)
        t = tf.shape(tokens)[1] - 1
        mask = tf.cast(tf.range(t)[None, :] < n_targets[:, None], tf.float32)
        if carry:
            return {"tokens": tokens[:, :-1], "carry": carried, "stream": in_stream}, tokens[:, 1:], mask
        return tokens[:, :-1], tokens[:, 1:], mask

    return ds.map(to_triplet, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(tf.data.AUTOTUNE)
