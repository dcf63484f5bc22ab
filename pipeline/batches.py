"""Stage ``batches``: documents -> END-delimited id sequences -> length buckets -> padded batches.

Reads ``data/split/{train,val,test}.parquet`` and ``data/vocab.json``; writes ``data/batches/<split>/``
and ``metrics/batches.json``. Params (``batches`` section): ``batch_size``, ``max_len``, ``buckets``
(``auto`` or a list of lengths), ``max_buckets`` (auto only), ``seed``, ``carry_state``.

Sequences (docs/contracts.md). A document of n characters is ``[END, c1, ..., cn, END]``; inputs are
``seq[:-1]``, targets ``seq[1:]`` (n + 1 real targets: every character, then the END that ends the
document). A document with more than ``max_len`` targets is cut into consecutive chunks of
``max_len`` targets (the last one shorter); chunk k holds the window ``seq[k*max_len : k*max_len +
len + 1]``, so its first input is the last character of chunk k - 1. The model therefore sees a
continuation with one character of context; every target appears exactly once.

Carried state (``carry_state: true``, truncated backpropagation through time). Documents cut into
several chunks do not go to the buckets: they form the split's *stream* of ``batch_size`` lanes.
Each such document is given (in seeded order) to the lane with the fewest targets so far; a lane is
its documents' sequences one after the other, the END closing one being the input that opens the
next (as in char-rnn's single stream), and row r of stream batch j is window j (``max_len``
targets) of lane r. So the continuation of a row sits in the same row of the stream's next batch,
and the model starts it from the state the row ended with (its first input is the row's last
target: the sequence continues exactly); within a lane the state flows on from one document into
the next through the END between them, and the lane's windows are full, so the stream wastes no
padding but at a lane's end. Stream batches always have ``batch_size`` rows (a lane that has run out
holds an empty row: no real targets) and are never reordered among themselves; buckets and the
stream still interleave in the seeded batch order. Documents of one chunk keep the buckets and start
from a zero state.

Buckets. A chunk with t targets goes to the first bucket whose length T >= t and is right-padded with
END to T targets (T + 1 tokens stored). ``buckets: auto`` chooses at most ``max_buckets`` lengths from
the train chunks' length distribution by dynamic programming over the distinct lengths, minimising
the padded tokens (sum of T over all sequences) subject to every bucket holding at least one full
batch; the last length is raised to cover the longest chunk of any split. A list in params is used as
given (sorted); ``max_len`` is appended when the list stops short of it.

Batches. Per split, sequences of each bucket are shuffled with ``numpy.random.default_rng([seed,
split index])`` and cut into batches of ``batch_size``; a bucket's last batch may be smaller (it is
kept: no data is ever dropped). The order of batches across buckets is a seeded permutation too.

Shards, per split, read by ``model/data.py`` through ``from_tensor_slices`` (no Python loop per row):

- ``bucket_<T>.tokens.npy``: ``[N, T + 1]`` ids (uint8/uint16/int32, the smallest that fits the
  vocabulary), rows in batch order: rows ``[k*B, (k+1)*B)`` are the bucket's batch k.
- ``bucket_<T>.rows.npy``: ``[N, 3]`` int32: real targets, document index (row of the split's
  Parquet file), chunk index within the document.
- ``stream.tokens.npy``, ``stream.rows.npy`` (carried state only): the stream, laid out as a bucket
  of length ``max_len``, rows ``[N, 4]``: real targets, the document of the row's first target (-1:
  an empty row), the window's index in its lane, and ``carry`` (1: this row continues the same row
  of the stream's previous batch, so the state carries over; 0: start from zero). Its manifest
  entry has ``"carry": true``.
- ``order.npy``: bucket index (into the manifest's bucket list) of every batch, in order.
- ``manifest.json``: batch size, buckets, counts and the vocabulary hash.

``manifest.json`` and ``metrics/batches.json`` count the stream's batches, rows and tokens apart
(``carried_rows``: rows that continue a previous batch's row).

``.npy`` rather than ``.npz`` or TFRecord: the bytes depend only on the arrays (no zip timestamps),
numpy and tf.data both read them directly, and a whole bucket loads with one read.
"""

from __future__ import annotations

