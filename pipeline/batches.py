"""Stage ``batches``: documents -> END-delimited id sequences -> length buckets -> padded batches.

Reads ``data/split/{train,val,test}.parquet`` and ``data/vocab.json``; writes ``data/batches/<split>/``
and ``metrics/batches.json``. Params (``batches`` section): ``batch_size``, ``max_len``, ``buckets``
(``auto`` or a list of lengths), ``max_buckets`` (auto only), ``seed``, ``carry_state``, ``shuffle_mb``.

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

Batches. Per split, sequences of each bucket are shuffled (seeded: "Shuffle" below) and cut into
batches of ``batch_size``; a bucket's last batch may be smaller (it is kept: no data is ever
dropped). The order of batches across buckets is a seeded permutation too.

Shards, per split, read by ``model/data.py`` one batch at a time (the loader never holds a split):

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
numpy and tf.data both read them directly, and a batch is one contiguous read at a known offset.

Bounded memory: three passes over each split, never the split in memory.

1. Survey: the code-point length of every document (pyarrow ``utf8_length`` over record batches)
   gives the histogram of chunk lengths (buckets are chosen from train's), each bucket's row count
   and, with carried state, the long documents' lengths (a few bytes per long document).
2. Scatter: the texts are read in groups of about 2M characters, encoded and cut into windows; each
   window is appended to a *pile* file of its bucket, each long document's ids are written at their
   place in the file of its lane (places are known from the survey).
3. Gather: each pile is read, permuted and appended to its bucket's shard (the npy header first:
   the row count is known); the stream is assembled window by window from the lane files.

Memory: one group of texts, one pile (at most ``shuffle_mb`` MB of rows), the permutation of a
one-pile bucket, per long document its lane and offset, and per batch one bucket index.

Shuffle (external, seeded, deterministic). The split's generator is ``numpy.random.default_rng([seed,
split index])``; it draws, in order: for each non-empty bucket that fits in one pile (rows x row bytes
<= ``shuffle_mb``) a permutation of its rows (in document order); the permutation of the long
documents that deals them to lanes; the permutation of the batch order. A bucket too big for one
pile gets the two-pass "random piles" shuffle: each row goes to one of K = ceil(bytes /
``shuffle_mb``) piles, drawn uniformly (``default_rng([seed, split index, bucket index, 1])``), and each
pile is permuted (``default_rng([seed, split index, bucket index, 2])``) before the piles are
concatenated: a uniform random permutation of the bucket too, in one pile of memory. The result
depends only on the inputs and the params (``shuffle_mb`` among them: it decides which buckets are
cut into piles).
"""

from __future__ import annotations

import argparse
import heapq
import json
import logging
import math
import os
import shutil
import tempfile
import time
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
GROUP_CHARS = 2_000_000  # characters encoded at once in the scatter pass


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
    shuffle_mb: float = setting(gt=0)  # most MB of rows shuffled in memory at once (one pile)

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
    shuffle_mb: float


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
    return BatchParams(p["batch_size"], p["max_len"], buckets, p["max_buckets"], p["seed"], p["carry_state"],
                       p["shuffle_mb"])


# -- sequences ----------------------------------------------------------------------------------
def encode_group(texts: Sequence[str], vocab: Vocab) -> tuple[np.ndarray, np.ndarray]:
    """``(stream, n_chars)``: documents as ``[END, doc0..., END, doc1..., END, ...]``.

    Document d's sequence ``[END, c1..cn, END]`` is ``stream[p_d : p_d + n_d + 2]`` with
    ``p_d = sum(n_e + 1 for e < d)``: neighbours share the END between them.
    """
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    ids = vocab.encode("".join(texts))
    return np.insert(np.insert(ids, np.cumsum(lengths), END_ID), 0, END_ID), lengths


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
    return auto_buckets_of_counts(values, counts, batch_size, max_buckets)


def auto_buckets_of_counts(values: np.ndarray, counts: np.ndarray, batch_size: int, max_buckets: int) -> list[int]:
    """``auto_buckets`` from the distinct lengths (ascending) and how many sequences have each."""
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


