"""Corpora for the split, vocab, batches and loader tests: a CLEAN_SCHEMA table with a realistic
length mix (``make_corpus``) and the split files plus vocabulary built from it (``make_splits``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from contracts.schemas import CLEAN_SCHEMA
from pipeline import split as S
from pipeline import vocab as V

ALPHABET = list("abcdefghijklmnopqrstuvwxyz") * 3 + list("      ,.!?'") * 2 + list("ETAOIN") + ["lah", "😂", "é"]
LONG = "".join(chr(ord("a") + i % 26) for i in range(700))  # several chunks at max_len 64


def make_corpus(n_threads: int = 60, *, sources: tuple[str, ...] = ("forum", "books"), seed: int = 0,
                max_posts: int = 8, extra_text: dict[int, str] | None = None) -> pa.Table:
    """A CLEAN_SCHEMA corpus: threads of 1..max_posts posts, lognormal lengths (2 to ~600 chars)."""
    rng = np.random.default_rng(seed)
    rows = []
    for src in sources:
        for th in range(n_threads):
            for pos in range(int(rng.integers(1, max_posts + 1))):
                n = int(min(600, max(2, rng.lognormal(3.5, 1.0))))
                text = "".join(rng.choice(ALPHABET, n))[:n]
                rows.append({"doc_id": f"{src}-{th}-{pos}", "source": src, "board": "b", "thread_id": str(th),
                             "thread_title": f"thread {th}", "post_id": f"{th}.{pos}", "position": pos,
                             "author_hash": None, "posted_at": None, "text": text, "n_chars": len(text),
                             "quoted_post_ids": []})
    for i, text in (extra_text or {}).items():
        rows[i] = {**rows[i], "text": text, "n_chars": len(text)}
    return pa.Table.from_pylist(rows, schema=CLEAN_SCHEMA)


def make_splits(root: Path, *, n_threads: int = 60) -> tuple[dict[str, Path], V.Vocab]:
    """Split files (one val document is ``LONG``, one holds characters unknown to train) and a vocabulary."""
    parts = S.split_table(make_corpus(n_threads), {"train": 0.8, "val": 0.1, "test": 0.1}, "t")
    for name, text in (("train", LONG), ("val", "ünknown ŋ"), ("test", "x")):
        rows = parts[name].to_pylist()
        rows[0].update(text=text, n_chars=len(text))
        parts[name] = pa.Table.from_pylist(rows, schema=parts[name].schema)
    paths = {}
    for name, table in parts.items():
        paths[name] = root / "split" / f"{name}.parquet"
        paths[name].parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, paths[name])
    vocab = V.build_vocab(V.iter_texts(paths["train"]), min_count=1)
    return paths, vocab