import argparse
import heapq
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from pipeline.common import load_params, params_name, setup_logging, write_json_atomic
from pipeline.config import check_section, section, setting
from pipeline.split import SPLITS
from pipeline.vocab import END_ID, UNK_ID, Vocab, iter_texts

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


def _buckets_problem(buckets: Any) -> str | None:
    if buckets == "auto" or (isinstance(buckets, list) and buckets):
        return None
    return "expected 'auto' or a non-empty list of lengths"


@dataclass(frozen=True)
class BatchesConfig:
    """The ``batches`` section of params.yaml."""

    batch_size: int = setting(ge=1)
    max_len: int = setting(ge=1)
    buckets: str | list[int] = setting(ge=1, check=_buckets_problem)  # "auto" or lengths in [1, max_len]
    max_buckets: int = setting(ge=1)
    seed: int = setting(ge=0)
    carry_state: bool  # documents longer than max_len: chunks in a stream that carries the LSTM state

    def __post_init__(self) -> None:
        if isinstance(self.buckets, list) and max(self.buckets) > self.max_len:
            raise ValueError(f"batches.buckets must hold integers in [1, max_len={self.max_len}], "
                             f"got {[b for b in self.buckets if b > self.max_len]!r}")


@dataclass(frozen=True)
class BatchParams:
    batch_size: int
    max_len: int
    buckets: tuple[int, ...] | None  # None = auto
    max_buckets: int
    seed: int
    carry_state: bool


def check_params(p: Mapping[str, Any], where: str = "params.yaml") -> BatchParams:
    """The ``batches`` section checked (``BatchesConfig``), buckets resolved: sorted, distinct,
    ending at max_len; None for auto."""
    p = check_section(BatchesConfig, p, where=where, prefix="batches")
    buckets = None
    if p["buckets"] != "auto":
        buckets = sorted(set(p["buckets"]))
        if buckets[-1] < p["max_len"]:
            buckets.append(p["max_len"])
        buckets = tuple(buckets)
    return BatchParams(p["batch_size"], p["max_len"], buckets, p["max_buckets"], p["seed"], p["carry_state"])


# -- sequences ----------------------------------------------------------------------------------
def encode_stream(texts: Iterable[str], vocab: Vocab) -> tuple[np.ndarray, np.ndarray]:
    """``(stream, n_chars)``: all documents as ``[END, doc0..., END, doc1..., END, ...]``.

    Document d's sequence ``[END, c1..cn, END]`` is ``stream[p_d : p_d + n_d + 2]`` with
    ``p_d = sum(n_e + 1 for e < d)``: neighbours share the END between them.
    """
    parts: list[np.ndarray] = [np.zeros(1, dtype=np.int32)]
    lengths: list[int] = []
    pending: list[str] = []

    def flush() -> None:
        ids = vocab.encode("".join(pending))
        cuts = np.cumsum([len(t) for t in pending])
        parts.append(np.insert(ids, cuts, END_ID))  # an END after every document
        lengths.extend(len(t) for t in pending)
        pending.clear()

    size = 0
    for text in texts:
        pending.append(text)
        size += len(text)
        if size >= 4_000_000:
            flush()
            size = 0
    if pending:
        flush()
    return np.concatenate(parts), np.asarray(lengths, dtype=np.int64)