def windows(stream: np.ndarray, start: np.ndarray, targets: np.ndarray, length: int,
            dtype: np.dtype) -> np.ndarray:
    """``[N, length + 1]`` token rows: ``targets + 1`` tokens of the stream from each start, then END."""
    pos = np.arange(length + 1)
    idx = np.minimum(start[:, None] + pos[None, :], max(len(stream) - 1, 0))
    return np.where(pos[None, :] <= targets[:, None], stream[idx], END_ID).astype(dtype)


# -- pass 1: survey -----------------------------------------------------------------------------
@dataclass
class Survey:
    """What the lengths of a split's documents decide: chunk-length histogram of the bucketed
    chunks (index = targets), documents, documents cut into chunks, and (carried state) the targets
    of each long document, in document order, with its document index."""

    hist: np.ndarray
    documents: int
    chunked: int
    long_targets: np.ndarray
    long_docs: np.ndarray
    text_bytes: int


def doc_lengths(path: Path, batch_rows: int = 65_536) -> Iterable[tuple[np.ndarray, int]]:
    """Code-point lengths of a split's texts and their UTF-8 bytes, a record batch at a time (a null
    text counts as "")."""
    import pyarrow.compute as pc

    for batch in _split_file(path).iter_batches(batch_size=batch_rows, columns=["text"]):
        text = pc.fill_null(batch.column(0), "")
        yield (pc.utf8_length(text).to_numpy(zero_copy_only=False).astype(np.int64),
               int(pc.sum(pc.binary_length(text)).as_py() or 0))


def _split_file(path: Path):
    import pyarrow.parquet as pq

    if not Path(path).exists():
        raise FileNotFoundError(f"{path} not found: run `dvc repro split` first")
    pf = pq.ParquetFile(path, pre_buffer=False)  # streamed: see contracts.files.parquet_reader
    if "text" not in pf.schema_arrow.names:
        raise ValueError(f"{path}: no 'text' column (columns: {', '.join(pf.schema_arrow.names)}); "
                         "is it a data/split/<split>.parquet file?")
    return pf


def survey(split: str, path: Path, max_len: int, carry_state: bool) -> Survey:
    """Pass 1 over one split (see the module docstring)."""
    hist = np.zeros(max_len + 1, dtype=np.int64)
    long_targets, long_docs = [], []
    documents = chunked = text_bytes = 0
    for n_chars, n_bytes in doc_lengths(path):
        text_bytes += n_bytes
        targets = n_chars + 1
        long = targets > max_len
        chunked += int(long.sum())
        if carry_state:
            long_targets.append(targets[long])
            long_docs.append(np.flatnonzero(long) + documents)
            targets = targets[~long]
        full, rest = np.divmod(targets, max_len)
        hist[max_len] += int(full.sum())
        hist += np.bincount(rest[rest > 0], minlength=max_len + 1)
        documents += len(n_chars)
    if documents == 0:
        raise ValueError(f"{path}: split '{split}' holds no documents; every split needs at least one "
                         "(see metrics/split.json and params split.fractions)")
    cat = lambda parts: np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)  # noqa: E731
    return Survey(hist, documents, chunked, cat(long_targets), cat(long_docs), text_bytes)


def choose_boundaries(surveys: Mapping[str, Survey], params: BatchParams) -> list[int]:
    """Bucket lengths: as given in params, or ``auto_buckets`` over train's chunks (raised to the
    longest chunk of any split). With ``carry_state`` only the chunks of one-chunk documents count
    (the rest is the stream)."""
    if params.buckets is not None:
        return list(params.buckets)
    if not any(s.hist.any() for s in surveys.values()):
        return [params.max_len]  # every document is long: all of it is stream
    reference = surveys["train" if "train" in surveys else next(iter(surveys))]
    if not reference.hist.any():
        reference = next(s for s in surveys.values() if s.hist.any())
    values = np.flatnonzero(reference.hist)
    boundaries = auto_buckets_of_counts(values, reference.hist[values], params.batch_size, params.max_buckets)
    longest = max(int(np.flatnonzero(s.hist)[-1]) for s in surveys.values() if s.hist.any())
    boundaries[-1] = max(boundaries[-1], longest)
    return boundaries


