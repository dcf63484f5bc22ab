"""Character vocabulary: the codec every later stage shares.

Ids are positions in ``Vocab.tokens``. Two special tokens come first and keep fixed ids:

- ``END`` (id 0): ends every document; right-padding of batches also uses it (see batches).
- ``UNK`` (id 1): any character outside the vocabulary.

Then the characters, most frequent first (ties broken by code point, so the order is stable).
``Vocab.hash`` is a SHA-256 over the token list only: two vocabularies with the same id mapping
have the same hash, whatever their counts. Trained models record it and refuse another.

The JSON file (``data/vocab.json``) is readable on purpose::

    {"specials": {"END": 0, "UNK": 1}, "tokens": ["<END>", "<UNK>", " ", "e", ...],
     "counts": [n_docs, 0, 1234, ...], "hash": "sha256:...", ...}

Stage ``vocab`` (``python -m pipeline.vocab``, ``main()`` below): builds the vocabulary from
``data/split/train.parquet`` only (params ``vocab.min_count``, ``vocab.max_size``), writes
``data/vocab.json`` and ``metrics/vocab.json`` (size, coverage of train and val text = share of
their characters inside the vocabulary, UNK counts and the most frequent unknown characters of val).
Counting runs on code points with ``numpy.unique`` over record batches, so memory stays bounded and
no Python loop runs per character.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from pipeline.config import section, setting

END_TOKEN = "<END>"
UNK_TOKEN = "<UNK>"
END_ID = 0
UNK_ID = 1
SPECIALS = {"END": END_ID, "UNK": UNK_ID}

log = logging.getLogger(__name__)


def tokens_hash(tokens: Sequence[str]) -> str:
    """Content hash of an id mapping: ``"sha256:<hex>"`` over the JSON token list."""
    payload = json.dumps(list(tokens), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return "sha256:" + hashlib.sha256(payload).hexdigest()


@dataclass(frozen=True)
class Vocab:
    """An immutable character <-> id mapping with END and UNK at ids 0 and 1."""

    tokens: tuple[str, ...]
    counts: tuple[int, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if len(self.tokens) < 2 or self.tokens[END_ID] != END_TOKEN or self.tokens[UNK_ID] != UNK_TOKEN:
            raise ValueError(f"a vocabulary must start with {END_TOKEN!r}, {UNK_TOKEN!r}; got {self.tokens[:2]!r}")
        chars = self.tokens[2:]
        bad = [c for c in chars if len(c) != 1]
        if bad:
            raise ValueError(f"vocabulary entries after the specials must be single characters; got {bad[:5]!r}")
        if len(set(chars)) != len(chars):
            raise ValueError("vocabulary has repeated characters")
        if self.counts and len(self.counts) != len(self.tokens):
            raise ValueError(f"counts has {len(self.counts)} entries for {len(self.tokens)} tokens")
        index = {c: i + 2 for i, c in enumerate(chars)}
        object.__setattr__(self, "_index", index)
        top = max((ord(c) for c in chars), default=0)
        lut = np.full(top + 1, UNK_ID, dtype=np.int32)
        for c, i in index.items():
            lut[ord(c)] = i
        object.__setattr__(self, "_lut", lut)

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_counts(cls, char_counts: dict[str, int], *, min_count: int = 1, max_size: int | None = None,
                    n_docs: int = 0) -> "Vocab":
        """Most frequent characters first (ties by code point), filtered by ``min_count`` and
        capped so that the whole vocabulary, specials included, has at most ``max_size`` ids."""
        if min_count < 1:
            raise ValueError(f"min_count must be >= 1, got {min_count}")
        if max_size is not None and max_size < 3:
            raise ValueError(f"max_size must be >= 3 (END, UNK and one character), got {max_size}")
        ranked = sorted(((c, n) for c, n in char_counts.items() if n >= min_count), key=lambda cn: (-cn[1], ord(cn[0])))
        if max_size is not None:
            ranked = ranked[: max_size - 2]
        tokens = (END_TOKEN, UNK_TOKEN, *(c for c, _ in ranked))
        counts = (n_docs, 0, *(n for _, n in ranked))
        return cls(tokens, counts)

    # -- codec --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def hash(self) -> str:
        return tokens_hash(self.tokens)

    def id_of(self, char: str) -> int:
        return self._index.get(char, UNK_ID)  # type: ignore[attr-defined]

    def encode(self, text: str) -> np.ndarray:
        """Text -> int32 ids (no END appended). Unknown characters become ``UNK_ID``."""
        if not text:
            return np.zeros(0, dtype=np.int32)
        cps = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        lut = self._lut  # type: ignore[attr-defined]
        inside = cps < len(lut)
        ids = np.full(cps.shape, UNK_ID, dtype=np.int32)
        ids[inside] = lut[cps[inside]]
        return ids

    def count_unknown(self, text: str) -> int:
        """How many characters of ``text`` would encode as UNK."""
        return int(np.count_nonzero(self.encode(text) == UNK_ID))

    def decode(self, ids: Iterable[int], *, stop_at_end: bool = False, unk: str = "\ufffd") -> str:
        """Ids -> text. END is dropped (or stops decoding with ``stop_at_end``); UNK shows as ``unk``."""
        out = []
        for i in ids:
            i = int(i)
            if i == END_ID:
                if stop_at_end:
                    break
                continue
            out.append(unk if i == UNK_ID else self.tokens[i])
        return "".join(out)

    # -- files --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "specials": dict(SPECIALS),
            "tokens": list(self.tokens),
            "counts": list(self.counts),
            "size": len(self.tokens),
            "hash": self.hash,
            **self.extra,
        }

    def save(self, path: str | os.PathLike) -> None:
        """Write readable JSON atomically (temporary file in the same folder, then rename)."""
        from pipeline.common import atomic_path

        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, origin: str = "<dict>") -> "Vocab":
        try:
            tokens = tuple(data["tokens"])
        except KeyError:
            raise ValueError(f"{origin}: not a kopitiam vocabulary (no 'tokens' key)") from None
        vocab = cls(tokens, tuple(data.get("counts", ())),
                    {k: v for k, v in data.items() if k not in {"specials", "tokens", "counts", "size", "hash"}})
        stored = data.get("hash")
        if stored is not None and stored != vocab.hash:
            raise ValueError(f"{origin}: stored hash {stored} does not match its tokens ({vocab.hash}); "
                             "the file was edited by hand or is corrupt")
        return vocab

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Vocab":
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"vocabulary file {path} not found: run `dvc repro vocab` first")
        with open(path, encoding="utf-8") as fh:
            return cls.from_dict(json.load(fh), origin=str(path))


# -- stage `vocab` ------------------------------------------------------------------------------
@dataclass(frozen=True)
class VocabConfig:
    """The ``vocab`` section of params.yaml."""

    min_count: int = setting(ge=1)  # a character seen fewer times in train becomes UNK
    max_size: int | None = setting(ge=3)  # most ids in all, END and UNK included (null: no cap)
_COUNT_CHUNK = 1_000_000  # characters counted per numpy.unique call (bounds its sort's memory)


def count_chars(texts: Iterable[str]) -> tuple[dict[str, int], int, int]:
    """``(char -> count, n_documents, n_characters)`` over ``texts``."""
    totals: dict[int, int] = {}
    n_docs = n_chars = 0
    pending: list[str] = []
    size = 0

    def flush() -> None:
        cps = np.frombuffer("".join(pending).encode("utf-32-le"), dtype=np.uint32)
        values, counts = np.unique(cps, return_counts=True)
        for v, n in zip(values.tolist(), counts.tolist()):
            totals[v] = totals.get(v, 0) + n
        pending.clear()

    for text in texts:
        n_docs += 1
        n_chars += len(text)
        pending.append(text)
        size += len(text)
        if size >= _COUNT_CHUNK:
            flush()
            size = 0
    if pending:
        flush()
    return {chr(cp): n for cp, n in totals.items()}, n_docs, n_chars


def coverage(vocab: Vocab, char_counts: dict[str, int], *, top_unknown: int = 20) -> dict[str, Any]:
    """Share of characters (by count) inside ``vocab``, the UNK count and the commonest unknowns."""
    total = sum(char_counts.values())
    unknown = {c: n for c, n in char_counts.items() if vocab.id_of(c) == UNK_ID}
    n_unk = sum(unknown.values())
    top = sorted(unknown.items(), key=lambda cn: (-cn[1], ord(cn[0])))[:top_unknown]
    return {"characters": total, "unknown": n_unk, "coverage": round(1.0 - n_unk / total, 8) if total else 1.0,
            "distinct_unknown": len(unknown), "top_unknown": [[f"U+{ord(c):04X}", c, n] for c, n in top]}


def build_vocab(texts: Iterable[str], *, min_count: int = 1, max_size: int | None = None) -> Vocab:
    """A vocabulary from ``texts`` (train text only), with how it was built in its ``extra``."""
    return vocab_from_counts(*count_chars(texts), min_count=min_count, max_size=max_size)


def vocab_from_counts(counts: dict[str, int], n_docs: int, n_chars: int, *, min_count: int = 1,
                      max_size: int | None = None) -> Vocab:
    """``Vocab.from_counts`` plus a record of how it was built (kept in the JSON, not in the hash)."""
    vocab = Vocab.from_counts(counts, min_count=min_count, max_size=max_size, n_docs=n_docs)
    extra = {"min_count": min_count, "max_size": max_size, "train_documents": n_docs, "train_characters": n_chars,
             "train_coverage": coverage(vocab, counts)["coverage"]}
    return Vocab(vocab.tokens, vocab.counts, extra)


def iter_texts(path: str | os.PathLike, *, batch_rows: int = 8_192,
               sizes: dict[str, int] | None = None) -> Iterable[str]:
    """The ``text`` column of a split file, in record batches (bounded memory); ``sizes["bytes"]``,
    when given, adds up the texts' UTF-8 bytes."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `dvc repro split` first")
    pf = pq.ParquetFile(path, pre_buffer=False)  # streamed: see contracts.files.parquet_reader
    if "text" not in pf.schema_arrow.names:
        raise ValueError(f"{path}: no 'text' column (columns: {', '.join(pf.schema_arrow.names)}); "
                         "is it a data/split/<split>.parquet file?")
    for batch in pf.iter_batches(batch_size=batch_rows, columns=["text"]):
        if sizes is not None:
            sizes["bytes"] += int(pc.sum(pc.binary_length(batch.column(0))).as_py() or 0)
        yield from (t or "" for t in batch.column(0).to_pylist())