def make_chunks(n_chars: np.ndarray, max_len: int) -> dict[str, np.ndarray]:
    """Chunk table of a split: ``start`` (offset in the stream), ``targets``, ``doc``, ``chunk``."""
    n_targets = n_chars + 1
    n_chunks = -(-n_targets // max_len)
    doc_start = np.concatenate([[0], np.cumsum(n_targets)[:-1]]).astype(np.int64)
    doc = np.repeat(np.arange(len(n_chars), dtype=np.int64), n_chunks)
    first = np.concatenate([[0], np.cumsum(n_chunks)[:-1]])
    chunk = np.arange(len(doc), dtype=np.int64) - np.repeat(first, n_chunks)
    targets = np.minimum(max_len, n_targets[doc] - chunk * max_len)
    return {"start": doc_start[doc] + chunk * max_len, "targets": targets, "doc": doc, "chunk": chunk}


def auto_buckets(lengths: np.ndarray, batch_size: int, max_buckets: int) -> list[int]:
    """Bucket lengths (at most ``max_buckets``) minimising ``sum(bucket length)`` over sequences,
    each bucket holding at least ``batch_size`` sequences (one bucket if there are fewer)."""
    values, counts = np.unique(np.asarray(lengths), return_counts=True)
    if len(values) == 0:
        raise ValueError("no sequences to choose bucket lengths from")
    cum = np.concatenate([[0], np.cumsum(counts)])
    d = len(values)
    if cum[-1] < 2 * batch_size:
        return [int(values[-1])]
    inf = np.iinfo(np.int64).max // 4
    # best[k][j]: least padded size of the first j distinct lengths in k buckets; arg holds the cut.
    best = np.full((max_buckets + 1, d + 1), inf, dtype=np.int64)
    arg = np.zeros((max_buckets + 1, d + 1), dtype=np.int64)
    best[0, 0] = 0
    for k in range(1, max_buckets + 1):
        prev = best[k - 1]
        for j in range(1, d + 1):
            i = np.arange(j)
            size = cum[j] - cum[i]
            cost = np.where((size >= batch_size) & (prev[:j] < inf), prev[:j] + values[j - 1] * size, inf)
            arg[k, j] = int(np.argmin(cost))
            best[k, j] = cost[arg[k, j]]
    k = int(np.argmin(best[1:, d])) + 1  # fewest buckets reaching the least cost
    if best[k, d] >= inf:
        return [int(values[-1])]
    cuts, j = [], d
    while k > 0:
        cuts.append(int(values[j - 1]))
        j, k = int(arg[k, j]), k - 1
    return sorted(cuts)


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned dtype holding every id."""
    for dt in (np.uint8, np.uint16):
        if vocab_size <= np.iinfo(dt).max + 1:
            return np.dtype(dt)
    return np.dtype(np.int32)


# -- batches ------------------------------------------------------------------------------------
def select(chunks: Mapping[str, np.ndarray], keep: np.ndarray) -> dict[str, np.ndarray]:
    """The rows ``keep`` (a boolean mask) of a chunk table."""
    return {k: v[keep] for k, v in chunks.items()}


def in_long_documents(chunks: Mapping[str, np.ndarray]) -> np.ndarray:
    """Boolean mask of the chunks whose document is cut into more than one chunk."""
    per_doc = np.bincount(chunks["doc"]) if len(chunks["doc"]) else np.zeros(0, dtype=np.int64)
    return per_doc[chunks["doc"]] > 1


def windows(stream: np.ndarray, start: np.ndarray, targets: np.ndarray, length: int,
            dtype: np.dtype) -> np.ndarray:
    """``[N, length + 1]`` token rows: ``targets + 1`` tokens of the stream from each start, then END."""
    pos = np.arange(length + 1)
    idx = np.minimum(start[:, None] + pos[None, :], max(len(stream) - 1, 0))
    return np.where(pos[None, :] <= targets[:, None], stream[idx], END_ID).astype(dtype)


def stream_lanes(chunks: Mapping[str, np.ndarray], lanes: int, rng: np.random.Generator) -> list[list[int]]:
    """Per lane, the documents it holds (rows of the chunk table's ``doc``), in order: documents in
    seeded order go to the lane with the fewest targets so far (lowest lane on ties)."""
    docs, first = np.unique(chunks["doc"], return_index=True)
    targets = np.add.reduceat(chunks["targets"], first) if len(first) else np.zeros(0, dtype=np.int64)
    lane_docs: list[list[int]] = [[] for _ in range(lanes)]
    heap = [(0, lane) for lane in range(lanes)]
    for d in rng.permutation(len(docs)):
        filled, lane = heapq.heappop(heap)
        lane_docs[lane].append(int(docs[d]))
        heapq.heappush(heap, (filled + int(targets[d]), lane))
    return lane_docs


def build_stream(stream: np.ndarray, chunks: Mapping[str, np.ndarray], max_len: int, batch_size: int,
                 rng: np.random.Generator, dtype: np.dtype) -> dict[str, Any] | None:
    """The stream bucket of the long documents (None when there are none): rows in batch order,
    ``batch_size`` per batch, row r of batch j being window j of lane r, with the ``carry`` column."""
    if len(chunks["doc"]) == 0:
        return None
    docs, first = np.unique(chunks["doc"], return_index=True)
    doc_start = dict(zip(docs.tolist(), chunks["start"][first].tolist()))
    doc_targets = dict(zip(docs.tolist(), np.add.reduceat(chunks["targets"], first).tolist()))
    lanes = []
    for held in stream_lanes(chunks, batch_size, rng):
        # each document's [END, c1..cn]; the END closing one opens the next, a last END closes the lane
        parts = [stream[doc_start[d]:doc_start[d] + doc_targets[d]] for d in held]
        ids = np.concatenate([*parts, [END_ID]]).astype(np.int64)
        ends = np.cumsum([doc_targets[d] for d in held], dtype=np.int64)
        lanes.append((ids, np.asarray(held, dtype=np.int64), ends))
    n_batches = max(-(-(len(ids) - 1) // max_len) for ids, _, _ in lanes)
    tokens = np.full((n_batches, batch_size, max_len + 1), END_ID, dtype=dtype)
    rows = np.zeros((n_batches, batch_size, 4), dtype=np.int32)
    rows[:, :, 1:3] = -1
    for lane, (ids, held, ends) in enumerate(lanes):
        n_targets = len(ids) - 1
        for j in range(-(-n_targets // max_len)):
            window = ids[j * max_len:j * max_len + max_len + 1]
            tokens[j, lane, :len(window)] = window
            first_doc = held[np.searchsorted(ends, j * max_len, side="right")]
            rows[j, lane] = (len(window) - 1, first_doc, j, int(j > 0))
    return {"length": int(max_len), "tokens": tokens.reshape(-1, max_len + 1), "rows": rows.reshape(-1, 4),
            "batches": int(n_batches), "carry": True}


def build_split(stream: np.ndarray, chunks: Mapping[str, np.ndarray], boundaries: Sequence[int], batch_size: int,
                rng: np.random.Generator, dtype: np.dtype, *,
                carry_state: bool = False, max_len: int = 0) -> tuple[list[dict[str, Any]], np.ndarray]:
    """``(buckets, order)``: per bucket its padded token rows and row table in batch order, and the
    bucket index of every batch in the split's batch order. With ``carry_state`` the chunks of long
    documents go to the stream (the last bucket, of length ``max_len``) instead."""
    long_docs = in_long_documents(chunks) if carry_state else np.zeros(len(chunks["doc"]), dtype=bool)
    bucketed = select(chunks, ~long_docs)
    bucket_of = np.searchsorted(np.asarray(boundaries), bucketed["targets"], side="left")
    if len(bucketed["targets"]) and bucket_of.max() >= len(boundaries):
        raise ValueError(f"a sequence of {int(bucketed['targets'].max())} targets exceeds the last bucket "
                         f"{boundaries[-1]}")
    buckets, labels = [], []
    for b, length in enumerate(boundaries):
        sel = np.flatnonzero(bucket_of == b)
        if len(sel) == 0:
            continue
        sel = sel[rng.permutation(len(sel))]
        targets = bucketed["targets"][sel]
        tokens = windows(stream, bucketed["start"][sel], targets, length, dtype)
        rows = np.stack([targets, bucketed["doc"][sel], bucketed["chunk"][sel]], axis=1).astype(np.int32)
        n_batches = -(-len(sel) // batch_size)
        labels.append(np.full(n_batches, len(buckets), dtype=np.int32))
        buckets.append({"length": int(length), "tokens": tokens, "rows": rows, "batches": n_batches})
    if carry_state:
        carried = build_stream(stream, select(chunks, long_docs), max_len, batch_size, rng, dtype)
        if carried is not None:
            labels.append(np.full(carried["batches"], len(buckets), dtype=np.int32))
            buckets.append(carried)
    order = rng.permutation(np.concatenate(labels)) if labels else np.zeros(0, dtype=np.int32)
    return buckets, order.astype(np.int32)


def bucket_stats(buckets: Sequence[Mapping[str, Any]], max_len: int) -> dict[str, Any]:
    """Counts and padding efficiency (real targets over computed targets) overall and per bucket."""
    per, real_all, total_all, seqs_all, batches_all = [], 0, 0, 0, 0
    for b in buckets:
        n, length = len(b["rows"]), b["length"]
        real = int(b["rows"][:, 0].sum())
        entry = {"length": length, "sequences": n, "batches": b["batches"], "real_tokens": real,
                 "pad_tokens": n * length - real, "efficiency": round(real / (n * length), 6)}
        if b.get("carry"):
            entry.update(carry=True, carried_rows=int(b["rows"][:, 3].sum()))
        per.append(entry)
        real_all, total_all = real_all + real, total_all + n * length
        seqs_all, batches_all = seqs_all + n, batches_all + b["batches"]
    return {"batches": batches_all, "sequences": seqs_all, "real_tokens": real_all, "pad_tokens": total_all - real_all,
            "efficiency": round(real_all / total_all, 6) if total_all else 0.0,
            "pad_to_max_efficiency": round(real_all / (seqs_all * max_len), 6) if seqs_all else 0.0, "buckets": per}


def write_split(out_dir: Path, split: str, buckets: Sequence[Mapping[str, Any]], order: np.ndarray,
                manifest: dict[str, Any]) -> None:
    """Shard files and manifest of one split into ``out_dir`` (a fresh folder)."""
    out_dir.mkdir(parents=True)
    entries = []
    for b in buckets:
        stem = "stream" if b.get("carry") else f"bucket_{b['length']:05d}"
        np.save(out_dir / f"{stem}.tokens.npy", b["tokens"], allow_pickle=False)
        np.save(out_dir / f"{stem}.rows.npy", b["rows"], allow_pickle=False)
        entries.append({"length": b["length"], "tokens": f"{stem}.tokens.npy", "rows": f"{stem}.rows.npy",
                        "sequences": len(b["rows"]), "batches": b["batches"],
                        **({"carry": True} if b.get("carry") else {})})
    np.save(out_dir / "order.npy", order, allow_pickle=False)
    write_json_atomic(out_dir / "manifest.json", {**manifest, "format": FORMAT_VERSION, "split": split,
                                                   "buckets": entries, "order": "order.npy"})


def replace_dir(new: Path, target: Path) -> None:
    """Swap ``new`` in for ``target`` (old contents removed), so readers never see a mix of runs."""
    if target.exists():
        trash = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old."))
        os.replace(target, trash / target.name)
        os.replace(new, target)
        shutil.rmtree(trash)
    else:
        os.replace(new, target)


def encode_splits(split_paths: Mapping[str, Path], vocab: Vocab, max_len: int) -> tuple[dict, dict, dict]:
    """Per split: its id stream, its chunk table and its document count (a split without documents is an error)."""
    streams, chunk_tables, n_docs = {}, {}, {}
    for split, path in split_paths.items():
        stream, n_chars = encode_stream(iter_texts(path), vocab)
        if len(n_chars) == 0:
            raise ValueError(f"{path}: split '{split}' holds no documents; every split needs at least one "
                             "(see metrics/split.json and params split.fractions)")
        streams[split], chunk_tables[split], n_docs[split] = stream, make_chunks(n_chars, max_len), len(n_chars)
    return streams, chunk_tables, n_docs


def choose_boundaries(chunk_tables: Mapping[str, Mapping[str, np.ndarray]], params: BatchParams) -> list[int]:
    """Bucket lengths: as given in params, or ``auto_buckets`` over train (raised to the longest
    chunk). With ``carry_state`` only the chunks of one-chunk documents count (the rest is the stream)."""
    if params.buckets is not None:
        return list(params.buckets)
    if params.carry_state:
        chunk_tables = {k: select(c, ~in_long_documents(c)) for k, c in chunk_tables.items()}
        if not any(len(c["targets"]) for c in chunk_tables.values()):
            return [params.max_len]  # every document is long: all of it is stream
    reference = chunk_tables["train" if "train" in chunk_tables else next(iter(chunk_tables))]
    if len(reference["targets"]) == 0:
        reference = next(c for c in chunk_tables.values() if len(c["targets"]))
    boundaries = auto_buckets(reference["targets"], params.batch_size, params.max_buckets)
    longest = max(int(c["targets"].max()) for c in chunk_tables.values() if len(c["targets"]))
    boundaries[-1] = max(boundaries[-1], longest)
    return boundaries


def fresh_dir_beside(out_dir: Path) -> Path:
    """An empty folder next to ``out_dir`` with the usual mode (mkdtemp makes 0700)."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.tmp."))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)
    return tmp