# -- the plan: counts and every draw of the split's generator -------------------------------------
@dataclass
class BucketPlan:
    index: int  # into the boundaries
    length: int
    sequences: int
    real: int  # real targets
    piles: int
    row_bytes: int

    @property
    def stem(self) -> str:
        return f"bucket_{self.length:05d}"


def plan_buckets(hist: np.ndarray, boundaries: Sequence[int], dtype: np.dtype,
                 shuffle_mb: float) -> list[BucketPlan]:
    """The non-empty buckets of a split, with rows, real targets and the piles each is cut into."""
    values = np.arange(len(hist))
    bucket_of = np.searchsorted(np.asarray(boundaries), values, side="left")
    longest = int(np.flatnonzero(hist)[-1]) if hist.any() else 0
    if longest > boundaries[-1]:
        raise ValueError(f"a sequence of {longest} targets exceeds the last bucket {boundaries[-1]}")
    count = np.bincount(bucket_of, weights=hist, minlength=len(boundaries))
    real = np.bincount(bucket_of, weights=hist * values, minlength=len(boundaries))
    plans = []
    for b, length in enumerate(boundaries):
        if count[b] == 0:
            continue
        row_bytes = (length + 1) * dtype.itemsize + 3 * 4
        piles = max(1, math.ceil(int(count[b]) * row_bytes / (shuffle_mb * 2**20)))
        plans.append(BucketPlan(b, int(length), int(count[b]), int(real[b]), piles, row_bytes))
    return plans


@dataclass
class Lanes:
    """The stream's lanes: per long document (survey order) its lane and its offset in the lane's
    ids; per lane its documents in order and their cumulative targets."""

    lane: np.ndarray
    offset: np.ndarray
    held: list[np.ndarray]
    ends: list[np.ndarray]
    lengths: np.ndarray  # ids per lane, its closing END included


def deal_lanes(targets: np.ndarray, docs: np.ndarray, lanes: int, rng: np.random.Generator) -> Lanes:
    """Long documents in seeded order go to the lane with the fewest targets so far (lowest lane on
    ties); a lane is its documents' ``[END, c1..cn]`` one after the other, then one END."""
    lane_of = np.zeros(len(targets), dtype=np.int32)
    seq = np.zeros(len(targets), dtype=np.int64)
    heap = [(0, lane) for lane in range(lanes)]
    filled = np.zeros(lanes, dtype=np.int64)
    for step, d in enumerate(rng.permutation(len(targets)).tolist()):
        total, lane = heapq.heappop(heap)
        lane_of[d], seq[d] = lane, step
        filled[lane] = total + int(targets[d])
        heapq.heappush(heap, (int(filled[lane]), lane))
    by_lane = np.lexsort((seq, lane_of))
    bounds = np.searchsorted(lane_of[by_lane], np.arange(lanes + 1))
    offset = np.zeros(len(targets), dtype=np.int64)
    held, ends = [], []
    for lane in range(lanes):
        mine = by_lane[bounds[lane]:bounds[lane + 1]]
        cum = np.cumsum(targets[mine])
        offset[mine] = cum - targets[mine]
        held.append(docs[mine])
        ends.append(cum)
    return Lanes(lane_of, offset, held, ends, filled + 1)


@dataclass
class SplitPlan:
    name: str
    index: int
    survey: Survey
    buckets: list[BucketPlan]
    lanes: Lanes | None
    stream_batches: int
    order: np.ndarray


