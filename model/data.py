"""The loader: ``data/batches/<split>/`` shards -> ``(inputs, targets, mask)`` batches.

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

``make_dataset`` builds the pipeline in tf.data from in-memory arrays (``from_tensor_slices`` per
bucket, ``choose_from_datasets`` following the stored batch order): no Python runs per example or
per batch, and batches are prefetched. ``iter_numpy_batches`` gives the same batches in the stored
order without TensorFlow (for evaluation and tests). TensorFlow is imported lazily.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator

import numpy as np

MANIFEST = "manifest.json"


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


def _load_buckets(batches_dir: str | os.PathLike,
                  split: str) -> tuple[dict[str, Any], list[tuple[np.ndarray, np.ndarray, np.ndarray]], np.ndarray]:
    """Manifest, per bucket ``(tokens, real targets, carry flags)``, and the stored batch order."""
    m = load_manifest(batches_dir, split)
    folder = Path(batches_dir) / split
    arrays = []
    for b in m["buckets"]:
        try:
            tokens = np.load(folder / b["tokens"], allow_pickle=False)
            rows = np.load(folder / b["rows"], allow_pickle=False)
        except FileNotFoundError as exc:
            raise BatchesError(f"{folder}: shard {exc.filename} listed in {MANIFEST} is missing; "
                               f"rerun `dvc repro batches`") from None
        columns = 4 if b.get("carry") else 3
        if tokens.shape != (b["sequences"], b["length"] + 1) or rows.shape != (b["sequences"], columns):
            raise BatchesError(f"{folder / b['tokens']}: shape {tokens.shape} (rows {rows.shape}) does not match "
                               f"{MANIFEST} ({b['sequences']} x {b['length'] + 1}, {columns} row columns); "
                               f"rerun `dvc repro batches`")
        carry = rows[:, 3] if b.get("carry") else np.zeros(len(rows), dtype=np.int32)
        arrays.append((tokens, rows[:, 0].astype(np.int32), carry.astype(np.float32)))
    order = np.load(folder / m["order"], allow_pickle=False).astype(np.int64)
    return m, arrays, order


def split_window(tokens: np.ndarray, n_targets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(inputs, targets, mask)`` of padded windows ``[B, T + 1]`` with ``n_targets`` real targets each."""
    tokens = tokens.astype(np.int32)
    t = tokens.shape[1] - 1
    mask = (np.arange(t)[None, :] < n_targets[:, None]).astype(np.float32)
    return tokens[:, :-1], tokens[:, 1:], mask


def iter_numpy_batches(batches_dir: str | os.PathLike,
                       split: str) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The split's batches in stored order as numpy arrays, exactly as ``make_dataset(seed=None)``."""
    m, arrays, order = _load_buckets(batches_dir, split)
    bs = m["batch_size"]
    cursor = [0] * len(arrays)
    for b in order:
        tokens, n, _ = arrays[b]
        lo = cursor[b]
        cursor[b] = lo + bs
        yield split_window(tokens[lo:lo + bs], n[lo:lo + bs])


def make_dataset(batches_dir: str | os.PathLike, split: str, *, seed: int | None = None, repeat: bool = False,
                 carry: bool = False):
    """A ``tf.data.Dataset`` of ``(inputs int32 [B, T], targets int32 [B, T], mask float32 [B, T])``
    (with ``carry``: inputs are ``{"tokens", "carry", "stream"}``, see the module docstring).

    ``seed=None``: the stored order (fixed by the batches stage's seed). With a seed, rows are
    reshuffled within their bucket and batches across buckets, differently on each pass over the
    dataset (deterministic for a given seed); batch sizes and contents per bucket stay those of the
    shards. ``repeat=True`` repeats forever (pass ``steps_per_epoch`` to ``model.fit``; the
    ``batches`` count of ``dataset_stats`` is one epoch).
    """
    import tensorflow as tf

    m, arrays, order = _load_buckets(batches_dir, split)
    bs = m["batch_size"]
    if len(order) == 0:
        raise BatchesError(f"{Path(batches_dir) / split}: no batches in this split")
    per_bucket = []
    for i, ((tokens, n, carried), entry) in enumerate(zip(arrays, m["buckets"])):
        in_stream = np.full(len(n), 1.0 if entry.get("carry") else 0.0, dtype=np.float32)
        ds = tf.data.Dataset.from_tensor_slices((tokens, n, carried, in_stream))
        if seed is not None and not entry.get("carry"):  # the stream's rows must stay in their lanes
            ds = ds.shuffle(len(n), seed=seed * 1009 + i + 1, reshuffle_each_iteration=True)
        ds = ds.batch(bs)
        per_bucket.append(ds.repeat() if repeat else ds)
    choice = tf.data.Dataset.from_tensor_slices(order)
    if seed is not None:
        choice = choice.shuffle(len(order), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        choice = choice.repeat()
    ds = tf.data.Dataset.choose_from_datasets(per_bucket, choice, stop_on_empty_dataset=True)
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