def stream_counts(buckets: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Batches, rows and real tokens of the stream, and its rows that carry state (empty without one)."""
    carried = [b for b in buckets if b.get("carry")]
    if not carried:
        return {}
    rows = carried[0]["rows"]
    return {"stream_batches": carried[0]["batches"], "stream_rows": len(rows),
            "stream_real_tokens": int(rows[:, 0].sum()), "carried_rows": int(rows[:, 3].sum())}


def totals(metrics: dict[str, Any], max_len: int) -> dict[str, Any]:
    """Real and pad tokens and efficiencies over every split."""
    splits = metrics["splits"].values()
    real = sum(s["real_tokens"] for s in splits)
    total = real + sum(s["pad_tokens"] for s in splits)
    seqs = sum(s["sequences"] for s in splits)
    return {"real_tokens": real, "pad_tokens": total - real, "efficiency": round(real / total, 6),
            "pad_to_max_efficiency": round(real / (seqs * max_len), 6)}


def run(split_paths: Mapping[str, Path], vocab: Vocab, params: BatchParams, out_dir: Path) -> dict[str, Any]:
    """Build every split's shards into ``out_dir`` (replaced as a whole); return the metrics."""
    streams, chunk_tables, n_docs = encode_splits(split_paths, vocab, params.max_len)
    boundaries = choose_boundaries(chunk_tables, params)
    dtype = token_dtype(len(vocab))
    tmp = fresh_dir_beside(out_dir)
    metrics: dict[str, Any] = {"batch_size": params.batch_size, "max_len": params.max_len, "seed": params.seed,
                               "boundaries": boundaries, "vocab_hash": vocab.hash, "splits": {}}
    try:
        for split in split_paths:
            rng = np.random.default_rng([params.seed, SPLITS.index(split) if split in SPLITS else len(SPLITS)])
            buckets, order = build_split(streams[split], chunk_tables[split], boundaries, params.batch_size, rng, dtype,
                                         carry_state=params.carry_state, max_len=params.max_len)
            stats = bucket_stats(buckets, params.max_len)
            stats.update(documents=n_docs[split], chunked_documents=int((chunk_tables[split]["chunk"] == 1).sum()),
                         unk_tokens=int((streams[split] == UNK_ID).sum()), **stream_counts(buckets))
            write_split(tmp / split, split, buckets, order, {
                "batch_size": params.batch_size, "max_len": params.max_len, "seed": params.seed,
                "vocab_hash": vocab.hash, "vocab_size": len(vocab), "dtype": dtype.name,
                **{k: stats[k] for k in ("batches", "sequences", "documents", "real_tokens", "pad_tokens")},
                **({"carry_state": True, **stream_counts(buckets)} if params.carry_state else {})})
            metrics["splits"][split] = stats
            log.info("batches %s: %d documents -> %d sequences in %d batches, %d buckets, efficiency %.4f "
                     "(pad-to-max %.4f), %d UNK", split, n_docs[split], stats["sequences"], stats["batches"],
                     len(buckets), stats["efficiency"], stats["pad_to_max_efficiency"], stats["unk_tokens"])
        replace_dir(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    metrics.update(totals(metrics, params.max_len))
    return metrics


def load_config(params: Mapping[str, Any]) -> BatchParams:
    """Every params value the stage reads: the ``batches`` section, checked and resolved."""
    return check_params(section("batches", BatchesConfig, params), params_name(params))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Length-bucketed, END-padded batches for every split.")
    parser.add_argument("--split-dir", default="data/split")
    parser.add_argument("--vocab", default="data/vocab.json")
    parser.add_argument("--out-dir", default="data/batches")
    parser.add_argument("--metrics", default="metrics/batches.json")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    setup_logging()
    params = load_config(load_params(args.params))
    vocab = Vocab.load(args.vocab)
    paths = {s: Path(args.split_dir) / f"{s}.parquet" for s in SPLITS}
    metrics = run(paths, vocab, params, Path(args.out_dir))
    write_json_atomic(args.metrics, metrics)
    log.info("batches: %d real tokens, %d pad, efficiency %.4f (pad-to-max %.4f), buckets %s",
             metrics["real_tokens"], metrics["pad_tokens"], metrics["efficiency"], metrics["pad_to_max_efficiency"],
             json.dumps(metrics["boundaries"]))


if __name__ == "__main__":
    from pipeline.common import run_main  # user errors: one line, exit 2
    run_main(main)