def vocab_metrics(vocab: Vocab, train_counts: dict[str, int], val_counts: dict[str, int],
                  n_val_docs: int) -> dict[str, Any]:
    """``metrics/vocab.json``: size, hash, how it was built and its coverage of train and val."""
    return {"size": len(vocab), "hash": vocab.hash, "specials": dict(SPECIALS), "min_count": vocab.extra["min_count"],
            "max_size": vocab.extra["max_size"], "train_distinct_characters": len(train_counts),
            "train": coverage(vocab, train_counts), "val": {"documents": n_val_docs, **coverage(vocab, val_counts)}}


def load_config(params: Mapping[str, Any]) -> dict[str, Any]:
    """Every params value the stage reads: the ``vocab`` section."""
    return section("vocab", VocabConfig, params)


def main(argv: list[str] | None = None) -> None:
    import argparse

    from pipeline.common import load_params, setup_logging, write_json_atomic

    parser = argparse.ArgumentParser(description="Build the character vocabulary from the train split.")
    parser.add_argument("--train", default="data/split/train.parquet")
    parser.add_argument("--val", default="data/split/val.parquet")
    parser.add_argument("--out", default="data/vocab.json")
    parser.add_argument("--metrics", default="metrics/vocab.json")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    setup_logging()
    cfg = load_config(load_params(args.params))
    min_count, max_size = cfg["min_count"], cfg["max_size"]
    started = time.perf_counter()
    sizes = {"bytes": 0}
    train_counts, n_docs, n_chars = count_chars(iter_texts(args.train, sizes=sizes))
    if n_docs == 0 or n_chars == 0:
        raise ValueError(f"{args.train} holds no text ({n_docs} documents): cannot build a vocabulary "
                         "from an empty train split; check metrics/split.json")
    vocab = vocab_from_counts(train_counts, n_docs, n_chars, min_count=min_count, max_size=max_size)
    val_counts, n_val_docs, _ = count_chars(iter_texts(args.val, sizes=sizes))
    vocab.save(args.out)
    metrics = vocab_metrics(vocab, train_counts, val_counts, n_val_docs)
    seconds = time.perf_counter() - started
    text_mb = sizes["bytes"] / 1e6
    metrics.update(seconds=round(seconds, 3), posts_per_s=round((n_docs + n_val_docs) / max(seconds, 1e-9), 1),
                   mb_per_s=round(text_mb / max(seconds, 1e-9), 3))
    write_json_atomic(args.metrics, metrics)
    log.info("vocab: %d ids (%d distinct train characters), coverage train %.5f val %.5f, %d unknown val characters; "
             "%.1f s (%.0f posts/s, %.2f MB/s)", len(vocab), len(train_counts), metrics["train"]["coverage"],
             metrics["val"]["coverage"], metrics["val"]["unknown"], seconds, metrics["posts_per_s"],
             metrics["mb_per_s"])


if __name__ == "__main__":
    from pipeline.common import run_main  # user errors: one line, exit 2
    run_main(main)
