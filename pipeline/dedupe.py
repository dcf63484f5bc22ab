"""Stage `dedupe`: ``data/clean/posts.parquet`` -> ``data/dedup/corpus.parquet`` (CLEAN_SCHEMA),
``data/dedup/duplicates.parquet`` (DUPLICATES_SCHEMA) and ``metrics/dedupe.json``.

Exact duplicates: same blake2b-64 hash of the text casefolded with whitespace collapsed.
Near duplicates: MinHash over character shingles with LSH banding (pipeline.minhash: vectorised
NumPy one-permutation hashing, 30-60x faster than datasketch here; the module docstring has the
numbers), each LSH candidate pair verified by its estimated Jaccard similarity >= ``threshold``.
Only texts of at least ``near_min_chars`` take part in near-duplicate search (short replies such as
"My lord." are too small for shingles to tell apart; they still go through the exact pass).

Survivor rule: documents are visited in order of (posted_at, doc_id), null posted_at last. A
document is a duplicate of the FIRST earlier document that was itself kept and that it matches
(exact hash, else a verified near pair); otherwise it is kept. So each cluster keeps its earliest
post, every removed document names a kept one, and its similarity to that survivor is >= threshold
(no chains of drifting near-copies).

Memory (passes and on-disk partitions). Pass 1 reads the posts in record batches and hashes them
in a process pool (bounded window, ordered results); per document only its keys stay in memory
(about 35 bytes: doc_id, posted_at, exact key, near flag, source code), the MinHash signatures go to
a file beside the outputs. The exact pass sorts those keys in memory; the near search
(pipeline.lsh_disk) reads the signatures back in blocks and works on on-disk partitions of band
keys and of candidate pairs, one at a time, with the survivors of the search in memory. Pass 2
streams the posts again and writes the survivors. With ``engine: dask``, pipeline.dedupe_dask runs
pass 1, the LSH grouping and the verification on a Dask cluster (its workers hold the signatures
and spill them to disk past their memory limit), with the same result.

Params (``dedupe`` section): shingle, num_perm, bands, threshold, near_min_chars, seed,
bucket_window, min_shared_bands, batch_rows, workers, engine; with engine dask also the ``dask``
section.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from contracts.schemas import CLEAN_SCHEMA, DUPLICATES_SCHEMA, check_columns
from pipeline import dask_engine, lsh_disk
from pipeline.common import (
    atomic_path,
    load_params,
    parquet_reader,
    parquet_writer,
    setup_logging,
    write_json_atomic,
    write_parquet,
)
from pipeline.config import section, setting
from pipeline.dedupe_core import COLUMNS, apply_near_pairs, exact_pass, hash_row_groups, rank_of, row_group_tasks
from pipeline.dedupe_dask import find_duplicates_dask
from pipeline.lsh_disk import SigWriter
from pipeline.pool import ordered_map, resolve_workers
from pipeline.progress import Progress

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class DedupeConfig:
    """The ``dedupe`` section of params.yaml (values and their meanings are there)."""

    shingle: int = setting(ge=1)
    num_perm: int = setting(ge=1)
    bands: int = setting(ge=1)
    threshold: float = setting(ge=0, le=1)
    near_min_chars: int = setting(ge=0)
    seed: int = setting(ge=0)
    bucket_window: int = setting(ge=1)
    min_shared_bands: int = setting(ge=1)
    batch_rows: int = setting(ge=1)
    workers: int = setting(ge=0)
    engine: str = setting(choices=dask_engine.ENGINES)

    def __post_init__(self) -> None:
        if self.num_perm % self.bands:
            raise ValueError(f"dedupe.num_perm ({self.num_perm}) must be a multiple of dedupe.bands ({self.bands})")


def source_codes(sources: np.ndarray, names: dict[str, int]) -> np.ndarray:
    """Codes of a batch's source names (new names get the next codes, in ``names``); a batch is
    usually one source, so that case costs one vectorised comparison, not a lookup per post."""
    if len(sources) and (sources == sources[0]).all():
        return np.full(len(sources), names.setdefault(sources[0], len(names)), dtype=np.int32)
    return np.array([names.setdefault(s, len(names)) for s in sources.tolist()], dtype=np.int32)


def read_docs(path: Path, cfg: dict[str, Any], signatures: Path) -> dict[str, np.ndarray]:
    """Pass 1: hash every post of ``path`` (pipeline.pool: workers, ordered, bounded window). The
    per-document keys stay in memory (about 35 bytes a document: doc_id, posted_at, exact key, near
    flag, source code); the signatures go to the file ``signatures`` (pipeline.lsh_disk)."""
    pf = pq.ParquetFile(path)
    check_columns(pf.schema_arrow, COLUMNS, origin=str(path), expected="CLEAN_SCHEMA (the clean stage's posts)")
    tasks = row_group_tasks(pf, cfg["batch_rows"])
    workers = resolve_workers(cfg["workers"], len(tasks))
    n = pf.metadata.num_rows
    docs = {"doc_id": np.empty(n, "S16"), "posted": np.empty(n, np.int64), "exact": np.empty(n, np.uint64),
            "near": np.empty(n, bool), "source": np.empty(n, np.int32)}
    names: dict[str, int] = {}
    filled = n_bytes = 0
    writer = SigWriter(signatures, cfg["num_perm"])
    results = ordered_map(hash_row_groups, ((path, groups, cfg) for groups in tasks), workers=workers)
    with Progress(n, "dedupe", "doc", log) as bar, closing(results):
        for part in results:
            rows = slice(filled, filled + len(part["doc_id"]))
            for key in ("doc_id", "posted", "exact", "near"):
                docs[key][rows] = part[key]
            docs["source"][rows] = source_codes(part["source"], names)
            n_bytes += int(part["bytes"].sum())
            writer.write(part["sig"])
            filled = rows.stop
            bar.update(len(part["doc_id"]))
    writer.close()
    if filled != n:
        raise RuntimeError(f"{path}: read {filled} rows, metadata says {n}")
    return {**docs, "bytes": np.array([n_bytes]), "source_names": np.array(list(names) or [""], dtype=object)}


def find_duplicates_on_disk(docs: dict[str, np.ndarray], signatures: Path, cfg: dict[str, Any],
                            work: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``dedupe_core.find_duplicates`` with the signatures, band keys and pairs on disk
    (pipeline.lsh_disk): the same result. Drops ``posted`` and ``exact`` from ``docs`` once used."""
    rank = rank_of(docs)
    del docs["posted"]
    dup_of, kind, sim = exact_pass(docs.pop("exact"), rank)
    cand = np.flatnonzero((kind == 0) & docs["near"])
    if len(cand) > 1:
        sig = lsh_disk.SigReader(signatures, cfg["num_perm"])
        try:
            a, b = lsh_disk.candidate_pairs(sig, cand, rank, cfg, work)
            s = lsh_disk.similarity(sig, a, b)
        finally:
            sig.close()
        ok = s >= cfg["threshold"]
        apply_near_pairs(a[ok], b[ok], s[ok], rank, dup_of, kind, sim)
        log.info("dedupe: %d candidates, %d candidate pairs, %d verified", len(cand), len(a), int(ok.sum()))
    return dup_of, kind, sim


