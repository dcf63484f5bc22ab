# Feed exporters and storages: how items reach disk. Registered in settings.py through
# FEED_EXPORTERS ("parquet") and FEED_STORAGES (atomic local files), so
# `scrapy crawl xenforo -O out.parquet` and the crawl stage use the same code path.
"""Raw Parquet feed exporter (pyarrow, zstd, streamed row groups) and an atomic local feed storage.

pyarrow is the project's Parquet library (every stage reads and writes with it); its
``ParquetWriter`` appends one row group per ``write_table`` call, so the exporter holds at most
``KOPITIAM_PARQUET_ROW_GROUP_SIZE`` items in memory whatever the crawl size. Values are cast to
``contracts.schemas.RAW_SCHEMA`` and written with the project's one Parquet writer
(``contracts.files.parquet_writer``); a value that cannot be cast is an error naming the field.
The spider's engine markup record goes into the file's schema metadata (``contracts.markup``).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
from itemadapter import ItemAdapter
from scrapy.exporters import BaseItemExporter
from scrapy.extensions.feedexport import FileFeedStorage

from contracts import keys
from contracts.files import parquet_writer
from contracts.markup import EngineMarkup, to_metadata
from contracts.schemas import RAW_SCHEMA
from contracts.timestamps import to_utc

logger = logging.getLogger(__name__)

DEFAULT_ROW_GROUP_SIZE = 5000


def _to_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _to_int(value: Any, field: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"field {field!r}: expected an integer, got {value!r}") from exc


def row_from_item(item: Any) -> dict[str, Any]:
    """One item as a dict of RAW_SCHEMA columns with Python values of the right types."""
    adapter = ItemAdapter(item)
    row: dict[str, Any] = {}
    for field in RAW_SCHEMA:
        value = adapter.get(field.name)
        if pa.types.is_timestamp(field.type):
            row[field.name] = to_utc(value, field.name)
        elif pa.types.is_integer(field.type):
            row[field.name] = _to_int(value, field.name)
        elif pa.types.is_list(field.type):
            if value is None:
                row[field.name] = []
            elif isinstance(value, (list, tuple)):
                row[field.name] = [str(v) for v in value]
            else:
                raise ValueError(f"field {field.name!r}: expected a list, got {value!r}")
        else:
            row[field.name] = _to_str(value)
    return row


class ParquetItemExporter(BaseItemExporter):
    """Stream items into one Parquet file with ``RAW_SCHEMA``: zstd, a row group per N items; the
    crawling spider's ``markup`` record (contracts.markup) in the schema metadata, as it is when the
    first row group is written.

    Feed option ``item_export_kwargs: {row_group_size: N}`` or the setting
    ``KOPITIAM_PARQUET_ROW_GROUP_SIZE`` sets N. An empty crawl still writes a valid file with the schema.
    """

    def __init__(self, file: IO[bytes], *, row_group_size: int = DEFAULT_ROW_GROUP_SIZE, **kwargs: Any) -> None:
        super().__init__(dont_fail=True, **kwargs)
        if int(row_group_size) < 1:
            raise ValueError(f"row_group_size must be >= 1, got {row_group_size!r}")
        self.file = file
        self.row_group_size = int(row_group_size)
        self.writer: Any = None  # a pyarrow ParquetWriter once exporting
        self.crawler: Any = None  # set by from_crawler: the spider's markup record goes in the file
        self.schema = RAW_SCHEMA
        self.buffer: list[dict[str, Any]] = []
        self.rows = 0
        self.row_groups = 0

    @classmethod
    def from_crawler(cls, crawler, file: IO[bytes], *args: Any, **kwargs: Any):
        kwargs.setdefault("row_group_size", crawler.settings.getint(keys.ROW_GROUP_SIZE,
                                                                    DEFAULT_ROW_GROUP_SIZE))
        exporter = cls(file, *args, **kwargs)
        exporter.crawler = crawler
        return exporter

    def start_exporting(self) -> None:
        """Nothing yet: the file is opened with the first row group (or at the end), when the
        spider's markup record is final (the ``forum`` spider learns its engine from the first page)."""

    def _open(self) -> None:
        # the engine's markup record travels with its posts (schema metadata; contracts.markup)
        record = getattr(getattr(self.crawler, "spider", None), "markup", None)
        self.schema = (RAW_SCHEMA.with_metadata(to_metadata([record])) if isinstance(record, EngineMarkup)
                       else RAW_SCHEMA)
        self.writer = parquet_writer(self.file, self.schema)

    def export_item(self, item: Any) -> None:
        self.buffer.append(row_from_item(item))
        if len(self.buffer) >= self.row_group_size:
            self._flush()

    def _flush(self) -> None:
        if not self.buffer:
            return
        if self.writer is None:
            self._open()
        columns = {name: [row[name] for row in self.buffer] for name in RAW_SCHEMA.names}
        self.writer.write_table(pa.Table.from_pydict(columns, schema=self.schema))
        self.rows += len(self.buffer)
        self.row_groups += 1
        self.buffer.clear()

    def finish_exporting(self) -> None:
        self._flush()
        if self.writer is None:  # no items: a valid empty file with the schema
            self._open()
        self.writer.close()
        logger.info("parquet feed: %d rows in %d row groups", self.rows, self.row_groups)


class AtomicFileFeedStorage(FileFeedStorage):
    """A local feed file written beside its target and renamed over it when the feed closes.

    Readers never see a half-written file. Append mode (``-o``) copies the existing file into the
    temporary one first (fine for JSON lines; Parquet cannot be appended and is rewritten).
    """

    def open(self, spider) -> IO[bytes]:
        target = Path(self.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        self.tmp_path = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        if self.write_mode == "ab" and target.exists():
            shutil.copyfile(target, self.tmp_path)
        return self.tmp_path.open(self.write_mode)

    def store(self, file: IO[bytes]) -> None:
        file.close()
        os.replace(self.tmp_path, self.path)
        return None
