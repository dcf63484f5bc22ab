"""Stage ``split``: assign every document of the corpus to train, val or test, by thread.

Reads ``data/dedup/corpus.parquet`` (``CLEAN_SCHEMA``); writes ``data/split/{train,val,test}.parquet``
(same schema, rows in corpus order) and ``metrics/split.json`` (documents, threads and characters per
split and per source).

Rule: a thread's position in [0, 1) is the first 8 bytes of
``sha256(f"{salt}\\x1f{source}\\x1f{thread_id}")`` read as a big-endian integer over 2**64. Cumulative
fractions in the order train, val, test cut [0, 1) into three intervals. All posts of a thread share
one hash, so a thread never straddles splits; the rule depends on nothing but the thread's key, so
adding threads to the corpus never moves existing ones. Shares are therefore approximate (by thread,
not by document); ``metrics/split.json`` shows the realised shares.

Params (``split`` section): ``fractions`` (train/val/test, each in [0, 1], summing to 1; every split
must end up non-empty), ``salt`` (string; change it to draw another split).

Hashing with hashlib (standard library) rather than Python's ``hash()``: ``hash()`` is salted per
process, so it would not be reproducible.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from contracts.schemas import CLEAN_SCHEMA, check_columns
from pipeline.common import ParamsError, atomic_path, load_params, setup_logging, write_json_atomic, write_parquet
from pipeline.config import section

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SplitConfig:
    """The ``split`` section of params.yaml."""

    fractions: dict[str, Any]  # checked by check_fractions
    salt: str

    def __post_init__(self) -> None:
        check_fractions(self.fractions)


class SplitError(ValueError):
    """The corpus cannot be split as asked (a split would be empty, a column is missing...)."""


def check_fractions(fractions: Mapping[str, Any]) -> dict[str, float]:
    """Validated ``{train, val, test}`` fractions: each a number in [0, 1], summing to 1."""
    if not isinstance(fractions, Mapping):
        raise ParamsError(f"split.fractions must be a mapping of {', '.join(SPLITS)}; got {fractions!r}")
    unknown = sorted(set(fractions) - set(SPLITS))
    missing = [s for s in SPLITS if s not in fractions]
    if unknown or missing:
        raise ParamsError(f"split.fractions needs exactly the keys {', '.join(SPLITS)}; "
                          f"missing {missing or 'none'}, unknown {unknown or 'none'}")
    out: dict[str, float] = {}
    for name in SPLITS:
        value = fractions[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
            raise ParamsError(f"split.fractions.{name} must be a number in [0, 1], got {value!r}")
        out[name] = float(value)
    total = sum(out.values())
    if not math.isclose(total, 1.0, abs_tol=1e-9):
        raise ParamsError(f"split.fractions must sum to 1, got {total:g} "
                          f"({' + '.join(f'{s}={out[s]:g}' for s in SPLITS)}); "
                          f"{'documents would be assigned twice' if total > 1 else 'documents would be lost'}")
    return out


def thread_position(source: str, thread_id: str, salt: str) -> float:
    """The thread's deterministic position in [0, 1)."""
    digest = hashlib.sha256(f"{salt}\x1f{source}\x1f{thread_id}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign_splits(sources: list[str], thread_ids: list[str], fractions: Mapping[str, float], salt: str) -> np.ndarray:
    """Split index per row (0 train, 1 val, 2 test); rows of one (source, thread) always agree."""
    cuts = np.cumsum([fractions[s] for s in SPLITS])
    cache: dict[tuple[str, str], int] = {}
    out = np.empty(len(sources), dtype=np.int8)
    for i, key in enumerate(zip(sources, thread_ids)):
        idx = cache.get(key)
        if idx is None:
            pos = thread_position(key[0], key[1], salt)
            idx = cache[key] = min(int(np.searchsorted(cuts, pos, side="right")), len(SPLITS) - 1)
        out[i] = idx
    return out


def split_table(table: pa.Table, fractions: Mapping[str, float], salt: str, *,
                origin: str = "corpus") -> dict[str, pa.Table]:
    """The corpus cut into ``{split: table}`` (corpus order kept). Raises when a split is empty."""
    check_columns(table.schema, CLEAN_SCHEMA, origin=origin, error=SplitError,
                  expected=f"CLEAN_SCHEMA ({', '.join(CLEAN_SCHEMA.names)}): is it the dedupe stage's output?")
    table = table.select(CLEAN_SCHEMA.names).cast(CLEAN_SCHEMA)
    if table.num_rows == 0:
        raise SplitError(f"{origin}: the corpus is empty (0 documents): nothing to split; "
                         "check the clean/dedupe metrics")
    index = assign_splits(table.column("source").to_pylist(), table.column("thread_id").to_pylist(), fractions, salt)
    parts = {name: table.filter(pa.array(index == i)) for i, name in enumerate(SPLITS)}
    empty = [name for name, part in parts.items() if part.num_rows == 0]
    if empty:
        n_threads = len(set(zip(table.column("source").to_pylist(), table.column("thread_id").to_pylist())))
        raise SplitError(f"{origin}: split(s) {', '.join(empty)} would be empty ({table.num_rows} documents in "
                         f"{n_threads} threads, fractions {dict(fractions)}): every split needs at least one "
                         "thread; crawl more threads, raise the empty split's fraction or change split.salt")
    return parts


def split_metrics(parts: Mapping[str, pa.Table]) -> dict[str, Any]:
    """Documents, threads and characters per split (and per source within each split)."""
    total_docs = sum(t.num_rows for t in parts.values())
    out: dict[str, Any] = {"documents": total_docs, "splits": {}}
    for name, t in parts.items():
        by_source = t.group_by("source").aggregate(
            [("doc_id", "count"), ("n_chars", "sum"), ("thread_id", "count_distinct")]).sort_by("source")
        per_source = {row["source"]: {"documents": row["doc_id_count"], "characters": row["n_chars_sum"],
                                      "threads": row["thread_id_count_distinct"]} for row in by_source.to_pylist()}
        out["splits"][name] = {"documents": t.num_rows, "threads": sum(s["threads"] for s in per_source.values()),
                               "characters": sum(s["characters"] for s in per_source.values()),
                               "share": round(t.num_rows / total_docs, 6), "sources": per_source}
    return out


def load_config(params: Mapping[str, Any]) -> dict[str, Any]:
    """Every params value the stage reads: the ``split`` section."""
    return section("split", SplitConfig, params)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default="data/dedup/corpus.parquet")
    parser.add_argument("--out-dir", default="data/split")
    parser.add_argument("--metrics", default="metrics/split.json")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    setup_logging()
    params = load_config(load_params(args.params))
    fractions = check_fractions(params["fractions"])
    corpus = Path(args.corpus)
    if not corpus.exists():
        raise FileNotFoundError(f"{corpus} not found: run `dvc repro dedupe` first")
    parts = split_table(pq.read_table(corpus), fractions, str(params["salt"]), origin=str(corpus))
    for name, part in parts.items():
        with atomic_path(Path(args.out_dir) / f"{name}.parquet") as tmp:
            write_parquet(part, tmp)
    metrics = split_metrics(parts)
    write_json_atomic(args.metrics, metrics)
    log.info("split %d documents: %s", metrics["documents"],
             ", ".join(f"{n} {m['documents']} docs / {m['threads']} threads" for n, m in metrics["splits"].items()))


if __name__ == "__main__":
    from pipeline.common import run_main  # user errors: one line, exit 2
    run_main(main)
