"""The Parquet feed exporter and the atomic feed storage (crawler/exporters.py)."""

from __future__ import annotations

from datetime import datetime, timezone

import pyarrow.parquet as pq
import pytest

from contracts.schemas import RAW_SCHEMA
from crawler.exporters import AtomicFileFeedStorage, ParquetItemExporter
from crawler.items import PostItem


def item(i: int, **over) -> PostItem:
    base = dict(source="s", url=f"http://x/p{i}", board="B", thread_id="7", thread_title="T — ünï",
                page=1, position=i, post_id=str(1000 + i), author="A", body=f"<b>{i}</b> &amp; ☕",
                posted_at=datetime(2025, 2, 15, 11, 48, 27, tzinfo=timezone.utc), body_format="html",
                quoted_post_ids=[str(999 + i)] if i else [],
                fetched_at=datetime(2026, 1, 1, tzinfo=timezone.utc))
    return PostItem(**{**base, **over})


def test_parquet_round_trip_keeps_every_field_and_type(tmp_path):
    path = tmp_path / "raw.parquet"
    items = [item(i) for i in range(5)] + [item(5, board=None, author=None, posted_at=None, page=None,
                                               quoted_post_ids=None, body_format="text", body="plain")]
    with open(path, "wb") as fh:
        exporter = ParquetItemExporter(fh, row_group_size=2)
        exporter.start_exporting()
        for it in items:
            exporter.export_item(it)
        exporter.finish_exporting()
    file = pq.ParquetFile(path)
    assert file.metadata.num_row_groups == 3 and file.schema_arrow.equals(RAW_SCHEMA)
    assert file.metadata.row_group(0).column(0).compression == "ZSTD"
    rows = file.read().to_pylist()
    for got, want in zip(rows[:5], items[:5]):
        assert got == dict(want)
    assert rows[5] == {**dict(items[5]), "quoted_post_ids": []}


def test_exporter_names_a_bad_value(tmp_path):
    with open(tmp_path / "x.parquet", "wb") as fh:
        exporter = ParquetItemExporter(fh)
        exporter.start_exporting()
        with pytest.raises(ValueError, match="field 'position'"):
            exporter.export_item(item(0, position="first"))
        with pytest.raises(ValueError, match="field 'posted_at'"):
            exporter.export_item(item(0, posted_at="yesterday"))
        exporter.export_item(item(1))
        exporter.finish_exporting()
    assert pq.read_table(tmp_path / "x.parquet").column("post_id").to_pylist() == ["1001"]


def test_atomic_feed_storage(tmp_path):
    target = tmp_path / "out" / "feed.parquet"
    storage = AtomicFileFeedStorage(str(target), feed_options={"overwrite": True})
    fh = storage.open(None)
    fh.write(b"data")
    assert not target.exists()  # nothing visible until the feed is stored
    storage.store(fh)
    assert target.read_bytes() == b"data" and list(target.parent.iterdir()) == [target]