def plan_split(name: str, index: int, sv: Survey, boundaries: Sequence[int], params: BatchParams,
               dtype: np.dtype, tmp: Path) -> SplitPlan:
    """Counts, piles, lanes and batch order of a split: every draw of its generator, in order (the
    permutations of one-pile buckets go to ``tmp`` until their rows are gathered)."""
    rng = np.random.default_rng([params.seed, index])
    buckets = plan_buckets(sv.hist, boundaries, dtype, params.shuffle_mb)
    for b in buckets:
        if b.piles == 1:
            np.save(tmp / f"{b.stem}.perm.npy", rng.permutation(b.sequences), allow_pickle=False)
    lanes, stream_batches = None, 0
    labels = [np.full(-(-b.sequences // params.batch_size), i, dtype=np.int32) for i, b in enumerate(buckets)]
    if params.carry_state and len(sv.long_targets):
        lanes = deal_lanes(sv.long_targets, sv.long_docs, params.batch_size, rng)
        stream_batches = int(max(-(-(n - 1) // params.max_len) for n in lanes.lengths))
        labels.append(np.full(stream_batches, len(buckets), dtype=np.int32))
    order = rng.permutation(np.concatenate(labels)) if labels else np.zeros(0, dtype=np.int32)
    return SplitPlan(name, index, sv, buckets, lanes, stream_batches, order.astype(np.int32))


# -- pass 2: scatter ----------------------------------------------------------------------------
class Piles:
    """A bucket's pile files (tokens and rows, appended raw): rows are dealt to piles by a seeded
    uniform draw (one pile: all of them, in order)."""

    def __init__(self, folder: Path, plan: BucketPlan, seed: int, split_index: int) -> None:
        self.folder, self.plan = folder, plan
        self.rng = np.random.default_rng([seed, split_index, plan.index, 1])

    def path(self, pile: int, kind: str) -> Path:
        return self.folder / f"{self.plan.stem}.pile{pile:04d}.{kind}"

    def add(self, tokens: np.ndarray, rows: np.ndarray) -> None:
        if self.plan.piles == 1:
            self._append(0, tokens, rows)
            return
        pile = (self.rng.random(len(tokens)) * self.plan.piles).astype(np.int64)
        order = np.argsort(pile, kind="stable")
        bounds = np.searchsorted(pile[order], np.arange(self.plan.piles + 1))
        for k in range(self.plan.piles):
            sel = order[bounds[k]:bounds[k + 1]]
            if len(sel):
                self._append(k, tokens[sel], rows[sel])

    def _append(self, pile: int, tokens: np.ndarray, rows: np.ndarray) -> None:
        with open(self.path(pile, "tokens"), "ab") as fh:
            fh.write(np.ascontiguousarray(tokens).tobytes())
        with open(self.path(pile, "rows"), "ab") as fh:
            fh.write(np.ascontiguousarray(rows, dtype=np.int32).tobytes())

    def read(self, pile: int, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
        paths = self.path(pile, "tokens"), self.path(pile, "rows")
        if not paths[0].exists():
            return np.zeros((0, self.plan.length + 1), dtype=dtype), np.zeros((0, 3), dtype=np.int32)
        tokens = np.fromfile(paths[0], dtype=dtype).reshape(-1, self.plan.length + 1)
        rows = np.fromfile(paths[1], dtype=np.int32).reshape(-1, 3)
        for p in paths:
            p.unlink()
        return tokens, rows


def _text_groups(path: Path, limit: int = GROUP_CHARS) -> Iterable[list[str]]:
    """The split's texts in document order, in groups of about ``limit`` characters."""
    group: list[str] = []
    size = 0
    for text in iter_texts(path):
        group.append(text)
        size += len(text)
        if size >= limit:
            yield group
            group, size = [], 0
    if group:
        yield group


def scatter(path: Path, plan: SplitPlan, boundaries: Sequence[int], vocab: Vocab, params: BatchParams,
            dtype: np.dtype, folder: Path) -> int:
    """Pass 2: windows to their buckets' piles, long documents into their lanes' files; the UNK count."""
    piles = {b.index: Piles(folder, b, params.seed, plan.index) for b in plan.buckets}
    lane_files = _open_lanes(folder, plan.lanes, dtype) if plan.lanes is not None else []
    n_long = doc0 = unk = 0
    try:
        for texts in _text_groups(path):
            stream, n_chars = encode_group(texts, vocab)
            unk += int((stream == UNK_ID).sum())
            chunks = make_chunks(n_chars, params.max_len)
            chunks["doc"] += doc0
            if plan.lanes is not None:
                is_long = n_chars + 1 > params.max_len
                n_long = _write_lanes(stream, n_chars, is_long, plan.lanes, n_long, lane_files, dtype)
                bucketed = ~is_long[chunks["doc"] - doc0]
                chunks = {k: v[bucketed] for k, v in chunks.items()}
            bucket_of = np.searchsorted(np.asarray(boundaries), chunks["targets"], side="left")
            for b in np.unique(bucket_of).tolist():
                sel = np.flatnonzero(bucket_of == b)
                tokens = windows(stream, chunks["start"][sel], chunks["targets"][sel], boundaries[b], dtype)
                rows = np.stack([chunks["targets"][sel], chunks["doc"][sel], chunks["chunk"][sel]], axis=1)
                piles[b].add(tokens, rows)
            doc0 += len(texts)
    finally:
        for fd in lane_files:
            os.close(fd)
    return unk


def _open_lanes(folder: Path, lanes: Lanes, dtype: np.dtype) -> list[int]:
    """One file per lane, sized to its ids, its closing END written."""
    fds = []
    for lane, n in enumerate(lanes.lengths.tolist()):
        fd = os.open(folder / f"lane{lane:05d}.ids", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        fds.append(fd)
        os.pwrite(fd, np.array([END_ID], dtype=dtype).tobytes(), (n - 1) * dtype.itemsize)
    return fds


def _write_lanes(stream: np.ndarray, n_chars: np.ndarray, is_long: np.ndarray, lanes: Lanes, n_long: int,
                 fds: list[int], dtype: np.dtype) -> int:
    """Each long document's ``[END, c1..cn]`` at its offset in its lane's file; the long documents so far."""
    starts = np.concatenate([[0], np.cumsum(n_chars + 1)[:-1]])
    for d in np.flatnonzero(is_long).tolist():
        ids = stream[starts[d]:starts[d] + n_chars[d] + 1].astype(dtype)
        os.pwrite(fds[lanes.lane[n_long]], ids.tobytes(), int(lanes.offset[n_long]) * dtype.itemsize)
        n_long += 1
    return n_long


# -- pass 3: gather -----------------------------------------------------------------------------
def _npy_writer(path: Path, shape: tuple[int, ...], dtype: np.dtype):
    """An open file with the npy header of an array of ``shape`` written: the rows follow, raw."""
    fh = open(path, "wb")
    np.lib.format.write_array_header_1_0(fh, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                                              "fortran_order": False, "shape": shape})
    return fh


def gather_bucket(plan: BucketPlan, piles: Piles, seed: int, split_index: int, dtype: np.dtype, out: Path,
                  tmp: Path) -> None:
    """Pass 3 for one bucket: piles read, permuted and written in order into its two shards."""
    rng = np.random.default_rng([seed, split_index, plan.index, 2])
    with _npy_writer(out / f"{plan.stem}.tokens.npy", (plan.sequences, plan.length + 1), dtype) as tok_fh, \
            _npy_writer(out / f"{plan.stem}.rows.npy", (plan.sequences, 3), np.int32) as row_fh:
        written = 0
        for k in range(plan.piles):
            tokens, rows = piles.read(k, dtype)
            if plan.piles == 1:
                perm = np.load(tmp / f"{plan.stem}.perm.npy", allow_pickle=False)
            else:
                perm = rng.permutation(len(tokens))
            for lo in range(0, len(perm), 1 << 18):  # a slice at a time: no second copy of the pile
                tok_fh.write(tokens[perm[lo:lo + (1 << 18)]].tobytes())
                row_fh.write(rows[perm[lo:lo + (1 << 18)]].tobytes())
            written += len(tokens)
    if written != plan.sequences:  # an internal bug, never bad input
        raise AssertionError(f"bucket {plan.length}: wrote {written} rows, the survey counted {plan.sequences}")


def gather_stream(plan: SplitPlan, params: BatchParams, dtype: np.dtype, folder: Path, out: Path) -> dict[str, int]:
    """Pass 3 for the stream: batch j's row r is window j of lane r, read from the lane files."""
    lanes, bs, max_len = plan.lanes, params.batch_size, params.max_len
    n = plan.stream_batches
    counts = {"real": 0, "carried": 0}
    fds = [os.open(folder / f"lane{lane:05d}.ids", os.O_RDONLY) for lane in range(bs)]
    try:
        with _npy_writer(out / "stream.tokens.npy", (n * bs, max_len + 1), dtype) as tok_fh, \
                _npy_writer(out / "stream.rows.npy", (n * bs, 4), np.int32) as row_fh:
            for j in range(n):
                tokens = np.full((bs, max_len + 1), END_ID, dtype=dtype)
                rows = np.zeros((bs, 4), dtype=np.int32)
                rows[:, 1:3] = -1
                for lane in range(bs):
                    start = j * max_len
                    length = min(max_len + 1, int(lanes.lengths[lane]) - start)
                    if length <= 1:
                        continue
                    raw = os.pread(fds[lane], length * dtype.itemsize, start * dtype.itemsize)
                    tokens[lane, :length] = np.frombuffer(raw, dtype=dtype)
                    first_doc = lanes.held[lane][np.searchsorted(lanes.ends[lane], start, side="right")]
                    rows[lane] = (length - 1, first_doc, j, int(j > 0))
                counts["real"] += int(rows[:, 0].sum())
                counts["carried"] += int(rows[:, 3].sum())
                tok_fh.write(tokens.tobytes())
                row_fh.write(rows.tobytes())
    finally:
        for fd in fds:
            os.close(fd)
    return counts


# -- the stage ----------------------------------------------------------------------------------
def bucket_stats(entries: Sequence[Mapping[str, Any]], max_len: int) -> dict[str, Any]:
    """Counts and padding efficiency (real targets over computed targets) overall and per bucket;
    ``entries``: length, sequences, batches, real (and carry, carried_rows for the stream)."""
    per, real_all, total_all, seqs_all, batches_all = [], 0, 0, 0, 0
    for b in entries:
        n, length, real = b["sequences"], b["length"], b["real"]
        entry = {"length": length, "sequences": n, "batches": b["batches"], "real_tokens": real,
                 "pad_tokens": n * length - real, "efficiency": round(real / (n * length), 6)}
        if b.get("carry"):
            entry.update(carry=True, carried_rows=b["carried_rows"])
        per.append(entry)
        real_all, total_all = real_all + real, total_all + n * length
        seqs_all, batches_all = seqs_all + n, batches_all + b["batches"]
    return {"batches": batches_all, "sequences": seqs_all, "real_tokens": real_all, "pad_tokens": total_all - real_all,
            "efficiency": round(real_all / total_all, 6) if total_all else 0.0,
            "pad_to_max_efficiency": round(real_all / (seqs_all * max_len), 6) if seqs_all else 0.0, "buckets": per}


def stream_counts(entries: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Batches, rows and real tokens of the stream, and its rows that carry state (empty without one)."""
    carried = [b for b in entries if b.get("carry")]
    if not carried:
        return {}
    s = carried[0]
    return {"stream_batches": s["batches"], "stream_rows": s["sequences"], "stream_real_tokens": s["real"],
            "carried_rows": s["carried_rows"]}


def build_split(path: Path, plan: SplitPlan, boundaries: Sequence[int], vocab: Vocab, params: BatchParams,
                dtype: np.dtype, out: Path, tmp: Path) -> tuple[list[dict[str, Any]], int]:
    """Passes 2 and 3 of one split into ``out``; its bucket entries (manifest order) and UNK count."""
    out.mkdir(parents=True)
    unk = scatter(path, plan, boundaries, vocab, params, dtype, tmp)
    entries = []
    for b in plan.buckets:
        gather_bucket(b, Piles(tmp, b, params.seed, plan.index), params.seed, plan.index, dtype, out, tmp)
        entries.append({"length": b.length, "tokens": f"{b.stem}.tokens.npy", "rows": f"{b.stem}.rows.npy",
                        "sequences": b.sequences, "batches": -(-b.sequences // params.batch_size), "real": b.real})
    if plan.lanes is not None:
        counts = gather_stream(plan, params, dtype, tmp, out)
        entries.append({"length": params.max_len, "tokens": "stream.tokens.npy", "rows": "stream.rows.npy",
                        "sequences": plan.stream_batches * params.batch_size, "batches": plan.stream_batches,
                        "carry": True, "real": counts["real"], "carried_rows": counts["carried"]})
    np.save(out / "order.npy", plan.order, allow_pickle=False)
    return entries, unk


def write_manifest(out: Path, split: str, entries: Sequence[Mapping[str, Any]], manifest: dict[str, Any]) -> None:
    listed = [{k: e[k] for k in ("length", "tokens", "rows", "sequences", "batches")}
              | ({"carry": True} if e.get("carry") else {}) for e in entries]
    write_json_atomic(out / "manifest.json", {**manifest, "format": FORMAT_VERSION, "split": split,
                                              "buckets": listed, "order": "order.npy"})


def replace_dir(new: Path, target: Path) -> None:
    """Swap ``new`` in for ``target`` (old contents removed), so readers never see a mix of runs."""
    if target.exists():
        trash = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old."))
        os.replace(target, trash / target.name)
        os.replace(new, target)
        shutil.rmtree(trash)
    else:
        os.replace(new, target)


def fresh_dir_beside(out_dir: Path) -> Path:
    """An empty folder next to ``out_dir`` with the usual mode (mkdtemp makes 0700)."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.tmp."))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)
    return tmp


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
    started = time.perf_counter()
    surveys = {split: survey(split, path, params.max_len, params.carry_state) for split, path in split_paths.items()}
    boundaries = choose_boundaries(surveys, params)
    dtype = token_dtype(len(vocab))
    tmp = fresh_dir_beside(out_dir)
    metrics: dict[str, Any] = {"batch_size": params.batch_size, "max_len": params.max_len, "seed": params.seed,
                               "boundaries": boundaries, "vocab_hash": vocab.hash, "splits": {}}
    try:
        for split, path in split_paths.items():
            index = SPLITS.index(split) if split in SPLITS else len(SPLITS)
            work = tmp / f".work-{split}"
            work.mkdir()
            plan = plan_split(split, index, surveys[split], boundaries, params, dtype, work)
            entries, unk = build_split(path, plan, boundaries, vocab, params, dtype, tmp / split, work)
            shutil.rmtree(work)
            stats = bucket_stats(entries, params.max_len)
            stats.update(documents=plan.survey.documents, chunked_documents=plan.survey.chunked, unk_tokens=unk,
                         **stream_counts(entries))
            write_manifest(tmp / split, split, entries, {
                "batch_size": params.batch_size, "max_len": params.max_len, "seed": params.seed,
                "vocab_hash": vocab.hash, "vocab_size": len(vocab), "dtype": dtype.name,
                **{k: stats[k] for k in ("batches", "sequences", "documents", "real_tokens", "pad_tokens")},
                **({"carry_state": True, **stream_counts(entries)} if params.carry_state else {})})
            metrics["splits"][split] = stats
            log.info("batches %s: %d documents -> %d sequences in %d batches, %d buckets, efficiency %.4f "
                     "(pad-to-max %.4f), %d UNK", split, plan.survey.documents, stats["sequences"], stats["batches"],
                     len(entries), stats["efficiency"], stats["pad_to_max_efficiency"], stats["unk_tokens"])
        replace_dir(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    metrics.update(totals(metrics, params.max_len))
    seconds = time.perf_counter() - started
    documents = sum(s.documents for s in surveys.values())
    text_mb = sum(s.text_bytes for s in surveys.values()) / 1e6
    metrics.update(seconds=round(seconds, 3), posts_per_s=round(documents / max(seconds, 1e-9), 1),
                   mb_per_s=round(text_mb / max(seconds, 1e-9), 3))
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
    log.info("batches: %d real tokens, %d pad, efficiency %.4f (pad-to-max %.4f), buckets %s; %.1f s (%.0f posts/s, "
             "%.2f MB/s)", metrics["real_tokens"], metrics["pad_tokens"], metrics["efficiency"],
             metrics["pad_to_max_efficiency"], json.dumps(metrics["boundaries"]), metrics["seconds"],
             metrics["posts_per_s"], metrics["mb_per_s"])


if __name__ == "__main__":
    from pipeline.common import run_main  # user errors: one line, exit 2
    run_main(main)
