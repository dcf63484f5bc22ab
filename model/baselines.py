"""Honest baselines for the character LSTM: unigram, Kneser-Ney character n-grams, PPMd, compressors.

Every baseline measures the SAME symbols as the LSTM's test loss (see model/evaluate.py): each
document is its vocabulary ids (characters outside the vocabulary are UNK) followed by one END, so a
document of n characters contributes n + 1 targets. Models are trained on the train split only
(the evaluate stage gives them all the same bounded, seeded sample of it: model/splits.py).

- ``unigram_log2probs``: add-``alpha`` (Laplace) smoothed character frequencies over the whole
  vocabulary (END and UNK included), so every symbol has a non-zero probability.
- ``KneserNey``: interpolated Kneser-Ney (Chen & Goodman 1998, one absolute discount per order,
  D = n1 / (n1 + 2 n2)); the highest order uses raw counts, lower orders continuation counts, and
  the unigram level interpolates with the uniform distribution over the vocabulary. Each document
  is left-padded with ``order - 1`` END symbols, so the context never reaches into the previous
  document (the LSTM too starts each document from END alone). Counting is vectorised with NumPy
  (n-grams packed into int64 keys, ``np.unique`` / ``np.searchsorted``): a few MB of text takes
  seconds, where a Python dict per n-gram would take minutes and GBs. Peak memory is about
  ``8 * (order + 3)`` bytes per training character (about 70 MB for 2 MB of text at order 5). NLTK's
  KneserNeyInterpolated was not used: it scores one n-gram per Python call and is far too slow on MBs.
- ``compressor_cost``: gzip -9, bzip2 -9 and xz -9 (Python's zlib/bz2/lzma modules, the same
  libraries as the command-line tools): bits of (train + test) minus bits of train alone, i.e. the
  cost of the test text for a compressor primed on the train text. The text is fed to the
  compressor a piece at a time (``RenderedSplit`` reads a split file in pieces), which writes the
  same bytes as one call, so only the codec's own memory is held (xz -9: up to about 0.7 GB). The
  text given to them is the same symbol stream: characters (UNK shown as U+001A), each document
  followed by U+0000 as END.
  They read the test split as one stream, so each document is coded after every test document
  before it: they get cross-document context and adapt to the test text, which the LSTM does not.
- ``ppmd_doc_bits``: PPMd var. H (Shkarin's PPM with information inheritance and SEE; the 7-Zip
  codec, through ``pyppmd``), the strongest classical character model here, on the same rendered
  stream (UTF-8 bytes). It is conditioned exactly as the LSTM is: each test document is coded on its
  own from the state PPMd reached after reading the train text, so it neither sees nor learns from
  any other test document. PPMd is an adaptive coder without a way to copy its state, so the state
  is copied by the operating system: the primed process forks once per document (copy-on-write;
  POSIX only) and the child codes that document alone. A coder writes whole bytes, so a document's
  cost, read as bytes written, is its information rounded within one byte by an amount that depends
  on where the coder's range stood before it; the same for every document scored from one state, a
  bias of up to 4 bits per document. To make the rounding average out, the train text's last
  ``PPMD_STATES`` documents are read one at a time and the test documents are scored round-robin
  from those states (each a complete train prefix ending at a document boundary). The context a
  document starts from is the END closing the train text's last document read (with that
  document's tail within reach of the order): fixed text of the train split, as the LSTM's start
  state is fixed. ``ppmd_doc_bits`` also returns the cost of the whole test split coded as one
  stream (cross-document context and adaptation included, as the other compressors read it). The
  documents wait on disk (``DocStore``: one file per state), so a worker reads one state's share
  at a time and returns bits summed per group (length groups, or per document for a small list).
"""

from __future__ import annotations

import bz2
import itertools
import lzma
import math
import os
import struct
import zlib
from collections import deque
from concurrent.futures import Executor, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from model.splits import text_chunks
from pipeline.vocab import END_ID, UNK_ID, Vocab

END_CHAR = "\x00"  # the END symbol in the compressors' text
UNK_CHAR = "\x1a"  # the UNK symbol in the compressors' text (ASCII SUB, "substitute")



def count_targets(docs: Sequence[np.ndarray]) -> int:
    """Targets measured on ``docs``: every character plus one END per document."""
    return int(sum(len(d) + 1 for d in docs))