def load_config(params: Mapping[str, Any]) -> dict[str, Any]:
    """Every params value the stage reads: the ``dedupe`` and ``dask`` sections."""
    return {"dedupe": section("dedupe", DedupeConfig, params), "dask": section("dask", dask_engine.DaskConfig, params)}


def run_dedupe(posts: Path, corpus: Path, duplicates: Path, cfg: dict[str, Any],
               dropped: Path | None = None, dask_cfg: dict[str, Any] | None = None,
               engine: dask_engine.DaskEngine | None = None) -> dict[str, Any]:
    """Dedupe ``posts`` into ``corpus`` and ``duplicates``; return the metrics.

    ``cfg["engine"] == "dask"`` runs the search on ``engine`` (an open DaskEngine) or on one made from
    ``dask_cfg`` (the ``dask`` section) for this call.
    """
    dask_engine.check_engine("dedupe", cfg["engine"])
    if cfg["engine"] == "dask" and engine is None:
        if dask_cfg is None:
            raise ValueError("dedupe.engine = 'dask' needs the dask section (dask_cfg) or an open engine")
        with dask_engine.DaskEngine(dask_cfg) as own:
            return run_dedupe(posts, corpus, duplicates, cfg, dropped, dask_cfg, own)
    started = time.perf_counter()
    if cfg["engine"] == "dask":
        docs, dup_of, kind, sim = find_duplicates_dask(engine, posts, cfg)
    else:
        corpus.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=corpus.parent, prefix=".dedupe-") as tmp:  # beside the output: disk
            docs = read_docs(posts, cfg, Path(tmp) / "signatures")
            dup_of, kind, sim = find_duplicates_on_disk(docs, Path(tmp) / "signatures", cfg, Path(tmp))
    keep = kind == 0
    with atomic_path(corpus) as tmp, parquet_writer(tmp, CLEAN_SCHEMA) as writer:
        offset, out = 0, {"bytes_out": 0, "chars_kept": 0}
        for batch in parquet_reader(posts).iter_batches(batch_size=cfg["batch_rows"]):
            mask = pa.array(keep[offset:offset + batch.num_rows])
            kept = pa.Table.from_batches([batch]).filter(mask).cast(CLEAN_SCHEMA)
            writer.write_table(kept)
            out["bytes_out"] += pc.sum(pc.binary_length(kept.column("text"))).as_py() or 0
            out["chars_kept"] += pc.sum(kept.column("n_chars")).as_py() or 0
            offset += batch.num_rows
    rows = np.flatnonzero(~keep)
    dup_table = pa.table({
        "doc_id": pa.array(docs["doc_id"][rows].astype(str), pa.string()),
        "kept_doc_id": pa.array(docs["doc_id"][dup_of[rows]].astype(str), pa.string()),
        "source": pa.array(docs["source_names"][docs["source"][rows]].tolist(), pa.string()),
        "kind": pa.array(np.where(kind[rows] == 1, "exact", "near").tolist(), pa.string()),
        "similarity": pa.array(sim[rows], pa.float32()),
    }, schema=DUPLICATES_SCHEMA)
    with atomic_path(duplicates) as tmp:
        write_parquet(dup_table, tmp)
    seconds = time.perf_counter() - started
    return {**build_metrics(docs, kind, dup_of, seconds, dropped), **out}


