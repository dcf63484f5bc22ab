"""Stage `clean`: raw posts (``data/raw/*.parquet``, RAW_SCHEMA) -> ``data/clean/posts.parquet``
(CLEAN_SCHEMA), ``data/clean/dropped.parquet`` (DROPPED_SCHEMA) and ``metrics/clean.json``.

Per post (pipeline.cleaning): HTML -> text (pipeline.htmltext; ``body_format="text"`` skips it),
normalisation (pipeline.textnorm), personal-data scrubbing (pipeline.pii), keep-or-drop rules
(pipeline.filters). This module holds the I/O: reading, writing, metrics; pipeline.pool the workers.
Authors become ``author_hash`` = first 16 hex of sha256(salt, source, author): the raw username
never leaves this stage. ``doc_id`` = first 16 hex of sha256(f"{source}\\x1f{post_id}").

Raw files are read in record batches of ``batch_rows``; batches are cleaned by a process pool
(``workers``, 0 = all cores) with a bounded window of batches in flight, and results are written
in input order, so memory stays flat and the output is deterministic whatever the worker count
(technique: a bounded window; the post ids seen so far, for ``duplicate_post_id``, take 8 bytes
each: ``contracts.ids.SeenIds``).
With ``engine: dask`` (pipeline.dask_engine) the same batches are cleaned on a Dask cluster: each
task names a file and a row range, and the worker reads those rows itself (``clean_rows``), so the
files must be at a path or fsspec URL every worker can reach; the output bytes are the same.

Params (``clean`` section): unicode_form, lowercase, scrub_urls, author_salt, image_alt,
image_placeholder, mention_placeholder, min_chars, max_chars, max_raw_chars, min_letter_ratio,
batch_rows, workers, engine; with engine dask also the ``dask`` section.
"""

from __future__ import annotations

import argparse
import logging
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import pyarrow as pa
import pyarrow.parquet as pq

from contracts import markup
from contracts.markup import EngineMarkup
from contracts.schemas import CLEAN_SCHEMA, DROPPED_SCHEMA, RAW_SCHEMA, check_columns
from pipeline import dask_engine
from pipeline.cleaning import (
    READ_COLUMNS,
    clean_batch,
    doc_id_for,
    drop_repeated_posts,
    merge_stats,
    new_stats,
)
from pipeline.common import (
    SeenIds,
    atomic_path,
    load_params,
    parquet_reader,
    parquet_writer,
    setup_logging,
    write_json_atomic,
)
from pipeline.config import section, setting
from pipeline.pool import ordered_map, resolve_workers
from pipeline.progress import Progress

__all__ = ["CleanConfig", "RawInputError", "doc_id_for", "run_clean", "main"]

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class CleanConfig:
    """The ``clean`` section of params.yaml (values and their meanings are there)."""

    unicode_form: str = setting(choices=("NFC", "NFKC"))
    lowercase: bool
    scrub_urls: bool
    author_salt: str
    image_alt: bool
    image_placeholder: str
    mention_placeholder: str
    min_chars: int = setting(ge=0)
    max_chars: int = setting(ge=1)
    max_raw_chars: int = setting(ge=1)
    min_letter_ratio: float = setting(ge=0, le=1)
    batch_rows: int = setting(ge=1)
    workers: int = setting(ge=0)
    engine: str = setting(choices=dask_engine.ENGINES)

    def __post_init__(self) -> None:
        if self.min_chars > self.max_chars:
            raise ValueError(f"clean.min_chars ({self.min_chars}) must be <= clean.max_chars ({self.max_chars})")


class RawInputError(ValueError):
    """A raw file cannot be read as RAW_SCHEMA (names the file and the column)."""


def _typed_batch(path: Path | str, batch: pa.RecordBatch) -> pa.RecordBatch:
    """``batch`` cast to RAW_SCHEMA's types (``body`` as bytes: decoded, and counted, in the worker)."""
    arrays = []
    for c in READ_COLUMNS:
        want = pa.binary() if c == "body" else RAW_SCHEMA.field(c).type
        try:
            arrays.append(batch.column(c).cast(want))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise RawInputError(f"{path}: column {c} has type {batch.column(c).type}, expected {want}: {exc}") from exc
    return pa.RecordBatch.from_arrays(arrays, names=READ_COLUMNS)


def file_markup(path: Path, schema: pa.Schema) -> EngineMarkup:
    """The markup the HTML bodies of one raw file are read with: the engine records the crawler
    stored in the file, else the generic record (logged, so a user dataset's choice is visible)."""
    try:
        records = markup.from_metadata(schema.metadata, origin=str(path))
    except ValueError as exc:
        raise RawInputError(str(exc)) from None
    if not records:
        log.info("%s names no engine markup: HTML bodies read with the generic record", path)
    return markup.for_file(records)