def bits_summary(total_bits: float, n_targets: int) -> dict[str, float]:
    """bits per character, nats per character and perplexity from a total cost in bits."""
    if n_targets <= 0:
        raise ValueError("no targets to measure: the test split is empty")
    bpc = float(total_bits) / n_targets
    return {"bpc": bpc, "nats_per_char": bpc * math.log(2), "perplexity": 2.0 ** bpc, "targets": int(n_targets)}


# -- unigram ---------------------------------------------------------------------------------------
def unigram_probs(train: Sequence[np.ndarray], vocab_size: int, alpha: float = 1.0) -> np.ndarray:
    """P(symbol) over the vocabulary: add-``alpha`` smoothed frequencies in ``train`` (END once per document)."""
    if alpha <= 0:
        raise ValueError(f"unigram alpha must be > 0 (else unseen symbols get probability 0), got {alpha}")
    counts = np.zeros(vocab_size, dtype=np.float64)
    for d in train:
        counts += np.bincount(d, minlength=vocab_size)[:vocab_size]
    counts[END_ID] += len(train)
    return (counts + alpha) / (counts.sum() + alpha * vocab_size)


def unigram_log2probs(train: Sequence[np.ndarray], test: Sequence[np.ndarray], vocab_size: int,
                      alpha: float = 1.0) -> np.ndarray:
    """log2 P(target) for every test target under add-``alpha`` unigram frequencies from train."""
    return np.log2(unigram_probs(train, vocab_size, alpha)[targets_of(test)])


def targets_of(docs: Sequence[np.ndarray]) -> np.ndarray:
    """Every target of ``docs`` in order: each document's ids, then END."""
    parts = []
    for d in docs:
        parts.append(np.asarray(d, dtype=np.int64))
        parts.append(np.array([END_ID], dtype=np.int64))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


# -- Kneser-Ney ------------------------------------------------------------------------------------
def _padded(docs: Sequence[np.ndarray], order: int) -> tuple[np.ndarray, np.ndarray]:
    """One flat array ``[END]*(order-1) + ids + [END]`` per document, and the target positions."""
    pad = np.full(order - 1, END_ID, dtype=np.int64)
    arrays, positions, offset = [], [], 0
    for d in docs:
        d = np.asarray(d, dtype=np.int64)
        arrays += [pad, d, np.array([END_ID], dtype=np.int64)]
        positions.append(np.arange(offset + order - 1, offset + order + len(d), dtype=np.int64))
        offset += order + len(d)
    if not arrays:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(arrays), np.concatenate(positions)


def _gram_keys(seq: np.ndarray, positions: np.ndarray, order: int, base: int) -> list[np.ndarray]:
    """keys[k-1][i] = the k-gram ending at positions[i], packed in base ``base`` (k = 1..order)."""
    keys = [seq[positions]]
    for k in range(2, order + 1):
        keys.append(seq[positions - (k - 1)] * base ** (k - 1) + keys[-1])
    return keys