def build_metrics(docs, kind, dup_of, seconds: float, dropped: Path | None) -> dict[str, Any]:
    per: dict[str, dict[str, int]] = {}
    names = docs["source_names"].tolist()
    for code in sorted(set(docs["source"].tolist()), key=lambda c: names[c]):
        m = docs["source"] == code
        per[names[code]] = {"in": int(m.sum()), "kept": int((m & (kind == 0)).sum()),
                            "exact": int((m & (kind == 1)).sum()), "near": int((m & (kind == 2)).sum())}
    if dropped is not None and dropped.exists():  # accounting against the raw rows: raw = kept + dropped + dups
        counts = pc.value_counts(pq.read_table(dropped, columns=["source"]).column("source")).to_pylist()
        for item in counts:
            counts_of = per.setdefault(item["values"], {"in": 0, "kept": 0, "exact": 0, "near": 0})
            counts_of["dropped_clean"] = item["counts"]
        for src, p in per.items():
            p.setdefault("dropped_clean", 0)
            p["raw"] = p["in"] + p["dropped_clean"]
            p["duplicates"] = p["exact"] + p["near"]
            if p["raw"] != p["kept"] + p["dropped_clean"] + p["duplicates"]:
                raise AssertionError(f"accounting broken for source {src}: {p}")
    n_bytes = int(docs["bytes"].sum())
    survivors = dup_of[kind > 0]
    return {"per_source": per, "docs_in": int(len(kind)), "kept": int((kind == 0).sum()),
            "exact_duplicates": int((kind == 1).sum()), "near_duplicates": int((kind == 2).sum()),
            "duplicate_clusters": int(len(np.unique(survivors))), "bytes_in": n_bytes,
            "seconds": round(seconds, 3), "mb_per_s": round(n_bytes / 1e6 / max(seconds, 1e-9), 3),
            "posts_per_s": round(len(kind) / max(seconds, 1e-9), 1)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", default="data/clean/posts.parquet", type=Path)
    parser.add_argument("--dropped", default="data/clean/dropped.parquet", type=Path)
    parser.add_argument("--out-dir", default="data/dedup", type=Path)
    parser.add_argument("--metrics", default="metrics/dedupe.json", type=Path)
    parser.add_argument("--params", default="params.yaml", type=Path)
    args = parser.parse_args(argv)
    setup_logging()
    config = load_config(load_params(args.params))
    cfg, dask_cfg = config["dedupe"], config["dask"]
    if not args.posts.exists():
        raise SystemExit(f"{args.posts} not found: run the clean stage first")
    try:
        metrics = run_dedupe(args.posts, args.out_dir / "corpus.parquet", args.out_dir / "duplicates.parquet",
                             cfg, args.dropped, dask_cfg)
    except dask_engine.DaskSchedulerError as exc:
        log.error("%s: %s", args.params, exc)
        raise SystemExit(f"dedupe: {args.params}: {exc}") from None
    write_json_atomic(args.metrics, metrics)
    log.info("dedupe: %d docs -> %d kept, %d exact + %d near duplicates in %d clusters; %.1f s (%.0f posts/s, "
             "%.2f MB/s)", metrics["docs_in"], metrics["kept"], metrics["exact_duplicates"],
             metrics["near_duplicates"], metrics["duplicate_clusters"], metrics["seconds"], metrics["posts_per_s"],
             metrics["mb_per_s"])


if __name__ == "__main__":
    from pipeline.common import run_main  # user errors: one line, exit 2
    run_main(main)
