"""The contracts between stages: explicit pyarrow schemas for every Parquet file they exchange.

Stages meet only at files. Each file kind has one schema here, and writers cast to it, so a
reader can rely on names, types and nullability whatever the source was. docs/contracts.md#raw-schema
(and the schemas after it) documents the same columns for humans; keep the two in step.

- ``RAW_SCHEMA``: ``data/raw/<source>.parquet``, one row per post (or document), written by the
  crawl stage (spiders through the Parquet feed exporter, or the local-dataset reader).
- ``CLEAN_SCHEMA``: ``data/clean/posts.parquet``, ``data/dedup/corpus.parquet`` and
  ``data/split/<split>.parquet``: one row per kept document.
- ``DROPPED_SCHEMA``: ``data/clean/dropped.parquet``: why a raw record did not survive cleaning.
- ``DUPLICATES_SCHEMA``: ``data/dedup/duplicates.parquet``: which kept document a duplicate
  collapsed into.
"""

from __future__ import annotations

from typing import Sequence

import pyarrow as pa

UTC_TIMESTAMP = pa.timestamp("us", tz="UTC")

RAW_SCHEMA = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),  # params key of the source, e.g. "demo"
        pa.field("url", pa.string(), nullable=False),  # permalink of the post (or document URL)
        pa.field("board", pa.string()),  # forum board / section name; null when not a forum
        pa.field("thread_id", pa.string(), nullable=False),  # thread (or book, article) id
        pa.field("thread_title", pa.string()),
        pa.field("page", pa.int32()),  # 1-based page of the thread the post was read from
        pa.field("position", pa.int32(), nullable=False),  # 0-based index of the post in its thread
        pa.field("post_id", pa.string(), nullable=False),  # unique within the source
        pa.field("author", pa.string()),  # raw username: never leaves the raw stage
        pa.field("posted_at", UTC_TIMESTAMP),
        pa.field("body", pa.string()),  # post HTML exactly as served, or plain text
        pa.field("body_format", pa.string(), nullable=False),  # "html" or "text"
        pa.field("quoted_post_ids", pa.list_(pa.string())),  # ids of the posts this one quotes
        pa.field("fetched_at", UTC_TIMESTAMP, nullable=False),
    ]
)

CLEAN_SCHEMA = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),  # stable hash of (source, post_id)
        pa.field("source", pa.string(), nullable=False),
        pa.field("board", pa.string()),
        pa.field("thread_id", pa.string(), nullable=False),
        pa.field("thread_title", pa.string()),
        pa.field("post_id", pa.string(), nullable=False),
        pa.field("position", pa.int32(), nullable=False),
        pa.field("author_hash", pa.string()),  # salted hash of the username; null when unknown
        pa.field("posted_at", UTC_TIMESTAMP),
        pa.field("text", pa.string(), nullable=False),  # cleaned, normalised, scrubbed text
        pa.field("n_chars", pa.int32(), nullable=False),  # len(text) in code points
        pa.field("quoted_post_ids", pa.list_(pa.string())),
    ]
)

DROPPED_SCHEMA = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),  # e.g. "empty", "too_short", "low_letters"
        pa.field("detail", pa.string()),  # human-readable specifics (lengths, ratios, ...)
    ]
)

DUPLICATES_SCHEMA = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),  # the duplicate that was removed
        pa.field("kept_doc_id", pa.string(), nullable=False),  # the cluster's survivor
        pa.field("source", pa.string(), nullable=False),  # source of the removed duplicate
        pa.field("kind", pa.string(), nullable=False),  # "exact" or "near"
        pa.field("similarity", pa.float32(), nullable=False),  # estimated Jaccard (1.0 for exact)
    ]
)


def missing_columns(schema: pa.Schema, required: pa.Schema | Sequence[str]) -> list[str]:
    """Names of columns of ``required`` that ``schema`` lacks, in ``required``'s order."""
    have = set(schema.names)
    names = required.names if isinstance(required, pa.Schema) else required
    return [name for name in names if name not in have]


def check_columns(schema: pa.Schema, required: pa.Schema | Sequence[str], *, origin: str, expected: str,
                  error: type[Exception] = ValueError) -> None:
    """Raise ``error`` naming ``origin``, the missing columns, what was ``expected`` and the columns found."""
    missing = missing_columns(schema, required)
    if missing:
        raise error(f"{origin}: missing column(s) {', '.join(missing)}; expected {expected}; "
                    f"columns found: {', '.join(schema.names) or 'none'}")