def raw_files(paths: list[Path]) -> Iterator[tuple[Path, pq.ParquetFile, EngineMarkup]]:
    """Every raw file that has rows, opened, its columns checked and its markup read (0-byte files:
    a warning)."""
    for path in paths:
        if path.stat().st_size == 0:
            log.warning("%s is empty (0 bytes): no rows read from it", path)
            continue
        try:
            pf = parquet_reader(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise RawInputError(f"{path}: not a readable Parquet file ({exc})") from exc
        check_columns(pf.schema_arrow, READ_COLUMNS, origin=str(path), error=RawInputError,
                      expected="RAW_SCHEMA (contracts/schemas.py) in raw files")
        yield path, pf, file_markup(path, pf.schema_arrow)


def raw_batches(paths: list[Path], batch_rows: int) -> Iterator[tuple[str, int, pa.RecordBatch, EngineMarkup]]:
    """Yield (file stem, row offset, record batch, the file's markup) from every raw file, checking
    columns first."""
    for path, pf, rules in raw_files(paths):
        offset = 0
        for batch in pf.iter_batches(batch_size=batch_rows, columns=READ_COLUMNS):
            yield path.stem, offset, _typed_batch(path, batch), rules
            offset += batch.num_rows


def clean_rows(location: str, start: int, stop: int, name: str, cfg: dict[str, Any], rules: EngineMarkup):
    """Read rows [start, stop) of one raw file and clean them (a Dask task: the worker does the I/O).

    Only the row groups holding those rows are read; the rows are the same record batch the local
    engine's ``raw_batches`` yields, so ``clean_batch`` sees identical input.
    """
    with dask_engine.open_parquet(location) as pf:
        meta = pf.metadata
        groups, first, row0 = [], None, 0
        for g in range(meta.num_row_groups):
            n = meta.row_group(g).num_rows
            if row0 < stop and row0 + n > start:
                groups.append(g)
                first = row0 if first is None else first
            row0 += n
        table = pf.read_row_groups(groups, columns=READ_COLUMNS).slice(start - (first or 0), stop - start)
    batch = table.combine_chunks().to_batches()[0]
    return clean_batch(_typed_batch(location, batch), name, start, cfg, rules)


def row_range_tasks(paths: list[Path], cfg: dict[str, Any]) -> Iterator[tuple]:
    """``clean_rows`` tasks: the local engine's batches as (absolute file, start, stop, stem, cfg,
    markup)."""
    for path, pf, rules in raw_files(paths):
        n, step = pf.metadata.num_rows, cfg["batch_rows"]
        for start in range(0, n, step):
            yield str(path.resolve()), start, min(start + step, n), path.stem, cfg, rules


def run_clean(paths: list[Path], posts_path: Path, dropped_path: Path, cfg: dict[str, Any],
              dask_cfg: dict[str, Any] | None = None,
              engine: dask_engine.DaskEngine | None = None) -> dict[str, Any]:
    """Clean every raw file into ``posts_path`` / ``dropped_path``; return the metrics.

    ``cfg["engine"] == "dask"`` runs the batches on ``engine`` (an open DaskEngine) or on one made
    from ``dask_cfg`` (the ``dask`` section) for this call.
    """
    dask_engine.check_engine("clean", cfg["engine"])
    if cfg["engine"] == "dask" and engine is None:
        if dask_cfg is None:
            raise ValueError("clean.engine = 'dask' needs the dask section (dask_cfg) or an open engine")
        with dask_engine.DaskEngine(dask_cfg) as own:
            return run_clean(paths, posts_path, dropped_path, cfg, engine=own)
    started = time.perf_counter()
    total_rows = sum(pq.ParquetFile(p).metadata.num_rows for p in paths if p.stat().st_size > 0)
    stats = new_stats()
    seen = SeenIds()  # doc_ids so far: a post id repeated in a later batch is a duplicate
    if cfg["engine"] == "dask":
        batches = engine.ordered_map(clean_rows, row_range_tasks(paths, cfg))
    else:
        tasks = ((batch, name, offset, cfg, rules)
                 for name, offset, batch, rules in raw_batches(paths, cfg["batch_rows"]))
        batches = ordered_map(clean_batch, tasks, workers=resolve_workers(cfg["workers"]))
    with atomic_path(posts_path) as posts_tmp, atomic_path(dropped_path) as dropped_tmp, \
            closing(batches) as results, \
            parquet_writer(posts_tmp, CLEAN_SCHEMA) as kept_w, \
            parquet_writer(dropped_tmp, DROPPED_SCHEMA) as drop_w, \
            Progress(total_rows, "clean", "post", log) as bar:
        for kept, dropped, part in results:
            merge_stats(stats, part)
            kept, dropped = drop_repeated_posts(kept, dropped, stats, seen)
            kept_w.write_table(kept)
            drop_w.write_table(dropped)
            bar.update(kept.num_rows + dropped.num_rows)
    return finish_metrics(stats, time.perf_counter() - started)


def finish_metrics(stats: dict[str, Any], seconds: float) -> dict[str, Any]:
    """Totals and drop reasons over sources, checking raw = kept + dropped for each source."""
    by_reason: dict[str, int] = {}
    for src, per in stats["per_source"].items():
        per["dropped_total"] = sum(per["dropped"].values())
        if per["raw"] != per["kept"] + per["dropped_total"]:  # an internal bug, never bad input
            raise AssertionError(f"clean accounting broken for source {src}: {per}")
        for r, n in per["dropped"].items():
            by_reason[r] = by_reason.get(r, 0) + n
    raw = sum(p["raw"] for p in stats["per_source"].values())
    kept = sum(p["kept"] for p in stats["per_source"].values())
    return {**stats, "raw": raw, "kept": kept, "dropped": raw - kept, "dropped_by_reason": by_reason,
            "seconds": round(seconds, 3), "mb_per_s": round(stats["bytes_in"] / 1e6 / max(seconds, 1e-9), 3),
            "posts_per_s": round(raw / max(seconds, 1e-9), 1)}


def load_config(params: Mapping[str, Any]) -> dict[str, Any]:
    """Every params value the stage reads: the ``clean`` and ``dask`` sections and ``crawl.sources``
    (which raw files to read; None when the file has no such key)."""
    listed = (params.get("crawl") or {}).get("sources")
    return {"clean": section("clean", CleanConfig, params), "dask": section("dask", dask_engine.DaskConfig, params),
            "sources": None if listed is None else [str(n) for n in listed]}


def select_raw_files(raw_dir: Path, sources: str | None, listed: list[str] | None) -> list[Path]:
    """The raw files to clean: one per source named (``--sources``, else ``listed``: params
    ``crawl.sources``; None: every raw file).

    Raw files of sources no longer listed (say, demo.parquet after switching to babynames) stay on
    disk but are left out, with a log line; a listed source without its file is an error.
    """
    if sources is None:
        names = listed
    else:
        names = None if sources.strip() == "*" else [n.strip() for n in sources.split(",") if n.strip()]
    if names is None:
        paths = sorted(raw_dir.glob("*.parquet"))
        if not paths:
            raise SystemExit(f"no raw files: {raw_dir}/*.parquet matched nothing (run the crawl stage first)")
        return paths
    if not names:
        raise SystemExit("clean: no sources to clean (crawl.sources is empty)")
    paths = [raw_dir / f"{name}.parquet" for name in names]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise SystemExit(f"clean: raw file(s) {', '.join(missing)} not found: run `dvc repro crawl` first")
    ignored = sorted(set(raw_dir.glob("*.parquet")) - set(paths))
    if ignored:
        log.warning("clean: ignoring raw file(s) of sources not listed in crawl.sources: %s",
                 ", ".join(str(p) for p in ignored))
    return sorted(paths)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw-dir", default="data/raw", type=Path)
    parser.add_argument("--out-dir", default="data/clean", type=Path)
    parser.add_argument("--metrics", default="metrics/clean.json", type=Path)
    parser.add_argument("--params", default="params.yaml", type=Path)
    parser.add_argument("--sources", default=None,
                        help="comma-separated source names to clean (default: params crawl.sources; "
                             "'*' = every data/raw/*.parquet)")
    args = parser.parse_args(argv)
    setup_logging()
    config = load_config(load_params(args.params))
    paths = select_raw_files(args.raw_dir, args.sources, config["sources"])
    try:
        metrics = run_clean(paths, args.out_dir / "posts.parquet", args.out_dir / "dropped.parquet",
                            config["clean"], config["dask"])
    except RawInputError as exc:
        log.error("%s", exc)
        raise SystemExit(f"clean: {exc}") from None
    except dask_engine.DaskSchedulerError as exc:
        log.error("%s: %s", args.params, exc)
        raise SystemExit(f"clean: {args.params}: {exc}") from None
    write_json_atomic(args.metrics, metrics)
    log.info("clean: %d raw posts from %d file(s) -> %d kept, %d dropped %s; %.1f MB in, %.1f s (%.0f posts/s, "
             "%.2f MB/s)", metrics["raw"], len(paths), metrics["kept"], metrics["dropped"],
             metrics["dropped_by_reason"], metrics["bytes_in"] / 1e6, metrics["seconds"], metrics["posts_per_s"],
             metrics["mb_per_s"])


if __name__ == "__main__":
    from pipeline.common import run_main  # user errors: one line, exit 2
    run_main(main)