def _lookup(table: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of each key in the sorted ``table`` and whether it is there."""
    idx = np.searchsorted(table, keys)
    idx = np.minimum(idx, max(len(table) - 1, 0))
    found = table[idx] == keys if len(table) else np.zeros(len(keys), dtype=bool)
    return idx, found


def _discount(counts: np.ndarray) -> float:
    n1, n2 = int(np.count_nonzero(counts == 1)), int(np.count_nonzero(counts == 2))
    if n1 == 0:
        return 0.5  # no singletons: any discount in (0, 1) keeps the model proper; take the middle
    return n1 / (n1 + 2 * n2)


class KneserNey:
    """Interpolated Kneser-Ney character model of a given order over vocabulary ids."""

    def __init__(self, vocab_size: int, order: int = 5) -> None:
        if order < 1:
            raise ValueError(f"n-gram order must be >= 1, got {order}")
        if vocab_size < 2:
            raise ValueError(f"vocabulary size must be >= 2, got {vocab_size}")
        if order * math.log2(vocab_size) >= 62:
            raise ValueError(f"order {order} with {vocab_size} symbols overflows int64 n-gram keys; "
                             f"use order <= {int(62 // math.log2(vocab_size))}")
        self.V, self.order = vocab_size, order
        self.grams: list[np.ndarray] = []  # per order: sorted unique k-gram keys
        self.counts: list[np.ndarray] = []  # raw counts (top order) or continuation counts
        self.ctx: list[np.ndarray] = []  # per order >= 2: sorted unique contexts
        self.ctx_total: list[np.ndarray] = []
        self.ctx_types: list[np.ndarray] = []
        self.discounts: list[float] = []

    def fit(self, docs: Sequence[np.ndarray]) -> "KneserNey":
        seq, pos = _padded(docs, self.order)
        if len(pos) == 0:
            raise ValueError("cannot fit a Kneser-Ney model on an empty train split")
        keys = _gram_keys(seq, pos, self.order, self.V)
        grams: list[np.ndarray] = [None] * self.order  # type: ignore[list-item]
        counts: list[np.ndarray] = [None] * self.order  # type: ignore[list-item]
        grams[-1], counts[-1] = np.unique(keys[-1], return_counts=True)
        for k in range(self.order - 1, 0, -1):  # continuation counts: distinct left extensions
            suffix = grams[k] % self.V ** k
            grams[k - 1], counts[k - 1] = np.unique(suffix, return_counts=True)
        self.grams, self.counts = grams, [c.astype(np.float64) for c in counts]
        self.discounts = [_discount(c) for c in counts]
        self.ctx, self.ctx_total, self.ctx_types = [], [], []
        for k in range(2, self.order + 1):
            ctx, start, types = np.unique(grams[k - 1] // self.V, return_index=True, return_counts=True)
            self.ctx.append(ctx)
            self.ctx_total.append(np.add.reduceat(self.counts[k - 1], start))
            self.ctx_types.append(types.astype(np.float64))
        return self

    def _log2probs_at(self, seq: np.ndarray, pos: np.ndarray) -> np.ndarray:
        if not self.grams:
            raise RuntimeError("KneserNey.fit has not been called")
        keys = _gram_keys(seq, pos, self.order, self.V)
        d1, c1 = self.discounts[0], self.counts[0]
        idx, found = _lookup(self.grams[0], keys[0])
        c = np.where(found, c1[idx], 0.0)
        p = np.maximum(c - d1, 0.0) / c1.sum() + d1 * len(c1) / c1.sum() / self.V
        for k in range(2, self.order + 1):
            cidx, cfound = _lookup(self.ctx[k - 2], keys[k - 1] // self.V)
            gidx, gfound = _lookup(self.grams[k - 1], keys[k - 1])
            c = np.where(gfound, self.counts[k - 1][gidx], 0.0)
            total = np.where(cfound, self.ctx_total[k - 2][cidx], 1.0)
            types = np.where(cfound, self.ctx_types[k - 2][cidx], 0.0)
            d = self.discounts[k - 1]
            p = np.where(cfound, np.maximum(c - d, 0.0) / total + d * types / total * p, p)
        return np.log2(p)

    def log2probs(self, docs: Sequence[np.ndarray]) -> np.ndarray:
        """log2 P(target | up to order-1 previous symbols) for every target of ``docs``."""
        seq, pos = _padded(docs, self.order)
        return self._log2probs_at(seq, pos)

    def next_distribution(self, context: Sequence[int]) -> np.ndarray:
        """P(next symbol) over the whole vocabulary after ``context`` (a document's first ids)."""
        ctx = np.concatenate([np.full(self.order - 1, END_ID, dtype=np.int64), np.asarray(context, dtype=np.int64)])
        ctx = ctx[len(ctx) - (self.order - 1):] if self.order > 1 else ctx[:0]
        seq = np.concatenate([np.tile(ctx, (self.V, 1)), np.arange(self.V)[:, None]], axis=1).ravel()
        pos = np.arange(self.V) * self.order + self.order - 1
        return 2.0 ** self._log2probs_at(seq, pos)


# -- compressors ---------------------------------------------------------------------------------
# gzip -9, bzip2 -9, xz -9 as incremental compressors (fed a piece at a time they write the same bytes as
# gzip.compress(mtime=0), bz2.compress and lzma.compress in one call)
COMPRESSORS: dict[str, Callable[[], Any]] = {
    "gzip_9": lambda: zlib.compressobj(9, zlib.DEFLATED, 31),
    "bzip2_9": lambda: bz2.BZ2Compressor(9),
    "xz_9": lambda: lzma.LZMACompressor(lzma.FORMAT_XZ, preset=9),
}


def render_text(docs: Sequence[np.ndarray], vocab: Vocab) -> str:
    """The symbol stream as text for the compressors: characters, UNK as U+001A, END as U+0000."""
    table = np.array([END_CHAR, UNK_CHAR, *vocab.tokens[2:]], dtype=object)
    return "".join("".join(table[d]) + END_CHAR for d in docs)


def _compressor(name: str) -> Any:
    if name not in COMPRESSORS:
        raise ValueError(f"unknown compressor {name!r}; known: {', '.join(COMPRESSORS)}")
    return COMPRESSORS[name]()


def compressed_size(name: str, pieces: Iterable[str | bytes]) -> int:
    """Bytes the compressor ``name`` writes for the concatenation of ``pieces`` (text as UTF-8), fed
    one piece at a time: the same bytes as compressing it in one call, in the memory of the codec
    (xz -9 at most about 0.7 GB, for inputs past its 64 MiB dictionary) plus one piece."""
    codec = _compressor(name)
    n = 0
    for piece in pieces:
        n += len(codec.compress(piece.encode("utf-8") if isinstance(piece, str) else piece))
    return n + len(codec.flush())


def compressor_cost(name: str, prime: str, stream: Iterable[str]) -> float:
    """Bits the compressor ``name`` spends on the text of ``stream`` after having seen ``prime``:
    bits of (prime + stream) minus bits of prime alone. ``stream`` is read once."""
    return 8.0 * (compressed_size(name, itertools.chain([prime], stream)) - compressed_size(name, [prime]))


def compressor_bits(name: str, train_text: str, test_text: str) -> float:
    """Bits the compressor ``name`` spends on ``test_text`` after having seen ``train_text``."""
    return compressor_cost(name, train_text, [test_text])


@dataclass(frozen=True)
class RenderedSplit:
    """A split file's documents as the baselines' symbol stream (``render_text``), read again on each
    iteration in pieces of about ``chunk_chars`` characters (only the first documents up to
    ``max_chars`` with ``max_chars`` > 0: ``model.splits.text_chunks``). Picklable, so a worker
    process reads the file itself instead of being sent the text."""

    path: str
    vocab: Vocab
    max_chars: int = 0
    chunk_chars: int = 1 << 20

    def __iter__(self) -> Iterator[str]:
        for texts in text_chunks(self.path, self.chunk_chars, self.max_chars):
            yield render_text([self.vocab.encode(t) for t in texts], self.vocab)


def compressor_bpc(name: str, train_texts: Sequence[str], test_texts: Iterable[str], vocab: Vocab,
                   context_chars: int | None = None) -> dict[str, float]:
    """Bits per target the compressor ``name`` spends on ``test_texts``, given the last
    ``context_chars`` characters of the rendered ``train_texts`` (None: all of them), and alone.
    ``test_texts`` may be a ``RenderedSplit``'s file (streamed) or a list of texts."""
    train = render_text([vocab.encode(t) for t in train_texts], vocab)
    if context_chars is not None:
        train = train[max(len(train) - int(context_chars), 0):]
    if isinstance(test_texts, RenderedSplit):
        stream: Iterable[str] = test_texts
        n_targets = sum(len(piece) for piece in stream)  # one symbol per target: every char and END
    else:
        docs = [vocab.encode(t) for t in test_texts]
        stream, n_targets = [render_text(docs, vocab)], count_targets(docs)
    if not n_targets:
        raise ValueError("no test text: no compressor baseline to measure")
    return {"bpc": compressor_cost(name, train, stream) / n_targets,
            "alone_bpc": compressor_cost(name, "", stream) / n_targets,
            "context_chars": len(train), "targets": n_targets}


# -- PPMd ------------------------------------------------------------------------------------------
PPMD_STATES = 128  # train-prefix states the test documents are scored from, round-robin (byte rounding)
PPMD_MAX_ORDER = 64  # pyppmd's bound (and its least: 2)
PPMD_FORKS = 4  # documents coded at once, each in its own forked child of the primed process
_RECORD = struct.Struct("<II")  # a DocStore record's header: payload bytes, group


def ppmd_states(n_prime_docs: int, states: int = PPMD_STATES) -> int:
    """How many train-prefix states the documents are spread over: one per held-back train document
    (at most ``states``), and one (the whole prime, or nothing) without any."""
    return max(1, min(int(states), n_prime_docs))


class DocStore:
    """Rendered documents on disk for PPMd's worker processes, which read them a state's share at a
    time instead of being sent a split: document i goes to ``state-<i mod states>.bin``, as records
    of (UTF-8 bytes, group); the scores come back summed per group (a length group of the report, or
    the document's own index for per-document bits), so nothing per document is held."""

    def __init__(self, folder: str | os.PathLike, states: int, groups: int = 1) -> None:
        self.folder, self.states, self.groups = Path(folder), int(states), int(groups)
        self.documents = 0
        self._files: list[Any] | None = None

    def add(self, doc: str, group: int = 0) -> None:
        if self._files is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._files = [open(self._path(j), "wb") for j in range(self.states)]
        if not 0 <= group < self.groups:
            raise ValueError(f"group {group} outside [0, {self.groups})")
        data = doc.encode("utf-8")
        self._files[self.documents % self.states].write(_RECORD.pack(len(data), group) + data)
        self.documents += 1

    def close(self) -> None:
        for fh in self._files or []:
            fh.close()
        self._files = None

    def __enter__(self) -> "DocStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        if self._files is not None:
            raise RuntimeError("close a DocStore before handing it to another process")
        return self.__dict__.copy()

    def _path(self, state: int) -> Path:
        return self.folder / f"state-{state}.bin"

    def records(self, state: int) -> Iterator[tuple[int, bytes]]:
        """(group, bytes) of the documents scored from ``state``, in document order."""
        if state >= self.documents:
            return
        with open(self._path(state), "rb") as fh:
            while header := fh.read(_RECORD.size):
                size, group = _RECORD.unpack(header)
                yield group, fh.read(size)

    def in_order(self) -> Iterator[bytes]:
        """Every document's bytes in document order (the state files read in turn)."""
        readers = [self.records(j) for j in range(min(self.states, self.documents))]
        for i in range(self.documents):
            yield next(readers[i % self.states])[1]


def _start_child(work: Callable[[], int]) -> tuple[int, int]:
    """Fork a child that runs ``work()`` (a byte count) from a copy of this process's state (the
    PPMd encoder's included), writes it to a pipe and vanishes: this process is left as it was.
    Returns (child pid, read end of its pipe)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: work from the copied state, report, vanish
        code = 1
        try:
            os.close(read_end)
            os.write(write_end, int(work()).to_bytes(8, "little"))
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    return pid, read_end


def _child_result(pid: int, read_end: int) -> int:
    with os.fdopen(read_end, "rb") as fh:
        got = fh.read()
    _, status = os.waitpid(pid, 0)
    if status != 0 or len(got) != 8:
        raise RuntimeError(f"PPMd child process failed (wait status {status})")
    return int.from_bytes(got, "little")


def _coded(encoder, pieces: Iterable[bytes]) -> int:
    """Bytes ``encoder`` writes to code ``pieces`` and end the stream, from its present state (in a
    forked child: the encoder here is left as it was)."""
    return _child_result(*_start_child(lambda: sum(len(encoder.encode(p)) for p in pieces) + len(encoder.flush())))


def _coded_each(encoder, items: Iterable[tuple[int, bytes]], width: int = PPMD_FORKS) -> Iterator[tuple[int, int]]:
    """``(tag, bytes written)`` for each ``(tag, payload)``, every payload coded alone from the
    encoder's present state, in order; up to ``width`` children at a time, so both cores work and no
    child waits for the previous one to be reaped."""
    running: deque[tuple[int, int, int]] = deque()
    for tag, payload in items:
        running.append((tag, *_start_child(lambda p=payload: len(encoder.encode(p)) + len(encoder.flush()))))
        if len(running) >= width:
            tag0, pid, fd = running.popleft()
            yield tag0, _child_result(pid, fd)
    while running:
        tag0, pid, fd = running.popleft()
        yield tag0, _child_result(pid, fd)


def ppmd_store_bits(prime_docs: Sequence[str], store: DocStore, order: int, memory_mb: int) -> tuple[np.ndarray, float]:
    """``(bits per group of the store's documents, bits of them all as one stream)`` under PPMd of
    ``order`` with ``memory_mb`` of model memory, each document coded alone after ``prime_docs``
    (rendered texts as ``render_docs`` makes them, END included), round-robin from the last
    ``store.states`` train prefixes (module docstring). The stream is coded after the whole prime."""
    import pyppmd

    if not hasattr(os, "fork"):
        raise RuntimeError("the PPMd baseline forks a process per document: it needs a POSIX system")
    if not 2 <= order <= PPMD_MAX_ORDER:
        raise ValueError(f"PPMd order must be in [2, {PPMD_MAX_ORDER}], got {order}")
    if store.states != ppmd_states(len(prime_docs), store.states):
        raise ValueError(f"the store spreads documents over {store.states} states, more than the "
                         f"{len(prime_docs)} train documents: build it with ppmd_states(len(prime_docs))")
    states = store.states
    encoder = pyppmd.Ppmd7Encoder(int(order), int(memory_mb) << 20)
    encoder.encode("".join(prime_docs[:len(prime_docs) - states]).encode("utf-8"))
    held = [d.encode("utf-8") for d in prime_docs[len(prime_docs) - states:]] or [b""]
    bits = np.zeros(store.groups, dtype=np.float64)
    for j, text in enumerate(held):
        encoder.encode(text)
        empty = _coded(encoder, [b""])
        for group, size in _coded_each(encoder, store.records(j)):
            bits[group] += 8.0 * (size - empty)
    empty = _coded(encoder, [b""])
    return bits, 8.0 * (_coded(encoder, store.in_order()) - empty)


def ppmd_doc_bits(prime_docs: Sequence[str], docs: Sequence[str], order: int, memory_mb: int,
                  states: int = PPMD_STATES) -> tuple[np.ndarray, float]:
    """``ppmd_store_bits`` of ``docs`` held in memory: ``(bits of each document, bits of them as one
    stream)``, round-robin over the last ``states`` train prefixes."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="kopitiam-ppmd-") as tmp:
        with DocStore(tmp, ppmd_states(len(prime_docs), states), groups=max(1, len(docs))) as store:
            for i, doc in enumerate(docs):
                store.add(doc, i)
        bits, stream = ppmd_store_bits(prime_docs, store, order, memory_mb)
    return bits[:len(docs)], stream


def ppmd_scores(prime_docs: Sequence[str], jobs: Sequence[tuple[str, int]], stores: dict[str, DocStore],
                memory_mb: int, pool: Executor | None = None) -> dict[tuple[str, int], Future]:
    """Futures of ``ppmd_store_bits`` of ``stores[name]`` for each ``(name, order)`` job, run in
    fresh processes (a fork of a small process is cheap, of one that loaded TensorFlow not): in
    ``pool`` (spawned processes), or in a pool of two made for the purpose and waited for."""
    if pool is None:
        with spawn_pool(min(2, len(jobs))) as own:
            futures = ppmd_scores(prime_docs, jobs, stores, memory_mb, own)
            wait(list(futures.values()))
            return futures
    return {job: pool.submit(ppmd_store_bits, prime_docs, stores[job[0]], job[1], memory_mb) for job in jobs}


def spawn_pool(workers: int = 2) -> ProcessPoolExecutor:
    """A pool of fresh (spawned, not forked) worker processes: each holds only what its jobs read."""
    return ProcessPoolExecutor(max_workers=max(1, min(int(workers), os.cpu_count() or 1)),
                               mp_context=get_context("spawn"))


def render_docs(docs: Sequence[np.ndarray], vocab: Vocab) -> list[str]:
    """Each document rendered alone (``render_text`` of one document: its characters, then END)."""
    table = np.array([END_CHAR, UNK_CHAR, *vocab.tokens[2:]], dtype=object)
    return ["".join(table[d]) + END_CHAR for d in docs]


__all__ = ["COMPRESSORS", "DocStore", "KneserNey", "RenderedSplit", "UNK_ID", "bits_summary", "compressed_size",
           "compressor_bits", "compressor_bpc", "compressor_cost", "count_targets", "ppmd_doc_bits", "ppmd_scores",
           "ppmd_states", "ppmd_store_bits", "render_docs", "render_text", "spawn_pool", "targets_of",
           "unigram_log2probs", "unigram_probs"]
