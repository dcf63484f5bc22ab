"""Honest baselines for the character LSTM: unigram, Kneser-Ney character n-grams, PPMd, compressors.

Every baseline measures the SAME symbols as the LSTM's test loss (see model/evaluate.py): each
document is its vocabulary ids (characters outside the vocabulary are UNK) followed by one END, so a
document of n characters contributes n + 1 targets. Models are trained on the train split only.

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
- ``compressor_bits``: gzip -9, bzip2 -9 and xz -9 (Python's gzip/bz2/lzma modules, the same
  libraries as the command-line tools): bits of (train + test) minus bits of train alone, i.e. the
  cost of the test text for a compressor primed on the train text. The text given to them is the
  same symbol stream: characters (UNK shown as U+001A), each document followed by U+0000 as END.
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
  stream (cross-document context and adaptation included, as the other compressors read it).
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import math
import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Callable, Sequence

import numpy as np

from pipeline.vocab import END_ID, UNK_ID, Vocab

END_CHAR = "\x00"  # the END symbol in the compressors' text
UNK_CHAR = "\x1a"  # the UNK symbol in the compressors' text (ASCII SUB, "substitute")

COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "gzip_9": lambda b: gzip.compress(b, compresslevel=9, mtime=0),
    "bzip2_9": lambda b: bz2.compress(b, compresslevel=9),
    "xz_9": lambda b: lzma.compress(b, preset=9),
}


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
def unigram_log2probs(train: Sequence[np.ndarray], test: Sequence[np.ndarray], vocab_size: int,
                      alpha: float = 1.0) -> np.ndarray:
    """log2 P(target) for every test target under add-``alpha`` unigram frequencies from train."""
    if alpha <= 0:
        raise ValueError(f"unigram alpha must be > 0 (else unseen symbols get probability 0), got {alpha}")
    counts = np.zeros(vocab_size, dtype=np.float64)
    for d in train:
        counts += np.bincount(d, minlength=vocab_size)[:vocab_size]
    counts[END_ID] += len(train)
    probs = (counts + alpha) / (counts.sum() + alpha * vocab_size)
    targets = _targets(test)
    return np.log2(probs[targets])


def _targets(docs: Sequence[np.ndarray]) -> np.ndarray:
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


# -- compressors -----------------------------------------------------------------------------------
def render_text(docs: Sequence[np.ndarray], vocab: Vocab) -> str:
    """The symbol stream as text for the compressors: characters, UNK as U+001A, END as U+0000."""
    table = np.array([END_CHAR, UNK_CHAR, *vocab.tokens[2:]], dtype=object)
    return "".join("".join(table[d]) + END_CHAR for d in docs)


def compressor_bits(name: str, train_text: str, test_text: str) -> float:
    """Bits the compressor ``name`` spends on ``test_text`` after having seen ``train_text``."""
    try:
        compress = COMPRESSORS[name]
    except KeyError:
        raise ValueError(f"unknown compressor {name!r}; known: {', '.join(COMPRESSORS)}") from None
    train_b, test_b = train_text.encode("utf-8"), test_text.encode("utf-8")
    return 8.0 * (len(compress(train_b + test_b)) - len(compress(train_b)))


def compressor_bpc(name: str, train_texts: Sequence[str], test_texts: Sequence[str], vocab: Vocab,
                   context_chars: int | None = None) -> dict[str, float]:
    """Bits per target the compressor ``name`` spends on ``test_texts``, given the last
    ``context_chars`` characters of the rendered ``train_texts`` (None: all of them), and alone."""
    test_docs = [vocab.encode(t) for t in test_texts]
    n_targets = count_targets(test_docs)
    if not n_targets:
        raise ValueError("no test text: no compressor baseline to measure")
    train = render_text([vocab.encode(t) for t in train_texts], vocab)
    if context_chars is not None:
        train = train[max(len(train) - int(context_chars), 0):]
    test = render_text(test_docs, vocab)
    return {"bpc": compressor_bits(name, train, test) / n_targets,
            "alone_bpc": compressor_bits(name, "", test) / n_targets,
            "context_chars": len(train), "targets": n_targets}


# -- PPMd ------------------------------------------------------------------------------------------
PPMD_STATES = 128  # train-prefix states the test documents are scored from, round-robin (byte rounding)
PPMD_MAX_ORDER = 64  # pyppmd's bound (and its least: 2)


def _coded_bytes(encoder, payloads: Sequence[bytes]) -> list[int]:
    """Bytes ``encoder`` writes to code each payload and end the stream, each from its present state
    (a forked child codes one payload; the encoder here is left as it was)."""
    out = []
    for data in payloads:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: code this payload from the copied state, report, vanish
            code = 1
            try:
                os.close(read_end)
                n = len(encoder.encode(data)) + len(encoder.flush())
                os.write(write_end, n.to_bytes(8, "little"))
                code = 0
            finally:
                os._exit(code)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as fh:
            got = fh.read()
        _, status = os.waitpid(pid, 0)
        if status != 0 or len(got) != 8:
            raise RuntimeError(f"PPMd child process failed (wait status {status}) coding {len(data)} bytes")
        out.append(int.from_bytes(got, "little"))
    return out


def ppmd_doc_bits(prime_docs: Sequence[str], docs: Sequence[str], order: int, memory_mb: int,
                  states: int = PPMD_STATES) -> tuple[np.ndarray, float]:
    """``(bits of each of docs, bits of docs as one stream)`` under PPMd of ``order`` with ``memory_mb``
    of model memory, each document coded alone after ``prime_docs`` (rendered texts as
    ``render_text`` makes them, END included), round-robin from the last ``states`` train prefixes
    (module docstring). The stream is coded after the whole prime."""
    import pyppmd

    if not hasattr(os, "fork"):
        raise RuntimeError("the PPMd baseline forks a process per document: it needs a POSIX system")
    if not 2 <= order <= PPMD_MAX_ORDER:
        raise ValueError(f"PPMd order must be in [2, {PPMD_MAX_ORDER}], got {order}")
    states = max(1, min(int(states), len(prime_docs)))
    encoder = pyppmd.Ppmd7Encoder(int(order), int(memory_mb) << 20)
    encoder.encode("".join(prime_docs[:len(prime_docs) - states]).encode("utf-8"))
    held = [d.encode("utf-8") for d in prime_docs[len(prime_docs) - states:]] or [b""]
    payloads = [d.encode("utf-8") for d in docs]
    bits = np.zeros(len(payloads), dtype=np.float64)
    for j, text in enumerate(held):
        encoder.encode(text)
        mine = list(range(j, len(payloads), len(held)))
        empty, *coded = _coded_bytes(encoder, [b"", *(payloads[i] for i in mine)])
        bits[mine] = 8.0 * (np.asarray(coded, dtype=np.float64) - empty)
    empty, stream = _coded_bytes(encoder, [b"", b"".join(payloads)])
    return bits, 8.0 * (stream - empty)


def ppmd_prime(train_docs: Sequence[str], context_chars: int) -> list[str]:
    """The last whole rendered train documents holding at most ``context_chars`` characters."""
    kept, total = [], 0
    for doc in reversed(train_docs):
        if total + len(doc) > context_chars:
            break
        kept.append(doc)
        total += len(doc)
    return kept[::-1]


def ppmd_scores(prime_docs: Sequence[str], jobs: Sequence[tuple[str, int]], splits: dict[str, Sequence[str]],
                memory_mb: int) -> dict[tuple[str, int], tuple[np.ndarray, float]]:
    """``ppmd_doc_bits`` of ``splits[name]`` for each ``(name, order)`` job, in fresh processes (a
    fork of a small process is cheap, of one that loaded TensorFlow not), two at a time."""
    ctx = get_context("spawn")
    with ProcessPoolExecutor(max_workers=max(1, min(2, len(jobs), os.cpu_count() or 1)), mp_context=ctx) as pool:
        futures = {job: pool.submit(ppmd_doc_bits, prime_docs, splits[job[0]], job[1], memory_mb) for job in jobs}
        return {job: f.result() for job, f in futures.items()}


def render_docs(docs: Sequence[np.ndarray], vocab: Vocab) -> list[str]:
    """Each document rendered alone (``render_text`` of one document: its characters, then END)."""
    table = np.array([END_CHAR, UNK_CHAR, *vocab.tokens[2:]], dtype=object)
    return ["".join(table[d]) + END_CHAR for d in docs]


__all__ = ["COMPRESSORS", "KneserNey", "UNK_ID", "bits_summary", "compressor_bits", "compressor_bpc",
           "count_targets", "ppmd_doc_bits", "ppmd_prime", "ppmd_scores", "render_docs", "render_text",
           "unigram_log2probs"]
